"""The optional roles of a trial: EEG band powers and frontal asymmetry, and action units on the
common grid (docs/modalities.md).

EEG
    Each electrode's window (after onset) and baseline (before it) are checked: a flat channel
    (standard deviation under :data:`FLAT_UV`) or a railed one (at least :data:`RAILED_SHARE` of
    its samples pinned at its extreme value: the amplifier's rail) is excluded and named in the
    quality record. Power per band is Welch's estimate (``scipy.signal.welch``, 1-s Hann
    segments, half overlap) integrated over the band; ``band_power`` is the window's power
    relative to the baseline's in dB (``10 log10(window / baseline)``), per electrode.
    The line-noise share is the power within 1 Hz of 50 or 60 Hz (whichever is larger) over
    the power from 1 Hz up, over the kept electrodes.

Frontal alpha asymmetry
    ``ln(alpha power right) - ln(alpha power left)`` of the first homologous pair present among
    F4/F3, F8/F7, AF4/AF3, Fp2/Fp1 (with neither excluded); no pair, no asymmetry (NaN, noted).
    Alpha power is inversely related to cortical activity, so a higher value (more right alpha)
    reads as relatively greater *left* frontal activity: approach, pleasant states (Davidson
    1992; Coan & Allen 2004).

Face
    Every action unit the stream gives, on the trial's grid (the same boxcar + interpolation as
    the other channels), samples without tracking left out; ``tracked`` is the share of the
    window's frames with successful tracking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acquisition.lsl.presets import FACE_AUS
from acquisition.lsl.reading import RoleSeries
from acquisition.trials.grid import fill_gaps, to_grid

BANDS: dict[str, tuple[float, float]] = {
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
}
"""EEG bands, Hz (lower edge included, upper excluded)."""

ASYMMETRY_PAIRS = (("F4", "F3"), ("F8", "F7"), ("AF4", "AF3"), ("Fp2", "Fp1"))
"""Homologous frontal pairs (right, left) for alpha asymmetry, in order of preference."""

FLAT_UV = 0.1
"""A channel whose standard deviation is below this (µV) is flat: a disconnected electrode."""

RAILED_SHARE = 0.1
"""A channel with at least this share of its samples at its own extreme value is railed."""

LINE_HZ = (50.0, 60.0)
"""Mains frequencies looked at for the line-noise share."""

REGIONS: dict[str, tuple[str, ...]] = {
    "frontal": ("fp", "af", "f", "fc", "ft"),
    "central": ("c", "t", "cp", "tp"),
    "posterior": ("p", "po", "o", "i"),
}
"""Scalp regions by electrode-name prefix (``F3`` is frontal, ``PO9`` posterior)."""

EEG_FEATURES = (
    *(f"{band}_{region}" for region in REGIONS for band in BANDS),
    "asymmetry",
    "asymmetry_change",
    "line_noise",
)
"""The fixed EEG feature vector of a trial (:meth:`EegFeatures.vector`): baseline-relative
band power (dB) per band and region, then frontal alpha asymmetry, its change from the baseline
and the line-noise share. Any cap gives the same vector (NaN where a region has no electrode)."""


def region_of(name: str) -> str | None:
    """The scalp region of an electrode name, or None (``A1``, ``M2``...)."""
    head = name.lower().rstrip("z0123456789")
    return next((r for r, prefixes in REGIONS.items() if head in prefixes), None)


@dataclass
class EegFeatures:
    """EEG features of one trial.

    Attributes
    ----------
    channels
        Electrodes used (excluded ones left out).
    excluded
        Electrode → why it was left out (``"flat"``, ``"railed"``, ``"no data"``).
    srate
        Sampling rate the features were computed at, Hz.
    power
        Band → float64 (len(channels),): the window's band power, µV².
    baseline_power
        Band → the baseline's band power, µV² (NaN without a baseline).
    band_power
        Band → window power relative to the baseline, dB (NaN without a baseline).
    asymmetry
        ``ln(alpha right) - ln(alpha left)`` over the window (NaN when no pair is usable).
    asymmetry_change
        The same minus the baseline's asymmetry.
    asymmetry_pair
        The pair used, ``"F4/F3"``; empty when none.
    line_noise
        Share of power within 1 Hz of the mains frequency (0..1).
    """

    channels: tuple[str, ...]
    excluded: dict[str, str]
    srate: float
    power: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_power: dict[str, np.ndarray] = field(default_factory=dict)
    band_power: dict[str, np.ndarray] = field(default_factory=dict)
    asymmetry: float = float("nan")
    asymmetry_change: float = float("nan")
    asymmetry_pair: str = ""
    line_noise: float = float("nan")

    def mean_band_power(self) -> dict[str, float]:
        """Band → the mean over electrodes of the baseline-relative power (dB)."""
        out = {}
        for band, v in self.band_power.items():
            f = v[np.isfinite(v)]
            out[band] = float(f.mean()) if len(f) else float("nan")
        return out

    def vector(self) -> np.ndarray:
        """float32 (len(EEG_FEATURES),): see :data:`EEG_FEATURES` (NaN where unknown)."""
        out = []
        regions = np.array([region_of(c) or "" for c in self.channels])
        for region in REGIONS:
            sel = regions == region
            for band in BANDS:
                v = self.band_power.get(band, np.empty(0))
                v = v[sel & np.isfinite(v)] if len(v) == len(sel) else np.empty(0)
                out.append(float(v.mean()) if len(v) else np.nan)
        out += [self.asymmetry, self.asymmetry_change, self.line_noise]
        return np.asarray(out, np.float32)

    def summary(self) -> dict:
        """JSON-ready figures (means over electrodes, asymmetry, exclusions)."""
        return {
            "channels": len(self.channels),
            "excluded": dict(self.excluded),
            "band_power_db": {k: _round(v) for k, v in self.mean_band_power().items()},
            "asymmetry": _round(self.asymmetry),
            "asymmetry_change": _round(self.asymmetry_change),
            "asymmetry_pair": self.asymmetry_pair,
            "line_noise": _round(self.line_noise),
        }


@dataclass
class FaceTrack:
    """Action units of one trial on its common grid.

    Attributes
    ----------
    aus
        The action units the stream gives (``AU01``...), in its order.
    signals
        float32 (len(aus), n_grid), baseline first, gaps filled (edges held).
    mask
        bool (n_grid,): True where a successfully tracked frame was near.
    baseline
        float32 (len(aus),): mean over the baseline (NaN without one).
    tracked
        Share of the window's frames with successful tracking (0..1).
    """

    aus: tuple[str, ...]
    signals: np.ndarray
    mask: np.ndarray
    baseline: np.ndarray
    tracked: float

    def canonical(self) -> tuple[np.ndarray, np.ndarray]:
        """``(signals, mask)`` over every action unit of :data:`FACE_AUS`: float32
        (len(FACE_AUS), n_grid) with zeros and False for the units the stream lacks."""
        n = self.signals.shape[1]
        out = np.zeros((len(FACE_AUS), n), np.float32)
        mask = np.zeros((len(FACE_AUS), n), bool)
        for j, au in enumerate(self.aus):
            k = FACE_AUS.index(au)
            out[k] = self.signals[j]
            mask[k] = self.mask
        return out, mask


def _round(v: float) -> float | None:
    return round(float(v), 4) if np.isfinite(v) else None


def _srate(ts: np.ndarray, nominal: float) -> float:
    if nominal > 0:
        return float(nominal)
    if len(ts) < 2:
        return 0.0
    return float(1.0 / np.median(np.diff(ts)))


def channel_faults(x: np.ndarray) -> str | None:
    """Why one electrode's samples are unusable (``"flat"``, ``"railed"``, ``"no data"``), or
    None when they are fine."""
    x = x[np.isfinite(x)]
    if len(x) < 8:
        return "no data"
    if float(np.std(x)) < FLAT_UV:
        return "flat"
    lo, hi = float(x.min()), float(x.max())
    pinned = max(int((x == lo).sum()), int((x == hi).sum()))
    if pinned >= RAILED_SHARE * len(x):
        return "railed"
    return None


def _welch(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """PSD (channels, freqs) of (channels, n) data with 1-s Hann segments."""
    from scipy import signal  # imported where used (start-up time)

    nper = int(min(round(fs), x.shape[1]))
    return signal.welch(x, fs=fs, nperseg=nper, noverlap=nper // 2, axis=-1, detrend="constant")


def _band(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sel = (f >= lo) & (f < hi)
    df = float(f[1] - f[0]) if len(f) > 1 else 1.0
    return p[:, sel].sum(axis=1) * df


def eeg_features(
    series: RoleSeries, onset: float, t1: float, baseline: float, srate: float
) -> EegFeatures:
    """Features of the EEG in ``[onset, t1)`` relative to ``[onset - baseline, onset)``.

    Parameters
    ----------
    series
        The EEG role's series (µV per electrode) covering the trial.
    onset, t1
        The window.
    baseline
        Seconds of baseline before the onset.
    srate
        The stream's nominal rate (0: estimated from the stamps).
    """
    win = series.between(onset, t1)
    base = series.between(onset - baseline, onset)
    fs = _srate(win.timestamps, srate)
    excluded: dict[str, str] = {}
    keep: list[int] = []
    for j, name in enumerate(series.fields):
        why = channel_faults(win.values[:, j])
        if why is None:
            keep.append(j)
        else:
            excluded[name] = why
    channels = tuple(series.fields[j] for j in keep)
    feats = EegFeatures(channels, excluded, fs)
    if not keep or len(win) < max(int(fs), 8) or fs <= 0:
        return feats
    xw = np.nan_to_num(win.values[:, keep].T)
    f, pw = _welch(xw, fs)
    have_base = len(base) >= max(int(0.5 * fs), 8)
    if have_base:
        fb, pb = _welch(np.nan_to_num(base.values[:, keep].T), fs)
    for band, (lo, hi) in BANDS.items():
        feats.power[band] = _band(f, pw, lo, hi)
        if have_base:
            feats.baseline_power[band] = _band(fb, pb, lo, hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                feats.band_power[band] = 10.0 * np.log10(
                    feats.power[band] / feats.baseline_power[band]
                )
        else:
            nan = np.full(len(keep), np.nan)
            feats.baseline_power[band] = nan
            feats.band_power[band] = nan.copy()
    total = _band(f, pw, 1.0, np.inf).sum()
    line = max(_band(f, pw, hz - 1.0, hz + 1.01).sum() for hz in LINE_HZ)
    feats.line_noise = float(line / total) if total > 0 else float("nan")
    lower = [c.lower() for c in channels]
    for right, left in ASYMMETRY_PAIRS:
        if right.lower() in lower and left.lower() in lower:
            r, l_ = lower.index(right.lower()), lower.index(left.lower())
            with np.errstate(divide="ignore", invalid="ignore"):
                a = feats.power["alpha"]
                feats.asymmetry = float(np.log(a[r]) - np.log(a[l_]))
                if have_base:
                    b = feats.baseline_power["alpha"]
                    feats.asymmetry_change = feats.asymmetry - float(np.log(b[r]) - np.log(b[l_]))
            feats.asymmetry_pair = f"{right}/{left}"
            break
    return feats


def face_track(series: RoleSeries, grid: np.ndarray, n_baseline: int, max_gap: float) -> FaceTrack:
    """The action units of ``series`` on ``grid`` (absolute times, baseline first)."""
    aus = tuple(f for f in series.fields if f != "valid")
    valid = series.column("valid") > 0.5
    ts = series.timestamps[valid]
    n = len(grid)
    signals = np.zeros((len(aus), n), np.float32)
    mask = np.zeros(n, bool)
    raw = np.full((len(aus), n), np.nan)
    for j in range(len(aus)):
        raw[j], m = to_grid(ts, series.values[valid, j], grid, max_gap)
        mask |= m
    for j in range(len(aus)):
        signals[j] = fill_gaps(raw[j])
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(raw[:, :n_baseline])
        base = np.where(ok, raw[:, :n_baseline], 0.0).sum(axis=1) / ok.sum(axis=1)
    t0, t1 = grid[n_baseline] if n_baseline < n else grid[-1], grid[-1]
    inside = (series.timestamps >= t0) & (series.timestamps <= t1)
    tracked = float(valid[inside].mean()) if inside.any() else 0.0
    return FaceTrack(aus, signals, mask, base.astype(np.float32), tracked)
