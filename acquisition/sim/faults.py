"""Fault injection: damaged XDF bytes, damaged signals, raw LSL device stand-ins.

Used by the fault suite (``tests/faults``) and ``bench/faults.py``; nothing here runs in a normal
session. File mutators take and return ``bytes``; signal mutators wrap any offline source; the
:class:`RawDevice` is one LSL outlet a test drives sample by sample (kill it, bring it back with
the same or a new source id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from acquisition.offline_acquisition import Block
from acquisition.streams import Chunk, StreamSpec

MAGIC = b"XDF:"


# --------------------------------------------------------------------------- XDF bytes


@dataclass(frozen=True)
class ChunkSpan:
    """Where one XDF chunk sits in a file: ``[start, end)``, its tag and content start."""

    start: int
    body: int
    end: int
    tag: int


def chunk_table(data: bytes) -> list[ChunkSpan]:
    """The chunks of a well-formed XDF file, in order (stops at the first unreadable one)."""
    out: list[ChunkSpan] = []
    pos = len(MAGIC)
    while pos < len(data):
        nb = data[pos]
        if nb not in (1, 4, 8) or pos + 1 + nb > len(data):
            break
        length = int.from_bytes(data[pos + 1 : pos + 1 + nb], "little")
        body = pos + 1 + nb
        end = body + length
        if length < 2 or end > len(data):
            break
        tag = int.from_bytes(data[body : body + 2], "little")
        out.append(ChunkSpan(pos, body, end, tag))
        pos = end
    return out


def truncate(data: bytes, offset: int) -> bytes:
    """The file cut off after ``offset`` bytes (a crash or a full disk)."""
    return data[: max(0, offset)]


def corrupt_chunk(data: bytes, rng: np.random.Generator, tag: int = 3, n_bytes: int = 12) -> bytes:
    """Overwrite ``n_bytes`` random bytes inside one chunk with tag ``tag`` (3: samples),
    header bytes included, so its length field or timestamps may become garbage."""
    spans = [c for c in chunk_table(data) if c.tag == tag]
    if not spans:
        raise ValueError(f"no chunk with tag {tag} to corrupt")
    span = spans[int(rng.integers(len(spans)))]
    out = bytearray(data)
    where = rng.integers(span.start, span.end, n_bytes)
    out_vals = rng.integers(0, 256, n_bytes, dtype=np.uint8)
    for i, v in zip(where, out_vals, strict=True):
        out[int(i)] = int(v)
    return bytes(out)


def flip_bytes(data: bytes, rng: np.random.Generator, n: int) -> bytes:
    """``n`` random bytes anywhere after the magic replaced by random values."""
    out = bytearray(data)
    if len(out) <= len(MAGIC):
        return bytes(out)
    for i in rng.integers(len(MAGIC), len(out), n):
        out[int(i)] = int(rng.integers(0, 256))
    return bytes(out)


# --------------------------------------------------------------------------- signals


class MutatedSource:
    """An offline source whose chunks pass through ``mutate`` (e.g. NaN runs, flat lines).

    Parameters
    ----------
    source
        Any offline source (``streams``, ``iter_blocks``).
    mutate
        ``(chunk) -> chunk``; it may change values in place on a copy it makes, drop samples
        (keeping time order) or return the chunk unchanged.
    """

    def __init__(self, source, mutate: Callable[[Chunk], Chunk]) -> None:
        self.source = source
        self.mutate = mutate
        self.streams: list[StreamSpec] = list(source.streams)

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """The source's blocks with every chunk mutated."""
        for block in self.source.iter_blocks(block_seconds):
            yield Block(block.t_end, [self.mutate(c) for c in block.chunks])


def set_columns(chunk: Chunk, labels: dict[str, float], t0: float, t1: float, when=None) -> Chunk:
    """A copy of ``chunk`` with the labelled channels set to a value for ``t0 <= t < t1``.

    ``when`` (optional) is an extra boolean mask over the chunk's samples.
    """
    spec = chunk.stream
    hit = (chunk.timestamps >= t0) & (chunk.timestamps < t1)
    if when is not None:
        hit &= when
    if not hit.any() or not any(lab in spec.channel_labels for lab in labels):
        return chunk
    values = np.array(chunk.values, dtype=np.float64 if spec.channel_format != "string" else object)
    for label, v in labels.items():
        if label in spec.channel_labels:
            values[hit, spec.label_index(label)] = v
    return Chunk(spec, chunk.timestamps, values.astype(chunk.values.dtype), chunk.meta)


# --------------------------------------------------------------------------- LSL devices


class RawDevice:
    """One LSL outlet standing in for a device, with a sample counter and kill/restart.

    Parameters
    ----------
    spec
        Name, type, layout, rate and source id of the stream.
    make_row
        ``(counter array) -> (n, channels)`` values; default: the counter in every channel.
    """

    def __init__(
        self, spec: StreamSpec, make_row: Callable[[np.ndarray], np.ndarray] | None = None
    ):
        self.spec = spec
        self.make_row = make_row or (
            lambda i: np.repeat(i[:, None], spec.channel_count, axis=1).astype(np.float32)
        )
        self.pushed = 0
        self.outlet = None
        self.open()

    def open(self, spec: StreamSpec | None = None) -> RawDevice:
        """Create the outlet (again), optionally as another stream (a restart, new source id)."""
        from acquisition.xdf.player import make_outlet

        if spec is not None:
            self.spec = spec
        self.outlet = make_outlet(self.spec, max_buffered=60)
        return self

    def kill(self) -> None:
        """Destroy the outlet (the device is switched off). Delete inlets on it first."""
        self.outlet = None

    def push(self, timestamps: np.ndarray, values: np.ndarray | None = None) -> int:
        """Push samples stamped ``timestamps`` (default values from the counter)."""
        ts = np.asarray(timestamps, np.float64)
        if values is None:
            values = self.make_row(np.arange(self.pushed, self.pushed + len(ts)))
        if self.spec.is_string:
            rows = [[str(v) for v in np.atleast_1d(row)] for row in values]
        else:
            rows = np.ascontiguousarray(values, dtype=np.float32)
        self.outlet.push_chunk(rows, timestamp=ts.tolist())
        self.pushed += len(ts)
        return len(ts)
