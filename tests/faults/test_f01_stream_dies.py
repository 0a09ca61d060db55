"""Fault 1: a device stream dies mid-trial and comes back with the same source id after 3 s;
and one that never comes back."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest
from fault_rig import (
    Feeder,
    collect_trials,
    gazepoint_rows,
    gazepoint_spec,
    markers_spec,
    open_live,
    record,
    uncounted_losses,
    wait_until,
)

from acquisition.aligner import TrialEvent
from acquisition.lsl.health import StreamState
from acquisition.sim.faults import RawDevice

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


def test_f01_dies_mid_trial_and_returns_with_same_source_id(uid):
    gp, mk = gazepoint_spec(uid), markers_spec(uid)
    feeder = Feeder(RawDevice(gp, gazepoint_rows), 60.0)
    marks = RawDevice(mk)
    live = open_live([gp, mk])
    feeder.start()  # after the inlets connected: every sample pushed from now on is expected
    try:
        health = live.health[gp.key]
        time.sleep(1.5)
        onset = pylsl.local_clock()
        marks.push([onset], [["onset:coffee"]])
        time.sleep(1.0)
        feeder.kill_device()  # outlet destroyed mid-trial
        assert wait_until(lambda: health.state is StreamState.STALLED, 3.0), health
        time.sleep(max(0.0, onset + 4.0 - pylsl.local_clock()))
        feeder.restart_device()  # same source id: liblsl's recover=True reconnects
        events = collect_trials(live, 1, 15.0)
        assert wait_until(lambda: health.state is StreamState.OK, 5.0), health
        time.sleep(0.5)
    finally:
        feeder.stop()  # last pushes arrive before the inlets close
        time.sleep(0.3)
        live.stop()
        del marks
    (trial,) = [e.trial for e in events if isinstance(e, TrialEvent)]
    q = trial.quality
    # The trial is cut once the stream passed its end: the hole is in its quality, not hidden.
    assert q.complete and q.gaps["gaze"] >= 1 and 0.2 < q.coverage["gaze"] < 0.8, q
    assert np.isfinite(trial.signals).all()
    # Reported once: one stall, one resume with the gap counted; never an error.
    assert health.gaps == 1 and health.errors == 0, health
    assert sum("stalled" in e for e in health.events) == 1, health.events
    assert sum("resumed" in e for e in health.events) == 1, health.events
    ts, _ = live.core.buffers[gp.key].read(-np.inf, np.inf)
    assert health.samples == len(ts)
    lost = uncounted_losses(np.array(feeder.pushed_ts), ts, 0.1, health.gaps)
    record("f01-return", samples_lost_uncounted=lost, trials_lost_uncounted=0)
    assert lost == 0
    assert feeder.error is None


def test_f01_dies_and_never_returns(uid):
    gp, mk = gazepoint_spec(uid), markers_spec(uid)
    feeder = Feeder(RawDevice(gp, gazepoint_rows), 60.0)
    marks = RawDevice(mk)
    live = open_live([gp, mk], lost_after=2.0)
    feeder.start()
    try:
        health = live.health[gp.key]
        time.sleep(1.5)
        onset = pylsl.local_clock()
        marks.push([onset], [["onset:coffee"]])
        time.sleep(1.0)
        feeder.kill_device()
        # The session goes on: later onsets are still cut (grace timeout), marked incomplete.
        time.sleep(1.0)
        marks.push([pylsl.local_clock()], [["onset:moon"]])
        events = collect_trials(live, 2, 20.0)
        assert health.state is StreamState.LOST
    finally:
        feeder.stop()  # last pushes arrive before the inlets close
        time.sleep(0.3)
        live.stop()
        del marks
    trials = [e.trial for e in events if isinstance(e, TrialEvent)]
    assert [t.stimulus_id for t in trials] == ["coffee", "moon"]
    for t in trials:
        assert not t.quality.complete
        assert any("grace timeout" in n and "gaze" in n for n in t.quality.notes), t.quality
    assert live.core.aligner.stats.incomplete == 2 and live.core.aligner.stats.trials_cut == 2
    assert sum("device lost" in e for e in health.events) == 1, health.events
    ts, _ = live.core.buffers[gp.key].read(-np.inf, np.inf)
    lost = uncounted_losses(np.array(feeder.pushed_ts), ts, 0.1, 1)
    record("f01-never", samples_lost_uncounted=lost, trials_lost_uncounted=0)
    assert lost == 0 and health.samples == len(ts)
