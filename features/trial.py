"""The features of one trial: from a :class:`~acquisition.trials.types.Trial` for the table, or
from a dataset's stored arrays of it for the physiology baseline (:func:`grid_features`, the
same code on the same grid)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acquisition.trials.types import CHANNELS
from features import cardiac, eda, gaze, pupil

X, Y, PUPIL, GSR, HR = (CHANNELS.index(c) for c in ("x", "y", "pupil", "gsr", "hr"))

GRID_COLUMNS = (*eda.COLUMNS, *pupil.COLUMNS, *cardiac.HR_COLUMNS)
"""Columns computed on the trial's common grid."""

BASELINE_FEATURES = (
    "scr_amplitude",
    "scr_count",
    "pupil_dilation",
    "hr_change",
    "fixation_count",
    "fixation_duration",
)
"""The columns the physiology baseline of ``emoeye evaluate`` is fitted on."""


@dataclass
class Grid:
    """How a trial's grid is laid out: rate (Hz), pre-onset points, window length (s)."""

    rate: float
    n_baseline: int
    duration: float

    @classmethod
    def of(cls, spec) -> Grid:
        """From a :class:`~acquisition.trials.types.TrialSpec`."""
        return cls(float(spec.grid_rate), int(spec.n_baseline), float(spec.duration))


def _masked(row: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    v = np.asarray(row, dtype=np.float64)
    return v if mask is None else np.where(mask, v, np.nan)


def grid_features(
    signals: np.ndarray,
    mask: np.ndarray | None,
    baseline: np.ndarray,
    grid: Grid,
    with_gaze: bool = True,
) -> tuple[dict, list[str]]:
    """EDA, pupil and heart-rate features (and, with ``with_gaze``, I-VT on the grid's gaze) of
    one trial's grid arrays.

    Parameters
    ----------
    signals
        (5, n_baseline + n_samples) x, y, pupil, gsr, hr (:data:`acquisition.trials.types.CHANNELS`).
    mask
        Same shape, True where the point had data (None: everywhere).
    baseline
        (5,) pre-onset means.
    grid
        Rate, baseline points, window length.
    with_gaze
        Add :data:`features.gaze.COLUMNS` from the grid's x, y.

    Returns
    -------
    tuple
        ``{column: value}`` (NaN where a feature cannot be computed) and notes.
    """
    m = (lambda c: None) if mask is None else (lambda c: mask[c])
    out: dict = {}
    notes: list[str] = []
    for values, note in (
        eda.eda_features(_masked(signals[GSR], m(GSR)), grid.rate, grid.n_baseline),
        pupil.pupil_features(
            _masked(signals[PUPIL], m(PUPIL)), grid.rate, grid.n_baseline, float(baseline[PUPIL])
        ),
        cardiac.hr_features(_masked(signals[HR], m(HR)), grid.rate, grid.n_baseline),
    ):
        out.update(values)
        if note:
            notes.append(note)
    if with_gaze:
        t = (np.arange(signals.shape[-1]) - grid.n_baseline) / grid.rate
        values, _ = gaze.gaze_features(
            t, _masked(signals[X], m(X)), _masked(signals[Y], m(Y)), grid.duration
        )
        out.update(values)
    return out, notes


def baseline_features(
    signals: np.ndarray, mask: np.ndarray | None, baseline: np.ndarray, grid: Grid
) -> np.ndarray:
    """:data:`BASELINE_FEATURES` of one trial's grid arrays; missing values are 0 (the training
    mean after standardisation is close to it)."""
    values, _ = grid_features(signals, mask, baseline, grid)
    row = np.array([values[k] for k in BASELINE_FEATURES], dtype=np.float64)
    row[~np.isfinite(row)] = 0.0
    return row


def trial_features(
    trial,
    wave: tuple[np.ndarray, np.ndarray, float, str] | None = None,
    aois=None,
    threshold: float = gaze.VELOCITY_THRESHOLD,
) -> tuple[dict, list[str]]:
    """Every feature column of a cut trial.

    Parameters
    ----------
    trial
        A :class:`~acquisition.trials.types.Trial`.
    wave
        ``(t, signal, rate, kind)``: the raw ECG/PPG waveform over the trial's span, ``t`` from
        the onset; None when the recording has none.
    aois
        An :class:`features.aoi.AoiSet`, or None.
    threshold
        I-VT velocity threshold, screen units/s.

    Returns
    -------
    tuple
        ``{column: value}`` and notes.
    """
    grid = Grid.of(trial.spec)
    out, notes = grid_features(trial.signals, trial.mask, trial.baseline, grid, with_gaze=False)
    q = trial.quality
    out["blink_count"] = float(q.blinks) if "gaze" not in q.unbound else np.nan
    out["blink_rate"] = out["blink_count"] * 60.0 / grid.duration
    # Gaze at the tracker's own rate (the grid's 60 Hz would blur saccades of a 1200 Hz tracker).
    ts, vals = trial.raw.get("gaze", (np.empty(0), np.empty((0, 4))))
    g, fixations = gaze.gaze_features(ts - trial.onset, vals[:, 0], vals[:, 1], grid.duration,
                                      threshold)  # fmt: skip
    out.update(g)
    if not len(ts):
        notes.append("gaze: no samples")
    if wave is not None:
        w, note = cardiac.wave_features(*wave)
        out.update(w)
        if note:
            notes.append(note)
    else:
        out.update(dict.fromkeys(cardiac.WAVE_COLUMNS, np.nan))
        out["wave_kind"] = out["hrv_note"] = ""
    if aois is not None:
        out.update(aois.features(trial.stimulus_id, fixations))
    return out, notes
