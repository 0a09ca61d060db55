"""Fault 5: irregular streams (nominal rate 0) delivered in bursts, with long silences."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest
from fault_rig import collect_trials, markers_spec, open_live, record, uncounted_losses

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.lsl.health import StreamState
from acquisition.lsl.presets import PRESETS
from acquisition.sim.faults import RawDevice
from acquisition.trials.types import TrialSpec

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


def pupil_rows(i: np.ndarray) -> np.ndarray:
    rows = np.empty((len(i), 5), np.float32)
    rows[:, 0] = 0.95
    rows[:, 1] = 0.5 + 0.2 * np.sin(i / 80)
    rows[:, 2] = 0.5
    rows[:, 3] = 3.5
    rows[:, 4] = 3.6
    return rows


def test_f05_bursty_irregular_gaze_with_a_long_silence(uid):
    spec = PRESETS["pupil-labs"][0].spec(f"pl-{uid}", name=f"pupil_capture-{uid}")
    mk = markers_spec(uid)
    dev, marks = RawDevice(spec, pupil_rows), RawDevice(mk)
    cfg = AcquisitionConfig(trial=TrialSpec(grace=1.0, required_roles=("gaze",)))
    live = open_live([spec, mk], cfg)
    rng = np.random.default_rng(0)
    pushed: list[np.ndarray] = []
    events: list = []
    try:
        health = live.health[spec.key]
        t0 = pylsl.local_clock()
        marks.push([t0 + 0.5], [["onset:coffee"]])
        last = t0
        silent = (t0 + 2.0, t0 + 5.0)  # the device sends nothing and measures nothing here
        onset2_sent = False
        while pylsl.local_clock() < t0 + 13.0:
            time.sleep(0.6)  # bursts: 0.6 s of samples at once, stamped when measured
            now = pylsl.local_clock()
            ts = np.sort(rng.uniform(last, now, int((now - last) * 200)))
            last = now
            ts = ts[(ts < silent[0]) | (ts >= silent[1])]
            if len(ts):
                dev.push(ts)
                pushed.append(ts)
            if not onset2_sent and now > t0 + 6.0:
                marks.push([now - 0.3], [["onset:moon"]])
                onset2_sent = True
            events += live.poll()
        events += collect_trials(live, 2 - sum(isinstance(e, TrialEvent) for e in events), 10.0)
        time.sleep(0.3)
        state = health.state
    finally:
        live.stop()
        del marks
    trials = [e.trial for e in events if isinstance(e, TrialEvent)]
    assert [t.stimulus_id for t in trials] == ["coffee", "moon"]
    first, second = (t.quality for t in trials)
    assert first.gaps["gaze"] >= 1 and 0.3 < first.coverage["gaze"] < 0.7, first
    # Data that arrives in bursts, up to 0.6 s late, is waited for: nothing cut off.
    assert second.complete and second.coverage["gaze"] > 0.97, second
    assert state is StreamState.OK and health.errors == 0
    assert not any("lost" in e for e in health.events), health.events
    sent = np.concatenate(pushed)
    ts, _ = live.core.buffers[spec.key].read(-np.inf, np.inf)
    assert health.samples == len(sent) == len(ts)
    lost = uncounted_losses(sent, ts, 0.25, 1)
    record("f05-irregular", samples_lost_uncounted=lost, trials_lost_uncounted=2 - len(trials))
    assert lost == 0
