"""Frame timing in fixed memory (the dashboard must not grow over a long session)."""

from __future__ import annotations

import numpy as np


class FrameClock:
    """The last ``capacity`` frames' intervals (s) and costs (ms), in preallocated rings.

    Parameters
    ----------
    capacity
        Frames remembered (65,536 is 27 minutes at 40 fps, 1 MB in all).
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self._interval = np.zeros(capacity, dtype=np.float64)
        self._cost = np.zeros(capacity, dtype=np.float64)
        self._n_interval = 0
        self._n_cost = 0

    def add_interval(self, seconds: float) -> None:
        """Time since the previous frame started."""
        self._interval[self._n_interval % self.capacity] = seconds
        self._n_interval += 1

    def add_cost(self, ms: float) -> None:
        """Time the frame's own work took."""
        self._cost[self._n_cost % self.capacity] = ms
        self._n_cost += 1

    def reset(self) -> None:
        """Forget everything (e.g. after a warm-up)."""
        self._n_interval = self._n_cost = 0

    @staticmethod
    def _last(ring: np.ndarray, count: int, n: int | None) -> np.ndarray:
        held = min(count, len(ring))
        n = held if n is None else min(n, held)
        idx = (np.arange(count - n, count)) % len(ring)
        return ring[idx]

    def intervals(self, n: int | None = None) -> np.ndarray:
        """The newest ``n`` intervals (all held when None), oldest first."""
        return self._last(self._interval, self._n_interval, n)

    def costs(self, n: int | None = None) -> np.ndarray:
        """The newest ``n`` frame costs in ms, oldest first."""
        return self._last(self._cost, self._n_cost, n)

    def fps(self, n: int = 40) -> float:
        """Frames per second over the newest ``n`` frames."""
        iv = self.intervals(n)
        total = float(iv.sum())
        return len(iv) / total if len(iv) and total > 0 else 0.0

    def stats(self) -> dict:
        """fps_mean, fps_p5 (the 95th percentile interval), frame_ms_p50 and _p99."""
        iv, ms = self.intervals(), self.costs()
        if not len(iv) or not len(ms):
            return {}
        fps = 1.0 / np.maximum(iv, 1e-6)
        return {
            "fps_mean": round(float(len(iv) / iv.sum()), 2),
            "fps_p5": round(float(np.percentile(fps, 5)), 2),
            "frame_ms_p50": round(float(np.percentile(ms, 50)), 3),
            "frame_ms_p99": round(float(np.percentile(ms, 99)), 3),
        }
