"""A fast, tolerant XDF reader.

Reads an XDF file (https://github.com/sccn/xdf) chunk by chunk over a memory map:

* sample chunks whose samples all carry (or all omit) a timestamp are decoded with one
  ``numpy.frombuffer`` each (zero-copy views into the file), so there is no per-sample Python
  loop for numeric streams; mixed chunks and string streams fall back to a per-sample loop;
* clock synchronisation (with clock-reset handling) and jitter removal are pyxdf's own routines
  applied to the parsed timestamps, so timestamps equal ``pyxdf.load_xdf``'s;
* damage never raises once the magic bytes are read: a truncated last chunk keeps its complete
  samples, a missing footer, an unreadable chunk (skipped to the next boundary chunk), empty
  streams, clock resets and out-of-order timestamps are all reported in
  :attr:`XdfFile.warnings` (and logged).
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from acquisition.streams import StreamSpec, shorten

log = logging.getLogger(__name__)

MAGIC = b"XDF:"
BOUNDARY = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
"""The 16-byte signature of a Boundary chunk (tag 5)."""

TAG_FILE_HEADER, TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_BOUNDARY, TAG_FOOTER = (
    1,
    2,
    3,
    4,
    5,
    6,
)
CHUNK_NAMES = {
    TAG_FILE_HEADER: "file header",
    TAG_STREAM_HEADER: "stream header",
    TAG_SAMPLES: "samples",
    TAG_CLOCK_OFFSET: "clock offset",
    TAG_BOUNDARY: "boundary",
    TAG_FOOTER: "stream footer",
}
"""What each chunk tag holds, for messages (a cut inside a stream header loses that stream)."""
NUMERIC_DTYPES = {
    "float32": np.dtype("<f4"),
    "double64": np.dtype("<f8"),
    "int8": np.dtype("<i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_U16 = struct.Struct("<H")


class XdfError(IOError):
    """The file is not XDF at all (no magic bytes) or cannot be opened."""


class _Damage(Exception):
    """Internal: the bytes at a position do not parse."""


class _Truncated(_Damage):
    """Internal: the file ends inside a structure (a recording cut off)."""


@dataclass
class XdfStream:
    """One stream of an XDF file.

    Attributes
    ----------
    stream_id
        The id the file gives the stream.
    spec
        Its metadata as a :class:`StreamSpec`.
    header, footer
        The header's and footer's XML (footer ``None`` when the file has none).
    timestamps
        float64 (n,), synchronised and dejittered as requested, in time order.
    clock_times, clock_values
        The file's clock offset measurements.
    effective_srate
        Measured rate (0 for irregular streams).
    clock_segments
        Index ranges (inclusive) between clock resets, as pyxdf reports them.
    """

    stream_id: int
    spec: StreamSpec
    header: str
    footer: str | None = None
    timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    clock_times: list[float] = field(default_factory=list)
    clock_values: list[float] = field(default_factory=list)
    effective_srate: float = 0.0
    clock_segments: list[tuple[int, int]] = field(default_factory=list)
    unix_epoch: bool = False
    """Stamped in Unix-epoch seconds in the file (mapped onto the others' clock when mixed)."""
    _parts: list[np.ndarray] = field(default_factory=list, repr=False)
    _starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64), repr=False)
    _order: np.ndarray | None = field(default=None, repr=False)
    _raw_ts: list[np.ndarray] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def is_string(self) -> bool:
        """True for string streams."""
        return self.spec.is_string

    def values(self, i0: int = 0, i1: int | None = None, dtype=None) -> np.ndarray:
        """Samples ``[i0, i1)`` as (n, channel_count): float64 (or ``dtype``) or object (str).

        Values stay in the file (memory-mapped) until asked for, so long recordings are not
        held in memory twice.
        """
        n = len(self.timestamps)
        i1 = n if i1 is None else min(i1, n)
        i0 = max(0, min(i0, i1))
        if self._order is not None:  # reordered by time: gather through the permutation
            return self._gather(self._order[i0:i1], dtype)
        out_dtype = object if self.is_string else (dtype or np.float64)
        if i1 <= i0:
            return np.empty((0, self.spec.channel_count), dtype=out_dtype)
        k0 = int(np.searchsorted(self._starts, i0, side="right")) - 1
        k1 = int(np.searchsorted(self._starts, i1, side="left"))
        pieces = []
        for k in range(k0, k1):
            s = self._starts[k]
            a, b = max(i0 - s, 0), min(i1 - s, len(self._parts[k]))
            pieces.append(self._parts[k][a:b])
        if len(pieces) == 1:
            return np.asarray(pieces[0], dtype=out_dtype)
        out = np.empty((i1 - i0, self.spec.channel_count), dtype=out_dtype)
        pos = 0
        for piece in pieces:
            out[pos : pos + len(piece)] = piece
            pos += len(piece)
        return out

    def _gather(self, index: np.ndarray, dtype=None) -> np.ndarray:
        out_dtype = object if self.is_string else (dtype or np.float64)
        out = np.empty((len(index), self.spec.channel_count), dtype=out_dtype)
        part = np.searchsorted(self._starts, index, side="right") - 1
        for k in np.unique(part):
            sel = part == k
            out[sel] = np.asarray(self._parts[k])[index[sel] - self._starts[k]]
        return out


@dataclass
class XdfFile:
    """What :func:`read_xdf` found.

    Attributes
    ----------
    path
        The file read.
    header
        The file header's XML (empty when missing).
    streams
        Every stream declared, in file order (empty ones included).
    warnings
        Everything that was wrong with the file, one sentence each.
    bytes_read, size
        How far the file parsed, and its size.
    """

    path: Path
    header: str
    streams: list[XdfStream]
    warnings: list[str]
    bytes_read: int = 0
    size: int = 0

    def header_value(self, tag: str) -> str | None:
        """Text of a top-level element of the file header (e.g. ``participant``), or None."""
        return _xml_text(self.header, tag)

    def by_name(self, name: str) -> XdfStream:
        """The first stream with this name; KeyError naming the streams otherwise."""
        for s in self.streams:
            if s.spec.name == name:
                return s
        raise KeyError(f"no stream {name!r} in {self.path} ({[s.spec.name for s in self.streams]})")


def _xml_text(xml: str, tag: str) -> str | None:
    try:
        node = ET.fromstring(xml).find(tag)
    except ET.ParseError:
        return None
    return None if node is None else (node.text or "")


def spec_from_header(xml: str) -> StreamSpec:
    """A :class:`StreamSpec` from a stream header's ``<info>`` XML."""
    root = ET.fromstring(xml)

    def text(path: str, default: str = "") -> str:
        node = root.find(path)
        return (node.text or default).strip() if node is not None and node.text else default

    count = int(float(text("channel_count", "1")))
    labels = [(ch.findtext("label") or "").strip() for ch in root.findall("desc/channels/channel")]
    if len(labels) != count or not all(labels):
        labels = []
    return StreamSpec(
        name=text("name"),
        type=text("type"),
        channel_count=count,
        nominal_srate=float(text("nominal_srate", "0") or 0),
        channel_format=text("channel_format", "float32"),
        source_id=text("source_id"),
        channel_labels=tuple(labels),
        uid=text("uid"),
        hostname=text("hostname"),
        manufacturer=text("desc/manufacturer"),
    )


class _Parsing:
    """Per-stream state while the chunks are parsed."""

    def __init__(self, stream: XdfStream) -> None:
        self.stream = stream
        spec = stream.spec
        self.tdiff = 1.0 / spec.nominal_srate if spec.nominal_srate > 0 else 0.0
        self.last_ts = 0.0
        self.count = 0
        if not spec.is_string:
            if spec.channel_format not in NUMERIC_DTYPES:
                raise _Damage(f"unknown channel_format {spec.channel_format!r}")
            self.dtype = NUMERIC_DTYPES[spec.channel_format]
            nch = spec.channel_count
            self.vbytes = nch * self.dtype.itemsize
            self.with_ts = np.dtype(
                [("flag", "u1"), ("ts", "<f8"), ("v", self.dtype, (nch,))], align=False
            )
            self.without_ts = np.dtype([("flag", "u1"), ("v", self.dtype, (nch,))], align=False)

    def add(self, ts: np.ndarray, values: np.ndarray) -> None:
        if len(ts):
            self.stream._raw_ts.append(ts)
            self.stream._parts.append(values)
            self.last_ts = float(ts[-1])
            self.count += len(ts)


def _varlen(buf, pos: int, end: int) -> tuple[int, int]:
    """A variable-length integer at ``pos``: (value, position after it)."""
    if pos >= end:
        raise _Truncated("end of data inside a length field")
    nb = buf[pos]
    if nb == 1:
        if pos + 2 > end:
            raise _Truncated("end of data inside a length field")
        return buf[pos + 1], pos + 2
    if nb == 4:
        if pos + 5 > end:
            raise _Truncated("end of data inside a length field")
        return _U32.unpack_from(buf, pos + 1)[0], pos + 5
    if nb == 8:
        if pos + 9 > end:
            raise _Truncated("end of data inside a length field")
        return _U64.unpack_from(buf, pos + 1)[0], pos + 9
    raise _Damage(f"invalid length-field width {nb}")


def _parse_numeric(buf, pos: int, end: int, n: int, st: _Parsing) -> int:
    """Decode ``n`` numeric samples from ``pos``; returns how many were complete."""
    avail = end - pos
    if n == 0 or avail <= 0:
        return 0
    # Fast paths: every sample stamped (9 + v bytes each) or none (1 + v bytes each). A chunk cut
    # off by the end of the file takes the layout its first sample announces.
    for dt, want in ((st.with_ts, 8), (st.without_ts, 0)):
        size = dt.itemsize
        if avail == n * size or (avail < n * size and buf[pos] == want):
            k = min(n, avail // size)
            if k == 0:
                return 0
            rec = np.frombuffer(buf, dtype=dt, count=k, offset=pos)
            flags = rec["flag"]
            if np.all(flags == want):
                ts = rec["ts"].copy() if want else st.last_ts + st.tdiff * np.arange(1, k + 1)
                st.add(ts, rec["v"])
                return k
            break
    return _parse_numeric_slow(buf, pos, end, n, st)


def _parse_numeric_slow(buf, pos: int, end: int, n: int, st: _Parsing) -> int:
    """Per-sample decoding for chunks mixing stamped and deduced samples."""
    ts = np.empty(n)
    rows = np.empty((n, st.stream.spec.channel_count), dtype=st.dtype)
    last = st.last_ts
    k = 0
    while k < n:
        if pos >= end:
            break
        flag = buf[pos]
        if flag == 8:
            if pos + 9 + st.vbytes > end:
                break
            last = _F64.unpack_from(buf, pos + 1)[0]
            pos += 9
        elif flag == 0:
            if pos + 1 + st.vbytes > end:
                break
            last = last + st.tdiff
            pos += 1
        else:
            st.add(ts[:k], rows[:k])  # keep the samples before the damage
            raise _Damage(f"invalid timestamp flag {flag}")
        ts[k] = last
        rows[k] = np.frombuffer(buf, dtype=st.dtype, count=len(rows[k]), offset=pos)
        pos += st.vbytes
        k += 1
    st.add(ts[:k], rows[:k])
    return k


def _parse_strings(buf, pos: int, end: int, n: int, st: _Parsing) -> int:
    nch = st.stream.spec.channel_count
    ts = np.empty(n)
    rows = np.empty((n, nch), dtype=object)
    last = st.last_ts
    k = 0
    try:
        while k < n:
            if pos >= end:
                break
            flag = buf[pos]
            if flag == 8:
                if pos + 9 > end:
                    break
                t = _F64.unpack_from(buf, pos + 1)[0]
                pos += 9
            elif flag == 0:
                t = last + st.tdiff
                pos += 1
            else:
                raise _Damage(f"invalid timestamp flag {flag}")
            for c in range(nch):
                length, pos = _varlen(buf, pos, end)
                if pos + length > end:
                    raise _Damage("end of data inside a string value")
                rows[k, c] = bytes(buf[pos : pos + length]).decode("utf-8", errors="replace")
                pos += length
            last = t
            ts[k] = t
            k += 1
    except _Damage as exc:
        if pos < end:  # damage in the middle, not just a cut-off tail
            st.add(ts[:k], rows[:k])
            raise _Damage(str(exc)) from None
    st.add(ts[:k], rows[:k])
    return k


def read_xdf(
    path: str | os.PathLike,
    *,
    synchronize_clocks: bool = True,
    dejitter: bool = True,
    handle_clock_resets: bool = True,
) -> XdfFile:
    """Read an XDF file, tolerating damage.

    Parameters
    ----------
    path
        The ``.xdf`` file.
    synchronize_clocks
        Apply the recorded clock offsets (pyxdf's robust fit).
    dejitter
        Replace the timestamps of regular streams by a linear fit per segment (pyxdf's).
    handle_clock_resets
        Detect clock resets in the offsets and fit each segment separately.

    Returns
    -------
    XdfFile
        Streams, metadata and warnings.

    Raises
    ------
    XdfError
        The file cannot be opened or does not start with ``XDF:``.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, the map outlives it
    except OSError as exc:
        raise XdfError(f"cannot open {path}: {exc}") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 4:
            raise XdfError(f"{path} is not an XDF file (only {size} bytes)")
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if buf[:4] != MAGIC:
        raise XdfError(f"{path} is not an XDF file (no 'XDF:' magic bytes)")
    warnings: list[str] = []
    header, streams, parsing, pos = _parse_chunks(buf, size, warnings)
    if not header:
        warnings.append("no file header chunk")
    if not streams:
        warnings.append("the file declares no streams")
    out = XdfFile(path, header, streams, warnings, bytes_read=pos, size=size)
    for st in parsing.values():
        _finish_stream(st.stream)
        _drop_stray_stamps(st.stream, warnings)
    _postprocess(out, synchronize_clocks, dejitter, handle_clock_resets)
    _map_unix_epoch(out)
    for w in warnings:
        log.warning("%s: %s", path.name, w)
    return out


def _parse_chunks(buf, size: int, warnings: list[str]):
    header = ""
    streams: dict[int, XdfStream] = {}
    parsing: dict[int, _Parsing] = {}
    unknown_ids: set[int] = set()
    pos = 4
    while pos < size:
        start = pos
        truncated = False
        try:
            length, body = _varlen(buf, pos, size)
            if length < 2:
                raise _Damage(f"chunk length {length} too small")
            chunk_end = body + length
            truncated = chunk_end > size
            if truncated:
                chunk_end = size
            if body + 2 > chunk_end:
                raise _Truncated("end of data inside a chunk tag")
            tag = _U16.unpack_from(buf, body)[0]
            p = body + 2
            if tag in (TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_FOOTER):
                if p + 4 > chunk_end:
                    raise _Damage("end of data inside a stream id")
                sid = _U32.unpack_from(buf, p)[0]
                p += 4
            if truncated and (tag != TAG_SAMPLES or sid not in parsing):
                warnings.append(
                    f"file ends inside a {CHUNK_NAMES.get(tag, f'tag {tag}')} chunk at byte "
                    f"{start}: the recording was "
                    f"cut off; {size - start} trailing byte(s) ignored"
                )
                pos = size
                break
            if tag == TAG_FILE_HEADER:
                header = bytes(buf[p:chunk_end]).decode("utf-8", errors="replace")
            elif tag == TAG_STREAM_HEADER:
                xml = bytes(buf[p:chunk_end]).decode("utf-8", errors="replace")
                _declare_stream(sid, xml, start, streams, parsing, unknown_ids, warnings)
            elif tag == TAG_SAMPLES:
                st = parsing.get(sid)
                if st is None:
                    if sid not in unknown_ids:
                        unknown_ids.add(sid)
                        # No header declared it: a damaged chunk header far more often than
                        # a writer bug, so say so (the chunk's own length is still used).
                        warnings.append(
                            f"sample chunk at byte {start} names undeclared stream {sid} "
                            f"(damaged chunk header?); its {chunk_end - start} byte(s) skipped"
                        )
                else:
                    n, p = _varlen(buf, p, chunk_end)
                    if st.stream.spec.is_string:
                        got = _parse_strings(buf, p, chunk_end, n, st)
                    else:
                        got = _parse_numeric(buf, p, chunk_end, n, st)
                    if truncated or got < n:
                        warnings.append(
                            f"file ends inside a sample chunk of {_label(sid, st.stream.spec)} "
                            f"at byte {start}: kept {got} of its {n} "
                            "sample(s); the recording was cut off"
                        )
                        pos = size
                        break
            elif tag == TAG_CLOCK_OFFSET:
                if p + 16 > chunk_end:
                    raise _Damage("short clock offset chunk")
                if sid in streams:
                    streams[sid].clock_times.append(_F64.unpack_from(buf, p)[0])
                    streams[sid].clock_values.append(_F64.unpack_from(buf, p + 8)[0])
            elif tag == TAG_FOOTER:
                if sid in streams:
                    streams[sid].footer = bytes(buf[p:chunk_end]).decode("utf-8", errors="replace")
            elif tag != TAG_BOUNDARY:
                warnings.append(f"unknown chunk tag {tag} at byte {start} skipped")
            pos = chunk_end
        except _Damage as exc:
            if truncated or isinstance(exc, _Truncated):
                warnings.append(
                    f"file ends inside a chunk at byte {start} ({exc}): the recording was cut "
                    f"off; {size - start} trailing byte(s) ignored"
                )
                pos = size
                break
            nxt = buf.find(BOUNDARY, start + 1)
            if nxt < 0:
                warnings.append(
                    f"unreadable data at byte {start} ({exc}); no later boundary chunk, "
                    f"{size - start} trailing byte(s) ignored"
                )
                pos = size
                break
            warnings.append(
                f"unreadable data at byte {start} ({exc}); skipped {nxt + 16 - start} byte(s) "
                "to the next boundary chunk"
            )
            pos = nxt + 16
    return header, list(streams.values()), parsing, pos


def _declare_stream(
    sid: int,
    xml: str,
    start: int,
    streams: dict[int, XdfStream],
    parsing: dict[int, _Parsing],
    ignored: set[int],
    warnings: list[str],
) -> None:
    """Register the stream a header chunk declares.

    A header whose XML does not parse leaves its stream out (its id goes to ``ignored``, so its
    samples are skipped without a warning each) instead of skipping to the next boundary chunk:
    the chunk's length still led the parser here, and the other streams' headers follow it
    before any boundary, so one damaged byte in one header no longer loses every stream.

    Parameters
    ----------
    sid, xml, start
        The stream id, the header's XML and the chunk's byte offset.
    streams, parsing
        Streams declared so far and their parsing states (updated).
    ignored
        Ids whose samples are skipped silently (updated).
    warnings
        The file's warnings (appended to).
    """
    try:
        spec = spec_from_header(xml)
    except (ET.ParseError, ValueError) as exc:
        ignored.add(sid)
        warnings.append(
            f"unreadable header of stream {sid} at byte {start} ({exc}): stream left out"
        )
        return
    if sid in streams:
        warnings.append(f"stream {sid} declared twice; the second header is ignored")
        return
    streams[sid] = XdfStream(sid, spec, xml)
    try:
        parsing[sid] = _Parsing(streams[sid])
    except _Damage as exc:
        warnings.append(f"{_label(sid, spec)} cannot be read: {exc}")


def _finish_stream(stream: XdfStream) -> None:
    if stream._raw_ts:
        stream.timestamps = np.concatenate(stream._raw_ts)
        lengths = [len(t) for t in stream._raw_ts]
        stream._starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    else:
        stream.timestamps = np.zeros(0)
        stream._starts = np.zeros(1, np.int64)
    stream._raw_ts = []


def _stray_stamps(ts: np.ndarray) -> np.ndarray:
    """Indices of samples whose timestamp is far out of line with both neighbours.

    Sample ``i`` is stray when its stamp lies outside the span of its two neighbours by more
    than ``max(1 s, 10 x that span)``: the neighbours agree and the sample agrees with neither.
    A recorder never writes that (a stream's samples arrive in order), a damaged byte inside
    an 8-byte timestamp does; left in, the stamp is sorted to an end of the stream and
    stretches a 30-s recording to 1e25 s. The first (last) sample has neighbours on one side
    only: it is stray when it lies that far *after* (*before*) the next (previous) one, out of
    order; far before (after) is a legitimate pause.

    Parameters
    ----------
    ts
        A stream's timestamps in file order.

    Returns
    -------
    numpy.ndarray
        int64 indices into ``ts``, ascending.
    """
    n = len(ts)
    if n < 3:
        return np.zeros(0, np.int64)
    with np.errstate(invalid="ignore"):
        back = np.flatnonzero(ts[1:] < ts[:-1])  # a stray stamp always steps backwards once
    if not len(back):
        return np.zeros(0, np.int64)
    cand = np.union1d(back, back + 1)  # a spike up, or a spike down
    with np.errstate(over="ignore", invalid="ignore"):
        inner = cand[(cand > 0) & (cand < n - 1)]
        prev, cur, nxt = ts[inner - 1], ts[inner], ts[inner + 1]
        lo, hi = np.minimum(prev, nxt), np.maximum(prev, nxt)
        margin = np.maximum(1.0, 10.0 * (hi - lo))
        stray = ((cur < lo - margin) | (cur > hi + margin)) & np.isfinite(cur)
        first = ts[0] > ts[1] + max(1.0, 10.0 * abs(ts[2] - ts[1]))
        last = ts[-1] < ts[-2] - max(1.0, 10.0 * abs(ts[-2] - ts[-3]))
    # NaN and inf are not stray: they are dropped after sync, as unreadable.
    ends = [i for i, out in ((0, first), (n - 1, last)) if out and np.isfinite(ts[i])]
    return np.union1d(inner[stray], ends).astype(np.int64)


def _drop_stray_stamps(stream: XdfStream, warnings: list[str]) -> None:
    """Drop samples with stray timestamps (:func:`_stray_stamps`) before clock sync, and say so.

    Done before synchronisation and jitter removal, which would otherwise fit their lines
    through the corrupt stamp.
    """
    stray = _stray_stamps(stream.timestamps)
    if not len(stray):
        return
    keep = np.setdiff1d(np.arange(len(stream.timestamps)), stray)
    stream._order = keep if stream._order is None else stream._order[keep]
    stream.timestamps = stream.timestamps[keep]
    warnings.append(
        f"{_label(stream.stream_id, stream.spec)}: {len(stray)} sample(s) with a corrupt "
        "timestamp (far out of line with the samples around it) dropped"
    )


def _postprocess(out: XdfFile, sync: bool, dejitter: bool, resets: bool) -> None:
    """Footer checks, clock sync, dejitter, ordering; every finding goes to ``out.warnings``."""
    try:
        from pyxdf import pyxdf as _px
    except ImportError:  # pragma: no cover - pyxdf is a dependency
        _px = None
        if sync or dejitter:
            out.warnings.append(
                "pyxdf is not installed: timestamps are neither synced nor dejittered"
            )
    temp = {}
    headers = {}
    unclosed = [_label(s.stream_id, s.spec) for s in out.streams if s.footer is None]
    if unclosed:
        out.warnings.append(_no_footer_warning(unclosed))
    for s in out.streams:
        name = _label(s.stream_id, s.spec)
        if s.footer is not None:
            declared = _xml_text(s.footer, "sample_count")
            if declared is not None and declared.strip().isdigit() and int(declared) != len(s):
                out.warnings.append(
                    f"{name}: footer declares {int(declared)} sample(s), the file holds {len(s)}"
                )
        if len(s) == 0:
            out.warnings.append(f"{name} is empty (no samples)")
        if _px is None:
            continue
        hdr = _px._xml2dict(ET.fromstring(s.header))
        if s.footer is not None:
            try:
                hdr["footer"] = _px._xml2dict(ET.fromstring(s.footer))
            except ET.ParseError:
                out.warnings.append(f"{name}: unreadable footer XML ignored")
        try:
            t = _px.StreamData(hdr)
        except (KeyError, ValueError) as exc:  # a damaged header (already reported when read)
            out.warnings.append(f"{name}: not synchronised, its header is unusable ({exc!r})")
            continue
        headers[s.stream_id] = hdr
        t.time_stamps = s.timestamps
        t.time_series = np.zeros((len(s), 0))  # values stay in the file; not needed here
        t.clock_times = list(s.clock_times)
        t.clock_values = list(s.clock_values)
        temp[s.stream_id] = t
    if _px is not None and sync:
        try:
            temp = _px._truncate_corrupted_offsets(temp, headers)
        except Exception as exc:  # noqa: BLE001 - report, keep the data
            out.warnings.append(f"clock offset sanity check failed: {exc}")
        try:
            temp = _px._clock_sync(temp, resets)
        except Exception as exc:  # noqa: BLE001
            out.warnings.append(f"clock synchronisation failed ({exc}); raw timestamps kept")
    if _px is not None and dejitter:
        for sid, t in temp.items():
            try:
                _dejitter(t, _px._stream_can_drop_samples(headers.get(sid)))
            except Exception as exc:  # noqa: BLE001
                out.warnings.append(
                    f"stream {sid}: jitter removal failed ({exc}); timestamps not dejittered"
                )
            if (
                t.srate > 0
                and t.effective_srate
                and abs(t.srate - t.effective_srate) > 0.1 * t.srate
            ):
                out.warnings.append(
                    f"stream {sid}: effective rate {t.effective_srate:.4g} Hz differs from the "
                    f"nominal {t.srate:g} Hz by more than 10%"
                )
    for s in out.streams:
        t = temp.get(s.stream_id)
        name = _label(s.stream_id, s.spec)
        if t is not None:
            if len(t.time_stamps) < len(s.timestamps):  # pyxdf truncated a pylsl#67 extra sample
                out.warnings.append(
                    f"{name}: {len(s.timestamps) - len(t.time_stamps)} extra sample(s) with a "
                    "corrupt clock offset dropped (pylsl#67)"
                )
            s.timestamps = np.asarray(t.time_stamps, dtype=np.float64)
            s.clock_times, s.clock_values = list(t.clock_times), list(t.clock_values)
            s.effective_srate = float(t.effective_srate or 0.0)
            s.clock_segments = list(t.clock_segments)
            if sync and resets and len(s.clock_segments) > 1:
                out.warnings.append(
                    f"{name}: {len(s.clock_segments) - 1} clock reset(s) detected and handled "
                    "(each segment synchronised separately)"
                )
        if sync and not s.clock_times and len(s) and len(out.streams) > 1:
            out.warnings.append(f"{name} has no clock offsets: its timestamps are not synchronised")
        ts = s.timestamps
        bad = ~np.isfinite(ts)
        if bad.any():  # corrupted stamps: drop those samples
            out.warnings.append(
                f"{name}: {int(bad.sum())} sample(s) with unreadable timestamps dropped"
            )
            keep = np.flatnonzero(~bad)
            s._order = keep if s._order is None else s._order[keep]
            ts = s.timestamps = ts[keep]
        if len(ts) > 1 and not np.all(ts[1:] >= ts[:-1]):
            back = int(np.count_nonzero(ts[1:] < ts[:-1]))
            out.warnings.append(
                f"{name}: {back} timestamp(s) went backwards; samples sorted by time"
            )
            order = np.argsort(ts, kind="stable")
            s.timestamps = ts[order]
            s._order = order if s._order is None else s._order[order]


def _label(stream_id: int, spec: StreamSpec) -> str:
    """``stream 3 ('Name')`` for warnings, the name shortened (a header may hold megabytes)."""
    return f"stream {stream_id} ({shorten(spec.name)!r})"


def _no_footer_warning(labels: list[str]) -> str:
    """One sentence for every stream without a footer.

    A crash or a cut-off copy leaves every stream of the file without one; a line per stream
    would repeat the same news and bury the warning that names the damage.

    Parameters
    ----------
    labels
        ``stream N ('Name')`` of each stream without a footer.

    Returns
    -------
    str
        The warning.
    """
    verb = "has" if len(labels) == 1 else "have"
    return f"{', '.join(labels)} {verb} no footer (recording not closed cleanly?)"


def _dejitter(
    t, can_drop_samples: bool, threshold_seconds: float = 1.0, threshold_samples: int = 500
) -> None:
    """pyxdf's jitter removal, in place and in bounded memory.

    A regular stream is split at breaks (a step of more than ``max(threshold_seconds,
    threshold_samples / srate)``) and each segment's timestamps are replaced by their least-squares
    line over the sample index, as ``pyxdf._jitter_removal`` does, but in closed form over
    blocks instead of an (n, 2) ``lstsq`` (which needs several copies of an hour at 1200 Hz).
    Sets ``t.effective_srate`` and ``t.segments`` like pyxdf.
    """
    ts = t.time_stamps
    n = len(ts)
    t.effective_srate = 0.0
    if n == 0:
        return
    if t.srate == 0 or can_drop_samples:
        t.segments.append((0, n - 1))
        if can_drop_samples and n > 1 and ts[-1] > ts[0]:
            t.effective_srate = (n - 1) / (ts[-1] - ts[0])
        return
    breaks = np.flatnonzero(
        np.abs(np.diff(ts)) > max(threshold_seconds, threshold_samples * t.tdiff)
    )
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks, [n - 1]])  # inclusive
    step = 1 << 20
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        t.segments.append((a, b))
        m = b - a + 1
        if m < 2:
            continue
        # Slope and intercept of ts[i] ~ c0 + c1 * i over the segment, centred for accuracy.
        i_mean = (a + b) / 2.0
        y_mean = float(np.mean(ts[a : b + 1]))
        sxy = 0.0
        sxx = 0.0
        for k in range(a, b + 1, step):
            e = min(k + step, b + 1)
            di = np.arange(k, e, dtype=np.float64) - i_mean
            sxy += float(np.dot(di, ts[k:e] - y_mean))
            sxx += float(np.dot(di, di))
        c1 = sxy / sxx
        for k in range(a, b + 1, step):
            e = min(k + step, b + 1)
            ts[k:e] = y_mean + c1 * (np.arange(k, e, dtype=np.float64) - i_mean)
    counts = stops + 1 - starts
    if np.any(counts > 1):
        durations = ts[stops] - ts[starts]
        t.effective_srate = float(np.sum(counts - 1) / np.sum(durations))


EPOCH_THRESHOLD = 1e9
"""Timestamps above this are Unix-epoch seconds (2001 on); LSL clocks (time since boot) are below."""


def _map_unix_epoch(out: XdfFile) -> None:
    """Put Unix-epoch streams (Empatica E4 apps stamp that way) on the other streams' LSL clock.

    Exact when the file header holds a ``clock_pair`` (``"<lsl clock> <unix time>"`` read at one
    instant, written by our live recorder); otherwise approximate, by aligning the stream's first
    sample with the recording's first sample. Either way it is reported, never silently mixed.
    """
    filled = [s for s in out.streams if len(s)]
    epoch = [s for s in filled if np.median(s.timestamps) > EPOCH_THRESHOLD]
    local = [s for s in filled if np.median(s.timestamps) <= EPOCH_THRESHOLD]
    for s in epoch:
        s.unix_epoch = True
    if not epoch or not local:
        return
    pair = (out.header_value("clock_pair") or "").split()
    try:
        lsl, unix = float(pair[0]), float(pair[1])
        shift, how = lsl - unix, "using the recorder's clock pair"
    except (IndexError, ValueError):
        shift = min(s.timestamps[0] for s in local) - min(s.timestamps[0] for s in epoch)
        how = (
            "approximately, by aligning its first sample with the recording's first sample "
            "(timing against the other streams may be off by the device's start-up delay)"
        )
    for s in epoch:
        s.timestamps = s.timestamps + shift
        out.warnings.append(
            f"{_label(s.stream_id, s.spec)} is stamped in Unix-epoch seconds; mapped "
            f"onto the other streams' LSL clock {how}"
        )
