"""The acquisition core over an offline source (an XDF file, a simulation), for the commands that
cut trials from one: replay and offline prediction. No torch here: replay runs without it."""

from __future__ import annotations

from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition
from emoeye.errors import CliError, missing_roles_message


def offline_acquisition(source, config: AcquisitionConfig, verb: str) -> Acquisition:
    """Bind ``source``'s streams by ``config``'s rules and build the acquisition core.

    Parameters
    ----------
    source
        An offline source (``streams``; ``path`` and ``warnings`` when it is a file).
    config
        Trial spec, marker formats, binding rules.
    verb
        What the caller does, for the error line (``"replay"``, ``"predict"``).

    Raises
    ------
    CliError
        A required role has no stream: one line naming it, the streams present and, for a
        damaged file, its first problem.
    """
    from acquisition.binding import bind_roles
    from acquisition.core import MissingRoleError

    plan = bind_roles(source.streams, config.rules)
    try:
        return Acquisition(plan, config, strict=True)
    except MissingRoleError as exc:
        # One line (the full binding report is what `emoeye streams` prints for live streams).
        what = f"cannot {verb} {getattr(source, 'path', 'the source')}"
        raise CliError(missing_roles_message(exc.summary, source, what)) from None
