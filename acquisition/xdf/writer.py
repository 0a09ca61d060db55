"""A crash-safe XDF writer.

LabRecorder writes chunks without flushing and the stream footers only at shutdown, so a crash
leaves a file with unflushed data and no footer. This writer flushes at least every
``flush_seconds`` of wall time, writes a Boundary chunk every ``boundary_seconds`` of data (or
``boundary_bytes``) so readers can resynchronise after damage, writes clock offsets as it goes,
and writes the footers on :meth:`XdfWriter.close`. Files read back with ``pyxdf.load_xdf`` and
with :func:`acquisition.xdf.reader.read_xdf`; a file cut off at any byte still reads up to the
cut.

:func:`record_simulation` writes any offline source (the simulator) to XDF as fast as the disk
allows: numeric samples are serialised with one structured numpy array per chunk.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import struct
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from acquisition.streams import StreamSpec
from acquisition.xdf.reader import (
    BOUNDARY,
    MAGIC,
    NUMERIC_DTYPES,
    TAG_BOUNDARY,
    TAG_CLOCK_OFFSET,
    TAG_FILE_HEADER,
    TAG_FOOTER,
    TAG_SAMPLES,
    TAG_STREAM_HEADER,
)

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_CLOCK = struct.Struct("<Idd")


def varlen(n: int) -> bytes:
    """XDF's variable-length integer: a width byte (1, 4 or 8) then the little-endian value."""
    if n < 0:
        raise ValueError("negative length")
    if n < 256:
        return bytes((1, n))
    if n < 2**32:
        return b"\x04" + _U32.pack(n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes | bytearray | memoryview) -> bytes:
    return varlen(len(content) + 2) + _U16.pack(tag) + bytes(content)


def stream_header_xml(spec: StreamSpec, created_at: float = 0.0, session_id: str = "") -> str:
    """The ``<info>`` XML of a stream header for ``spec`` (LSL's layout, channel labels in desc)."""

    def el(tag: str, value: object) -> str:
        return f"<{tag}>{escape(str(value))}</{tag}>"

    channels = "".join(f"<channel>{el('label', lab)}</channel>" for lab in spec.channel_labels)
    desc = (el("manufacturer", spec.manufacturer) if spec.manufacturer else "") + (
        f"<channels>{channels}</channels>" if channels else ""
    )
    return (
        '<?xml version="1.0"?><info>'
        + el("name", spec.name)
        + el("type", spec.type)
        + el("channel_count", spec.channel_count)
        + el("nominal_srate", repr(float(spec.nominal_srate)))
        + el("channel_format", spec.channel_format)
        + el("source_id", spec.source_id)
        + el("version", "1.1")
        + el("created_at", repr(float(created_at)))
        + el("uid", spec.uid or str(uuid.uuid4()))
        + el("session_id", session_id or "default")
        + el("hostname", spec.hostname or os.uname().nodename)
        + (f"<desc>{desc}</desc>" if desc else "<desc />")
        + "</info>"
    )


class _StreamState:
    def __init__(self, sid: int, spec: StreamSpec) -> None:
        self.sid = sid
        self.spec = spec
        self.first = np.nan
        self.last = np.nan
        self.count = 0
        self.offsets: list[tuple[float, float]] = []
        self.prefix = _U32.pack(sid)
        if not spec.is_string:
            self.dtype = np.dtype(
                [
                    ("flag", "u1"),
                    ("ts", "<f8"),
                    ("v", NUMERIC_DTYPES[spec.channel_format], (spec.channel_count,)),
                ],
                align=False,
            )


class XdfWriter:
    """Writes one XDF file, crash-safe.

    Parameters
    ----------
    path
        The file to write (created or truncated).
    metadata
        Extra file-header fields (e.g. ``{"participant": "P01"}``); values are written as text.
    flush_seconds
        Flush to the operating system at least this often (wall clock).
    boundary_seconds, boundary_bytes
        Write a Boundary chunk after this much data time or this many bytes.
    fsync
        Also ``os.fsync`` on each flush (survives power loss, costs disk time).

    Examples
    --------
    >>> with XdfWriter("out.xdf") as w:  # doctest: +SKIP
    ...     sid = w.add_stream(spec)
    ...     w.write_samples(sid, timestamps, values)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        metadata: dict[str, object] | None = None,
        flush_seconds: float = 1.0,
        boundary_seconds: float = 1.0,
        boundary_bytes: int = 4 << 20,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path)
        self._f: io.BufferedWriter | None = open(  # noqa: SIM115 - closed by close()
            self.path, "wb", buffering=1 << 20
        )
        self.flush_seconds = flush_seconds
        self.boundary_seconds = boundary_seconds
        self.boundary_bytes = boundary_bytes
        self.fsync = fsync
        self._streams: dict[int, _StreamState] = {}
        self._last_flush = time.monotonic()
        self._since_boundary = 0
        self._boundary_t = -np.inf
        self.bytes_written = 0
        fields = {
            "version": "1.0",
            "datetime": _dt.datetime.now(_dt.UTC).isoformat(),
            "writer": "emoeye",
        }
        fields.update({k: str(v) for k, v in (metadata or {}).items() if v is not None})
        xml = (
            '<?xml version="1.0"?><info>'
            + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
            + "</info>"
        )
        self._write(MAGIC + _chunk(TAG_FILE_HEADER, xml.encode()))
        self.flush()

    # -- writing -------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._f is None:
            raise ValueError(f"XDF writer for {self.path} is closed")
        self._f.write(data)
        self.bytes_written += len(data)
        self._since_boundary += len(data)

    def add_stream(
        self,
        spec: StreamSpec,
        header_xml: str | None = None,
        stream_id: int | None = None,
        created_at: float = 0.0,
    ) -> int:
        """Declare a stream; returns its id. ``header_xml`` overrides the generated ``<info>``
        (e.g. a live stream's full ``info.as_xml()``)."""
        sid = stream_id if stream_id is not None else len(self._streams) + 1
        if sid in self._streams:
            raise ValueError(f"stream id {sid} already used")
        self._streams[sid] = _StreamState(sid, spec)
        xml = header_xml or stream_header_xml(spec, created_at)
        self._write(_chunk(TAG_STREAM_HEADER, _U32.pack(sid) + xml.encode()))
        self._maybe_flush()
        return sid

    def write_samples(self, stream_id: int, timestamps: np.ndarray, values: np.ndarray) -> None:
        """Append samples of a stream: ``timestamps`` (n,), ``values`` (n, channels)."""
        st = self._streams[stream_id]
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        n = len(ts)
        if n == 0:
            return
        nch = st.spec.channel_count
        if st.spec.is_string:
            parts = [st.prefix, varlen(n)]
            vals = np.asarray(values, dtype=object).reshape(n, nch)
            packed_ts = ts.astype("<f8").tobytes()
            for k in range(n):
                parts.append(b"\x08" + packed_ts[8 * k : 8 * k + 8])
                for c in range(nch):
                    raw = str(vals[k, c]).encode("utf-8")
                    parts.append(varlen(len(raw)) + raw)
            content = b"".join(parts)
        else:
            rec = np.empty(n, dtype=st.dtype)
            rec["flag"] = 8
            rec["ts"] = ts
            rec["v"] = np.asarray(values).reshape(n, nch)
            content = st.prefix + varlen(n) + rec.tobytes()
        self._write(_chunk(TAG_SAMPLES, content))
        if st.count == 0:
            st.first = float(ts[0])
        st.last = float(ts[-1])
        st.count += n
        t_newest = float(ts[-1])
        if (
            self._since_boundary >= self.boundary_bytes
            or t_newest - self._boundary_t >= self.boundary_seconds
        ):
            if np.isfinite(self._boundary_t) or self._since_boundary >= self.boundary_bytes:
                self.write_boundary()
            self._boundary_t = t_newest
        self._maybe_flush()

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Record a clock offset measurement (remote clock + offset = local clock)."""
        st = self._streams[stream_id]
        st.offsets.append((float(collection_time), float(offset)))
        self._write(_chunk(TAG_CLOCK_OFFSET, _CLOCK.pack(stream_id, collection_time, offset)))
        self._maybe_flush()

    def write_boundary(self) -> None:
        """A Boundary chunk: readers resume here after damaged bytes."""
        self._write(_chunk(TAG_BOUNDARY, BOUNDARY))
        self._since_boundary = 0

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Push buffered bytes to the operating system (and the disk with ``fsync``)."""
        if self._f is None:
            return
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write a boundary and every stream's footer, then close the file."""
        if self._f is None:
            return
        self.write_boundary()
        for st in self._streams.values():
            offsets = "".join(
                f"<offset><time>{t!r}</time><value>{v!r}</value></offset>" for t, v in st.offsets
            )
            first = st.first if st.count else 0.0
            last = st.last if st.count else 0.0
            xml = (
                '<?xml version="1.0"?><info><writer>emoeye</writer>'
                f"<first_timestamp>{first!r}</first_timestamp>"
                f"<last_timestamp>{last!r}</last_timestamp>"
                f"<sample_count>{st.count}</sample_count>"
                f"<clock_offsets>{offsets}</clock_offsets></info>"
            )
            self._write(_chunk(TAG_FOOTER, st.prefix + xml.encode()))
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self._f.close()
        self._f = None

    def __enter__(self) -> XdfWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def sample_counts(self) -> dict[int, int]:
        """Samples written per stream id."""
        return {sid: st.count for sid, st in self._streams.items()}


def _source_metadata(source) -> dict[str, object]:
    meta: dict[str, object] = {}
    for attr in ("participant", "seed", "device_set"):
        value = getattr(source, attr, None)
        if value is None:
            value = getattr(getattr(source, "config", None), attr, None)
        if value is not None and not callable(value):
            meta[attr] = value
    # Participants run one after another (the simulator): "P01@t0;P02@t1" in data time.
    n = getattr(getattr(source, "config", None), "participants", None)
    span = getattr(source, "participant_seconds", None)
    pid = getattr(source, "participant_id", None)
    if isinstance(n, int) and span and callable(pid):
        start = float(getattr(source, "start_time", 0.0))
        meta["participant_schedule"] = ";".join(f"{pid(i)}@{start + i * span!r}" for i in range(n))
        if n == 1:
            meta.setdefault("participant", pid(0))
    return meta


def record_simulation(
    source,
    path: str | os.PathLike,
    progress: bool = True,
    block_seconds: float = 1.0,
    clock_offset_every: float = 5.0,
    metadata: dict[str, object] | None = None,
) -> dict:
    """Write an offline source (e.g. :class:`acquisition.sim.simulator.Simulation`) to an XDF file.

    Parameters
    ----------
    source
        An offline source: ``.streams`` (list of StreamSpec) and ``.iter_blocks(seconds)``.
    path
        The ``.xdf`` file to write.
    progress
        Show a progress bar (rich) on stderr.
    block_seconds
        Data time per sample chunk.
    clock_offset_every
        Data seconds between clock offset chunks (value 0: one clock, like a single machine).
    metadata
        Extra file-header fields; the source's ``participant``/``seed``/``device_set`` are added
        when it has them.

    Returns
    -------
    dict
        ``path``, ``bytes``, ``seconds`` (data time written), ``wall_s`` and ``samples`` per
        stream name.
    """
    started = time.perf_counter()
    meta = {**_source_metadata(source), **(metadata or {})}
    total = getattr(source, "duration", None)
    if callable(total):
        total = total()
    streams: list[StreamSpec] = list(source.streams)
    with XdfWriter(path, metadata=meta) as writer:
        ids = {spec.key: writer.add_stream(spec) for spec in streams}
        next_offset: dict[int, float] = {}
        t_first = None
        t_end = None

        def run(update=None) -> None:
            nonlocal t_first, t_end
            for block in source.iter_blocks(block_seconds):
                for chunk in block.chunks:
                    sid = ids.get(chunk.stream.key)
                    if sid is None:
                        sid = ids[chunk.stream.key] = writer.add_stream(chunk.stream)
                    if len(chunk) == 0:
                        continue
                    if t_first is None:
                        t_first = float(chunk.timestamps[0])
                    writer.write_samples(sid, chunk.timestamps, chunk.values)
                t_end = block.t_end
                for sid in ids.values():
                    due = next_offset.get(sid, -np.inf)
                    if t_end >= due:
                        writer.write_clock_offset(sid, t_end, 0.0)
                        next_offset[sid] = t_end + clock_offset_every
                if update is not None and t_first is not None:
                    update(t_end - t_first)

        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn("recording [bold]{task.description}"),
                BarColumn(),
                TextColumn(
                    "{task.completed:.0f}/{task.total:.0f} s" if total else "{task.completed:.0f} s"
                ),
                TimeRemainingColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task(Path(path).name, total=float(total) if total else None)
                run(lambda done: bar.update(task, completed=done))
        else:
            run()
        counts = {s.spec.name: s.count for s in writer._streams.values()}
    return {
        "path": str(path),
        "bytes": Path(path).stat().st_size,
        "seconds": (t_end - t_first) if t_first is not None and t_end is not None else 0.0,
        "wall_s": round(time.perf_counter() - started, 3),
        "samples": counts,
    }


def write_streams(
    path: str | os.PathLike,
    data: Iterable[tuple[StreamSpec, np.ndarray, np.ndarray]],
    metadata: dict[str, object] | None = None,
    chunk_seconds: float = 1.0,
) -> None:
    """Write whole streams ``(spec, timestamps, values)`` to an XDF file (tests, conversions)."""
    data = list(data)
    with XdfWriter(path, metadata=metadata) as w:
        ids = [w.add_stream(spec) for spec, _, _ in data]
        starts = [ts[0] for _, ts, _ in data if len(ts)]
        t0 = min(starts) if starts else 0.0
        pieces = []  # (first timestamp, stream index, start, stop): chunks in time order
        for i, (_, ts, _) in enumerate(data):
            if not len(ts):
                continue
            bins = np.floor((np.asarray(ts) - t0) / chunk_seconds)
            cuts = np.concatenate([[0], np.flatnonzero(np.diff(bins)) + 1, [len(ts)]])
            pieces += [(ts[a], i, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        for sid, (_, ts, _) in zip(ids, data, strict=True):
            w.write_clock_offset(sid, float(ts[0]) if len(ts) else 0.0, 0.0)
        for _, i, a, b in sorted(pieces, key=lambda p: (p[0], p[1])):
            _, ts, vals = data[i]
            w.write_samples(ids[i], ts[a:b], vals[a:b])
