"""Skin conductance of a trial with neurokit2: tonic level, and the skin conductance responses
(SCRs) that start 1-5 s after the stimulus onset.

The trial's GSR on the common grid (baseline then window) goes through ``nk.eda_process``
unchanged: neurokit2's default cleaning (3 Hz low-pass), its high-pass (0.05 Hz) tonic/phasic
decomposition and its SCR detection on the phasic part. Of the SCRs it finds, those whose onset
lies in :data:`SCR_WINDOW` and whose amplitude (phasic peak minus phasic value at onset, neurokit2's
``SCR_Amplitude``) reaches :data:`SCR_MIN_AMPLITUDE` are the trial's responses.
"""

from __future__ import annotations

import numpy as np

from features._nk import nk, quiet

SCR_WINDOW = (1.0, 5.0)
"""Seconds after the stimulus onset an SCR must start in to count as a response to it."""

SCR_MIN_AMPLITUDE = 0.01
"""Smallest SCR counted, µS (neurokit2's own threshold is relative to the largest peak, which
would count noise in a trial without a response)."""

MIN_VALID = 0.5
"""Fraction of the trial's grid points that must hold GSR data for the features to be computed."""

COLUMNS = ("eda_tonic", "scr_count", "scr_onset", "scr_peak", "scr_amplitude")
"""Columns of :func:`eda_features`: mean tonic level in the window (µS), number of responses,
onset and peak latency of the largest response (s after the stimulus onset), its amplitude (µS;
0 when there is none)."""


def eda_process(gsr: np.ndarray, rate: float):
    """``nk.eda_process`` of a GSR grid, its gaps bridged linearly (neurokit2 needs a finite
    signal), warnings silenced. Returns neurokit2's ``(signals, info)``."""
    x = np.asarray(gsr, dtype=np.float64)
    ok = np.isfinite(x)
    if not ok.all():
        x = np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])
    with quiet():
        return nk().eda_process(x, sampling_rate=rate)


def eda_features(gsr: np.ndarray, rate: float, n_baseline: int) -> tuple[dict, str]:
    """The EDA features of one trial.

    Parameters
    ----------
    gsr
        Skin conductance (µS) on a uniform grid: ``n_baseline`` pre-onset points, then the
        window; NaN where there was no data.
    rate
        Grid rate, Hz.
    n_baseline
        Grid points before the onset.

    Returns
    -------
    tuple
        ``{column: value}`` for :data:`COLUMNS` (all NaN when under :data:`MIN_VALID` of the
        grid holds data) and a note ('' or why the features are missing).
    """
    out = dict.fromkeys(COLUMNS, np.nan)
    x = np.asarray(gsr, dtype=np.float64)
    if len(x) < 4 or np.isfinite(x).mean() < MIN_VALID:
        return out, "gsr: too little data for EDA features"
    try:
        signals, info = eda_process(x, rate)
    except (ValueError, IndexError) as exc:
        # neurokit2's SCR peak search raises on some traces (seen: "zero-size array to
        # reduction operation maximum" on a simulated trial): that trial's EDA features are
        # missing, with the reason, rather than the whole table or evaluation failing.
        return out, f"gsr: neurokit2 could not process this trace ({type(exc).__name__}: {exc})"
    t = (np.arange(len(x)) - n_baseline) / rate
    tonic = signals["EDA_Tonic"].to_numpy()
    out["eda_tonic"] = float(tonic[n_baseline:].mean()) if len(x) > n_baseline else np.nan
    scrs = responses(info, t)
    out["scr_count"] = float(len(scrs))
    out["scr_amplitude"] = 0.0
    if scrs:
        onset, peak, amp = max(scrs, key=lambda s: s[2])
        out.update(scr_onset=onset, scr_peak=peak, scr_amplitude=amp)
    return out, ""


def responses(info: dict, t: np.ndarray) -> list[tuple[float, float, float]]:
    """(onset s, peak s, amplitude µS) of neurokit2's SCRs (``info`` of ``eda_process``) that
    start inside :data:`SCR_WINDOW` with at least :data:`SCR_MIN_AMPLITUDE`; ``t`` is the
    grid's time from the stimulus onset."""
    onsets = np.asarray(info.get("SCR_Onsets", []), dtype=np.float64)
    peaks = np.asarray(info.get("SCR_Peaks", []), dtype=np.float64)
    amps = np.asarray(info.get("SCR_Amplitude", []), dtype=np.float64)
    out = []
    for o, p, a in zip(onsets, peaks, amps, strict=False):
        if not (np.isfinite(o) and np.isfinite(p) and np.isfinite(a)):
            continue  # a peak neurokit2 found no onset for (at the very start)
        onset = float(t[int(o)])
        if SCR_WINDOW[0] <= onset <= SCR_WINDOW[1] and a >= SCR_MIN_AMPLITUDE:
            out.append((onset, float(t[int(p)]), float(a)))
    return out
