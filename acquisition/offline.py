"""The offline source contract: anything that yields every stream's samples in data time, block by
block (the simulator now, XDF replay later). Consumers never wait on a wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

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
