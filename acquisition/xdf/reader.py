"""A fast, tolerant XDF reader that streams through the file in bounded memory.

Reads an XDF file (https://github.com/sccn/xdf) chunk by chunk:

* a numeric sample chunk laid out the usual ways (every sample stamped, none, or only the first:
  LabRecorder stamps the first sample of a regular stream's run and omits the stamps that are
  exactly 1/srate after the previous one) is decoded with a few numpy calls; other mixes of
  stamped and deduced samples take one light pass over the flag bytes. Omitted stamps are
  deduced as pyxdf does (previous stamp plus 1/srate, summed sample after sample), to the bit;
* only timestamps are kept in memory: values stay in the file and are read (``os.pread``) when
  a block asks for them, and the pages the first pass touched are released as it goes, so an
  hour of a 1200-Hz stream plus three ~130-Hz ones peaks under 100 MB while it is read;
* clock synchronisation (with clock-reset handling) is pyxdf's own, carried in
  :mod:`acquisition.xdf._pyxdf`; jitter removal, when asked for, is pyxdf's per-segment line in
  closed form, so timestamps equal ``pyxdf.load_xdf``'s;
* damage never raises once the magic bytes are read: a chunk that runs past the end of the
  file keeps its complete samples; a damaged chunk keeps what precedes the damage and reading
  resumes at the next chunk (or the next boundary chunk); a missing footer, empty streams, clock
  resets and out-of-order timestamps are all reported in :attr:`XdfFile.warnings` (and logged).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from acquisition.streams import StreamSpec, shorten
from acquisition.xdf import _pyxdf

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
_RELEASE_BYTES = 8 << 20
"""The first pass hands the file pages it has parsed back to the OS every this many bytes."""
_SPAN_BYTES = 8 << 20
"""At most this many bytes are read from the file at once when values are asked for."""
_SLICE = 1 << 16
"""Samples whose file offsets are computed at once when values are asked for."""


class XdfError(IOError):
    """The file is not XDF at all (no magic bytes) or cannot be opened."""


class _Damage(Exception):
    """Internal: the bytes at a position do not parse."""


class _Truncated(_Damage):
    """Internal: the file ends inside a structure (a recording cut off)."""


class _ValueFile:
    """The open file values are read from, on demand (thread-safe, closed with the reader)."""

    def __init__(self, path: Path, fd: int | None = None) -> None:
        self.path = path
        self._fd = fd  # the file as read: a file replaced or deleted since still gives its values
        self._lock = threading.Lock()

    def read(self, offset: int, size: int) -> bytes:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            if hasattr(os, "pread"):
                data = os.pread(self._fd, size, offset)
            else:  # pragma: no cover - Windows
                os.lseek(self._fd, offset, os.SEEK_SET)
                data = os.read(self._fd, size)
        if len(data) < size:
            raise OSError(f"{self.path} changed while being read (short read at byte {offset})")
        return data

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        self.close()


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
        float64 (n,), synchronised (and dejittered when asked for), in time order.
    clock_times, clock_values
        The file's clock offset measurements.
    effective_srate
        Measured rate (0 for irregular streams), as pyxdf reports it.
    clock_segments
        Index ranges (inclusive) between clock resets, as pyxdf reports them.
    unix_epoch
        Stamped in Unix-epoch seconds in the file (mapped onto the others' clock when mixed).
    epoch_shift
        Seconds added to the stamps of a Unix-epoch stream to map it (0 otherwise): the stamps
        pyxdf gives are ``timestamps - epoch_shift``.
    file_samples
        Samples the file holds for the stream (before any was dropped as damaged).
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
    epoch_shift: float = 0.0
    file_samples: int = 0
    _order: np.ndarray | None = field(default=None, repr=False)
    """File sample index of each kept sample, where samples were dropped or reordered."""
    _source: _ValueFile | None = field(default=None, repr=False)
    _chunks: np.ndarray | None = field(default=None, repr=False)
    """(k, 2) int64 per sample chunk: index of its first sample, file offset of that sample."""
    _stamped: np.ndarray | None = field(default=None, repr=False)
    """bool per file sample: its stamp is in the file (8 more bytes than a deduced one)."""
    _strings: np.ndarray | None = field(default=None, repr=False)
    _offset_cache: tuple[int, int, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def is_string(self) -> bool:
        """True for string streams."""
        return self.spec.is_string

    def values(self, i0: int = 0, i1: int | None = None, dtype=None) -> np.ndarray:
        """Samples ``[i0, i1)`` as (n, channel_count): float64 (or ``dtype``) or object (str).

        Numeric values stay in the file until asked for (read with one system call per few
        MB), so long recordings are never held in memory whole.
        """
        n = len(self.timestamps)
        i1 = n if i1 is None else min(i1, n)
        i0 = max(0, min(i0, i1))
        out_dtype = object if self.is_string else (dtype or np.float64)
        out = np.empty((max(i1 - i0, 0), self.spec.channel_count), dtype=out_dtype)
        if i1 <= i0:
            return out
        if self._order is None:
            self._read(i0, i1, out)
            return out
        index = self._order[i0:i1]
        if self._strings is not None:
            out[:] = self._strings[index]
            return out
        # Reordered or thinned: read each ascending contiguous stretch of file samples.
        cuts = np.flatnonzero(np.diff(index) != 1) + 1
        starts = np.concatenate([[0], cuts])
        stops = np.concatenate([cuts, [len(index)]])
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            first = int(index[a])
            self._read(first, first + (b - a), out[a:b])
        return out

    def _read(self, a: int, b: int, out: np.ndarray) -> None:
        """File samples ``[a, b)`` into ``out``, in slices and reads of bounded size."""
        if self._strings is not None:
            out[:] = self._strings[a:b]
            return
        if self._chunks is None or self._source is None or not len(self._chunks):
            raise ValueError(f"{self.spec.name!r}: no sample data")
        dtype = NUMERIC_DTYPES[self.spec.channel_format]
        nch = self.spec.channel_count
        vbytes = nch * dtype.itemsize
        for s0 in range(a, b, _SLICE):
            s1 = min(b, s0 + _SLICE)
            offs = self._offsets(s0, s1)
            i = 0
            while i < len(offs):
                lo = int(offs[i])
                j = max(i + 1, int(np.searchsorted(offs, lo + _SPAN_BYTES - vbytes, "right")))
                data = self._source.read(lo, int(offs[j - 1]) + vbytes - lo)
                # Every byte position as the start of a row (a view), then the rows wanted.
                rows = np.ndarray(
                    (len(data) - vbytes + 1, vbytes), np.uint8, buffer=data, strides=(1, 1)
                )[offs[i:j] - lo]
                out[s0 - a + i : s0 - a + j] = rows.view(dtype).reshape(j - i, nch)
                i = j

    def _offsets(self, a: int, b: int) -> np.ndarray:
        """Value offsets of file samples ``[a, b)``, from a cache of ``_SLICE`` samples.

        Replay asks for consecutive small ranges: computing the offsets once per slice keeps
        the per-block cost to a few numpy calls, in bounded memory.
        """
        cached = self._offset_cache
        if cached is not None and cached[0] <= a and b <= cached[1]:
            return cached[2][a - cached[0] : b - cached[0]]
        # A little behind too: samples sorted by time come back slightly out of file order.
        begin = max(0, a - _SLICE // 8)
        end = min(len(self._stamped), max(b, a + _SLICE))
        offs = self._value_offsets(begin, end)
        self._offset_cache = (begin, end, offs)
        return offs[a - begin : b - begin]

    def _value_offsets(self, a: int, b: int) -> np.ndarray:
        """File offsets (int64, ascending) of the values of file samples ``[a, b)``."""
        chunks = self._chunks
        stamped = self._stamped
        c0 = int(np.searchsorted(chunks[:, 0], a, side="right")) - 1
        s0 = int(chunks[c0, 0])
        idx = np.arange(s0, b, dtype=np.int64)
        cid = np.searchsorted(chunks[:, 0], idx, side="right") - 1
        first = chunks[cid, 0]
        m = stamped[s0:b]
        before = np.cumsum(m) - m  # stamped samples before each one, from s0
        record = (
            chunks[cid, 1] + (idx - first) * (1 + self._vbytes) + 8 * (before - before[first - s0])
        )
        return (record + 1 + 8 * m)[a - s0 :]

    @property
    def _vbytes(self) -> int:
        return self.spec.channel_count * NUMERIC_DTYPES[self.spec.channel_format].itemsize


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
    _source: _ValueFile | None = field(default=None, repr=False)

    def close(self) -> None:
        """Let go of the file (values can no longer be read; reading reopens it)."""
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> XdfFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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


class _Growing:
    """An array appended to in blocks of ~1 MB (each its own allocation).

    Thousands of small per-chunk arrays would leave the heap fragmented after they are joined
    (freed small blocks are not returned to the OS, so the stamps would count twice in RSS);
    blocks this large are mapped and unmapped whole.
    """

    def __init__(self, dtype, block: int) -> None:
        self.dtype = np.dtype(dtype)
        self.block = block
        self.blocks: list[np.ndarray] = []
        self.fill = block  # of the last block; full: the next append opens one

    def append(self, values) -> None:
        values = np.asarray(values, dtype=self.dtype)
        i = 0
        while i < len(values):
            if self.fill == self.block:
                self.blocks.append(np.empty((self.block, *values.shape[1:]), self.dtype))
                self.fill = 0
            k = min(self.block - self.fill, len(values) - i)
            self.blocks[-1][self.fill : self.fill + k] = values[i : i + k]
            self.fill += k
            i += k

    def take(self, shape_tail: tuple = ()) -> np.ndarray:
        """Everything appended, as one array; the blocks are let go."""
        if not self.blocks:
            return np.empty((0, *shape_tail), self.dtype)
        self.blocks[-1] = self.blocks[-1][: self.fill]
        out = self.blocks[0].copy() if len(self.blocks) == 1 else np.concatenate(self.blocks)
        self.blocks = []
        return out


class _Parsing:
    """Per-stream state while the chunks are parsed."""

    def __init__(self, stream: XdfStream) -> None:
        self.stream = stream
        spec = stream.spec
        self.tdiff = 1.0 / spec.nominal_srate if spec.nominal_srate > 0 else 0.0
        self.last_ts = 0.0
        self.count = 0
        self.ts = _Growing(np.float64, 1 << 17)
        self.chunks = _Growing(np.int64, 1 << 16)  # (first sample, file offset) pairs
        self.stamped = _Growing(bool, 1 << 20)
        self.str_parts: list[np.ndarray] = []
        if not spec.is_string:
            if spec.channel_format not in NUMERIC_DTYPES:
                raise _Damage(f"unknown channel_format {spec.channel_format!r}")
            self.vbytes = spec.channel_count * NUMERIC_DTYPES[spec.channel_format].itemsize

    def add_chunk(self, ts: np.ndarray, offset: int, stamped: np.ndarray) -> None:
        """Numeric samples of one chunk: stamps, the first one's file offset, which are stamped."""
        if len(ts):
            self.ts.append(ts)
            self.chunks.append((self.count, offset))
            self.stamped.append(stamped)
            self.last_ts = float(ts[-1])
            self.count += len(ts)

    def add_strings(self, ts: np.ndarray, values: np.ndarray) -> None:
        if len(ts):
            self.ts.append(ts)
            self.str_parts.append(values)
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


def _flags_are(buf, pos: int, stride: int, count: int, flag: int) -> bool:
    """Whether ``count`` flag bytes ``stride`` apart from ``pos`` all equal ``flag``."""
    if count <= 0:
        return True
    return buf[pos : pos + (count - 1) * stride + 1 : stride].count(flag) == count


def _deduced(start: float, tdiff: float, n: int) -> np.ndarray:
    """``start + tdiff``, ``+ tdiff`` ... summed one by one as pyxdf does (cumsum is sequential)."""
    steps = np.full(n + 1, tdiff)
    steps[0] = start
    return np.cumsum(steps)[1:]


def _parse_numeric(buf, pos: int, end: int, n: int, st: _Parsing) -> tuple[int, int, str | None]:
    """Decode up to ``n`` numeric samples in ``[pos, end)``: their stamps; values stay put.

    The layouts writers use are recognised from the chunk's size and checked with one strided
    view: every sample stamped (9 + v bytes each), none (1 + v), or only the first
    (LabRecorder). Any other mix, and a chunk cut off by the end of the file, takes one pass
    over the flag bytes. Omitted stamps are the previous stamp plus 1/srate, summed sample
    after sample like pyxdf, so they equal pyxdf's to the bit.

    Returns
    -------
    got, pos, problem
        Samples decoded, the position after them, and why decoding stopped early: ``None``
        when the bytes ran out (``end`` reached inside a sample), else the damage found.
    """
    if n == 0:
        return 0, pos, None
    a = 1 + st.vbytes  # a deduced sample's bytes
    b = a + 8  # a stamped one's
    extra, rem = divmod(end - pos - n * a, 8)  # stamped samples, if the chunk is exact
    if rem == 0 and 0 <= extra <= n:
        if extra == n and _flags_are(buf, pos, b, n, 8):
            ts = np.ndarray((n,), "<f8", buffer=buf, offset=pos + 1, strides=(b,)).copy()
            st.add_chunk(ts, pos, np.ones(n, bool))
            return n, end, None
        if extra == 0 and _flags_are(buf, pos, a, n, 0):
            st.add_chunk(_deduced(st.last_ts, st.tdiff, n), pos, np.zeros(n, bool))
            return n, end, None
        if extra == 1 and buf[pos] == 8 and _flags_are(buf, pos + b, a, n - 1, 0):
            t0 = _F64.unpack_from(buf, pos + 1)[0]
            ts = np.concatenate([[t0], _deduced(t0, st.tdiff, n - 1)])
            stamped = np.zeros(n, bool)
            stamped[0] = True
            st.add_chunk(ts, pos, stamped)
            return n, end, None
    return _walk_numeric(buf, pos, end, n, st, a, b)


def _walk_numeric(
    buf, pos: int, end: int, n: int, st: _Parsing, a: int, b: int
) -> tuple[int, int, str | None]:
    """Flag byte by flag byte (plain Python on a bytes copy: ~0.3 us a sample)."""
    data = bytes(buf[pos : min(end, pos + n * b)])
    size = len(data)
    ts = np.empty(n)
    stamped = np.zeros(n, bool)
    t = st.last_ts
    tdiff = st.tdiff
    unpack = _F64.unpack_from
    q = 0
    k = 0
    problem = None
    while k < n:
        if q >= size:
            break
        flag = data[q]
        if flag == 8:
            if q + b > size:
                break
            t = unpack(data, q + 1)[0]
            stamped[k] = True
            q += b
        elif flag == 0:
            if q + a > size:
                break
            t = t + tdiff
            q += a
        else:
            problem = f"invalid timestamp flag {flag}"
            break
        ts[k] = t
        k += 1
    st.add_chunk(ts[:k].copy(), pos, stamped[:k].copy())
    return k, pos + q, problem


def _parse_strings(buf, pos: int, end: int, n: int, st: _Parsing) -> tuple[int, int, str | None]:
    """Decode up to ``n`` string samples in ``[pos, end)`` (see :func:`_parse_numeric`)."""
    nch = st.stream.spec.channel_count
    ts = np.empty(n)
    rows = np.empty((n, nch), dtype=object)
    last = st.last_ts
    k = 0
    problem = None
    try:
        while k < n:
            if pos >= end:
                break
            flag = buf[pos]
            p = pos
            if flag == 8:
                if p + 9 > end:
                    break
                t = _F64.unpack_from(buf, p + 1)[0]
                p += 9
            elif flag == 0:
                t = last + st.tdiff
                p += 1
            else:
                problem = f"invalid timestamp flag {flag}"
                break
            for c in range(nch):
                length, p = _varlen(buf, p, end)
                if p + length > end:
                    raise _Truncated("end of data inside a string value")
                rows[k, c] = bytes(buf[p : p + length]).decode("utf-8", errors="replace")
                p += length
            last = t
            ts[k] = t
            k += 1
            pos = p
    except _Truncated:
        pass  # the bytes ran out inside the sample
    except _Damage as exc:
        problem = str(exc)
    st.add_strings(ts[:k], rows[:k])
    return k, pos, problem


def _plausible_chunk(buf, pos: int, size: int) -> bool:
    """Whether a chunk can start at ``pos``: a valid length field and a known tag after it."""
    if pos == size:
        return True
    try:
        length, body = _varlen(buf, pos, size)
    except _Damage:
        return False
    if length < 2 or body + 2 > size:
        return False
    return 1 <= _U16.unpack_from(buf, body)[0] <= 6


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
        Streams, metadata and warnings. Numeric values are read from the file when asked for
        (:meth:`XdfStream.values`); :meth:`XdfFile.close` lets go of it.

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
        source = _ValueFile(path, os.dup(fh.fileno()))
    try:
        if buf[:4] != MAGIC:
            raise XdfError(f"{path} is not an XDF file (no 'XDF:' magic bytes)")
        warnings: list[str] = []
        header, streams, parsing, pos = _parse_chunks(buf, size, warnings)
    finally:
        with contextlib.suppress(BufferError):  # a view still holds it: the GC closes it
            buf.close()
    if not header:
        warnings.append("no file header chunk")
    if not streams:
        warnings.append("the file declares no streams")
    out = XdfFile(path, header, streams, warnings, bytes_read=pos, size=size)
    out._source = source
    for st in parsing.values():
        _finish_stream(st, source)
        _drop_stray_stamps(st.stream, warnings)
    _postprocess(out, synchronize_clocks, dejitter, handle_clock_resets)
    _map_unix_epoch(out)
    for w in warnings:
        log.warning("%s: %s", path.name, w)
    return out


def _parse_chunks(buf, size: int, warnings: list[str]):
    """Walk the chunks; returns (file header, streams, their parsing states, bytes parsed)."""
    header = ""
    streams: dict[int, XdfStream] = {}
    parsing: dict[int, _Parsing] = {}
    unknown_ids: set[int] = set()
    pos = 4
    released = 0
    while pos < size:
        if pos - released >= _RELEASE_BYTES and hasattr(mmap, "MADV_DONTNEED"):
            # Hand parsed pages back: the first pass keeps stamps only, values are read later.
            upto = pos - pos % mmap.PAGESIZE
            buf.madvise(mmap.MADV_DONTNEED, released, upto - released)
            released = upto
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
                pos = _cut_or_resync(
                    buf,
                    start,
                    size,
                    f"file ends inside a {CHUNK_NAMES.get(tag, f'tag {tag}')} chunk at byte "
                    f"{start}: the recording was cut off; {size - start} trailing byte(s) ignored",
                    f"chunk at byte {start} claims more bytes than the file holds (damaged "
                    "length?)",
                    warnings,
                )
                continue
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
                    pos = _read_samples(
                        buf, start, p, chunk_end, size, truncated, st, warnings, parsing
                    )
                    continue
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
            if isinstance(exc, _Truncated) or truncated:
                pos = _cut_or_resync(
                    buf,
                    start,
                    size,
                    f"file ends inside a chunk at byte {start} ({exc}): the recording was cut "
                    f"off; {size - start} trailing byte(s) ignored",
                    f"unreadable data at byte {start} ({exc})",
                    warnings,
                )
            else:
                pos = _resync(
                    buf, start, size, f"unreadable data at byte {start} ({exc})", warnings, parsing
                )
    return header, list(streams.values()), parsing, pos


def _read_samples(
    buf,
    start: int,
    p: int,
    chunk_end: int,
    size: int,
    truncated: bool,
    st: _Parsing,
    warnings: list[str],
    parsing: dict[int, _Parsing],
) -> int:
    """Decode one sample chunk; returns where the next chunk starts (``size``: nothing more).

    The chunk is cut off only when it runs past the end of the file. A chunk whose samples do
    not fit its length, or hold a bad byte, is damaged: its samples before the damage are kept
    and reading goes on at the next chunk header (its own end when a chunk starts there, else
    the end of its samples, else the next boundary chunk).
    """
    name = _label(st.stream.stream_id, st.stream.spec)
    cut = (
        f"file ends inside a sample chunk of {name} at byte {start}: the recording was cut off; "
        f"{size - start} trailing byte(s) ignored"
    )
    try:
        n, p = _varlen(buf, p, chunk_end)
    except _Damage as exc:
        lead = f"unreadable sample count at byte {start} ({exc})"
        if truncated:
            return _cut_or_resync(buf, start, size, cut, lead, warnings)
        return _resync(buf, start, size, lead, warnings, parsing)
    parse = _parse_strings if st.stream.spec.is_string else _parse_numeric
    got, q, problem = parse(buf, p, chunk_end, n, st)
    if got == n and q == chunk_end and not truncated:
        return q
    what = problem or (
        "its samples overrun the chunk" if got < n else "its length disagrees with its samples"
    )
    lead = (
        f"damaged sample chunk of {name} at byte {start} ({what}): kept {got} of its {n} sample(s)"
    )
    if truncated and problem is None and got < n:
        cut = (
            f"file ends inside a sample chunk of {name} at byte {start}: kept {got} of its {n} "
            "sample(s); the recording was cut off"
        )
        return _cut_or_resync(buf, start, size, cut, lead, warnings)
    if not truncated and _plausible_chunk(buf, chunk_end, size):
        warnings.append(f"{lead}; reading resumes at the next chunk")
        return chunk_end
    if got == n and _plausible_chunk(buf, q, size):
        warnings.append(f"{lead}; reading resumes after its samples")
        return q
    return _resync(buf, max(q, start), size, lead, warnings, parsing)


def _cut_or_resync(buf, start: int, size: int, cut: str, lead: str, warnings: list[str]) -> int:
    """A chunk at ``start`` runs past the end of the file: cut off, or a damaged length?

    A recording cut off has no boundary chunk after its last chunk's start; when one follows,
    the chunk's length field was damaged and reading resumes after that boundary.
    """
    nxt = buf.find(BOUNDARY, start + 1)
    if nxt < 0:
        warnings.append(cut)
        return size
    warnings.append(f"{lead}; skipped {nxt + 16 - start} byte(s) to the next boundary chunk")
    return nxt + 16


def _resync(
    buf, start: int, size: int, lead: str, warnings: list[str], parsing: dict[int, _Parsing]
) -> int:
    """Skip from damage at ``start`` to the next chunk that reads; say how far.

    The next boundary chunk is the sure landmark (LabRecorder writes one every 10 s, ours every
    second); before it, the first header of a sample, clock offset or footer chunk of a known
    stream whose length leads to another chunk header is taken, so a damaged header loses that
    chunk, not up to 10 s of every stream.
    """
    boundary = buf.find(BOUNDARY, start + 1)
    limit = boundary if boundary >= 0 else size
    nxt = _next_chunk_header(buf, start + 1, limit, size, parsing)
    if nxt is not None:
        warnings.append(f"{lead}; skipped {nxt - start} byte(s) to the next readable chunk")
        return nxt
    if boundary < 0:
        warnings.append(f"{lead}; no later boundary chunk, {size - start} trailing byte(s) ignored")
        return size
    warnings.append(f"{lead}; skipped {boundary + 16 - start} byte(s) to the next boundary chunk")
    return boundary + 16


def _next_chunk_header(
    buf, start: int, limit: int, size: int, parsing: dict[int, _Parsing]
) -> int | None:
    """The first position in ``[start, limit)`` where a chunk of a known stream surely starts.

    Looks for the tag and stream id of each known stream (6 bytes), then for a length field
    just before them whose chunk ends where another chunk can start; a sample chunk must also
    hold exactly its sample count of whole samples (stamped or not).
    """
    best = None
    for sid, st in parsing.items():
        for tag in (TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_FOOTER):
            pattern = _U16.pack(tag) + _U32.pack(sid)
            at = buf.find(pattern, start, best if best is not None else limit)
            while at >= 0:
                head = _chunk_start_before(buf, at, start, size, tag, st)
                if head is not None:
                    best = head if best is None else min(best, head)
                    break
                at = buf.find(pattern, at + 1, best if best is not None else limit)
    return best


def _chunk_start_before(buf, at: int, start: int, size: int, tag: int, st: _Parsing) -> int | None:
    """Where a chunk whose tag is at ``at`` starts, if its length field checks out."""
    for width, fmt in ((1, None), (4, _U32), (8, _U64)):
        head = at - 1 - width
        if head < start or buf[head] != width:
            continue
        length = buf[head + 1] if fmt is None else fmt.unpack_from(buf, head + 1)[0]
        end = at + length
        if length < 6 or end > size or not _plausible_chunk(buf, end, size):
            continue
        if tag == TAG_CLOCK_OFFSET and length != 22:
            continue
        if tag == TAG_SAMPLES and not st.stream.spec.is_string:
            try:
                n, p = _varlen(buf, at + 6, end)
            except _Damage:
                continue
            stamped, rem = divmod(end - p - n * (1 + st.vbytes), 8)
            if rem or not 0 <= stamped <= n:
                continue
        return head
    return None


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


def _finish_stream(st: _Parsing, source: _ValueFile) -> None:
    """Join a stream's parsed pieces: stamps in memory, values where they are in the file."""
    s = st.stream
    s.file_samples = st.count
    s.timestamps = st.ts.take()
    if s.spec.is_string:
        nch = s.spec.channel_count
        s._strings = (
            np.concatenate(st.str_parts) if st.str_parts else np.empty((0, nch), dtype=object)
        )
        st.str_parts = []
    else:
        s._chunks = st.chunks.take().reshape(-1, 2)
        s._stamped = st.stamped.take()
        s._source = source


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
    """Footer checks, clock sync, dejitter, ordering; every finding goes to ``out.warnings``.

    The steps and their order are ``pyxdf.load_xdf``'s (pylsl#67 check, clock sync, jitter
    removal), with pyxdf's routines carried in :mod:`acquisition.xdf._pyxdf`; their warnings join
    the file's.
    """
    fits: dict = {}  # clock fits by offsets: streams measured together are fitted once
    unclosed = [_label(s.stream_id, s.spec) for s in out.streams if s.footer is None]
    if unclosed:
        out.warnings.append(_no_footer_warning(unclosed))
    for s in out.streams:
        name = _label(s.stream_id, s.spec)
        footer_count = None
        if s.footer is not None:
            declared = _xml_text(s.footer, "sample_count")
            if declared is not None and declared.strip().isdigit():
                footer_count = int(declared)
                # The file's own count: samples the reader dropped are reported on their own.
                if footer_count != s.file_samples:
                    out.warnings.append(
                        f"{name}: footer declares {footer_count} sample(s), the file holds "
                        f"{s.file_samples}"
                    )
            elif declared is None and s.footer.strip():
                try:
                    ET.fromstring(s.footer)
                except ET.ParseError:
                    out.warnings.append(f"{name}: unreadable footer XML ignored")
        if s.file_samples == 0:
            out.warnings.append(f"{name} is empty (no samples)")
        if sync:
            _sync_stream(s, name, footer_count, resets, out.warnings, fits)
        _segment_stream(s, name, dejitter, out.warnings)
        if sync and not s.clock_times and len(s) and len(out.streams) > 1:
            out.warnings.append(f"{name} has no clock offsets: its timestamps are not synchronised")
        ts = s.timestamps
        bad = ~np.isfinite(ts)
        if bad.any():  # corrupted stamps: drop those samples
            out.warnings.append(
                f"{name}: {int(bad.sum())} sample(s) with unreadable timestamps dropped"
            )
            _keep(s, np.flatnonzero(~bad))
            ts = s.timestamps
        if len(ts) > 1 and not np.all(ts[1:] >= ts[:-1]):
            back = int(np.count_nonzero(ts[1:] < ts[:-1]))
            out.warnings.append(
                f"{name}: {back} timestamp(s) went backwards; samples sorted by time"
            )
            _keep(s, np.argsort(ts, kind="stable"))


def _keep(s: XdfStream, index: np.ndarray) -> None:
    """Keep (and order) the stream's samples at ``index`` of its current ones."""
    s.timestamps = s.timestamps[index]
    s._order = index if s._order is None else s._order[index]


def _sync_stream(
    s: XdfStream,
    name: str,
    footer_count: int | None,
    resets: bool,
    warnings: list[str],
    fits: dict,
) -> None:
    """The pylsl#67 check and pyxdf's clock synchronisation for one stream."""
    try:
        if _pyxdf.corrupted_offset_tail(
            s.file_samples, footer_count, s.clock_times, s.clock_values
        ):
            index = (
                np.arange(min(footer_count, len(s)))
                if s._order is None
                else np.flatnonzero(s._order < footer_count)
            )
            dropped = len(s) - len(index)
            _keep(s, index)
            s.clock_times, s.clock_values = s.clock_times[:-1], s.clock_values[:-1]
            warnings.append(
                f"{name}: {dropped} extra sample(s) past the footer's count and the last clock "
                "offset, which is corrupt, dropped (pylsl#67)"
            )
    except Exception as exc:  # noqa: BLE001 - report, keep the data
        warnings.append(f"{name}: clock offset sanity check failed ({exc})")
    try:
        segments, notes = _pyxdf.clock_sync(
            s.timestamps, s.clock_times, s.clock_values, resets, cache=fits
        )
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"{name}: clock synchronisation failed ({exc}); raw timestamps kept")
        return
    warnings.extend(f"{name}: {note}" for note in notes)
    s.clock_segments = segments
    if resets and len(segments) > 1:
        warnings.append(
            f"{name}: {len(segments) - 1} clock reset(s) detected and handled "
            "(each segment synchronised separately)"
        )


def _segment_stream(s: XdfStream, name: str, dejitter: bool, warnings: list[str]) -> None:
    """Jitter removal when asked for, and the effective rate either way (as pyxdf gives it)."""
    ts = s.timestamps
    srate = s.spec.nominal_srate
    if not dejitter:
        s.effective_srate = 0.0
        if srate > 0 and len(ts) > 1 and np.isfinite(ts[[0, -1]]).all() and ts[-1] != ts[0]:
            s.effective_srate = float((len(ts) - 1) / (ts[-1] - ts[0]))
        return
    try:
        can_drop = _pyxdf.can_drop_samples(ET.fromstring(s.header))
    except ET.ParseError:
        can_drop = False
    try:
        _, s.effective_srate = _dejitter(ts, srate, can_drop)
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"{name}: jitter removal failed ({exc}); timestamps not dejittered")
        return
    eff = s.effective_srate
    if srate > 0 and eff and abs(srate - eff) > 0.1 * srate:
        warnings.append(
            f"{name}: effective rate {eff:.4g} Hz differs from the nominal {srate:g} Hz by "
            "more than 10%"
        )


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
    ts: np.ndarray,
    srate: float,
    can_drop_samples: bool,
    threshold_seconds: float = 1.0,
    threshold_samples: int = 500,
) -> tuple[list[tuple[int, int]], float]:
    """pyxdf's jitter removal, in place and in bounded memory.

    A regular stream is split at breaks (a step of more than ``max(threshold_seconds,
    threshold_samples / srate)``) and each segment's timestamps are replaced by their least-squares
    line over the sample index, as ``pyxdf._jitter_removal`` does, but in closed form over
    blocks instead of an (n, 2) ``lstsq`` (which needs several copies of an hour at 1200 Hz).

    Returns
    -------
    segments, effective_srate
        Inclusive index ranges and the measured rate, as pyxdf computes them.
    """
    n = len(ts)
    if n == 0:
        return [], 0.0
    if srate == 0 or can_drop_samples:
        eff = 0.0
        if can_drop_samples and n > 1 and ts[-1] > ts[0]:
            eff = (n - 1) / (ts[-1] - ts[0])
        return [(0, n - 1)], float(eff)
    tdiff = 1.0 / srate
    breaks = np.flatnonzero(np.abs(np.diff(ts)) > max(threshold_seconds, threshold_samples * tdiff))
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks, [n - 1]])  # inclusive
    segments = list(zip(starts.tolist(), stops.tolist(), strict=True))
    step = 1 << 20
    for a, b in segments:
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
    eff = 0.0
    if np.any(counts > 1):
        durations = ts[stops] - ts[starts]
        eff = float(np.sum(counts - 1) / np.sum(durations))
    return segments, eff


EPOCH_THRESHOLD = 1e9
"""Timestamps above this are Unix-epoch seconds (2001 on); LSL clocks (time since boot) are below."""


def _map_unix_epoch(out: XdfFile) -> None:
    """Put Unix-epoch streams (Empatica E4 apps stamp that way) on the other streams' LSL clock.

    Exact when the file header holds a ``clock_pair`` (``"<lsl clock> <unix time>"`` read at one
    instant, written by our live recorder); otherwise approximate, by aligning the stream's first
    sample with the recording's first sample. Either way it is reported, never silently mixed.
    """
    filled = [s for s in out.streams if len(s)]
    # The median of ~10k evenly spread stamps: as telling, without copying an hour of them.
    median = {id(s): _pyxdf.median(s.timestamps[:: max(1, len(s) // 10_000)]) for s in filled}
    epoch = [s for s in filled if median[id(s)] > EPOCH_THRESHOLD]
    local = [s for s in filled if median[id(s)] <= EPOCH_THRESHOLD]
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
        s.epoch_shift = float(shift)
        out.warnings.append(
            f"{_label(s.stream_id, s.spec)} is stamped in Unix-epoch seconds; mapped "
            f"onto the other streams' LSL clock {how}"
        )
