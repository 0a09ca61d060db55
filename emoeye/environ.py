"""Environment variables set for the length of a block."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def environ(values: dict[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (None: removed) inside the block, restored after.

    Parameters
    ----------
    values
        Variable name to value; ``None`` removes the variable for the block.
    """
    saved = {k: os.environ.get(k) for k in values}
    try:
        put_environ(values)
        yield
    finally:
        put_environ(saved)


def put_environ(values: dict[str, str | None]) -> None:
    """Set each variable of ``values`` in ``os.environ``; ``None`` removes it."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
