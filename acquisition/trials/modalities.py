"""The optional roles of a trial: EEG band powers and frontal asymmetry, and action units on the
common grid (docs/modalities.md).

EEG
    Each electrode's window (after onset) and baseline (before it) are checked: a flat channel
    (standard deviation under :data:`FLAT_UV`) or a railed one (at least :data:`RAILED_SHARE` of
    its samples pinned at its extreme value: the amplifier's rail) is excluded and named in the
    quality record. Power per band is Welch's estimate (1-s Hann segments, half overlap: the
    numbers of ``scipy.signal.welch``, see :func:`welch`) integrated over the band; ``band_power`` is the window's power
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
from functools import lru_cache

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


def channel_faults(x: np.ndarray) -> list[str | None]:
    """Why each electrode's samples (columns of ``x``, (n, channels)) are unusable
    (``"flat"``, ``"railed"``, ``"no data"``), or None where they are fine."""
    finite = np.isfinite(x)
    if finite.all():  # the usual case, without the masking
        count = np.full(x.shape[1], x.shape[0])
        sd, lo, hi = x.std(axis=0), x.min(axis=0), x.max(axis=0)
    else:
        count = finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, x, 0.0).sum(axis=0) / count
            sd = np.sqrt(np.where(finite, (x - mean) ** 2, 0.0).sum(axis=0) / count)
            lo = np.where(finite, x, np.inf).min(axis=0)
            hi = np.where(finite, x, -np.inf).max(axis=0)
    pinned = np.maximum((x == lo).sum(axis=0), (x == hi).sum(axis=0))
    out: list[str | None] = []
    for j in range(x.shape[1]):
        if count[j] < 8:
            out.append("no data")
        elif sd[j] < FLAT_UV:
            out.append("flat")
        elif pinned[j] >= RAILED_SHARE * count[j]:
            out.append("railed")
        else:
            out.append(None)
    return out


@lru_cache(maxsize=8)
def _hann(n: int) -> tuple[np.ndarray, float]:
    from scipy import signal  # imported where used (start-up time)

    w = signal.get_window("hann", n)
    return w, float(1.0 / (w**2).sum())


def welch(x: np.ndarray, fs: float, starts: np.ndarray | None = None, n: int | None = None):
    """Welch's PSD of (channels, samples) data: 1-s Hann segments (or the whole of shorter
    data), half overlap, mean removed per segment, one-sided density: the same numbers as
    ``scipy.signal.welch(x, fs, nperseg=n, noverlap=n // 2)`` (a test holds them equal), a few
    times faster on the trial-cut path because the window and the baseline share one FFT call
    (:func:`eeg_features` passes segment ``starts``).

    Parameters
    ----------
    x
        (channels, samples).
    fs
        Sampling rate, Hz.
    starts, n
        Segment start indices and length; default: half-overlapping segments of
        ``min(fs, samples)`` samples over the whole of ``x``.

    Returns
    -------
    (freqs, psd)
        ``psd`` (channels, freqs), averaged over the segments; with ``starts`` given,
        (channels, len(starts), freqs), one row per segment.
    """
    from scipy import fft

    n = int(n or min(round(fs), x.shape[1]))
    if starts is None:
        step = n - n // 2
        starts = np.arange(0, x.shape[1] - n + 1, step)
        per_segment = False
    else:
        per_segment = True
    x = np.ascontiguousarray(x)  # a transposed (channels-last) array makes every step slow
    frames = np.lib.stride_tricks.sliding_window_view(x, n, axis=-1)[:, starts]
    frames = frames - frames.mean(axis=-1, keepdims=True)
    w, scale = _hann(n)
    spec = fft.rfft(frames * w, axis=-1)
    p = (spec.real**2 + spec.imag**2) * (scale / fs)
    if n % 2:
        p[..., 1:] *= 2
    else:
        p[..., 1:-1] *= 2
    f = fft.rfftfreq(n, 1.0 / fs)
    return f, (p if per_segment else p.mean(axis=1))


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
    ts = series.timestamps
    i0, i_on, i1 = np.searchsorted(ts, [onset - baseline, onset, t1])
    fs = _srate(ts[i_on:i1], srate)
    faults = channel_faults(series.values[i_on:i1])
    excluded = {name: why for name, why in zip(series.fields, faults, strict=True) if why}
    keep = [j for j, why in enumerate(faults) if why is None]
    channels = tuple(series.fields[j] for j in keep)
    feats = EegFeatures(channels, excluded, fs)
    n_win, n_base = i1 - i_on, i_on - i0
    if not keep or fs <= 0 or n_win < max(int(fs), 8):
        return feats
    x = np.nan_to_num(series.values[i0:i1, keep].T)
    n = int(round(fs))
    step = n - n // 2
    have_base = n_base >= max(int(0.5 * fs), 8)
    win_starts = n_base + np.arange(0, n_win - n + 1, step)
    if have_base and n_base >= n:
        base_starts = np.arange(0, n_base - n + 1, step)
        f, p = welch(x, fs, np.concatenate([base_starts, win_starts]), n)
        pb, pw = p[:, : len(base_starts)].mean(axis=1), p[:, len(base_starts) :].mean(axis=1)
    else:
        f, pw = welch(x, fs, win_starts, n)
        pw = pw.mean(axis=1)
        if have_base:  # a baseline shorter than a segment: one segment of its own length
            fb, pb = welch(x[:, :n_base], fs)
            pb = np.stack([np.interp(f, fb, row) for row in pb])
    for band, (lo, hi) in BANDS.items():
        feats.power[band] = _band(f, pw, lo, hi)
        if have_base:
            feats.baseline_power[band] = _band(f, pb, lo, hi)
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


def _grid_many(t: np.ndarray, v: np.ndarray, grid: np.ndarray, max_gap: float) -> np.ndarray:
    """:func:`~acquisition.trials.grid.to_grid` of every column of finite ``v`` (n, k) at once
    (the bins and gaps are the same for all): (k, len(grid)), NaN where no data."""
    ones = np.ones(len(t))
    _, has = to_grid(t, ones, grid, max_gap)
    if len(t) == 0:
        return np.full((v.shape[1], len(grid)), np.nan)
    step = float(grid[1] - grid[0]) if len(grid) > 1 else max_gap
    edges = np.concatenate([grid - step / 2, [grid[-1] + step / 2]])
    idx = np.searchsorted(t, edges)
    counts = np.diff(idx)
    csum = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
    binned = counts > 0
    out = np.full((v.shape[1], len(grid)), np.nan)
    out[:, binned] = ((csum[idx[1:]] - csum[idx[:-1]])[binned] / counts[binned, None]).T
    between = has & ~binned
    if between.any():
        g = grid[between]
        out[:, between] = np.stack([np.interp(g, t, v[:, j]) for j in range(v.shape[1])])
    return out


def face_track(series: RoleSeries, grid: np.ndarray, n_baseline: int, max_gap: float) -> FaceTrack:
    """The action units of ``series`` on ``grid`` (absolute times, baseline first)."""
    aus = tuple(f for f in series.fields if f != "valid")
    valid = series.column("valid") > 0.5
    ts = series.timestamps[valid]
    n = len(grid)
    signals = np.zeros((len(aus), n), np.float32)
    mask = np.zeros(n, bool)
    values = series.values[valid][:, : len(aus)]
    if np.isfinite(values).all():
        raw = _grid_many(ts, values, grid, max_gap)
        mask = np.isfinite(raw).any(axis=0)
    else:  # a device that leaves some units empty in tracked frames: one at a time
        raw = np.full((len(aus), n), np.nan)
        for j in range(len(aus)):
            raw[j], m = to_grid(ts, values[:, j], grid, max_gap)
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
