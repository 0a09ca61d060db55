"""The gaze scanpath of a trial rendered as a small image."""

from __future__ import annotations

import numpy as np


def render_scanpath(x: np.ndarray, y: np.ndarray, size: int = 64, sigma: float = 1.0) -> np.ndarray:
    """Render gaze points (screen units 0..1, origin top-left, NaN = invalid) as (2, size, size).

    Channel 0 is fixation density (time spent, blurred, scaled to max 1); channel 1 is the path
    with time in intensity (later visits brighter), so order survives into the image.
    """
    from scipy import ndimage  # imported where used: commands that cut no trial skip it

    img = np.zeros((2, size, size), dtype=np.float32)
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        return img
    n = len(x)
    frac = (np.arange(n, dtype=np.float32) + 1) / n
    col = np.clip((x[good] * size).astype(int), 0, size - 1)
    row = np.clip((y[good] * size).astype(int), 0, size - 1)
    density = np.zeros((size, size), dtype=np.float32)
    np.add.at(density, (row, col), 1.0)
    density = ndimage.gaussian_filter(density, sigma)
    img[0] = density / max(float(density.max()), 1e-9)
    path = np.zeros((size, size), dtype=np.float32)
    np.maximum.at(path, (row, col), frac[good])
    img[1] = path
    return img
