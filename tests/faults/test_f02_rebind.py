"""Fault 2: a device restarts as a new stream (new uid and source id, same name and type): the
lost role is rebound by the same rules, and the same buffer continues."""

from __future__ import annotations

import dataclasses
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


def test_f02_device_restarts_as_new_stream_is_rebound(uid):
    gp, mk = gazepoint_spec(uid), markers_spec(uid)
    feeder = Feeder(RawDevice(gp, gazepoint_rows), 60.0)
    marks = RawDevice(mk)
    live = open_live([gp, mk], lost_after=1.5)
    feeder.start()
    odd = None
    try:
        health = live.health[gp.key]
        time.sleep(1.0)
        onset = pylsl.local_clock()
        marks.push([onset], [["onset:coffee"]])
        time.sleep(0.5)
        feeder.kill_device()
        assert wait_until(lambda: health.state is StreamState.LOST, 5.0), health
        # A stream with the same name and type but another layout: reported, not bound.
        odd_spec = dataclasses.replace(
            gp, source_id=f"odd-{uid}", channel_count=2, channel_labels=("FPOGX", "FPOGY")
        )
        odd = RawDevice(odd_spec)
        assert wait_until(lambda: "layout differs" in health.message, 5.0), health.events
        assert health.state is StreamState.LOST and health.rebinds == 0
        # The device comes back with a fresh source id and the same layout: rebound.
        new = dataclasses.replace(gp, source_id=f"gp2-{uid}")
        feeder.restart_device(new)
        assert wait_until(lambda: health.rebinds == 1, 8.0), health.events
        assert wait_until(lambda: health.state is StreamState.OK, 5.0), health
        events = collect_trials(live, 1, 15.0)
        marks.push([pylsl.local_clock()], [["onset:moon"]])  # a trial wholly after the rebind
        events += collect_trials(live, 1, 15.0)
    finally:
        feeder.stop()
        time.sleep(0.3)
        live.stop()
        del odd, marks
    trials = [e.trial for e in events if isinstance(e, TrialEvent)]
    assert [t.stimulus_id for t in trials] == ["coffee", "moon"]
    first, second = trials
    assert first.quality.gaps["gaze"] >= 1  # the restart is a hole in the first trial
    assert second.quality.complete and second.quality.coverage["gaze"] > 0.95, second.quality
    assert health.source_id == f"gp2-{uid}" and "rebound" in health.message
    assert sum("layout differs" in e for e in health.events) == 1, health.events
    assert len(live.rebinds) == 1 and health.gaps >= 1
    ts, _ = live.core.buffers[gp.key].read(-np.inf, np.inf)
    assert np.all(np.diff(ts) > 0)  # one buffer, in time order across the restart
    assert health.samples == len(ts)
    lost = uncounted_losses(np.array(feeder.pushed_ts), ts, 0.1, health.gaps)
    record("f02-rebind", samples_lost_uncounted=lost, trials_lost_uncounted=0)
    assert lost == 0
