"""Real-time LSL playback of any offline source (simulation, XDF replay): one outlet per stream,
with the source's names, types, channel labels, rates and source ids.

Data time is mapped onto the LSL clock at start (``local = t0 + (t - origin) / speed``), so the
original spacing of every sample is kept. Each block is pushed whole, with explicit per-sample
timestamps, once the wall clock reaches the block's end: no per-sample sleeping, and a consumer
never sees a sample before its time. Streams the source flags as Unix-epoch (the Empatica E4 app
stamps that way) are stamped on ``time.time()``'s base instead of ``pylsl.local_clock()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
import pylsl

from acquisition.offline_acquisition import Block, OfflineSource
from acquisition.streams import StreamSpec

log = logging.getLogger(__name__)

_FORMATS = {
    "float32": pylsl.cf_float32,
    "double64": pylsl.cf_double64,
    "int32": pylsl.cf_int32,
    "int16": pylsl.cf_int16,
    "int8": pylsl.cf_int8,
    "int64": pylsl.cf_int64,
    "string": pylsl.cf_string,
}


def make_outlet(spec: StreamSpec, max_buffered: int = 360) -> pylsl.StreamOutlet:
    """An outlet announcing ``spec``: name, type, channels, rate, format, source id, and in its
    description the channel labels (``channels/channel/label``) and the manufacturer."""
    info = pylsl.StreamInfo(
        spec.name,
        spec.type,
        spec.channel_count,
        spec.nominal_srate,
        _FORMATS.get(spec.channel_format, pylsl.cf_float32),
        spec.source_id,
    )
    desc = info.desc()
    if spec.channel_labels:
        channels = desc.append_child("channels")
        for label in spec.channel_labels:
            channels.append_child("channel").append_child_value("label", label)
    if spec.manufacturer:
        desc.append_child_value("manufacturer", spec.manufacturer)
    return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=max_buffered)


class LslPlayer:
    """Plays an offline source over LSL in real time, from a background thread.

    Parameters
    ----------
    source
        Any :class:`~acquisition.offline_acquisition.OfflineSource`. Keys listed in its optional
        ``unix_epoch_keys`` are stamped in Unix-epoch seconds; its optional ``start_time`` is the
        data time mapped onto the start instant.
    speed
        Playback speed: 2 plays twice as fast (timestamps compressed the same way).
    block_seconds
        Data time per block pushed; the latency a consumer sees is at most this / speed.
    wait_consumers
        Before starting the clock, wait up to this many seconds until every outlet has a
        consumer (tests use it so that no sample is pushed before the inlets listen).
    max_buffered
        Seconds of data each outlet keeps for a slow consumer.

    Attributes
    ----------
    outlets
        Stream key → outlet (created at construction so consumers can resolve them early).
    samples_pushed
        Stream key → samples pushed so far.
    samples_paused
        Stream key → samples withheld by :meth:`pause_stream`.
    error
        The exception that ended the playback thread, if any.
    """

    def __init__(
        self,
        source: OfflineSource,
        speed: float = 1.0,
        block_seconds: float = 0.1,
        wait_consumers: float = 0.0,
        max_buffered: int = 360,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.source = source
        self.speed = float(speed)
        self.block_seconds = float(block_seconds)
        self.wait_consumers = float(wait_consumers)
        self.streams = list(source.streams)
        self.unix_epoch_keys = set(getattr(source, "unix_epoch_keys", ()))
        self.outlets = {s.key: make_outlet(s, max_buffered) for s in self.streams}
        self.samples_pushed = {s.key: 0 for s in self.streams}
        self.samples_paused = {s.key: 0 for s in self.streams}
        self.error: BaseException | None = None
        self.t0_local = float("nan")
        self.t0_unix = float("nan")
        self.origin = getattr(source, "start_time", None)
        self._paused: dict[str, float] = {}
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> LslPlayer:
        """Start playing in a background thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("player already started")
        self._thread = threading.Thread(target=self._run, name="lsl-player", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the playback thread to stop (returns at once; see :meth:`join`)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for playback to end; True when it has. Re-raises the thread's error."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise RuntimeError(f"LSL playback failed: {self.error}") from self.error
        return not self.running

    @property
    def running(self) -> bool:
        """True while the playback thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def is_alive(self) -> bool:
        """Same as :attr:`running` (the ``threading.Thread`` spelling)."""
        return self.running

    def wait_started(self, timeout: float | None = None) -> bool:
        """Wait until the clock has started (after any wait for consumers)."""
        return self._started.wait(timeout)

    def close(self) -> None:
        """Stop, wait for the thread, and destroy the outlets (delete inlets on them first)."""
        self.stop()
        if self._thread is not None:
            self._thread.join(5.0)
        self.outlets.clear()

    def __enter__(self) -> LslPlayer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_for_consumers(self, timeout: float) -> bool:
        """Wait until every outlet has at least one consumer; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            if all(o.have_consumers() for o in self.outlets.values()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return False

    def pause_stream(self, key: str, seconds: float) -> None:
        """Withhold a stream's samples for the next ``seconds`` of wall time (a dead device):
        they are never pushed, so consumers see a gap."""
        if key not in self.outlets:
            raise KeyError(f"no stream {key!r} in this player")
        self._paused[key] = pylsl.local_clock() + seconds

    # ------------------------------------------------------------------ clock

    def to_local(self, t: np.ndarray | float, key: str | None = None) -> np.ndarray | float:
        """Data time → the timestamps pushed for stream ``key`` (LSL clock, or Unix-epoch
        seconds for Unix-epoch streams)."""
        base = self.t0_unix if key in self.unix_epoch_keys else self.t0_local
        return base + (t - self.origin) / self.speed

    # ------------------------------------------------------------------ playback

    def _run(self) -> None:
        try:
            if self.wait_consumers > 0 and not self.wait_for_consumers(self.wait_consumers):
                log.warning("LSL player: not every outlet has a consumer; starting anyway")
            self._play(iter(self.source.iter_blocks(self.block_seconds)))
        except BaseException as exc:  # reported through join(), never lost silently
            self.error = exc
            log.exception("LSL playback failed")

    def _play(self, blocks: Iterator[Block]) -> None:
        first = next(blocks, None)
        if first is None:
            return
        if self.origin is None:
            stamps = [c.timestamps[0] for c in first.chunks if len(c)]
            self.origin = min(stamps) if stamps else first.t_end - self.block_seconds
        # One instant read on both clocks, so Unix-epoch streams line up with the others.
        self.t0_local = pylsl.local_clock()
        self.t0_unix = time.time()
        self._started.set()
        block: Block | None = first
        while block is not None and not self._stop.is_set():
            due = self.to_local(block.t_end)
            wait = due - pylsl.local_clock()
            if wait > 0 and self._stop.wait(wait):
                break
            self._push(block)
            block = next(blocks, None)

    def _push(self, block: Block) -> None:
        now = pylsl.local_clock()
        for chunk in block.chunks:
            key = chunk.stream.key
            ts = self.to_local(np.asarray(chunk.timestamps, np.float64), key)
            values = chunk.values
            paused_until = self._paused.get(key)
            if paused_until is not None:
                if now < paused_until:
                    self.samples_paused[key] += len(ts)
                    continue
                del self._paused[key]
            if chunk.stream.is_string:
                values = [[str(v) for v in row] for row in values]
            self.outlets[key].push_chunk(values, timestamp=ts.tolist())
            self.samples_pushed[key] += len(ts)
