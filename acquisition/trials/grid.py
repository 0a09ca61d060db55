"""Resampling onto the trial's common grid."""

from __future__ import annotations

import numpy as np


def to_grid(
    timestamps: np.ndarray, values: np.ndarray, grid: np.ndarray, max_gap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resample one channel onto ``grid`` (absolute times, uniform step).

    Grid points with samples within half a step get their mean (a boxcar anti-alias filter that
    also suits irregular streams and ignores NaNs); points between samples closer than
    ``max_gap`` apart are linearly interpolated; points before the first or after the last
    sample by less than ``max_gap / 2`` hold its value; the rest stay NaN.

    Returns
    -------
    resampled
        float64 (len(grid),), NaN where no data.
    has_data
        bool (len(grid),).
    """
    out = np.full(len(grid), np.nan)
    good = np.isfinite(values)
    t, v = timestamps[good], values[good]
    if len(t) == 0 or len(grid) == 0:
        return out, np.zeros(len(grid), dtype=bool)
    step = float(grid[1] - grid[0]) if len(grid) > 1 else max_gap
    edges = np.concatenate([grid - step / 2, [grid[-1] + step / 2]])
    idx = np.searchsorted(t, edges)
    counts = np.diff(idx)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    sums = csum[idx[1:]] - csum[idx[:-1]]
    binned = counts > 0
    out[binned] = sums[binned] / counts[binned]
    # Between samples: interpolate where the neighbouring samples are close enough.
    empty = ~binned
    if empty.any():
        g = grid[empty]
        right = np.clip(np.searchsorted(t, g), 1, len(t) - 1) if len(t) > 1 else None
        if right is not None:
            left = right - 1
            close = (t[right] - t[left] <= max_gap) & (g >= t[left]) & (g <= t[right])
            interp = np.interp(g, t, v)  # holds the edge values outside [t[0], t[-1]]
            near_edge = ((g < t[0]) & (t[0] - g <= max_gap / 2)) | (
                (g > t[-1]) & (g - t[-1] <= max_gap / 2)
            )
            out[empty] = np.where(close | near_edge, interp, np.nan)
    return out, np.isfinite(out)


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear fill of NaNs with edges held; all-NaN becomes zeros."""
    good = np.isfinite(x)
    if good.all():
        return x
    if not good.any():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    return np.interp(idx, idx[good], x[good])


def presence(timestamps: np.ndarray, grid: np.ndarray, max_gap: float) -> np.ndarray:
    """Grid points where the stream delivered samples (valid or not) close enough."""
    return to_grid(timestamps, np.ones(len(timestamps)), grid, max_gap)[1]
