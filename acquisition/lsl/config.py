"""liblsl configuration files: session ids and the network scope streams are visible in.

liblsl reads the file named by ``LSLAPICFG`` once, the first time it needs its configuration,
so these helpers must run before any stream is created or resolved.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

_TEMPLATE = """\
; written by emoeye ({reason})
[ports]
IPv6 = disable

[multicast]
ResolveScope = {scope}
{addresses}
[lab]
SessionID = {session_id}
{peers}
{tuning}[log]
level = -3
"""


FAST_RTT = 0.05
"""Resolve wave spacing (s) in the machine-scope config this module writes."""


def resolve_seconds() -> float:
    """How long one look for streams should listen: 0.3 s under a machine-scope config written
    here (fast resolve waves), 1.0 s otherwise (liblsl's default wave spacing needs it)."""
    path = os.environ.get("LSLAPICFG")
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    return 0.3 if f"UnicastMinRTT = {FAST_RTT}" in text else 1.0


def write_lsl_config(
    path: Path | str,
    session_id: str | None = None,
    scope: str = "machine",
    reason: str = "emoeye",
) -> Path:
    """Write an ``lsl_api.cfg`` and return its path.

    Parameters
    ----------
    path
        Where to write the file.
    session_id
        The LSL session id; streams in other sessions are invisible. A fresh uuid when None.
    scope
        ``"machine"`` keeps discovery on this computer (loopback only); ``"site"`` is liblsl's
        default lab-wide discovery.
    reason
        A word written into the file's header comment.
    """
    if scope not in ("machine", "link", "site", "organization", "global"):
        raise ValueError(f"unknown LSL scope {scope!r}: use 'machine' or 'site'")
    session_id = session_id or str(uuid.uuid4())
    local = scope == "machine"
    text = _TEMPLATE.format(
        reason=reason,
        scope=scope,
        session_id=session_id,
        addresses="MachineAddresses = {127.0.0.1}\n" if local else "",
        peers="KnownPeers = {127.0.0.1}\n" if local else "",
        # On loopback an answer takes microseconds: without this, liblsl waits 0.5 s or more
        # between resolve waves, and a 0.5-s resolve returned 1-2 of 6 visible streams.
        tuning=f"[tuning]\nMulticastMinRTT = {FAST_RTT}\nUnicastMinRTT = {FAST_RTT}\n\n"
        if local
        else "",
    )
    path = Path(path)
    path.write_text(text)
    return path


def use_lsl_config(session_id: str | None = None, scope: str = "machine") -> Path | None:
    """Point ``LSLAPICFG`` at a generated config unless the user already set one.

    Returns the path written, or None when ``LSLAPICFG`` was already set (the user's file wins).
    Call before the first stream is created or resolved.
    """
    if os.environ.get("LSLAPICFG"):
        return None
    folder = Path(tempfile.mkdtemp(prefix="emoeye-lsl-"))
    path = write_lsl_config(folder / "lsl_api.cfg", session_id or "default", scope, "cli")
    os.environ["LSLAPICFG"] = str(path)
    return path
