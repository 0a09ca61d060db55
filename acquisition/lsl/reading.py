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

RESAMPLE_MIN_HZ = 64.0
"""Lowest rate irregular ECG/PPG is resampled to (the band-pass filters need > 55 Hz)."""
RESAMPLE_MAX_HZ = 2000.0
"""Highest rate it is resampled to (stamps a few µs apart must not make a huge grid)."""
RESAMPLE_MAX_GAP_S = 0.25
"""Samples further apart than this in an irregular ECG/PPG leave a gap when resampled."""

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


def column_index(spec: StreamSpec, column: str | int) -> int:
    """The channel a reading's column names: a 0-based index, or a label (case-insensitive).

    Raises
    ------
    KeyError
        The stream has no such channel; the message names the stream and its channels.
    """
    if isinstance(column, bool) or not isinstance(column, int | np.integer | str):
        raise KeyError(f"stream {spec.name!r}: a column is a label or an index, not {column!r}")
    if isinstance(column, str):
        return spec.label_index(column)
    if not 0 <= column < spec.channel_count:
        raise KeyError(
            f"stream {spec.name!r} has no channel {column} (channels 0..{spec.channel_count - 1})"
        )
    return int(column)


def describe_column(spec: StreamSpec, column: str | int) -> str:
    """``'label'`` or ``channel N`` (with its label when the stream has one), for reports."""
    if isinstance(column, str):
        return repr(column)
    label = spec.channel_labels[column] if column < len(spec.channel_labels) else ""
    return f"channel {column}" + (f" ({label!r})" if label else "")


def _col(spec: StreamSpec, values: np.ndarray, column: str | int | None) -> np.ndarray | None:
    if column is None:
        return None
    return values[:, column_index(spec, column)].astype(np.float64)


def validity(raw: np.ndarray | None, reading: RoleReading, n: int) -> np.ndarray:
    """Which of ``n`` samples a validity column marks good, by the reading's rule.

    ``valid_when="zero"`` (Tobii-style codes: 0 is good) or ``raw >= valid_threshold``
    (default 0.5); NaN is never good; no column means every sample is.
    """
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
        ok = validity(get(f"valid_{side}"), reading, n)
        return x, y, ok

    if "x" in cols:
        x, y = get("x"), get("y")
        ok = validity(get("valid"), reading, n)
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
    for side in ("", "left", "right"):
        d = get(f"pupil_{side}" if side else "pupil")
        if d is None:
            continue
        pv = get(f"pupil_valid_{side}") if side else None
        eye_good = eye_ok[side] if side else ok
        good = eye_good if pv is None else validity(pv, reading, n)
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


def regular_signal(
    timestamps: np.ndarray, x: np.ndarray, nominal_srate: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(timestamps, x, rate)`` on a regular time grid, for peak detection.

    A stream with a nominal rate whose stamps keep to it is returned as it is. An irregular
    stream (no nominal rate, jittered or bursty stamps, repeated stamps) is resampled by its
    timestamps onto a regular grid of at least :data:`RESAMPLE_MIN_HZ`, linearly between
    samples; stretches between samples further apart than :data:`RESAMPLE_MAX_GAP_S` become NaN
    (a gap, not a straight line that would hide or invent beats).
    """
    ts = np.asarray(timestamps, np.float64)
    x = np.asarray(x, np.float64)
    if len(ts) < 2:
        return ts, x, float(nominal_srate) if nominal_srate > 0 else RESAMPLE_MIN_HZ
    dt = np.diff(ts)
    if nominal_srate > 0:
        period = 1.0 / nominal_srate
        if np.all(np.abs(dt - period) <= 0.1 * period):
            return ts, x, float(nominal_srate)
    order = np.argsort(ts, kind="stable")
    ts, x = ts[order], x[order]
    good = np.isfinite(x) & np.isfinite(ts)
    ts, x = _spread_repeated(ts[good]), x[good]
    uniq, first, counts = np.unique(ts, return_index=True, return_counts=True)
    if len(uniq) < 2:
        return uniq, x[first], RESAMPLE_MIN_HZ
    means = np.add.reduceat(x, first) / counts  # any stamps still shared: their mean
    mean_rate = (len(uniq) - 1) / (uniq[-1] - uniq[0])
    rate = float(min(max(RESAMPLE_MIN_HZ, nominal_srate, np.ceil(mean_rate)), RESAMPLE_MAX_HZ))
    grid = np.arange(uniq[0], uniq[-1], 1.0 / rate)
    from scipy import interpolate  # imported where used (start-up)

    out = interpolate.make_interp_spline(uniq, means, k=1)(grid)
    # Grid points inside a hole of the input get no value.
    j = np.clip(np.searchsorted(uniq, grid, side="right"), 1, len(uniq) - 1)
    out[(uniq[j] - uniq[j - 1]) > RESAMPLE_MAX_GAP_S] = np.nan
    return grid, out, rate


def _spread_repeated(ts: np.ndarray) -> np.ndarray:
    """Sorted stamps with each run of one repeated stamp (a chunk stamped once, as an irregular
    outlet does) spread evenly back from it, at the pace the runs show (their median sample
    period), never back past the stamp before."""
    uniq, first, counts = np.unique(ts, return_index=True, return_counts=True)
    if len(uniq) < 2 or counts.max() == 1:
        return ts
    span = np.diff(uniq)  # from the stamp before each run (from the second run on)
    period = span / counts[1:]
    pace = float(np.median(period))
    step = np.minimum(np.r_[pace, period], pace)
    run = np.repeat(np.arange(len(uniq)), counts)
    back = first[run] + counts[run] - 1 - np.arange(len(ts))  # 0 for a run's last sample
    return ts - back * step[run]


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
        v = _in_range(_col(spec, values, reading.columns.get("gsr", 0)), *GSR_RANGE)
        return RoleSeries(timestamps, v[:, None], ("gsr",))
    if kind == "hr_direct":
        v = _in_range(_col(spec, values, reading.columns.get("hr", 0)), *HR_RANGE)
        return RoleSeries(timestamps, v[:, None], ("hr",))
    if kind == "hr_intervals":
        ibi = _col(spec, values, reading.columns.get("interval", 0))
        if reading.params.get("interval_unit", "s") == "ms":
            ibi = ibi / 1000.0
        with np.errstate(divide="ignore", invalid="ignore"):
            hr = _in_range(60.0 / ibi, *HR_RANGE)
        keep = np.isfinite(hr)
        return RoleSeries(timestamps[keep], hr[keep][:, None], ("hr",))
    if kind in ("hr_ecg", "hr_ppg"):
        x = _col(spec, values, reading.columns.get("signal", 0))
        ts, x, rate = regular_signal(timestamps, x, spec.nominal_srate)
        t, hr = beats_to_hr(detect_beats(ts, x, rate, kind))
        return RoleSeries(t, hr[:, None], ("hr",))
    if kind in ("eeg", "face"):
        from acquisition.lsl.modalities import extract_eeg, extract_face

        how = extract_eeg if kind == "eeg" else extract_face
        out, fields = how(reading, spec, values, column_index)
        return RoleSeries(timestamps, out, fields)
    raise ValueError(f"unknown reading kind {kind!r} for role {reading.role!r}")
