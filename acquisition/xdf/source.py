"""An XDF recording as an offline source: blocks of every stream in stream-time order.

:class:`XdfSource` feeds :meth:`acquisition.core.Acquisition.run_offline` (fast replay, dataset
building) and the LSL player (real-time replay) exactly like the simulator does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from acquisition.offline_acquisition import Block
from acquisition.streams import Chunk, StreamSpec
from acquisition.xdf.reader import XdfFile, XdfStream, read_xdf

log = logging.getLogger(__name__)


class XdfSource:
    """An XDF file as an :class:`~acquisition.offline_acquisition.OfflineSource`.

    Parameters
    ----------
    path
        The recording.
    dejitter, synchronize_clocks, handle_clock_resets
        Passed to :func:`acquisition.xdf.reader.read_xdf`.
    participant
        Participant id; by default the file header's ``<participant>`` if any.

    Attributes
    ----------
    streams
        One :class:`StreamSpec` per stream in the file (empty streams included).
    warnings
        What was wrong with the file (see :func:`read_xdf`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        dejitter: bool = True,
        synchronize_clocks: bool = True,
        handle_clock_resets: bool = True,
        participant: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.file: XdfFile = read_xdf(
            self.path,
            synchronize_clocks=synchronize_clocks,
            dejitter=dejitter,
            handle_clock_resets=handle_clock_resets,
        )
        self.streams: list[StreamSpec] = [s.spec for s in self.file.streams]
        self.warnings: list[str] = self.file.warnings
        self.unix_epoch_keys = {s.spec.key for s in self.file.streams if s.unix_epoch}
        """Streams stamped in Unix-epoch seconds in the file: a real-time replay stamps them so
        again, as the device did (offline blocks carry them on the common clock)."""
        header_participant = self.file.header_value("participant")
        self.participant = participant or header_participant or None

    @property
    def xdf_streams(self) -> list[XdfStream]:
        """The file's streams with their data."""
        return self.file.streams

    @property
    def t_start(self) -> float:
        """First timestamp of any stream (NaN when the file holds no samples)."""
        firsts = [s.timestamps[0] for s in self.file.streams if len(s)]
        return float(min(firsts)) if firsts else float("nan")

    @property
    def t_stop(self) -> float:
        """Last timestamp of any stream (NaN when the file holds no samples)."""
        lasts = [s.timestamps[-1] for s in self.file.streams if len(s)]
        return float(max(lasts)) if lasts else float("nan")

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample (0 when empty)."""
        d = self.t_stop - self.t_start
        return float(d) if np.isfinite(d) else 0.0

    @property
    def n_samples(self) -> int:
        """Samples in the file, all streams."""
        return sum(len(s) for s in self.file.streams)

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """Blocks of ``block_seconds`` of data time, every stream's samples with ``t < t_end``.

        Stretches where no stream has data (a long pause, a clock reset) are skipped in one
        step rather than walked through block by block.
        """
        if block_seconds <= 0:
            raise ValueError("block_seconds must be > 0")
        streams = [s for s in self.file.streams if len(s)]
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
        """JSON-ready facts about the file."""
        return {
            "path": str(self.path),
            "duration_s": round(self.duration, 3),
            "participant": self.participant,
            "streams": [
                {
                    "name": s.spec.name,
                    "type": s.spec.type,
                    "channels": s.spec.channel_count,
                    "srate": s.spec.nominal_srate,
                    "format": s.spec.channel_format,
                    "samples": len(s),
                    "effective_srate": round(s.effective_srate, 3),
                }
                for s in self.file.streams
            ],
            "warnings": list(self.warnings),
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
