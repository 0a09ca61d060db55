"""Opening a live session's input: open each stream as soon as it is visible, the markers first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from acquisition.config import AcquisitionConfig
from emoeye.errors import CliError


class StreamPrefetch:
    """Looks for streams in a background thread, so the look overlaps loading the model.

    liblsl waits in C (the GIL is free), so the look costs the model load nothing and the
    session binds with what it found instead of looking again (bench/e2e.py,
    ``startup_to_bound_s``).
    """

    def __init__(self) -> None:
        self._found: list | None = None
        self._thread = threading.Thread(target=self._look, name="stream-prefetch", daemon=True)
        self._thread.start()

    def _look(self) -> None:
        from acquisition.lsl.live import RESOLVE_S, discover

        try:
            self._found = discover(RESOLVE_S)
        except Exception:  # open_live looks again and reports what it finds
            self._found = None

    def result(self, timeout: float = 5.0) -> list | None:
        """The (spec, info) pairs found, or None when the look failed or is not done."""
        self._thread.join(timeout)
        return self._found


def open_live(
    config: AcquisitionConfig,
    wait: float = 10.0,
    log: Callable[[str], Any] = print,
    before_start: Callable[[Any], Any] | None = None,
    prefetched: list | None = None,
    markers_required: bool = True,
):
    """Open the live input as soon as a marker stream is visible; bind the rest as it appears.

    Onsets are what a session cannot get back, so nothing waits for all devices: once a marker
    stream is seen, the inlets of every stream visible open at once (the markers' first), and
    each role still missing is bound as soon as its stream appears
    (:class:`~acquisition.lsl.live.LiveAcquisition` with ``bind_late``). A trial cut before its
    role was bound has that role missing. This call waits up to ``wait`` seconds for the marker
    stream (an error without it) and for the required roles, so the session starts with them
    when they are coming; a required role still missing then gets one warning line and the
    session goes on without it.

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
    prefetched
        Streams already found (:class:`StreamPrefetch`); looked for here when None.
    markers_required
        False in continuous mode: the session starts as soon as the marker stream *or* every
        required role is visible (after ``wait``, with whatever role is there); a marker stream
        that appears later is bound late.

    Returns
    -------
    LiveAcquisition
        Started.

    Raises
    ------
    CliError
        No marker stream appeared within ``wait`` seconds (the message lists what is there).
    """
    import pylsl

    from acquisition.lsl.binding import bind_roles
    from acquisition.lsl.live import RESOLVE_S, LiveAcquisition, discover, discover_infos

    data_roles = list(config.trial.required_roles)
    required = list(dict.fromkeys([*data_roles, "markers"]))
    deadline = time.monotonic() + wait
    said = False
    found = prefetched if prefetched is not None else discover(RESOLVE_S)
    seen = {info.uid(): (spec, info) for spec, info in found}
    while True:  # the marker stream first: without it nothing can be cut
        visible = list(seen.values())
        plan = bind_roles([s for s, _ in visible], config.rules)
        if "markers" in plan.roles:
            break
        if not markers_required and (
            not plan.missing(data_roles)
            or (time.monotonic() > deadline and set(plan.roles) & set(data_roles))
        ):
            break  # continuous mode cuts windows without onsets
        if time.monotonic() > deadline:
            raise CliError(
                "cannot start: no stream for role(s) "
                + ", ".join(plan.missing(required))
                + ".\n"
                + plan.explain(required)
                + "\nStart the devices (or `emoeye simulate`), check `emoeye streams`, or "
                "bind roles in a --config file (docs/configuration.md)."
            )
        if not said:
            log(
                f"waiting for streams for: {', '.join(plan.missing(required))} (up to {wait:.0f} s)..."
            )
            said = True
        # A new stream is seen within ~1 s (shorter resolves return only part of what is
        # visible: see RESOLVE_S); an onset sent before the marker
        # inlet connects is gone for good.
        fresh = [i for i in pylsl.resolve_streams(wait_time=RESOLVE_S) if i.uid() not in seen]
        seen.update({info.uid(): (spec, info) for spec, info in discover_infos(fresh)})
    # What is visible now opens now (the markers' inlet first); the binder opens the rest.
    live = LiveAcquisition(config, streams=visible, strict=False, bind_late=True)
    try:
        if before_start is not None:
            before_start(live)
        live.start()
        if live.plan.missing(required):
            opened = "marker stream open; " if "markers" in live.plan.roles else ""
            log(
                f"{opened}waiting for streams for: "
                f"{', '.join(live.plan.missing(required))} (each opens as it appears)..."
            )
        if not markers_required:
            required = data_roles  # a marker stream is bound late if it comes, not waited for
        while live.plan.missing(required) and time.monotonic() < deadline:
            time.sleep(0.05)
        if live.plan.missing(required):
            log(
                "warning: no stream yet for required role(s) "
                f"{', '.join(live.plan.missing(required))}; the session goes on and trials "
                "have them missing until their streams appear (bound then). Check `emoeye "
                "streams` or bind roles in a --config file (docs/configuration.md)."
            )
    except BaseException:
        live.stop()
        raise
    live.wait_connected(10.0)
    return live
