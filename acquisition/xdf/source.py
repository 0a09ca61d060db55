"""An XDF recording as an offline source: blocks of every stream in stream-time order.

:class:`XdfSource` feeds :meth:`acquisition.core.Acquisition.run_offline` (fast replay, dataset
building) and the LSL player (real-time replay) exactly like the simulator does.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from acquisition.offline_acquisition import Block
from acquisition.streams import Chunk, StreamSpec, shorten
from acquisition.xdf.reader import XdfFile, XdfStream, read_xdf

log = logging.getLogger(__name__)

FOREIGN_CLOCK_S = 3600.0
"""A stream whose time range lies farther than this from every other group of streams is on a
foreign clock (another host without clock offsets, a device clock): an hour is far beyond any
pause inside one session and far below the distance between two machines' uptimes."""


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"pyxdf: {record.getMessage()}")


@contextmanager
def folded_warnings() -> Iterator[list[str]]:
    """Collect what pyxdf logs and what Python warns (numpy's divide by zero on a one-sample
    segment) while a file is read, as lines for the file's own warnings, instead of letting
    them reach stderr in another format. Each distinct line once."""
    got: list[str] = []
    handler = _Collect(got)
    pyxdf_log = logging.getLogger("pyxdf")
    was = pyxdf_log.propagate
    pyxdf_log.addHandler(handler)
    pyxdf_log.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield got
    finally:
        pyxdf_log.removeHandler(handler)
        pyxdf_log.propagate = was
    got.extend(f"while reading: {w.category.__name__}: {w.message}" for w in caught)
    got[:] = list(dict.fromkeys(got))


def _gap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Seconds between two time ranges (0 when they overlap)."""
    return max(0.0, a[0] - b[1], b[0] - a[1])


def foreign_clocks(streams: list[XdfStream], limit: float = FOREIGN_CLOCK_S) -> dict[int, float]:
    """Streams whose time range lies more than ``limit`` seconds from the common clock's.

    Streams with samples are grouped by their time ranges (single linkage: a stream joins a
    group when its range lies within ``limit`` of any member's). The common clock is the group
    with the most regular streams (devices, which set the session's time), then the most
    streams, then the most samples, then the earliest file position; every other group is
    foreign.

    Parameters
    ----------
    streams
        The file's streams (after clock sync).
    limit
        The distance in seconds beyond which a range is foreign.

    Returns
    -------
    dict
        Stream id → offset in seconds of its first stamp from the common clock's first stamp,
        for each stream on a foreign clock (empty when every stream agrees).
    """
    filled = [s for s in streams if len(s)]
    ranges = {s.stream_id: (float(s.timestamps[0]), float(s.timestamps[-1])) for s in filled}
    groups: list[list[XdfStream]] = []
    for s in sorted(filled, key=lambda x: ranges[x.stream_id][0]):
        near = [g for g in groups if any(_gap(ranges[s.stream_id], ranges[m.stream_id]) <= limit
                                         for m in g)]  # fmt: skip
        merged = [s] + [m for g in near for m in g]
        groups = [g for g in groups if g not in near] + [merged]
    if len(groups) < 2:
        return {}
    order = {s.stream_id: i for i, s in enumerate(streams)}

    def rank(g: list[XdfStream]) -> tuple:
        regular = sum(m.spec.nominal_srate > 0 for m in g)
        return (regular, len(g), sum(len(m) for m in g), -min(order[m.stream_id] for m in g))

    common = max(groups, key=rank)
    t0 = min(ranges[m.stream_id][0] for m in common)
    return {m.stream_id: ranges[m.stream_id][0] - t0 for g in groups if g is not common for m in g}


def foreign_clock_line(stream: XdfStream, offset: float) -> str:
    """One line naming a stream on a foreign clock and its offset."""
    return (
        f"stream {stream.stream_id} ({shorten(stream.spec.name)!r}) is on a foreign clock: its "
        f"stamps lie {offset:+.1f} s ({offset / 3600:+.1f} h) from the other streams' (another "
        "host or device clock without clock offsets?); it is left out of replay, trials and "
        "the duration"
    )


class XdfSource:
    """An XDF file as an :class:`~acquisition.offline_acquisition.OfflineSource`.

    Parameters
    ----------
    path
        The recording.
    dejitter
        Replace regular streams' stamps by pyxdf's per-segment linear fit. Off by default: the
        live inlets use clock sync only, so replay and dataset building see the stamps the live
        session saw (a dejitter fit smears a device dropout over its neighbours' stamps).
    synchronize_clocks, handle_clock_resets
        Passed to :func:`acquisition.xdf.reader.read_xdf`.
    participant
        Participant id; by default the file header's ``<participant>`` if any.

    Attributes
    ----------
    streams
        One :class:`StreamSpec` per stream in the file (empty streams included).
    warnings
        What was wrong with the file (see :func:`read_xdf`), then one line per stream on a
        foreign clock.
    foreign
        Stream ids whose time range lies more than :data:`FOREIGN_CLOCK_S` from the common
        clock's streams, with their offset in seconds. They are left out of the blocks, the
        duration and the progress (their stamps cannot be lined up with the others).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        dejitter: bool = False,
        synchronize_clocks: bool = True,
        handle_clock_resets: bool = True,
        participant: str | None = None,
    ) -> None:
        self.path = Path(path)
        with folded_warnings() as folded:
            self.file: XdfFile = read_xdf(
                self.path,
                synchronize_clocks=synchronize_clocks,
                dejitter=dejitter,
                handle_clock_resets=handle_clock_resets,
            )
        self.file.warnings.extend(w for w in folded if w not in self.file.warnings)
        self.streams: list[StreamSpec] = [s.spec for s in self.file.streams]
        self.warnings: list[str] = self.file.warnings
        self.unix_epoch_keys = {s.spec.key for s in self.file.streams if s.unix_epoch}
        """Streams stamped in Unix-epoch seconds in the file: a real-time replay stamps them so
        again, as the device did (offline blocks carry them on the common clock)."""
        header_participant = self.file.header_value("participant")
        self.participant = participant or header_participant or None
        self.dejitter = dejitter
        self.foreign: dict[int, float] = foreign_clocks(self.file.streams)
        for s in self.file.streams:
            if s.stream_id in self.foreign:
                self.warnings.append(foreign_clock_line(s, self.foreign[s.stream_id]))
        self._common = [s for s in self.file.streams if len(s) and s.stream_id not in self.foreign]

    @property
    def xdf_streams(self) -> list[XdfStream]:
        """The file's streams with their data."""
        return self.file.streams

    def is_foreign(self, key: str) -> bool:
        """True for the stream with this key when it lies on a foreign clock."""
        return any(s.spec.key == key for s in self.file.streams if s.stream_id in self.foreign)

    @property
    def t_start(self) -> float:
        """First timestamp on the common clock (NaN when the file holds no samples)."""
        firsts = [s.timestamps[0] for s in self._common]
        return float(min(firsts)) if firsts else float("nan")

    @property
    def t_stop(self) -> float:
        """Last timestamp on the common clock (NaN when the file holds no samples)."""
        lasts = [s.timestamps[-1] for s in self._common]
        return float(max(lasts)) if lasts else float("nan")

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample on the common clock (0 when empty)."""
        d = self.t_stop - self.t_start
        return float(d) if np.isfinite(d) else 0.0

    @property
    def n_samples(self) -> int:
        """Samples in the file, all streams."""
        return sum(len(s) for s in self.file.streams)

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """Blocks of ``block_seconds`` of data time, every stream's samples with ``t < t_end``.

        Stretches where no stream has data (a long pause, a clock reset) are skipped in one
        step rather than walked through block by block. Streams on a foreign clock
        (:attr:`foreign`) are left out.
        """
        if block_seconds <= 0:
            raise ValueError("block_seconds must be > 0")
        streams = self._common
        if not streams:
            return
        # The reader hands over finite, sorted stamps (it drops and sorts damaged ones).
        t0, last = self.t_start, self.t_stop
        cursors = [0] * len(streams)
        k = 1
        edge = t0 + block_seconds
        while True:
            chunks = []
            for i, s in enumerate(streams):
                c = cursors[i]
                if c >= len(s):
                    continue
                j = int(np.searchsorted(s.timestamps, edge, side="left"))
                if j > c:
                    chunks.append(Chunk(s.spec, s.timestamps[c:j], s.values(c, j)))
                    cursors[i] = j
            if chunks:
                yield Block(edge, chunks)
            if edge > last:
                break
            if not chunks:  # jump over a gap to the block holding the next sample
                nxt = min(
                    s.timestamps[c] for s, c in zip(streams, cursors, strict=True) if c < len(s)
                )
                k = max(k + 1, int(np.floor((nxt - t0) / block_seconds)) + 1)
                # Strictly past the next sample even where huge garbage stamps make
                # t0 + k * block_seconds round onto it, so the next block holds it.
                edge = max(t0 + k * block_seconds, float(np.nextafter(nxt, np.inf)))
            else:
                k += 1
                edge = t0 + k * block_seconds

    def collect(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every stream's (timestamps, values) by stream key (for tests and small files)."""
        return {s.spec.key: (s.timestamps, s.values()) for s in self.file.streams}

    def summary(self) -> dict:
        """JSON-ready facts about the file: path, duration, participant, streams, warnings."""
        filled = [s for s in self.file.streams if len(s)]
        mixed = any(not s.unix_epoch for s in filled)  # the reader then maps Unix-epoch ones
        return {
            "path": str(self.path),
            "duration_s": round(self.duration, 3),
            "participant": self.participant,
            "dejitter": self.dejitter,
            "streams": [
                stream_facts(s, self.foreign.get(s.stream_id), mapped=s.unix_epoch and mixed)
                for s in self.file.streams
            ],
            "warnings": list(self.warnings),
        }


def effective_rate(stream: XdfStream) -> float:
    """Measured samples per second of a stream, gaps excluded (0 for < 2 samples).

    The reader measures it only when it dejitters; otherwise it is counted here the way pyxdf
    does: over segments split at breaks longer than ``max(1 s, 500 samples)``.
    """
    if stream.effective_srate:
        return float(stream.effective_srate)
    ts = stream.timestamps
    if len(ts) < 2:
        return 0.0
    srate = stream.spec.nominal_srate
    limit = max(1.0, 500.0 / srate) if srate > 0 else np.inf
    steps = np.diff(ts)
    inside = steps[steps <= limit]
    span = float(np.sum(inside))
    return len(inside) / span if span > 0 else 0.0


def stream_facts(
    stream: XdfStream, foreign_offset: float | None = None, mapped: bool = False
) -> dict:
    """JSON-ready facts about one stream of a file (``emoeye info``, the replay header).

    Parameters
    ----------
    stream
        The stream.
    foreign_offset
        Its offset from the common clock when it lies on a foreign one (see
        :func:`foreign_clocks`), else None.
    mapped
        Its Unix-epoch stamps were mapped onto the other streams' LSL clock by the reader.

    Returns
    -------
    dict
        ``stream_id``, ``name``, ``type``, ``channel_count``, ``channel_labels``,
        ``channel_format``, ``nominal_srate``, ``effective_srate``, ``samples``,
        ``first_stamp``, ``last_stamp`` (None when empty), ``clock_offsets`` (count, and the
        first and last offset in seconds), ``clock`` (``"LSL"`` or ``"Unix epoch"``: what the
        file's stamps were on), ``mapped_to_lsl`` (Unix-epoch stamps moved onto the others' LSL
        clock: the first and last stamp are then on the LSL clock),
        ``foreign_clock_offset_s`` (None on the common clock), ``source_id``, ``hostname``;
        ``channels`` and ``srate`` repeat the count and the nominal rate for older readers.
    """
    spec = stream.spec
    n = len(stream)
    offsets = stream.clock_values
    return {
        "stream_id": stream.stream_id,
        "name": spec.name,
        "type": spec.type,
        "channel_count": spec.channel_count,
        "channel_labels": list(spec.channel_labels),
        "channel_format": spec.channel_format,
        "format": spec.channel_format,
        "nominal_srate": spec.nominal_srate,
        "effective_srate": round(effective_rate(stream), 4),
        "samples": n,
        "first_stamp": float(stream.timestamps[0]) if n else None,
        "last_stamp": float(stream.timestamps[-1]) if n else None,
        "clock_offsets": {
            "count": len(offsets),
            "first_s": float(offsets[0]) if offsets else None,
            "last_s": float(offsets[-1]) if offsets else None,
        },
        "clock": "Unix epoch" if stream.unix_epoch else "LSL",
        "mapped_to_lsl": bool(mapped),
        "foreign_clock_offset_s": None if foreign_offset is None else round(foreign_offset, 3),
        "source_id": spec.source_id,
        "hostname": spec.hostname,
        "channels": spec.channel_count,
        "srate": spec.nominal_srate,
    }


class ProgressSource:
    """Wraps an offline source so that each block reports progress in data seconds.

    Parameters
    ----------
    source
        Any offline source.
    t0
        Data time progress counts from.
    update
        Called with ``block.t_end - t0`` after each block has been consumed.
    """

    def __init__(self, source, t0: float, update) -> None:
        self.source, self.t0, self.update = source, t0, update
        self.streams = source.streams

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """The source's blocks, reporting progress after each."""
        for block in self.source.iter_blocks(block_seconds):
            yield block
            self.update(block.t_end - self.t0)
