"""Heart features of a trial: heart-rate change from the baseline, and from a raw ECG or PPG
waveform (when the recording has one) neurokit2's beats, rate and, where it means something,
RMSSD.

Heart rate comes from the role bound to ``hr`` on the trial's grid, whatever the device gives
(a rate, beat intervals, or beats detected in ECG/PPG). The waveform figures come from
``nk.ecg_process`` / ``nk.ppg_process`` on the raw samples of the trial's span (baseline and
window) at the stream's own rate.

HRV over a 5-s window: most indices (SDNN, frequency bands, non-linear) need minutes and are not
computed. RMSSD is reported only when the span holds at least :data:`HRV_MIN_BEATS` beats
(ultra-short RMSSD has been validated from about 10 s); otherwise it is NaN and ``hrv_note`` says
why. A longer trial (``trial.duration``) fills it.
"""

from __future__ import annotations

import numpy as np

from features._nk import nk, quiet

RESPONSE_START = 0.5
"""Seconds after the onset the heart-rate mean starts at (as the pupil's)."""

HRV_MIN_BEATS = 10
"""Fewest beats in the span for RMSSD (9 successive differences)."""

MIN_WAVE_S = 2.0
"""Shortest waveform (s of finite samples) neurokit2 is given."""

HR_COLUMNS = ("hr_baseline", "hr_mean", "hr_change")
"""bpm: pre-onset mean, window mean from :data:`RESPONSE_START`, their difference."""

WAVE_COLUMNS = (
    "wave_kind",
    "wave_beats",
    "wave_hr_baseline",
    "wave_hr_mean",
    "wave_hr_change",
    "hrv_rmssd",
    "hrv_note",
)
"""From the raw waveform: ``ecg`` or ``ppg``; beats (R-peaks, pulse peaks) in the span;
neurokit2's rate (bpm) before the onset, in the window from :data:`RESPONSE_START`, their
difference; RMSSD (ms); why RMSSD is missing."""


def hr_features(hr: np.ndarray, rate: float, n_baseline: int) -> tuple[dict, str]:
    """Heart-rate change of one trial from its HR on the grid (NaN where missing)."""
    h = np.asarray(hr, dtype=np.float64)
    t = (np.arange(len(h)) - n_baseline) / rate
    base, late = h[t < 0], h[t >= RESPONSE_START]
    out = dict.fromkeys(HR_COLUMNS, np.nan)
    if np.isfinite(base).any():
        out["hr_baseline"] = float(np.nanmean(base))
    if np.isfinite(late).any():
        out["hr_mean"] = float(np.nanmean(late))
    out["hr_change"] = out["hr_mean"] - out["hr_baseline"]
    note = "" if np.isfinite(out["hr_change"]) else "hr: no baseline or no window data"
    return out, note


def wave_process(signal: np.ndarray, rate: float, kind: str):
    """``nk.ecg_process`` or ``nk.ppg_process`` of a waveform; its ``(signals, info)`` and the
    peak indices."""
    x = np.asarray(signal, dtype=np.float64)
    with quiet():
        if kind == "ecg":
            signals, info = nk().ecg_process(x, sampling_rate=rate)
            return signals, info, np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        signals, info = nk().ppg_process(x, sampling_rate=rate)
        return signals, info, np.asarray(info["PPG_Peaks"], dtype=np.int64)


def wave_features(t: np.ndarray, signal: np.ndarray, rate: float, kind: str) -> tuple[dict, str]:
    """Beats, rate change and RMSSD from a raw ECG/PPG waveform of one trial.

    Parameters
    ----------
    t
        Uniform sample times from the stimulus onset (s): the trial's span.
    signal
        The waveform (gaps bridged linearly by the caller).
    rate
        Its rate, Hz.
    kind
        ``ecg`` or ``ppg``.
    """
    out: dict = dict.fromkeys(WAVE_COLUMNS, np.nan)
    out["wave_kind"], out["hrv_note"] = kind, ""
    if len(signal) < MIN_WAVE_S * rate:
        out["hrv_note"] = f"{kind}: under {MIN_WAVE_S:g} s of waveform"
        return out, out["hrv_note"]
    try:
        signals, _, peaks = wave_process(signal, rate, kind)
    except Exception as exc:  # noqa: BLE001 - neurokit2 failing on a flat or odd signal
        out["hrv_note"] = f"{kind}: neurokit2 failed ({type(exc).__name__})"
        return out, out["hrv_note"]
    hr = signals["ECG_Rate" if kind == "ecg" else "PPG_Rate"].to_numpy(dtype=np.float64)
    out["wave_beats"] = float(len(peaks))
    base, late = hr[t < 0], hr[t >= RESPONSE_START]
    if len(peaks) >= 2 and len(base) and len(late):
        out["wave_hr_baseline"] = float(base.mean())
        out["wave_hr_mean"] = float(late.mean())
        out["wave_hr_change"] = out["wave_hr_mean"] - out["wave_hr_baseline"]
    out["hrv_rmssd"], out["hrv_note"] = rmssd(peaks, rate)
    return out, ""


def rmssd(peaks: np.ndarray, rate: float) -> tuple[float, str]:
    """neurokit2's RMSSD (ms) of the beats, or NaN and why when there are fewer than
    :data:`HRV_MIN_BEATS`."""
    if len(peaks) < HRV_MIN_BEATS:
        return np.nan, f"{len(peaks)} beats < {HRV_MIN_BEATS}: too few for RMSSD"
    with quiet():
        table = nk().hrv_time(np.asarray(peaks), sampling_rate=rate)
    return float(table["HRV_RMSSD"].iloc[0]), ""
