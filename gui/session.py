"""What the dashboard needs from a session: a few attributes it reads, two optional abilities.

The dashboard only *reads* this state on its timer; it never drives acquisition or inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class LiveLike(Protocol):
    """The live input (:class:`acquisition.lsl.live.LiveAcquisition` or an offline stand-in).

    Attributes
    ----------
    core
        :class:`acquisition.core.Acquisition`: ``roles`` (role → ``BoundRole``), ``buffers``,
        ``aligner`` (``last_onset``, ``stats``, ``pending``), ``config``.
    health
        Stream key → :class:`acquisition.lsl.health.StreamHealth`.
    plan
        :class:`acquisition.lsl.binding.BindingPlan`: ``roles``, ``candidates``, ``visible``,
        ``missing()``, ``explain()``.
    """

    core: Any
    health: dict[str, Any]
    plan: Any


class DashboardSession(Protocol):
    """The minimum a session offers the dashboard.

    Attributes
    ----------
    live
        The live input (see :class:`LiveLike`).
    store
        :class:`inference.prediction.PredictionStore` (``since(seq)``, ``latest(n)``).
    catalogue
        :class:`acquisition.stimulus_catalogue.StimulusCatalogue` (``image_hwc(id, size)``); may
        be None, then the acquisition core's catalogue is used.
    """

    live: LiveLike
    store: Any
    catalogue: Any


@runtime_checkable
class RecordingSession(Protocol):
    """Optional: a session that can record its streams to XDF (``LiveSession`` does).

    ``start_recording`` and ``stop_recording`` may take a moment (resolving streams, closing the
    file); the dashboard calls them off the GUI thread. ``recording`` is the current file or
    a falsy value.
    """

    def start_recording(self, path: Path | str) -> Any: ...

    def stop_recording(self) -> Any: ...


@runtime_checkable
class RebindingSession(Protocol):
    """Optional: a session that can bind a role to another visible stream while running."""

    def rebind(self, role: str, stream_key: str) -> Any: ...


def can_record(session: object) -> bool:
    """True when the session offers ``start_recording`` and ``stop_recording``."""
    return callable(getattr(session, "start_recording", None)) and callable(
        getattr(session, "stop_recording", None)
    )


def can_rebind(session: object) -> bool:
    """True when the session offers ``rebind(role, stream_key)``."""
    return callable(getattr(session, "rebind", None))


def recording_target(session: object) -> str | None:
    """The file being recorded, as text, or None (reads ``session.recording`` when present)."""
    value = getattr(session, "recording", None)
    if callable(value):
        value = value()
    if not value:
        return None
    return str(value) if not isinstance(value, bool) else "recording"
