"""Reading a role's standard channels out of a device stream's raw samples.

Gaze becomes (x, y, pupil, valid) in screen units with the pupil as the mean of the *valid* eyes;
GSR becomes µS; heart rate becomes bpm, read directly or derived from RR/IBI intervals, ECG or PPG.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from acquisition.lsl.presets import RoleReading
from acquisition.streams import StreamSpec

HR_RANGE = (30.0, 220.0)
GSR_RANGE = (0.01, 100.0)
OFFSCREEN_MARGIN = 0.1  # gaze this far outside the screen counts as invalid

PADDING_S = {"hr_ecg": 2.5, "hr_ppg": 2.5, "hr_intervals": 2.5}
"""Extra data read around a range for readings that need context (peak detection, intervals)."""


@dataclass
class RoleSeries:
    """A role's standard channels over time: ``values`` is float64 (n, len(fields))."""

    timestamps: np.ndarray
    values: np.ndarray
    fields: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.timestamps)

    def column(self, name: str) -> np.ndarray:
        """One field's values."""
        return self.values[:, self.fields.index(name)]

    def between(self, t0: float, t1: float) -> RoleSeries:
        """The part with t0 <= t < t1."""
        i0, i1 = np.searchsorted(self.timestamps, [t0, t1])
        return RoleSeries(self.timestamps[i0:i1], self.values[i0:i1], self.fields)


def _col(spec: StreamSpec, values: np.ndarray, label: str | None) -> np.ndarray | None:
    if label is None:
        return None
    if not spec.channel_labels:
        return values[:, 0].astype(np.float64)
    return values[:, spec.label_index(label)].astype(np.float64)


def _validity(raw: np.ndarray | None, reading: RoleReading, n: int) -> np.ndarray:
    if raw is None:
        return np.ones(n, dtype=bool)
    threshold = reading.params.get("valid_threshold", 0.5)
    if reading.params.get("valid_when") == "zero":
        return np.isfinite(raw) & (raw == 0)
    return np.isfinite(raw) & (raw >= threshold)


def extract_gaze(reading: RoleReading, spec: StreamSpec, values: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, pupil, valid. Invalid samples have NaN x/y; pupil is NaN without a valid eye."""
    n = len(values)
    cols = reading.columns

    def get(key: str) -> np.ndarray | None:
        return _col(spec, values, cols.get(key))

    screen = reading.params.get("screen")

    def eye(side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y = get(f"x_{side}"), get(f"y_{side}")
        ok = _validity(get(f"valid_{side}"), reading, n)
        return x, y, ok

    if "x" in cols:
        x, y = get("x"), get("y")
        ok = _validity(get("valid"), reading, n)
        eye_ok = {"left": ok, "right": ok}
    else:
        xl, yl, okl = eye("left")
        xr, yr, okr = eye("right")
        okl &= np.isfinite(xl) & np.isfinite(yl)
        okr &= np.isfinite(xr) & np.isfinite(yr)
        with np.errstate(invalid="ignore"):
            x = np.where(okl & okr, (xl + xr) / 2, np.where(okl, xl, xr))
            y = np.where(okl & okr, (yl + yr) / 2, np.where(okl, yl, yr))
        ok = okl | okr
        eye_ok = {"left": okl, "right": okr}
    if screen:
        x, y = x / float(screen[0]), y / float(screen[1])
    if reading.params.get("flip_y"):
        y = 1.0 - y
    with np.errstate(invalid="ignore"):
        onscreen = (
            np.isfinite(x)
            & np.isfinite(y)
            & (x > -OFFSCREEN_MARGIN)
            & (x < 1 + OFFSCREEN_MARGIN)
            & (y > -OFFSCREEN_MARGIN)
            & (y < 1 + OFFSCREEN_MARGIN)
        )
    valid = ok & onscreen
    pupils = []
    for side in ("left", "right"):
        d = get(f"pupil_{side}")
        if d is None:
            continue
        pv = get(f"pupil_valid_{side}")
        good = eye_ok[side] if pv is None else _validity(pv, reading, n)
        with np.errstate(invalid="ignore"):
            good = good & np.isfinite(d) & (d > 0)
        pupils.append(np.where(good, d, np.nan))
    if pupils:
        # Mean of the valid eyes, NaN where neither is valid. By hand rather than np.nanmean:
        # silencing its all-NaN warning needs warnings.catch_warnings, which is not thread-safe.
        stack = np.vstack(pupils)
        finite = np.isfinite(stack)
        with np.errstate(invalid="ignore"):  # 0 / 0 -> NaN
            pupil = np.where(finite, stack, 0.0).sum(axis=0) / finite.sum(axis=0)
    else:
        pupil = np.full(n, np.nan)
    out = np.empty((n, 4), dtype=np.float64)
    out[:, 0] = np.where(valid, x, np.nan)
    out[:, 1] = np.where(valid, y, np.nan)
    out[:, 2] = pupil
    out[:, 3] = valid
    return out


def _in_range(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(v) & (v >= lo) & (v <= hi), v, np.nan)


def beats_to_hr(beat_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heart rate (bpm) at each beat from beat times, implausible intervals removed."""
    if len(beat_times) < 2:
        return np.empty(0), np.empty(0)
    ibi = np.diff(beat_times)
    hr = 60.0 / ibi
    keep = (hr >= HR_RANGE[0]) & (hr <= HR_RANGE[1])
    return beat_times[1:][keep], hr[keep]


@lru_cache(maxsize=32)
def _band_filter(kind: str, srate: float) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass SOS for beat detection and its steady-state initial conditions.

    Cached: designing the filter and its ``zi`` costs ~5 ms per call in scipy, more than the
    filtering itself, and it runs once per trial on the trial-cut path.
    """
    from scipy import signal  # imported where used: ~1 s, not on every command's start-up

    band = (5.0, min(25.0, 0.45 * srate)) if kind == "hr_ecg" else (0.5, min(5.0, 0.45 * srate))
    sos = signal.butter(3, band, btype="bandpass", fs=srate, output="sos")
    return sos, signal.sosfilt_zi(sos)


def _filtfilt(sos: np.ndarray, zi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase filtering as ``scipy.signal.sosfiltfilt`` (odd padding), with a cached ``zi``."""
    from scipy import signal

    trivial = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    pad = min(3 * (2 * len(sos) + 1 - trivial), len(x) - 1)
    if pad > 0:
        ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2 : -pad - 2 : -1]])
    else:
        ext = x
    y, _ = signal.sosfilt(sos, ext, zi=zi * ext[0])
    y, _ = signal.sosfilt(sos, y[::-1], zi=zi * y[-1])
    y = y[::-1]
    return y[pad : len(y) - pad] if pad > 0 else y


def detect_beats(ts: np.ndarray, x: np.ndarray, srate: float, kind: str) -> np.ndarray:
    """Beat times from an ECG (R-peaks) or PPG (systolic peaks) segment."""
    good = np.isfinite(x)
    if good.sum() < srate * 1.5:
        return np.empty(0)
    from scipy import signal

    x = np.interp(np.arange(len(x)), np.flatnonzero(good), x[good])
    sos, zi = _band_filter(kind, round(float(srate), 6))
    filtered = _filtfilt(sos, zi, x - np.mean(x))
    env = filtered**2 if kind == "hr_ecg" else filtered
    height = 0.3 * np.percentile(env, 98) if kind == "hr_ecg" else None
    prominence = None if kind == "hr_ecg" else 0.3 * np.std(filtered)
    peaks, _ = signal.find_peaks(
        env, height=height, prominence=prominence, distance=max(int(0.3 * srate), 1)
    )
    return ts[peaks]


def extract(
    reading: RoleReading, spec: StreamSpec, timestamps: np.ndarray, values: np.ndarray
) -> RoleSeries:
    """The role's standard series from a stream's raw samples (kept in time order)."""
    kind = reading.kind
    if kind == "gaze":
        return RoleSeries(
            timestamps, extract_gaze(reading, spec, values), ("x", "y", "pupil", "valid")
        )
    if kind == "gsr":
        v = _in_range(_col(spec, values, reading.columns.get("gsr", "")), *GSR_RANGE)
        return RoleSeries(timestamps, v[:, None], ("gsr",))
    if kind == "hr_direct":
        v = _in_range(_col(spec, values, reading.columns.get("hr", "")), *HR_RANGE)
        return RoleSeries(timestamps, v[:, None], ("hr",))
    if kind == "hr_intervals":
        ibi = _col(spec, values, reading.columns.get("interval", ""))
        if reading.params.get("interval_unit", "s") == "ms":
            ibi = ibi / 1000.0
        with np.errstate(divide="ignore", invalid="ignore"):
            hr = _in_range(60.0 / ibi, *HR_RANGE)
        keep = np.isfinite(hr)
        return RoleSeries(timestamps[keep], hr[keep][:, None], ("hr",))
    if kind in ("hr_ecg", "hr_ppg"):
        x = _col(spec, values, reading.columns.get("signal", ""))
        rate = spec.nominal_srate
        if rate <= 0 and len(timestamps) > 1:
            rate = 1.0 / float(np.median(np.diff(timestamps)))
        t, hr = beats_to_hr(detect_beats(timestamps, x, rate, kind))
        return RoleSeries(t, hr[:, None], ("hr",))
    raise ValueError(f"unknown reading kind {kind!r} for role {reading.role!r}")
