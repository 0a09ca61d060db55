"""How often a repeated problem is reported: it is counted every time, told rarely."""

from __future__ import annotations

import logging


def is_milestone(n: int) -> bool:
    """True for the 1st, 10th, 100th, 1000th... occurrence of a problem.

    A flood of bad markers or skipped trials is reported on these counts (each occurrence is
    counted elsewhere), so the terminal shows that it goes on without being spammed.
    """
    if n < 1:
        return False
    while n % 10 == 0:
        n //= 10
    return n == 1


class FailureLog:
    """Logs a repeated failure without flooding: its first occurrence with the traceback, then
    one line at the 10th, 100th... (:func:`~acquisition.reporting.is_milestone`). Every
    occurrence is a record elsewhere; this only keeps the terminal readable.

    Parameters
    ----------
    logger
        Where the lines go.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self.counts: dict[tuple[str, str], int] = {}

    def report(self, exc: BaseException, stage: str, trial_id: str | None = None) -> int:
        """Log ``exc`` raised at ``stage`` (for ``trial_id``, whose error record says so);
        returns how often this stage has failed with this exception type so far."""
        key = (stage, type(exc).__name__)
        n = self.counts[key] = self.counts.get(key, 0) + 1
        what = f"{stage} failed: {type(exc).__name__}: {exc}"
        if trial_id is not None:
            what = f"trial {trial_id}: {what} (an error record stands for the trial)"
        if n == 1:
            self.log.error("%s", what, exc_info=exc)
        elif is_milestone(n):
            self.log.error("%s (%d such %s failures so far)", what, n, stage)
        return n
