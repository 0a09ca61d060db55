"""Pupil features of a trial: baseline-corrected dilation, its peak and latency, blinks.

Computed on the trial's common grid (the mean of the valid eyes, in the tracker's unit: mm for
most devices, an arbitrary area unit for EyeLink), NaN where the pupil was lost. The first
:data:`RESPONSE_START` seconds are left out of the mean: the light reflex to a new picture
comes first, the dilation of interest after it.
"""

from __future__ import annotations

import numpy as np

RESPONSE_START = 0.5
"""Seconds after the onset the response mean starts at."""

COLUMNS = (
    "pupil_baseline",
    "pupil_dilation",
    "pupil_peak",
    "pupil_peak_latency",
    "blink_count",
    "blink_rate",
)
"""Columns: baseline mean; window mean (from :data:`RESPONSE_START`) minus the baseline; the
largest baseline-corrected value in the window and its time after the onset (s); blinks in the
window (losses of 80-500 ms, the trial's quality figure) and blinks per minute."""


def pupil_features(
    pupil: np.ndarray, rate: float, n_baseline: int, baseline: float
) -> tuple[dict, str]:
    """The pupil features of one trial (blinks are filled in by the caller).

    Parameters
    ----------
    pupil
        Pupil size on the grid, ``n_baseline`` pre-onset points first; NaN where lost.
    rate
        Grid rate, Hz.
    n_baseline
        Grid points before the onset.
    baseline
        The trial's pre-onset mean (NaN when the baseline had no pupil).

    Returns
    -------
    tuple
        ``{column: value}`` and a note ('' or why a feature is missing).
    """
    out = dict.fromkeys(COLUMNS, np.nan)
    p = np.asarray(pupil, dtype=np.float64)
    w = p[n_baseline:]
    t = np.arange(len(w)) / rate
    out["pupil_baseline"] = float(baseline)
    if not np.isfinite(baseline):
        return out, "pupil: no baseline"
    late = w[t >= RESPONSE_START]
    ok = np.isfinite(late)
    if not ok.any():
        return out, "pupil: no data in the window"
    out["pupil_dilation"] = float(late[ok].mean() - baseline)
    k = int(np.nanargmax(w))
    out["pupil_peak"] = float(w[k] - baseline)
    out["pupil_peak_latency"] = float(t[k])
    return out, ""
