"""Time-indexed ring buffer: one per stream, single writer, consistent range reads."""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """Preallocated (timestamps, values) ring, indexed by time.

    One thread writes (the stream's acquisition thread or the offline feeder); any thread reads a
    consistent copy of a time range. Writes cost O(chunk) and reads O(window): nothing is rolled.

    Parameters
    ----------
    capacity
        Samples held; older ones are overwritten.
    channels
        Channels per sample.
    dtype
        Value dtype (``object`` for string streams).
    """

    def __init__(self, capacity: int, channels: int, dtype: np.dtype | type = np.float32) -> None:
        if capacity < 1 or channels < 1:
            raise ValueError("capacity and channels must be positive")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._ts = np.full(self.capacity, np.nan, dtype=np.float64)
        self._values = np.empty((self.capacity, self.channels), dtype=dtype)
        self._count = 0  # samples ever written; the write position is count % capacity
        self._lock = threading.Lock()
        self.watermark = -np.inf
        """Newest time up to which this stream's data is known complete."""

    @classmethod
    def for_stream(
        cls, srate: float, channels: int, seconds: float, dtype=np.float32, irregular_rate=1000.0
    ) -> RingBuffer:
        """A buffer holding ``seconds`` of a stream (irregular streams assume ``irregular_rate``)."""
        rate = srate if srate > 0 else irregular_rate
        return cls(max(int(np.ceil(rate * seconds * 1.1)) + 16, 64), channels, dtype)

    @property
    def count(self) -> int:
        """Samples ever written (a sequence number: the next sample's index)."""
        return self._count

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    def write(self, timestamps: np.ndarray, values: np.ndarray) -> None:
        """Append samples in time order. Chunks larger than the buffer keep their newest part."""
        n = len(timestamps)
        if n == 0:
            return
        skipped = max(n - self.capacity, 0)
        if skipped:
            timestamps, values, n = timestamps[skipped:], values[skipped:], self.capacity
        with self._lock:
            start = (self._count + skipped) % self.capacity
            first = min(n, self.capacity - start)
            self._ts[start : start + first] = timestamps[:first]
            self._values[start : start + first] = values[:first]
            if first < n:
                self._ts[: n - first] = timestamps[first:]
                self._values[: n - first] = values[first:]
            self._count += n + skipped

    def _span(self, t0: float, t1: float) -> tuple[int, int]:
        """Logical offsets [i0, i1) of held samples with t0 <= t < t1 (caller holds the lock)."""
        held = min(self._count, self.capacity)
        start = (self._count - held) % self.capacity
        # Two sorted segments: [start, end-of-array) and [0, rest).
        seg1 = self._ts[start : start + min(held, self.capacity - start)]
        seg2 = self._ts[: held - len(seg1)]
        i0 = _search(seg1, seg2, t0)
        i1 = _search(seg1, seg2, t1)
        return i0, i1

    def read(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Copy of the samples with ``t0 <= t < t1``: (timestamps (n,), values (n, channels))."""
        with self._lock:
            i0, i1 = self._span(t0, t1)
            return self._copy(i0, i1)

    def read_last(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy of the newest ``n`` samples."""
        with self._lock:
            held = min(self._count, self.capacity)
            return self._copy(max(held - n, 0), held)

    def read_since(self, sequence: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Samples written since sequence number ``sequence`` (see :attr:`count`).

        Returns (timestamps, values, new_sequence). Samples already overwritten are skipped; the
        caller can tell by ``new_sequence - sequence > len(timestamps)``.
        """
        with self._lock:
            held = min(self._count, self.capacity)
            oldest = self._count - held
            first = max(sequence, oldest)
            ts, vals = self._copy(first - oldest, held)
            return ts, vals, self._count

    def _copy(self, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
        if i1 <= i0:
            return np.empty(0, np.float64), np.empty((0, self.channels), self._values.dtype)
        held = min(self._count, self.capacity)
        start = (self._count - held) % self.capacity
        a, b = (start + i0) % self.capacity, (start + i1) % self.capacity
        if a < b:
            return self._ts[a:b].copy(), self._values[a:b].copy()
        return (
            np.concatenate([self._ts[a:], self._ts[:b]]),
            np.concatenate([self._values[a:], self._values[:b]]),
        )

    @property
    def last_timestamp(self) -> float:
        """Timestamp of the newest sample (-inf when empty)."""
        if self._count == 0:
            return -np.inf
        return float(self._ts[(self._count - 1) % self.capacity])

    @property
    def first_timestamp(self) -> float:
        """Timestamp of the oldest held sample (inf when empty)."""
        if self._count == 0:
            return np.inf
        held = min(self._count, self.capacity)
        return float(self._ts[(self._count - held) % self.capacity])


def _search(seg1: np.ndarray, seg2: np.ndarray, t: float) -> int:
    """Position of the first sample >= t across two consecutive sorted segments."""
    if len(seg2) and len(seg1) and t > seg1[-1]:
        return len(seg1) + int(np.searchsorted(seg2, t, side="left"))
    return int(np.searchsorted(seg1, t, side="left"))
