"""Opening a live session's input: open each stream as soon as it is visible, the markers first."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from acquisition.config import AcquisitionConfig
from emoeye.errors import CliError


def open_live(
    config: AcquisitionConfig,
    wait: float = 10.0,
    log: Callable[[str], Any] = print,
    before_start: Callable[[Any], Any] | None = None,
):
    """Open the live input as soon as the marker stream is visible; bind the rest as it comes.

    Onsets are what a session cannot get back, so nothing waits for the other devices: once a
    marker stream is seen, the inlets of every stream bound so far are opened (the markers'
    first) and the roles still missing are bound the moment their streams appear. A trial cut
    before its role was bound has that role missing. This call still waits up to ``wait``
    seconds for the required roles, so the session starts with them when they are coming; if
    one is still missing then, one line says so and the session goes on without it.

    Parameters
    ----------
    config
        Roles, rules, trial spec.
    wait
        Seconds to wait for the marker stream (an error without it) and the required roles.
    log
        Where progress lines go.
    before_start
        Called with the :class:`~acquisition.lsl.live.LiveAcquisition` before any inlet opens
        (the session starts its recording there, so the file holds every trial).

    Returns
    -------
    LiveAcquisition
        Started.

    Raises
    ------
    CliError
        No marker stream appeared within ``wait`` seconds (the message lists what is there).
    """
    from acquisition.lsl.binding import bind_roles
    from acquisition.lsl.live import LiveAcquisition, discover

    required = list(dict.fromkeys([*config.trial.required_roles, "markers"]))
    deadline = time.monotonic() + wait
    said = False
    while True:
        visible = discover(0.5)
        plan = bind_roles([s for s, _ in visible], config.rules)
        if "markers" in plan.roles:
            break
        if time.monotonic() > deadline:
            raise CliError(
                "cannot start: no stream for role(s) "
                + ", ".join(plan.missing(required))
                + ".\n"
                + plan.explain(required)
                + "\nStart the devices (or `emoeye simulate`), check `emoeye streams`, or bind "
                "roles in a --config file (docs/configuration.md)."
            )
        if not said:
            log(
                f"waiting for streams for: {', '.join(plan.missing(required))} (up to {wait:.0f} s)..."
            )
            said = True
    live = LiveAcquisition(config, streams=visible, strict=False, bind_late=True)
    if before_start is not None:
        try:
            before_start(live)
        except BaseException:
            live.stop()
            raise
    live.start()
    missing = live.plan.missing(required)
    if missing:
        log(
            f"marker stream open; waiting for streams for: {', '.join(missing)} "
            f"(up to {max(deadline - time.monotonic(), 0):.0f} s; each is bound as it appears)..."
        )
    while live.plan.missing(required) and time.monotonic() < deadline:
        time.sleep(0.05)
    missing = live.plan.missing(required)
    if missing:
        log(
            f"warning: no stream yet for required role(s) {', '.join(missing)}; the session goes "
            "on and trials have them missing until their streams appear (bound then). Check "
            "`emoeye streams` or bind roles in a --config file (docs/configuration.md)."
        )
    live.wait_connected(10.0)
    return live
