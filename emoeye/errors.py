"""Errors the CLI shows as one clear line."""

from __future__ import annotations


class CliError(Exception):
    """An error to show the user as one clear line (no traceback)."""


def missing_roles_message(summary: str, source: object, what: str = "") -> str:
    """One line for a source whose streams cannot fill the roles.

    A file cut off inside its marker stream's header has no marker stream: the role is missing
    because of the damage, and the command stops before it prints the file's warnings, so the
    first of them goes on the same line.

    Parameters
    ----------
    summary
        :attr:`acquisition.core.MissingRoleError.summary` (missing roles, streams present).
    source
        The source; its ``warnings`` (an XDF file's problems), if any, are cited.
    what
        What failed, e.g. ``"cannot replay session.xdf"`` (put first when given).

    Returns
    -------
    str
        ``"<what>: <summary>"``, then ``"; the file reports: <first warning>"`` when there is one.
    """
    message = f"{what}: {summary}" if what else summary
    warnings = list(getattr(source, "warnings", None) or [])
    if not warnings:
        return message
    more = f" (and {len(warnings) - 1} more problem(s))" if len(warnings) > 1 else ""
    return f"{message}; the file reports: {warnings[0]}{more}"
