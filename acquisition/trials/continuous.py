"""Continuous mode: a window cut every ``step`` seconds, markers or not.

Each window is the last ``TrialSpec.duration`` seconds before its end time ``t`` (with the usual
baseline before it), cut by :func:`acquisition.trials.cut.cut_trial`, the one trial path: a
continuous window *is* a trial whose "onset" is ``t - duration``, marked ``mode="continuous"``.
End times lie on the grid ``k * step`` of the clock the data are stamped on, so windows of two
runs over the same data line up. A window is cut once every required role's data has reached its
end (its watermark), or ``TrialSpec.grace`` seconds later anyway, exactly like a trial.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping

import numpy as np

from acquisition.aligner import TrialEvent
from acquisition.reporting import FailureLog
from acquisition.trials.cut import RoleReader, cut_trial
from acquisition.trials.types import Trial, TrialError, TrialSpec

log = logging.getLogger(__name__)

NO_STIMULUS = ""
"""``stimulus_id`` of a window with no onset before it: the model gets the neutral embedding."""


class StepTooSmallError(ValueError):
    """A continuous step below the trial grid's period (one line)."""


def check_step(step: float, spec: TrialSpec) -> float:
    """``step`` as a float, or :class:`StepTooSmallError` when it is not a positive number of
    seconds at least one grid period (``1 / spec.grid_rate``) long."""
    period = 1.0 / spec.grid_rate
    if not (isinstance(step, int | float) and math.isfinite(step)) or step <= 0:
        raise StepTooSmallError(f"continuous step must be a positive number of seconds: {step!r}")
    if step < period - 1e-12:
        raise StepTooSmallError(
            f"continuous step {step:g} s is below the trial grid period {period:.4g} s "
            f"({spec.grid_rate:g} Hz): windows would repeat the same samples"
        )
    return float(step)


class ContinuousCutter:
    """Cuts a continuous window every ``step`` seconds of data time.

    Parameters
    ----------
    spec
        Trial window (duration, baseline, grid, grace, required roles).
    roles
        Role → reader (the acquisition core's live mapping: late bindings show up).
    watermark
        Role → newest time its data is known complete up to.
    step
        Seconds between window ends (at least one grid period: :func:`check_step`).
    participant, id_prefix
        As the trial aligner's; window ids are ``<prefix>c<n>``.
    max_backlog
        Windows due at once beyond which the oldest are skipped (counted in :attr:`skipped`):
        live, a stall must not be followed by a burst of stale windows. None (offline): never.
    """

    def __init__(
        self,
        spec: TrialSpec,
        roles: Mapping[str, RoleReader],
        watermark: Callable[[str], float],
        step: float,
        participant: str | None = None,
        id_prefix: str = "",
        max_backlog: int | None = None,
    ) -> None:
        self.spec = spec
        self.step = check_step(step, spec)
        self.roles = roles
        self.watermark = watermark
        self._onsets: deque[tuple[float, str]] = deque(maxlen=64)
        self.participant = participant
        self.id_prefix = id_prefix
        self.max_backlog = max_backlog
        self.next_end: float | None = None
        """End time of the next window; set from the first data seen."""
        self.failures = FailureLog(log)
        """Failed cuts: the first logged with its traceback, then at milestones."""
        self.cut = 0
        self.failed = 0
        self.skipped = 0

    def note_onset(self, trial_id: str, onset: float, stimulus_id: str) -> None:
        """Onset listener (:attr:`acquisition.aligner.TrialAligner.onset_listeners`): a window
        takes the stimulus of the newest onset before its end."""
        self._onsets.append((onset, stimulus_id))

    def stimulus_at(self, end: float) -> str:
        """Stimulus of the newest onset before ``end`` (:data:`NO_STIMULUS` if none): the window
        ``[end - duration, end)`` holds no sample of an onset at ``end`` itself."""
        best = None
        for t, sid in self._onsets:
            if t < end and (best is None or t >= best[0]):
                best = (t, sid)
        return NO_STIMULUS if best is None else best[1]

    def _frontier(self) -> float | None:
        """Time every bound required role's data is complete up to (None: no data yet)."""
        marks = [self.watermark(r) for r in self.spec.required_roles if r in self.roles]
        marks = [m for m in marks if m != np.inf]
        if not marks:
            return None
        low = min(marks)
        return low if math.isfinite(low) else None

    def poll(self, now: float) -> list[TrialEvent]:
        """Cut every window whose data is complete at ``now`` (or whose grace ran out); returns
        :class:`~acquisition.aligner.TrialEvent` objects."""
        frontier = self._frontier()
        if self.next_end is None:
            if frontier is None:
                return []
            # The first window ends one window length after the first data: no empty windows.
            self.next_end = math.ceil((frontier + self.spec.duration) / self.step) * self.step
        ready = frontier if frontier is not None else -np.inf
        if math.isfinite(now):
            ready = max(ready, now - self.spec.grace)
        return self._cut_until(ready, complete_until=frontier)

    def flush(self) -> list[TrialEvent]:
        """Windows up to the end of the data (end of a recording or shutdown)."""
        frontier = self._frontier()
        if frontier is None or self.next_end is None:
            return []
        return self._cut_until(frontier, complete_until=frontier)

    def _cut_until(self, ready: float, complete_until: float | None) -> list[TrialEvent]:
        if self.next_end is None or ready < self.next_end:
            return []
        due = int(math.floor((ready - self.next_end) / self.step + 1e-9)) + 1
        if self.max_backlog is not None and due > self.max_backlog:
            skip = due - self.max_backlog
            self.skipped += skip
            self.next_end += skip * self.step
            due = self.max_backlog
        out = []
        for _ in range(due):
            end = self.next_end
            complete = complete_until is not None and complete_until >= end
            out.append(TrialEvent(**self._window(end, complete)))
            # Multiples of step, not a running sum: no drift over hours.
            self.next_end = round(end / self.step + 1) * self.step
        return out

    def _window(self, end: float, complete: bool) -> dict:
        onset = end - self.spec.duration
        self.cut += 1
        trial_id = f"{self.id_prefix}c{self.cut}"
        notes = [] if complete else ["cut on grace timeout: data late"]
        stimulus = self.stimulus_at(end)
        if stimulus == NO_STIMULUS:
            notes.append("no onset before the window: neutral stimulus embedding")
        try:
            trial: Trial = cut_trial(
                trial_id,
                onset,
                stimulus,
                self.roles,
                self.spec,
                participant=self.participant,
                complete=complete,
                notes=notes,
            )
        except Exception as exc:  # as the aligner: a record, never a lost window
            self.failed += 1
            self.failures.report(exc, "cut", trial_id)
            error = TrialError.from_exception(
                exc, "cut", trial_id, onset, stimulus, self.participant, notes, mode="continuous"
            )
            return {"error": error}
        trial.mode = "continuous"
        trial.cut_time = time.perf_counter()
        return {"trial": trial}

    def stats(self) -> dict:
        """Counters: windows ``cut`` (failed ones included), ``failed``, ``skipped``, ``step``."""
        return {"step": self.step, "cut": self.cut, "failed": self.failed, "skipped": self.skipped}
