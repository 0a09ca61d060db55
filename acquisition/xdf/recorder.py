"""Recording live LSL streams of a session to XDF.

Two back ends:

* ``"emoeye"`` (default): our inlets and :class:`acquisition.xdf.writer.XdfWriter`, flushed every
  second with boundary chunks and clock offsets as it goes, so a crash or ``kill -9`` keeps all
  but the last second; needs only pylsl. Streams can be added while it records
  (:meth:`Recorder.add`), and its inlets are connected when :meth:`Recorder.start` returns.
* ``"labrecorder"``: the ``labrecorder`` package, LabRecorder's own recording engine (install
  with ``pip install 'emoeye[record]'``). It records exactly as LabRecorder does, but it writes
  through an unflushed buffer and its footers only on stop: a crash loses the whole file. It
  also starts pulling only after a few seconds, and cannot add streams once started.

Both record the streams' full metadata and raw timestamps plus clock offsets, so a recording
replays (``emoeye replay``) on the same clock the live session saw.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("labrecorder", "emoeye", "auto")

LABRECORDER_PULL_S = 0.5
"""Seconds between two pulls of LabRecorder's engine from each of its inlets."""


class RecordingError(RuntimeError):
    """A recording cannot start (nothing to record, or the back end is unavailable)."""


class RecorderUnavailable(RecordingError):
    """The chosen recording back end cannot be used here; the message says what to install."""


def labrecorder_available() -> bool:
    """True when the ``labrecorder`` package imports."""
    try:
        import labrecorder  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means unavailable
        return False
    return True


def _resolve(source_ids: list[str] | None, timeout: float) -> list:
    import pylsl

    if source_ids is None:
        return list(pylsl.resolve_streams(wait_time=timeout))
    infos = []
    for sid in source_ids:
        found = pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=timeout)
        if not found:
            raise RuntimeError(f"no LSL stream with source_id {sid!r} found in {timeout:g} s")
        infos.append(found[0])
    return infos


class Recorder:
    """Records live LSL streams to an XDF file.

    Parameters
    ----------
    path
        The ``.xdf`` file to write (an existing file is replaced).
    streams
        What to record: ``pylsl.StreamInfo`` objects, or None for every stream visible (minus
        our own ``EmoEye-`` prediction outlets unless ``include_own``).
    source_ids
        Alternatively, the source ids to resolve and record.
    backend
        ``"labrecorder"``, ``"emoeye"`` (see the module docs) or ``"auto"`` (LabRecorder's engine
        where the package is installed, else ours).
    resolve_timeout
        Seconds to look for streams.
    include_own
        Also record our prediction outlets.

    Examples
    --------
    >>> with Recorder("session.xdf", source_ids=["gazepoint-1", "markers-1"]):  # doctest: +SKIP
    ...     run_the_session()
    """

    def __init__(
        self,
        path: str | os.PathLike,
        streams: list | None = None,
        source_ids: list[str] | None = None,
        backend: str = "emoeye",
        resolve_timeout: float = 2.0,
        include_own: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown recorder backend {backend!r} (known: {', '.join(BACKENDS)})")
        if backend == "auto":
            backend = "labrecorder" if labrecorder_available() else "emoeye"
        if backend == "labrecorder" and not labrecorder_available():
            raise RecorderUnavailable(
                "live XDF recording through LabRecorder needs the 'labrecorder' package, which is "
                "not installed here: pip install 'emoeye[record]' (or labrecorder), or record with "
                "backend='emoeye' (our own crash-safe writer, pylsl only)"
            )
        self.path = Path(path)
        self.backend = backend
        self._streams = streams
        self._source_ids = source_ids
        self.resolve_timeout = resolve_timeout
        self.include_own = include_own
        self._rec = None
        self._live: _LiveWriter | None = None
        self.recorded: list[str] = []
        self._uids: set[str] = set()
        self.started_at: float | None = None

    def start(self) -> Recorder:
        """Resolve the streams (if not given) and start recording."""
        if self._rec is not None or self._live is not None:
            raise RuntimeError("recorder already started")
        infos = self._streams
        if infos is None:
            infos = _resolve(self._source_ids, self.resolve_timeout)
            if not self.include_own:
                infos = [i for i in infos if not i.name().startswith("EmoEye-")]
        if not infos and (self.backend != "emoeye" or self._streams is None):
            # Ours may start empty when given an empty list: add() brings the streams.
            raise RecordingError("no LSL streams to record (none visible)")
        unique = {}
        for info in infos:  # a stream can be answered twice (one per network interface)
            unique.setdefault(info.uid(), info)
        infos = list(unique.values())
        self._uids = set(unique)
        self.recorded = [i.name() for i in infos]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        if self.backend == "labrecorder":
            import labrecorder

            self._rec = labrecorder.Recording(str(self.path), [i.as_xml() for i in infos])
        else:
            self._live = _LiveWriter(self.path, infos)
            self._live.start()
        self.started_at = time.monotonic()
        log.info("recording %s to %s (%s)", ", ".join(self.recorded), self.path, self.backend)
        return self

    def add(self, info) -> bool:
        """Record one more stream from now on (a device that appeared after the start).

        Returns False when it is already recorded or the back end cannot add streams
        (LabRecorder's engine: a warning says so).
        """
        if info.uid() in self._uids:
            return False
        if self._live is None:
            log.warning(
                "%s appeared after the recording started; LabRecorder's engine cannot add it "
                "(record with the default 'emoeye' back end to keep it)",
                info.name(),
            )
            return False
        self._uids.add(info.uid())
        self.recorded.append(info.name())
        self._live.add(info)
        return True

    def stop(self) -> dict:
        """Stop, write the footers and close the file; returns a summary.

        Samples that arrived before the call are in the file: with the LabRecorder back end it
        first waits one pull interval (:func:`_let_labrecorder_pull`).
        """
        if self._rec is not None:
            _let_labrecorder_pull()
            rec, self._rec = self._rec, None
            rec.stop()
            del rec  # the destructor joins LabRecorder's threads and closes the file
        elif self._live is not None:
            live, self._live = self._live, None
            live.stop()
        else:
            raise RuntimeError("recorder not started")
        seconds = time.monotonic() - (self.started_at or time.monotonic())
        return {
            "path": str(self.path),
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
            "seconds": round(seconds, 2),
            "streams": list(self.recorded),
            "backend": self.backend,
        }

    @property
    def recording(self) -> bool:
        """True between start() and stop()."""
        return self._rec is not None or self._live is not None

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.recording:
            self.stop()


def _let_labrecorder_pull(margin: float = 0.1) -> None:
    """Wait until LabRecorder's engine has pulled once more from every inlet.

    Its transfer threads pull every :data:`LABRECORDER_PULL_S` seconds and, once told to stop,
    end without a last pull: whatever arrived since the previous pull (up to half a second of
    every stream, e.g. the samples just before a Ctrl-C) would be missing from the file, with
    nothing to say so. Waiting one interval (plus ``margin``) before stopping lets it take them.

    Parameters
    ----------
    margin
        Seconds added to the pull interval (thread wake-up, the pull itself).
    """
    time.sleep(LABRECORDER_PULL_S + margin)


class _LiveWriter:
    """Our own live recorder: one inlet per stream, one writer thread, crash-safe file."""

    def __init__(self, path: Path, infos: list, offset_every: float = 5.0) -> None:
        import pylsl

        from acquisition.xdf.writer import XdfWriter

        # One instant on both clocks: lets the reader map Unix-epoch streams exactly.
        pair = f"{pylsl.local_clock()!r} {time.time()!r}"
        self.writer = XdfWriter(path, metadata={"recorder": "emoeye", "clock_pair": pair})
        self.infos = infos
        self.offset_every = offset_every
        self.inlets: list = []
        """(inlet, spec, stream id) of every stream recorded; only ever appended to."""
        self._added: deque = deque()  # infos from add(), opened by the writer thread
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xdf-recorder", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        """Connect every inlet (their data flows from now on), then start writing."""
        try:
            for info in self.infos:
                self._open(info)
        except BaseException:
            self._close()
            raise
        self._thread.start()

    def add(self, info) -> None:
        """Record ``info``'s stream too (opened by the writer thread)."""
        self._added.append(info)

    def _open(self, info) -> None:
        import pylsl

        from acquisition.lsl.live import spec_from_info

        inlet = pylsl.StreamInlet(info, max_buflen=360, recover=True)
        full = inlet.info(timeout=5.0)
        inlet.open_stream(timeout=5.0)
        spec = spec_from_info(full)
        sid = self.writer.add_stream(spec, header_xml=full.as_xml())
        self.inlets.append((inlet, spec, sid))

    def _pull(self, inlet, spec, sid: int, max_samples: int = 8192) -> bool:
        values, stamps = inlet.pull_chunk(timeout=0.0, max_samples=max_samples)
        if stamps:
            vals = np.asarray(values, dtype=object if spec.is_string else None)
            self.writer.write_samples(sid, np.asarray(stamps), vals)
        return bool(stamps)

    def _run(self) -> None:
        offsets: list[tuple[int, float, float]] = []
        try:
            probe = threading.Thread(
                target=self._measure_offsets,
                args=(self.inlets, offsets),
                name="xdf-offsets",
                daemon=True,
            )
            probe.start()
            while not self._halt.is_set():
                while self._added:
                    info = self._added.popleft()
                    try:
                        self._open(info)
                    except Exception as exc:  # a stream gone again keeps the rest recording
                        log.error("cannot record %s: %s", info.name(), exc)
                got = False
                for inlet, spec, sid in list(self.inlets):
                    got = self._pull(inlet, spec, sid) or got
                while offsets:
                    self.writer.write_clock_offset(*offsets.pop(0))
                if not got:
                    time.sleep(0.01)
                self.writer._maybe_flush()
            probe.join(timeout=5.0)
            while offsets:
                self.writer.write_clock_offset(*offsets.pop(0))
            for inlet, spec, sid in self.inlets:  # drain what arrived before stop
                self._pull(inlet, spec, sid, 1 << 20)
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self.error = exc
            log.error("recorder stopped: %s", exc)
        finally:
            self._close()

    def _close(self) -> None:
        for inlet, _, _ in self.inlets:
            with contextlib.suppress(Exception):
                inlet.close_stream()
        self.inlets.clear()  # inlets go before outlets (liblsl)
        self.writer.close()

    def _measure_offsets(self, inlets: list, out: list) -> None:
        """Clock offsets of every inlet every ``offset_every`` s (own thread: they can block)."""
        import pylsl

        while True:
            for inlet, spec, sid in list(inlets):
                try:
                    value = inlet.time_correction(timeout=2.0)
                    out.append((sid, pylsl.local_clock(), value))
                except Exception as exc:  # noqa: BLE001 - a lost stream keeps the rest
                    log.warning("clock offset of %s unavailable: %s", spec.name, exc)
            if self._halt.wait(self.offset_every):
                return

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(timeout=15.0)
        if self.error is not None:
            raise RuntimeError(f"recording failed: {self.error}") from self.error
