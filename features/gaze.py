"""Fixations and saccades by velocity threshold (I-VT), and their per-trial figures.

Gaze is in screen units: x as a fraction of the screen's width, y of its height, origin top-left
(what every gaze reading yields, :mod:`acquisition.lsl.reading`). Velocities are therefore in
**screen units per second** (the Euclidean length in those units; not degrees, which would need
the screen's size and distance). :data:`VELOCITY_THRESHOLD` is 1.5 screen units/s: on a screen
40° of visual angle wide that is about 60°/s, within the 30-100°/s used for I-VT in the
literature, and above the noise of a 1200 Hz tracker once velocity is taken over
:data:`VELOCITY_SPAN`.

A sample's velocity is the distance between the samples about :data:`VELOCITY_SPAN` apart around
it, divided by their time difference (one sample each side at 60 Hz). Samples below the
threshold are fixation samples, the others saccade samples; an invalid (NaN) sample ends either.
A run of saccade samples shorter than :data:`MIN_SACCADE` between two fixation samples is noise
crossing the threshold and joins the fixation. A fixation is a run of fixation samples lasting
at least :data:`MIN_FIXATION`; a saccade any other run of saccade samples. No merging of nearby
fixations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VELOCITY_THRESHOLD = 1.5
"""Screen units per second separating fixation from saccade samples."""

VELOCITY_SPAN = 0.02
"""Seconds over which a sample's velocity is taken (at least one sample each side)."""

MIN_FIXATION = 0.1
"""Shortest fixation counted, seconds."""

MIN_SACCADE = 0.01
"""Fast runs between two fixation samples shorter than this (s) are noise, kept in the fixation."""

COLUMNS = (
    "fixation_count",
    "fixation_duration",
    "fixation_dispersion",
    "saccade_count",
    "saccade_duration",
    "first_fixation",
)
"""Columns: fixations in the window; their mean duration (s); their mean dispersion (screen
units, (max x - min x) + (max y - min y) within a fixation, Salvucci & Goldberg); saccades and
their mean duration (s); time from the onset to the first fixation's start (s)."""


@dataclass
class Fixation:
    """One fixation: start and end (s, end = last sample + one period), centroid, dispersion."""

    start: float
    end: float
    x: float
    y: float
    dispersion: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def velocity(t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Speed (screen units/s) of each sample over :data:`VELOCITY_SPAN`; NaN at the edges and
    next to invalid samples."""
    n = len(t)
    v = np.full(n, np.nan)
    if n < 3:
        return v
    period = float(np.median(np.diff(t)))
    k = max(1, int(round(VELOCITY_SPAN / 2 / period))) if period > 0 else 1
    if n <= 2 * k:
        return v
    dx, dy, dt = x[2 * k :] - x[: -2 * k], y[2 * k :] - y[: -2 * k], t[2 * k :] - t[: -2 * k]
    with np.errstate(all="ignore"):
        v[k:-k] = np.hypot(dx, dy) / dt
    return v


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def ivt(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    threshold: float = VELOCITY_THRESHOLD,
    min_fixation: float = MIN_FIXATION,
) -> tuple[list[Fixation], list[tuple[float, float]]]:
    """Fixations and saccades of a gaze trace by I-VT.

    Parameters
    ----------
    t
        Sample times (s), increasing.
    x, y
        Gaze in screen units, NaN where invalid.
    threshold
        Velocity threshold, screen units/s.
    min_fixation
        Shortest fixation, s.

    Returns
    -------
    tuple
        Fixations, and saccades as (start, end) times.
    """
    t, x, y = (np.asarray(a, dtype=np.float64) for a in (t, x, y))
    if len(t) < 3:
        return [], []
    period = float(np.median(np.diff(t)))
    v = velocity(t, x, y)
    valid = np.isfinite(x) & np.isfinite(y)
    slow = valid & np.isfinite(v) & (v < threshold)
    fast = valid & np.isfinite(v) & (v >= threshold)
    # A run of fast samples shorter than MIN_SACCADE between slow ones is noise crossing the
    # threshold (single samples of a 1200 Hz tracker), not a saccade: it stays in the fixation.
    for a, b in _runs(fast):
        if a > 0 and b < len(t) and slow[a - 1] and slow[b] and t[b] - t[a] < MIN_SACCADE:
            fast[a:b], slow[a:b] = False, True
    fixations = []
    for a, b in _runs(slow):
        start, end = t[a], t[b - 1] + period
        if end - start + 1e-9 < min_fixation:
            continue
        xs, ys = x[a:b], y[a:b]
        fixations.append(
            Fixation(
                float(start),
                float(end),
                float(xs.mean()),
                float(ys.mean()),
                float(np.ptp(xs) + np.ptp(ys)),
            )
        )
    saccades = [(float(t[a]), float(t[b - 1] + period)) for a, b in _runs(fast)]
    return fixations, saccades


def gaze_features(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    duration: float,
    threshold: float = VELOCITY_THRESHOLD,
) -> tuple[dict, list[Fixation]]:
    """The gaze features of one trial and its fixations in the window.

    Fixations are detected over the whole trace (baseline included, so the first window sample
    has a velocity) and kept when they overlap the window [0, ``duration``), clipped to it: a
    fixation in progress at the onset counts from 0.

    Parameters
    ----------
    t
        Sample times from the stimulus onset (s).
    x, y
        Gaze in screen units, NaN where invalid.
    duration
        Window length, s.
    threshold
        Velocity threshold, screen units/s.
    """
    t, x, y = (np.asarray(a, dtype=np.float64) for a in (t, x, y))
    out = dict.fromkeys(COLUMNS, np.nan)
    inside = (t >= 0) & (t < duration)
    if not (np.isfinite(x[inside]) & np.isfinite(y[inside])).any():
        return out, []
    fixations, saccades = ivt(t, x, y, threshold)
    kept = []
    for f in fixations:
        start, end = max(f.start, 0.0), min(f.end, duration)
        if end > start:
            kept.append(Fixation(start, end, f.x, f.y, f.dispersion))
    sacc = [(max(a, 0.0), min(b, duration)) for a, b in saccades if b > 0 and a < duration]
    out["fixation_count"] = float(len(kept))
    out["saccade_count"] = float(len(sacc))
    if kept:
        out["fixation_duration"] = float(np.mean([f.duration for f in kept]))
        out["fixation_dispersion"] = float(np.mean([f.dispersion for f in kept]))
        out["first_fixation"] = kept[0].start
    if sacc:
        out["saccade_duration"] = float(np.mean([b - a for a, b in sacc]))
    return out, kept
