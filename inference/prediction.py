"""The prediction contract shared by the worker, its sinks and the dashboard."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

SCALE = np.arange(1, 8, dtype=np.float64)
"""Rating values of the 7 classes."""


@dataclass
class Prediction:
    """Arousal and valence predicted for one trial.

    Attributes
    ----------
    trial_id, onset, stimulus_id, participant
        Identity of the trial (onset on the LSL clock).
    arousal_probs, valence_probs
        Class probabilities (7,) for ratings 1..7.
    arousal, valence
        Expected values on the 1..7 scale.
    quality
        The trial's quality figures (``TrialQuality.to_dict()``).
    flagged
        True when the trial's quality is below the configured threshold (predicted anyway),
        and for every record that is not a prediction.
    flag_reason
        Why it was flagged: each cause, ``"; "``-separated.
    latency_ms
        ``queue`` (cut → worker took it), ``model`` (inference), ``publish`` (sinks), ``total``
        (cut → published).
    error
        Set when the record holds no prediction: the reason (``"cut failed: KeyError: ..."``,
        ``"no usable data: gsr: ..."``). Probabilities are then uniform: read nothing from them.
    status
        ``"predicted"``; ``"failed"`` (the trial's cut, quality or prediction raised) or
        ``"no_data"`` (a required role without usable data, so the model was not run).
    mode
        ``"trial"`` (a trial cut at an onset) or ``"continuous"`` (a continuous-mode window
        ending at ``onset + duration``; docs/continuous.md).
    """

    trial_id: str
    onset: float
    stimulus_id: str
    arousal_probs: np.ndarray
    valence_probs: np.ndarray
    participant: str | None = None
    quality: dict = field(default_factory=dict)
    flagged: bool = False
    flag_reason: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    status: str = "predicted"
    mode: str = "trial"

    @property
    def event(self) -> str:
        """The log's ``event`` of this record: ``prediction``, ``error`` or ``no_data``."""
        return {"predicted": "prediction", "failed": "error"}.get(self.status, self.status)

    @property
    def arousal(self) -> float:
        """Expected arousal, 1..7."""
        return float(np.dot(self.arousal_probs, SCALE))

    @property
    def valence(self) -> float:
        """Expected valence, 1..7."""
        return float(np.dot(self.valence_probs, SCALE))

    @property
    def arousal_class(self) -> int:
        """Most probable arousal rating, 1..7."""
        return int(np.argmax(self.arousal_probs)) + 1

    @property
    def valence_class(self) -> int:
        """Most probable valence rating, 1..7."""
        return int(np.argmax(self.valence_probs)) + 1

    def to_dict(self) -> dict:
        """JSON-ready record (one line of the predictions log)."""
        return {
            "trial_id": self.trial_id,
            "onset": round(self.onset, 6),
            "stimulus_id": self.stimulus_id,
            "participant": self.participant,
            "arousal": round(self.arousal, 4),
            "valence": round(self.valence, 4),
            "arousal_class": self.arousal_class,
            "valence_class": self.valence_class,
            "arousal_probs": [round(float(p), 5) for p in self.arousal_probs],
            "valence_probs": [round(float(p), 5) for p in self.valence_probs],
            "quality": self.quality,
            "flagged": self.flagged,
            "flag_reason": self.flag_reason,
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "error": self.error,
            "status": self.status,
            "mode": self.mode,
        }


class PredictionStore:
    """Thread-safe in-memory history of predictions (what the dashboard and headless view read).

    Parameters
    ----------
    maxlen
        Predictions kept; older ones drop off the display history (they stay in the log).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._items: deque[Prediction] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._count = 0

    def add(self, prediction: Prediction) -> None:
        """Append a prediction."""
        with self._lock:
            self._items.append(prediction)
            self._count += 1

    @property
    def count(self) -> int:
        """Predictions ever added (a sequence number)."""
        return self._count

    def latest(self, n: int = 1) -> list[Prediction]:
        """The newest ``n`` predictions, oldest first."""
        with self._lock:
            return list(self._items)[-n:] if n else []

    def since(self, sequence: int) -> tuple[list[Prediction], int]:
        """Predictions added since ``sequence`` (still held), and the new sequence."""
        with self._lock:
            new = self._count - sequence
            items = list(self._items)[-new:] if new > 0 else []
            return items, self._count

    def __len__(self) -> int:
        return len(self._items)
