"""Errors the CLI shows as one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class CliError(Exception):
    """An error to show the user as one clear line (no traceback)."""


@contextmanager
def as_cli_error(*refusals: type[Exception]) -> Iterator[None]:
    """Turn the given library errors (refused input, one-line messages) into :class:`CliError`."""
    try:
        yield
    except refusals as exc:
        raise CliError(str(exc)) from None
