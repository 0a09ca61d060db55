"""Stream health: explicit states and counters that the CLI, log and dashboard all show."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class StreamState(enum.Enum):
    """Where a stream stands."""

    CONNECTING = "connecting"
    OK = "ok"
    STALLED = "stalled"
    LOST = "lost"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass
class StreamHealth:
    """Counters of one stream (written by its acquisition thread, read by anyone)."""

    key: str
    name: str
    roles: list[str]
    nominal_srate: float
    state: StreamState = StreamState.CONNECTING
    samples: int = 0
    chunks: int = 0
    gaps: int = 0
    clock_jumps: int = 0
    unix_epoch: bool = False
    clock_offset: float = 0.0
    last_arrival: float = float("nan")
    last_timestamp: float = float("nan")
    lag: float = float("nan")
    measured_srate: float = float("nan")
    errors: int = 0
    rebinds: int = 0
    """Times the role(s) moved to a new stream after a device restart (see LiveAcquisition)."""
    source_id: str = ""
    """Source id of the stream feeding this record now."""
    message: str = ""
    plausibility: str = ""
    """Verdict on the stream's first seconds per role it plays (see
    :mod:`acquisition.lsl.plausibility`), e.g. ``"gaze ok; gsr SUSPECT: median 512 is not µS"``;
    empty until checked."""
    read_error: str = ""
    """Why reading a role from this stream's samples failed at the last trial cut (the trial is an
    error record); the state stays ``error`` until a trial is cut again."""
    events: list[str] = field(default_factory=list)
    _rate_window: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def note(self, text: str) -> None:
        """Record a one-off event (kept short: the newest 50)."""
        stamp = time.strftime("%H:%M:%S")
        self.events.append(f"{stamp} {text}")
        del self.events[:-50]
        self.message = text

    def update_rate(self, now: float) -> None:
        """Measured rate over the last ~2 s of arrivals."""
        self._rate_window.append((now, self.samples))
        while len(self._rate_window) > 2 and now - self._rate_window[0][0] > 2.0:
            self._rate_window.pop(0)
        (t0, n0), (t1, n1) = self._rate_window[0], self._rate_window[-1]
        if t1 - t0 > 0.5:
            self.measured_srate = (n1 - n0) / (t1 - t0)

    def to_dict(self) -> dict:
        """JSON-ready snapshot."""
        return {
            "key": self.key,
            "name": self.name,
            "roles": self.roles,
            "state": self.state.value,
            "nominal_srate": self.nominal_srate,
            "measured_srate": round(self.measured_srate, 2),
            "samples": self.samples,
            "gaps": self.gaps,
            "clock_jumps": self.clock_jumps,
            "unix_epoch": self.unix_epoch,
            "clock_offset": round(self.clock_offset, 6),
            "lag_ms": round(self.lag * 1000, 2) if self.lag == self.lag else None,
            "errors": self.errors,
            "rebinds": self.rebinds,
            "source_id": self.source_id,
            "message": self.message,
            "plausibility": self.plausibility,
            "read_error": self.read_error,
        }
