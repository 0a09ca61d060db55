"""Per-stream timestamp checks: Unix-epoch stamps and clock jumps are mapped onto the receiving
machine's LSL clock and reported, never silently mixed."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

EPOCH_THRESHOLD = 1e9  # seconds: 2001-09-09; LSL clocks (time since boot) are far below this


class ClockGuard:
    """Corrects one stream's timestamps.

    Parameters
    ----------
    nominal_srate
        The stream's nominal rate (0 for irregular).
    local_clock
        The receiving clock (``pylsl.local_clock``).
    jump_seconds
        A step between consecutive samples larger than this (backwards: any step < -this)
        is a clock jump.
    """

    def __init__(
        self, nominal_srate: float, local_clock: Callable[[], float], jump_seconds: float = 2.0
    ) -> None:
        self.period = 1.0 / nominal_srate if nominal_srate > 0 else 0.0
        self.local_clock = local_clock
        self.jump_seconds = jump_seconds
        self.offset = 0.0
        self.unix_epoch = False
        self.jumps = 0
        self._last = -np.inf
        self.events: list[str] = []

    def correct(self, ts: np.ndarray) -> np.ndarray:
        """Map a chunk's timestamps onto the local LSL clock (in time order)."""
        if len(ts) == 0:
            return ts
        if not self.unix_epoch and ts[0] > EPOCH_THRESHOLD > self.local_clock():
            self.unix_epoch = True
            self.offset = self.local_clock() - time.time()
            self.events.append("Unix-epoch timestamps detected; mapped onto the LSL clock")
        ts = ts + self.offset
        now = self.local_clock()
        ahead = np.flatnonzero(ts > now + self.jump_seconds)
        if len(ahead):
            # Stamped in the future of this machine: the device clock jumped forward. (A stream
            # that was merely silent resumes stamped *now*, so this is never a dropout.)
            i = int(ahead[0])
            prev = ts[i - 1] if i else self._last
            base = prev + self.period if np.isfinite(prev) else now
            shift = min(base, now) - ts[i]
            ts[i:] += shift
            self.offset += shift
            self.jumps += 1
            self.events.append(f"clock jump of {-shift:+.3f} s corrected (stamps in the future)")
        if np.isfinite(self._last):
            steps = np.diff(np.concatenate([[self._last], ts]))
            bad = steps < -self.jump_seconds / 4
            if self.period:  # irregular streams may be silent for minutes: only backwards counts
                bad |= steps > self.jump_seconds * 30
            for i in np.flatnonzero(bad):
                # Shift the rest so it continues one period after the sample before the jump.
                shift = (ts[i - 1] if i else self._last) + self.period - ts[i]
                ts[i:] += shift
                self.offset += shift
                self.jumps += 1
                self.events.append(f"clock jump of {-shift:+.3f} s corrected")
        self._last = float(ts[-1])
        return ts
