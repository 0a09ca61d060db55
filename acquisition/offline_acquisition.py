"""Offline acquisition: the source contract and the acquisition core built over a source.

An offline source (the simulator, an XDF file) yields every stream's samples in data time, block
by block; consumers never wait on a wall clock. :func:`offline_acquisition` binds a source's
streams to roles and builds the same :class:`~acquisition.core.Acquisition` the live inlets feed,
for replay, offline prediction and dataset building.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition, MissingRoleError
from acquisition.lsl.binding import bind_roles
from acquisition.streams import Chunk, StreamSpec


@dataclass
class Block:
    """Every stream's samples up to a point in data time.

    Attributes
    ----------
    t_end
        Data time up to which every stream is complete (exclusive): no later block carries a
        sample stamped before it.
    chunks
        Chunks with timestamps ``< t_end``, streams in any order, each chunk in time order.
    """

    t_end: float
    chunks: list[Chunk] = field(default_factory=list)


@runtime_checkable
class OfflineSource(Protocol):
    """A source of complete streams in data time."""

    streams: list[StreamSpec]

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """Blocks of about ``block_seconds`` of data time each, in order."""
        ...


def collect(
    source: OfflineSource, block_seconds: float = 0.5
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every stream's whole recording, concatenated over all blocks (for tests and small data).

    Returns
    -------
    dict
        Stream key → (timestamps (n,), values (n, channel_count)); empty arrays for streams
        without samples.
    """
    parts: dict[str, tuple[list, list]] = {s.key: ([], []) for s in source.streams}
    for block in source.iter_blocks(block_seconds):
        for chunk in block.chunks:
            ts, vals = parts.setdefault(chunk.stream.key, ([], []))
            ts.append(chunk.timestamps)
            vals.append(chunk.values)
    out = {}
    for spec in source.streams:
        ts, vals = parts[spec.key]
        dtype = object if spec.is_string else np.float64
        out[spec.key] = (
            np.concatenate(ts) if ts else np.empty(0),
            np.concatenate(vals) if vals else np.empty((0, spec.channel_count), dtype),
        )
    return out


class UnboundSourceError(ValueError):
    """A source whose streams cannot fill the required roles; the message is one line."""


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
    UnboundSourceError
        A required role has no stream: one line naming it, the streams present and, for a
        damaged file, its first problem.
    """
    plan = bind_roles(source.streams, config.rules)
    try:
        return Acquisition(plan, config, strict=True)
    except MissingRoleError as exc:
        # One line (the full binding report is what `emoeye streams` prints for live streams).
        what = f"cannot {verb} {getattr(source, 'path', 'the source')}"
        raise UnboundSourceError(missing_roles_message(exc.summary, source, what)) from None
