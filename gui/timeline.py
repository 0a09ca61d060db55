"""What the dashboard remembers between frames: the trials it has seen and their predictions.

Nothing here is computed from signals: onsets come from the aligner's ``last_onset`` (polled each
frame) and from predictions, which carry their trial's onset and quality.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class TrialMark:
    """A trial as the dashboard shows it."""

    trial_id: str
    onset: float
    stimulus_id: str
    prediction: Any = None  # inference.prediction.Prediction once it arrives

    @property
    def flagged(self) -> bool:
        """True when the prediction says the trial's quality was low."""
        return bool(self.prediction is not None and self.prediction.flagged)

    @property
    def quality_score(self) -> float:
        """The trial's quality score (0..1) from its prediction, NaN before."""
        if self.prediction is None:
            return math.nan
        return float(self.prediction.quality.get("score", math.nan))


class TrialLog:
    """Trials by id in onset order, plus the prediction history in arrival order.

    Parameters
    ----------
    maxlen
        Trials and predictions remembered for display.
    """

    def __init__(self, maxlen: int = 500) -> None:
        self.maxlen = maxlen
        self.trials: OrderedDict[str, TrialMark] = OrderedDict()
        self.predictions: deque[Any] = deque(maxlen=maxlen)
        self.continuous: deque[Any] = deque(maxlen=2000)
        """Continuous-mode records, apart: they are no trials (the continuous panel draws them)."""
        self.continuous_version = 0
        self._seq = 0
        self._count = 0  # trial records seen (the history's x: windows do not count)
        self._last_onset: tuple | None = None
        self.version = 0
        """Bumped whenever something shown changed (panels redraw only then)."""

    def update(self, aligner: Any, store: Any) -> tuple[list[Any], bool]:
        """Read the newest onset and any new predictions.

        Returns
        -------
        (new predictions, whether a new onset arrived)
        """
        new_onset = False
        last = getattr(aligner, "last_onset", None)
        if last is not None and last != self._last_onset:
            self._last_onset = last
            trial_id, onset, stimulus_id = last
            if trial_id not in self.trials:
                self._add(TrialMark(trial_id, float(onset), stimulus_id))
            new_onset = True
        new: list[Any] = []
        if store is not None:
            new, self._seq = store.since(self._seq)
        windows = [p for p in new if getattr(p, "mode", "trial") == "continuous"]
        if windows:
            self.continuous.extend(windows)
            self.continuous_version += 1
            new = [p for p in new if getattr(p, "mode", "trial") != "continuous"]
        self._count += len(new)
        for p in new:
            mark = self.trials.get(p.trial_id)
            if mark is None:
                mark = TrialMark(p.trial_id, float(p.onset), p.stimulus_id)
                self._add(mark)
            mark.prediction = p
            self.predictions.append(p)
        if new or new_onset:
            self.version += 1
        return new, new_onset

    def _add(self, mark: TrialMark) -> None:
        self.trials[mark.trial_id] = mark
        if len(self.trials) > 1 and mark.onset < next(reversed(self.trials.values())).onset:
            ordered = sorted(self.trials.values(), key=lambda m: m.onset)
            self.trials = OrderedDict((m.trial_id, m) for m in ordered)
        while len(self.trials) > self.maxlen:
            self.trials.popitem(last=False)

    def in_range(self, t0: float, t1: float, duration: float) -> list[TrialMark]:
        """Trials whose window [onset, onset + duration) overlaps [t0, t1]."""
        return [m for m in self.trials.values() if m.onset + duration >= t0 and m.onset <= t1]

    @property
    def current(self) -> TrialMark | None:
        """The newest trial (by onset)."""
        return next(reversed(self.trials.values())) if self.trials else None

    def history_arrays(self, n: int) -> dict[str, np.ndarray]:
        """The newest ``n`` predictions as arrays: seq (1-based arrival order), arousal, valence,
        quality score, flagged."""
        items = list(self.predictions)[-n:]
        first = self._count - len(items) + 1 if items else 1
        return {
            "seq": np.arange(first, first + len(items), dtype=np.float64),
            "arousal": np.array([p.arousal for p in items], dtype=np.float64),
            "valence": np.array([p.valence for p in items], dtype=np.float64),
            "quality": np.array(
                [float(p.quality.get("score", np.nan)) for p in items], dtype=np.float64
            ),
            "flagged": np.array([bool(p.flagged) for p in items], dtype=bool),
        }
