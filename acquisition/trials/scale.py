"""Rating scales onto the model's classes: equal-width bins over the declared source range.

A rating ``v`` on a source scale ``[low, high]`` falls in class ``floor((v - low) / w)``
(0-based), ``w = (high - low) / n``, the top edge belonging to the last class; a value on an
inner edge goes to the upper class. For 1..7 integers this is the identity; for a 1..9 SAM scale
the edges are 1, 2.14, 3.29, 4.43, 5.57, 6.71, 7.86, 9, so 1-2 -> 1, 3 -> 2, 4 -> 3, 5 -> 4,
6 -> 5, 7 -> 6, 8-9 -> 7 (docs/models.md). Continuous scales (a 0..100 VAS) bin the same way.
"""

from __future__ import annotations

import math

import numpy as np

N_CLASSES = 7
"""The model's rating classes (1..7)."""


class ScaleError(ValueError):
    """A declared scale that is no range, or a rating outside it (one line)."""


def check_scale(low: float, high: float, what: str = "scale") -> tuple[float, float]:
    """``(low, high)`` as floats, or :class:`ScaleError` when they are no finite range."""
    lo, hi = float(low), float(high)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ScaleError(f"{what}: expected LOW < HIGH, got {low:g} {high:g}")
    return lo, hi


def bin_edges(low: float, high: float, n: int = N_CLASSES) -> np.ndarray:
    """The ``n + 1`` class edges over ``[low, high]`` (equal width)."""
    return np.linspace(float(low), float(high), n + 1)


def rating_class(value: float, low: float, high: float, n: int = N_CLASSES) -> int:
    """0-based class of ``value`` on ``[low, high]`` (clipped into range)."""
    u = (float(value) - low) / max(high - low, 1e-12) * n
    return int(min(max(math.floor(u + 1e-9), 0), n - 1))  # 1e-9: 2/7*7 is an edge, not below


def model_axis(value: float, low: float, high: float, n: int = N_CLASSES) -> float:
    """``value`` as a position on the model's 1..n axis where class ``k`` (1-based) spans
    ``[k - 0.5, k + 0.5)``: ``floor(position + 0.5)`` is the class :func:`rating_class` gives
    (the ends map to 0.5 and n + 0.5). Used for normative means, which stay continuous."""
    return 0.5 + (float(value) - low) / max(high - low, 1e-12) * n


def axis_class(position: float, n: int = N_CLASSES) -> int:
    """0-based class of a :func:`model_axis` position (half up, clipped)."""
    return int(min(max(math.floor(float(position) + 0.5) - 1, 0), n - 1))


def in_scale(value: float, low: float, high: float) -> bool:
    """Whether ``value`` is a finite number within ``[low, high]``."""
    return math.isfinite(value) and low <= value <= high
