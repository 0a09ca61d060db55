"""A child process's output, line by line as it comes (tests that run ``emoeye`` as a process)."""

from __future__ import annotations

import threading


class Lines(threading.Thread):
    """Collects a pipe's lines as they come, so the test never blocks on a read."""

    def __init__(self, pipe) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.pipe:
            self.lines.append(line.rstrip("\n"))

    def count(self, prefix: str) -> int:
        """How many lines printed so far start with ``prefix``."""
        return sum(x.startswith(prefix) for x in list(self.lines))

    def has(self, prefix: str) -> bool:
        """True once a line starting with ``prefix`` was printed."""
        return self.count(prefix) > 0
