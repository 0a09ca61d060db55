"""Fault 3: a device clock reset (backwards and forwards jumps) in one stream, and a stream
stamped in Unix-epoch seconds: corrected onto the LSL clock and reported, never mixed."""

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
    wait_until,
)

from acquisition.aligner import TrialEvent
from acquisition.lsl.clockguard import ClockGuard
from acquisition.sim.faults import RawDevice

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


def _run(uid: str, shifts: list[tuple[float, float]], start_offset: float = 0.0):
    """Feed a Gazepoint stream, apply ``(after_s, offset)`` clock shifts, open two trials."""
    gp, mk = gazepoint_spec(uid), markers_spec(uid)
    feeder = Feeder(RawDevice(gp, gazepoint_rows), 60.0)
    feeder.offset = start_offset
    marks = RawDevice(mk)
    live = open_live([gp, mk])
    feeder.start()
    try:
        t_start = time.monotonic()
        onsets = []
        for after, offset in shifts:
            time.sleep(max(0.0, t_start + after - time.monotonic()))
            feeder.offset = offset
            if len(onsets) < 2:
                onsets.append(pylsl.local_clock() - 0.5)
                marks.push([onsets[-1]], [[f"onset:{['coffee', 'moon'][len(onsets) - 1]}"]])
        events = collect_trials(live, len(onsets), 20.0)
        assert wait_until(lambda: live.health[gp.key].samples == feeder.device.pushed, 3.0)
    finally:
        feeder.stop()
        time.sleep(0.3)
        live.stop()
        del marks
    return live, live.health[gp.key], feeder, [e.trial for e in events if isinstance(e, TrialEvent)]


def test_f03_device_clock_resets_backwards_and_forwards(uid):
    live, health, feeder, trials = _run(uid, [(1.5, -50.0), (5.0, 30.0)])
    assert health.clock_jumps == 2, health.events
    assert sum("clock jump" in e for e in health.events) == 2, health.events
    assert len(trials) == 2
    for t in trials:  # the jumps happened inside these windows: data stays in place
        assert t.quality.complete and t.quality.coverage["gaze"] > 0.95, t.quality
    ts, _ = live.core.buffers[health.key].read(-np.inf, np.inf)
    assert np.all(np.diff(ts) > 0) and np.all(np.diff(ts) < 0.1)
    assert abs(ts[-1] - pylsl.local_clock()) < 2.0
    record("f03-jump", samples_lost_uncounted=feeder.device.pushed - health.samples)
    assert health.samples == feeder.device.pushed


def test_f03_unix_epoch_stream_is_mapped_onto_the_lsl_clock(uid):
    epoch = time.time() - pylsl.local_clock()
    live, health, feeder, trials = _run(uid, [(1.5, epoch), (3.0, epoch)], start_offset=epoch)
    assert health.unix_epoch and health.clock_jumps == 0, health.events
    assert sum("Unix-epoch" in e for e in health.events) == 1, health.events
    assert "Unix-epoch" in health.to_dict()["message"] or health.events
    for t in trials:
        assert t.quality.complete and t.quality.coverage["gaze"] > 0.95, t.quality
    ts, _ = live.core.buffers[health.key].read(-np.inf, np.inf)
    assert abs(ts[-1] - pylsl.local_clock()) < 2.0  # LSL clock, not 1.7e9
    record("f03-epoch", samples_lost_uncounted=feeder.device.pushed - health.samples)
    assert health.samples == feeder.device.pushed


def test_clockguard_forward_jump_is_not_a_dropout():
    now = [1000.0]
    guard = ClockGuard(60.0, lambda: now[0])
    a = guard.correct(999.0 + np.arange(60) / 60)
    now[0] = 1005.0  # five silent seconds, then fresh stamps: a dropout, not a jump
    b = guard.correct(1004.0 + np.arange(60) / 60)
    assert guard.jumps == 0 and b[0] - a[-1] == pytest.approx(4.0 + 1 / 60)
    now[0] = 1006.0
    c = guard.correct(1036.0 + np.arange(60) / 60)  # 30 s in the future: a clock jump
    assert guard.jumps == 1 and c[0] == pytest.approx(b[-1] + 1 / 60)
