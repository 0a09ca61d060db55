"""Fault 6: marker problems over real LSL — unknown text, duplicate onsets, onsets closer than
5 s, an onset with no rating, a rating with no onset, a flood of 1,000 markers per second."""

from __future__ import annotations

import logging
import time

import numpy as np
import pylsl
import pytest
from fault_rig import (
    Feeder,
    gazepoint_rows,
    gazepoint_spec,
    markers_spec,
    open_live,
    record,
    uncounted_losses,
)

from acquisition.aligner import RatingEvent, TrialEvent
from acquisition.sim.faults import RawDevice

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]

FLOOD_RATE = 1000  # markers per second
FLOOD_SECONDS = 2.0


def push_flood(marks: RawDevice, rng: np.random.Generator) -> tuple[int, float]:
    """Push 1,000 markers/s in 10-ms chunks: onsets of one stimulus every millisecond, junk
    texts (many different ones) and ratings. Returns (markers pushed, first flood stamp)."""
    kinds = np.array(["onset:flood", "junk", "rating:arousal=4;valence=4"], dtype=object)
    n_chunk = FLOOD_RATE // 100
    pushed, t_first = 0, pylsl.local_clock()
    end = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < end:
        now = pylsl.local_clock()
        ts = now + np.arange(n_chunk) / FLOOD_RATE
        pick = kinds[rng.integers(0, 3, n_chunk)]
        rows = [[f"junk-{rng.integers(1000)}" if k == "junk" else k] for k in pick]
        pushed += marks.push(ts, rows)
        time.sleep(0.01)
    return pushed, t_first


def trials_in(events: list) -> list:
    return [e.trial for e in events if isinstance(e, TrialEvent)]


def poll_for(live, seconds: float) -> list:
    """Poll the live input as a session does, for ``seconds``; returns the events."""
    events: list = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        events += live.poll(wait=0.05)
    return events


def test_f06_marker_problems_and_a_flood(uid, caplog):
    caplog.set_level(logging.WARNING, logger="acquisition")
    gp, mk = gazepoint_spec(uid), markers_spec(uid)
    feeder = Feeder(RawDevice(gp, gazepoint_rows), 60.0)
    marks = RawDevice(mk)
    live = open_live([gp, mk])
    feeder.start()
    sent = 0
    events: list = []
    try:
        time.sleep(1.0)
        now = pylsl.local_clock
        sent += marks.push([now()], [["rating:arousal=3;valence=5"]])  # rating, no onset
        sent += marks.push([now()], [["hello experimenter"]])  # unknown text
        # The flood opens one trial; its first rating rates it, the rest find no trial.
        flood, t_flood = push_flood(marks, np.random.default_rng(0))
        sent += flood
        events += poll_for(live, 1.0)
        t_coffee = now()
        # The same sample sent twice (a resent marker): a duplicate, one trial.
        sent += marks.push([t_coffee, t_coffee], [["onset:coffee"], ["onset:coffee"]])
        events += poll_for(live, 2.0)  # 2 s later: an overlapping trial
        t_moon = now()
        sent += marks.push([t_moon], [["onset:moon"]])
        events += poll_for(live, 5.5)  # coffee's window closes unrated
        sent += marks.push([now()], [["rating:arousal=6;valence=2"]])  # rates moon
        stats = live.core.aligner.stats
        end = time.monotonic() + 10.0
        while (stats.markers < sent or len(trials_in(events)) < 3) and time.monotonic() < end:
            events += live.poll(wait=0.05)
        events += poll_for(live, 0.3)
    finally:
        feeder.stop()
        time.sleep(0.3)
        live.stop()
        del marks
    stats = live.core.aligner.stats
    trials = trials_in(events)
    ratings = {e.trial_id: e.ratings for e in events if isinstance(e, RatingEvent)}

    # Three trials: the flood's first onset (rated by the flood), coffee (no rating) and moon
    # (overlapping coffee, rated).
    assert [t.stimulus_id for t in trials] == ["flood", "coffee", "moon"]
    assert trials[0].onset >= t_flood
    assert trials[1].onset == pytest.approx(t_coffee) and trials[2].onset == pytest.approx(t_moon)
    assert all(t.quality.complete for t in trials), [t.quality for t in trials]
    rated = {t.stimulus_id: ratings.get(t.trial_id) or t.ratings for t in trials}
    assert rated["flood"] is not None and rated["coffee"] is None
    assert (rated["moon"].arousal, rated["moon"].valence) == (6, 2)

    # Every marker is accounted for, in one place.
    assert stats.markers == sent
    accounted = (
        stats.onsets
        + stats.duplicates
        + stats.ignored
        + stats.ratings_attached
        + stats.ratings_orphaned
        + sum(stats.dropped.values())
    )
    assert accounted == sent, stats
    assert stats.duplicates == 1 and stats.onsets == 3 and stats.ratings_attached == 2
    assert stats.dropped.get("onset_too_close", 0) > 500, stats
    assert stats.ratings_orphaned > 500, stats  # the first rating, and the flood's
    assert "markers_overwritten" not in stats.dropped
    assert stats.marker_problems().startswith("markers: 1 duplicate onsets")

    # Reported, not spammed: each problem's warnings grow with the log of its count.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 3 < len(warnings) < 60, [r.getMessage() for r in warnings]
    assert any("hello experimenter" in r.getMessage() for r in warnings)

    # The device stream lost nothing while the markers flooded in.
    health = live.health[gp.key]
    ts, _ = live.core.buffers[gp.key].read(-np.inf, np.inf)
    lost = uncounted_losses(np.array(feeder.pushed_ts), ts, 0.1, health.gaps)
    trials_lost = 3 - len(trials)
    record("f06-markers", samples_lost_uncounted=lost, trials_lost_uncounted=trials_lost)
    assert lost == 0 and health.errors == 0 and feeder.error is None
