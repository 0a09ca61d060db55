"""How often a repeated problem is reported: it is counted every time, told rarely."""

from __future__ import annotations


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
