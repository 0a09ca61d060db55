"""Cutting a trial: the one implementation used live, in replay and when building datasets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from acquisition.lsl.presets import EXTRA_ROLES
from acquisition.lsl.reading import RoleSeries
from acquisition.trials.grid import fill_gaps, presence, to_grid
from acquisition.trials.modalities import EegFeatures, FaceTrack, eeg_features, face_track
from acquisition.trials.scanpath import render_scanpath
from acquisition.trials.types import CHANNELS, Trial, TrialQuality, TrialSpec

ROLE_CHANNELS = {"gaze": ("x", "y", "pupil"), "gsr": ("gsr",), "hr": ("hr",)}
"""Which trial channels each role fills."""

BLINK_S = (0.08, 0.5)


class RoleReader(Protocol):
    """A role bound to a stream: reads its standard series over a time range."""

    max_gap: float
    """Seconds between samples beyond which data counts as missing."""

    def read(self, t0: float, t1: float) -> RoleSeries:
        """The role's series covering [t0, t1) (may include context outside it)."""
        ...


def cut_trial(
    trial_id: str,
    onset: float,
    stimulus_id: str,
    roles: Mapping[str, RoleReader],
    spec: TrialSpec,
    participant: str | None = None,
    complete: bool = True,
    notes: list[str] | None = None,
) -> Trial:
    """Cut the trial opened at ``onset`` from the bound roles' data.

    Parameters
    ----------
    trial_id, onset, stimulus_id
        Identity of the trial; onset on the LSL clock.
    roles
        Role name → reader. Unbound required roles are reported as missing.
    spec
        Window, baseline, grid rate and scanpath size.
    participant
        Participant id, when known.
    complete
        False when the trial is cut on the grace timeout before every stream caught up.
    notes
        Explanations to carry in the quality record.

    Returns
    -------
    Trial
        With finite signals (gaps filled, ``mask`` False there) and quality figures.

    Raises
    ------
    Exception
        Whatever reading a role raised, with the role's name in its ``role`` attribute (the
        aligner turns it into the onset's error record).
    """
    grid = onset + spec.grid()
    nb = spec.n_baseline
    t0, t1 = onset - spec.baseline, onset + spec.duration
    n = len(grid)
    signals = np.zeros((len(CHANNELS), n), dtype=np.float64)
    signals[:] = np.nan
    mask = np.zeros((len(CHANNELS), n), dtype=bool)
    required = [r for r in spec.required_roles if r in ROLE_CHANNELS or r in EXTRA_ROLES]
    quality = TrialQuality(complete=complete, notes=list(notes or []), required=required)
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for role, channels in ROLE_CHANNELS.items():
        reader = roles.get(role)
        if reader is None:
            quality.coverage[role] = quality.usable[role] = 0.0
            quality.missing.append(role)
            quality.unbound.append(role)
            if role not in required:  # an optional role the lab does not have: no zero
                quality.notes.append(f"{role} not bound (optional role)")
            continue
        try:
            series = reader.read(t0, t1)
        except Exception as exc:  # a binding that fails at run time: the record names the role
            exc.role = role
            raise
        window = series.between(t0, t1)
        raw[role] = (window.timestamps, window.values)
        for name in channels:
            c = CHANNELS.index(name)
            signals[c], mask[c] = to_grid(
                series.timestamps, series.column(name), grid, reader.max_gap
            )
        # Coverage is about the stream delivering samples; validity is reported on its own.
        quality.coverage[role] = float(
            presence(series.timestamps, grid[nb:], reader.max_gap).mean()
        )
        quality.usable[role] = float(mask[CHANNELS.index(channels[-1]), nb:].mean())
        quality.gaps[role] = _count_gaps(window.timestamps, onset, t1, reader.max_gap)
        if len(window) == 0:
            quality.missing.append(role)
        if role == "gsr" and _flat_lined(window):
            quality.usable[role] = 0.0
            quality.notes.append("gsr flat-lined: one constant value (sensor off the skin?)")
        if role == "gaze":
            _gaze_quality(window.between(onset, t1), quality)
    extra = {}
    for role in EXTRA_ROLES:
        reader = roles.get(role)
        if reader is None:
            if role in required:
                quality.coverage[role] = quality.usable[role] = 0.0
                quality.missing.append(role)
                quality.unbound.append(role)
            continue  # an optional role the lab does not have: as if it did not exist
        try:
            extra[role] = _cut_extra(role, reader, grid, onset, t0, t1, spec, quality, raw)
        except Exception as exc:
            exc.role = role
            raise
    quality.unusable = _unusable(quality, mask[:, nb:], spec.min_coverage)
    # Mean of the valid baseline samples; NaN for an empty baseline, on purpose. By hand: a
    # quiet np.nanmean needs warnings.catch_warnings, which is not thread-safe.
    valid = mask[:, :nb] & np.isfinite(signals[:, :nb])
    with np.errstate(invalid="ignore"):  # 0 / 0 -> NaN
        baseline = np.where(valid, signals[:, :nb], 0.0).sum(axis=1) / valid.sum(axis=1)
    x, y = signals[0, nb:], signals[1, nb:]
    scanpath = render_scanpath(x, y, spec.scanpath_size)
    filled = np.vstack([fill_gaps(row) for row in signals]).astype(np.float32)
    return Trial(
        trial_id=trial_id,
        onset=onset,
        stimulus_id=stimulus_id,
        signals=filled,
        mask=mask,
        baseline=baseline.astype(np.float32),
        scanpath=scanpath,
        quality=quality,
        spec=spec,
        raw=raw,
        participant=participant,
        eeg=extra.get("eeg"),
        face=extra.get("face"),
    )


def _cut_extra(
    role: str,
    reader: RoleReader,
    grid: np.ndarray,
    onset: float,
    t0: float,
    t1: float,
    spec: TrialSpec,
    quality: TrialQuality,
    raw: dict[str, tuple[np.ndarray, np.ndarray]],
) -> EegFeatures | FaceTrack:
    """An optional role's part of the trial: EEG features or the face track, with quality."""
    series = reader.read(t0, t1)
    window = series.between(t0, t1)
    raw[role] = (window.timestamps, window.values)
    nb = spec.n_baseline
    quality.coverage[role] = float(presence(series.timestamps, grid[nb:], reader.max_gap).mean())
    quality.gaps[role] = _count_gaps(window.timestamps, onset, t1, reader.max_gap)
    if len(window) == 0:
        quality.missing.append(role)
    if role == "eeg":
        srate = getattr(getattr(reader, "spec", None), "nominal_srate", 0.0)
        feats = eeg_features(window, onset, t1, spec.baseline, srate)
        quality.usable[role] = quality.coverage[role] if feats.channels else 0.0
        quality.eeg = {
            "channels": len(feats.channels),
            "excluded": dict(feats.excluded),
            "line_noise": round(feats.line_noise, 4) if np.isfinite(feats.line_noise) else None,
        }
        if feats.excluded:
            names = ", ".join(f"{k} ({v})" for k, v in feats.excluded.items())
            quality.notes.append(f"eeg: excluded {names}")
        if len(feats.channels) and not feats.asymmetry_pair:
            quality.notes.append(
                "eeg: no frontal pair (F4/F3, F8/F7, AF4/AF3, Fp2/Fp1) for asymmetry"
            )
        return feats
    track = face_track(series, grid, nb, reader.max_gap)
    quality.usable[role] = float(track.mask[nb:].mean()) if len(grid) > nb else 0.0
    quality.face = {"tracked": round(track.tracked, 4)}
    return track


def _unusable(quality: TrialQuality, window_mask: np.ndarray, min_coverage: float) -> list[str]:
    """Why the trial cannot be predicted: each required role whose usable data covers less than
    ``min_coverage`` of the window. Gaze counts where it has a gaze point (x and y) or a pupil,
    so a tracker without a pupil channel still counts; GSR and HR where their value is usable
    (a flat-lined GSR is not)."""
    out = []
    for role in quality.required:
        if role in quality.unbound:
            if min_coverage > 0:
                out.append(f"{role}: no stream bound")
            continue
        frac = quality.usable.get(role, 0.0)
        if role == "gaze":
            x, y = CHANNELS.index("x"), CHANNELS.index("y")
            point = (window_mask[x] & window_mask[y]).mean() if window_mask.shape[1] else 0.0
            frac = max(frac, float(point))
        if frac < min_coverage:
            out.append(f"{role}: usable data {frac:.2f} < min_coverage {min_coverage:g}")
    return out


def _flat_lined(window: RoleSeries, min_samples: int = 8) -> bool:
    """True when the window holds enough finite samples and all of them are the same value:
    a real skin-conductance signal always moves a little; a detached sensor does not."""
    v = window.values[:, 0] if len(window) else np.empty(0)
    v = v[np.isfinite(v)]
    return len(v) >= min_samples and float(np.ptp(v)) == 0.0


def _count_gaps(ts: np.ndarray, t0: float, t1: float, max_gap: float) -> int:
    """Holes longer than ``max_gap`` in [t0, t1), the window's edges included."""
    inside = ts[(ts >= t0) & (ts < t1)]
    edges = np.concatenate([[t0], inside, [t1]])
    return int((np.diff(edges) > max_gap).sum())


def _gaze_quality(window: RoleSeries, quality: TrialQuality) -> None:
    """Validity fraction and blink count of the gaze in the window."""
    if len(window) == 0:
        quality.gaze_valid = 0.0
        return
    valid = window.column("valid") > 0.5
    quality.gaze_valid = float(valid.mean())
    lost = ~valid | ~np.isfinite(window.column("pupil"))
    if not lost.any():
        return
    change = np.diff(np.concatenate([[0], lost.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
    ts = window.timestamps
    last = len(ts) - 1
    durations = ts[np.minimum(ends, last)] - ts[starts]
    quality.blinks = int(((durations >= BLINK_S[0]) & (durations <= BLINK_S[1])).sum())
