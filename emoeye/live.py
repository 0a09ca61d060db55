"""Opening a live session's input: wait for the streams every role needs, then start them."""

from __future__ import annotations

import time

from acquisition.config import AcquisitionConfig
from emoeye.errors import CliError


def open_live(config: AcquisitionConfig, wait: float = 10.0, log=print):
    """Discover streams until every required role (and markers) binds, or fail clearly.

    Returns a started :class:`acquisition.lsl.live.LiveAcquisition`.
    """
    from acquisition.core import MissingRoleError
    from acquisition.lsl.binding import bind_roles
    from acquisition.lsl.live import LiveAcquisition, discover

    required = [*config.trial.required_roles, "markers"]
    deadline = time.monotonic() + wait
    said = False
    while True:
        visible = discover(1.0)
        plan = bind_roles([s for s, _ in visible], config.rules)
        missing = plan.missing(required)
        if not missing:
            break
        if time.monotonic() > deadline:
            raise CliError(
                "cannot start: no stream for role(s) "
                + ", ".join(missing)
                + ".\n"
                + plan.explain(required)
                + "\nStart the devices (or `emoeye simulate`), check `emoeye streams`, or bind "
                "roles in a --config file (docs/configuration.md)."
            )
        if not said:
            log(f"waiting for streams for: {', '.join(missing)} (up to {wait:.0f} s)...")
            said = True
    try:
        live = LiveAcquisition(config, streams=visible)
    except MissingRoleError as exc:  # pragma: no cover - bound above
        raise CliError(str(exc)) from None
    live.start()
    live.wait_connected(10.0)
    return live
