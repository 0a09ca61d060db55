"""Write the XDF conformance corpus (tests/data/xdf/*.xdf) the way LabRecorder writes files.

Every file here is read by tests/xdf/test_xdf_conformance.py and compared sample for sample
with ``pyxdf.load_xdf``. Two kinds:

* byte-level files written by :class:`RawXdf`, which lays chunks out as App-LabRecorder's
  ``xdfwriter`` does (minimal variable-length integers, a timestamp flag byte 8 + double or 0
  for a deduced stamp, footers with ``first_timestamp``/``last_timestamp``/``sample_count`` and the
  clock offsets), with the situations real recordings hold: first-stamped runs of regular
  streams (LabRecorder stamps the first sample and omits the stamps that are exactly 1/srate
  after the previous one), Unix-epoch and LSL-clock streams in one file, every channel format,
  irregular streams, clock offsets with drift, boundary chunks, and streams from two hosts;
* ``labrecorder_package.xdf``, recorded from live pylsl outlets by the ``labrecorder`` package
  (LabRecorder's own engine); written only with ``--live`` since it needs LSL and takes seconds.

Deterministic (seeded) except for the live file. Each file stays well under 100 KB.

    python tests/data/xdf/make_corpus.py [--live]

:class:`RawXdf` is also what ``bench/replay.py --writer labrecorder-style`` writes with.
"""

from __future__ import annotations

import argparse
import struct
import time
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

HERE = Path(__file__).resolve().parent
BOUNDARY = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
FORMATS = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "<i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}


def varlen(n: int) -> bytes:
    """xdfwriter's ``write_varlen_int``: the smallest of 1, 4 or 8 bytes."""
    if n < 256:
        return bytes((1, n))
    if n <= 0xFFFFFFFF:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def header_xml(
    name: str,
    type_: str,
    channel_count: int,
    srate: float,
    fmt: str,
    source_id: str,
    hostname: str = "lab-pc",
    labels: list[str] | None = None,
    created_at: float = 0.0,
    desc: str = "",
) -> str:
    """A stream header as liblsl's ``stream_info.as_xml()`` gives it."""
    chans = ""
    if labels:
        chans = "<channels>" + "".join(
            f"<channel><label>{escape(lab)}</label></channel>" for lab in labels
        )
        chans += "</channels>"
    return (
        '<?xml version="1.0"?>\n<info>'
        f"<name>{escape(name)}</name><type>{escape(type_)}</type>"
        f"<channel_count>{channel_count}</channel_count>"
        f"<channel_format>{fmt}</channel_format><source_id>{escape(source_id)}</source_id>"
        f"<nominal_srate>{srate:.15f}</nominal_srate><version>1.100000000000000</version>"
        f"<created_at>{created_at!r}</created_at><uid>{escape(source_id)}-uid</uid>"
        f"<session_id>default</session_id><hostname>{escape(hostname)}</hostname>"
        f"<desc>{chans}{desc}</desc></info>"
    )


class RawXdf:
    """An XDF file written chunk by chunk, byte for byte as LabRecorder's xdfwriter does.

    Parameters
    ----------
    path
        The file to write (replaced).
    """

    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.f.write(b"XDF:")
        self.offsets: dict[int, list[tuple[float, float]]] = {}
        self.counts: dict[int, int] = {}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.formats: dict[int, tuple[str, int, float]] = {}

    def _chunk(self, tag: int, content: bytes, sid: int | None = None) -> None:
        head = struct.pack("<H", tag) + (b"" if sid is None else struct.pack("<I", sid))
        self.f.write(varlen(len(content) + len(head)) + head + content)

    def file_header(self, extra: str = "") -> None:
        """The file header chunk (``<info><version>1.0</version>...``)."""
        xml = (
            '<?xml version="1.0"?><info><version>1.0</version>'
            f"<datetime>2025-06-01T10:00:00+0000</datetime>{extra}</info>"
        )
        self._chunk(1, xml.encode())

    def stream(self, sid: int, xml: str) -> None:
        """A stream header chunk; the format and rate are taken from the XML."""
        fmt = xml.split("<channel_format>")[1].split("<")[0]
        nch = int(xml.split("<channel_count>")[1].split("<")[0])
        srate = float(xml.split("<nominal_srate>")[1].split("<")[0])
        self.formats[sid] = (fmt, nch, srate)
        self.offsets[sid] = []
        self.counts[sid] = 0
        self._chunk(2, xml.encode(), sid)

    def samples(self, sid: int, stamps: np.ndarray, values) -> None:
        """A sample chunk: ``stamps`` NaN where the stamp is left out (deduced on reading)."""
        fmt, nch, _ = self.formats[sid]
        stamps = np.asarray(stamps, dtype=np.float64)
        n = len(stamps)
        parts = [varlen(n)]
        if fmt == "string":
            for t, row in zip(stamps, values, strict=True):
                parts.append(b"\x00" if np.isnan(t) else b"\x08" + struct.pack("<d", t))
                for v in row:
                    raw = str(v).encode()
                    parts.append(varlen(len(raw)) + raw)
        else:
            vals = np.ascontiguousarray(np.asarray(values).astype(FORMATS[fmt]).reshape(n, nch))
            stamped = ~np.isnan(stamps)
            # Runs of equal layout, each written as one structured array.
            edges = np.flatnonzero(np.diff(stamped.astype(np.int8))) + 1
            for a, b in zip(
                np.concatenate([[0], edges]), np.concatenate([edges, [n]]), strict=True
            ):
                if stamped[a]:
                    dt = np.dtype([("f", "u1"), ("t", "<f8"), ("v", FORMATS[fmt], (nch,))])
                    rec = np.empty(b - a, dt)
                    rec["f"], rec["t"] = 8, stamps[a:b]
                else:
                    dt = np.dtype([("f", "u1"), ("v", FORMATS[fmt], (nch,))])
                    rec = np.empty(b - a, dt)
                    rec["f"] = 0
                rec["v"] = vals[a:b]
                parts.append(rec.tobytes())
        self._chunk(3, b"".join(parts), sid)
        self.counts[sid] += n
        if n:
            known = stamps[~np.isnan(stamps)]
            if len(known):
                self.first.setdefault(sid, float(known[0]))
                self.last[sid] = float(known[-1])

    def clock_offset(self, sid: int, collection_time: float, offset: float) -> None:
        """A clock offset chunk."""
        self.offsets[sid].append((collection_time, offset))
        self._chunk(4, struct.pack("<dd", collection_time, offset), sid)

    def boundary(self) -> None:
        """A boundary chunk (LabRecorder writes one every 10 s)."""
        self._chunk(5, BOUNDARY)

    def footers(self) -> None:
        """Every stream's footer, as LabRecorder writes them on stop."""
        for sid in self.formats:
            offs = "".join(
                f"<offset><time>{t!r}</time><value>{v!r}</value></offset>"
                for t, v in self.offsets[sid]
            )
            xml = (
                '<?xml version="1.0"?><info>'
                f"<first_timestamp>{self.first.get(sid, 0.0)!r}</first_timestamp>"
                f"<last_timestamp>{self.last.get(sid, 0.0)!r}</last_timestamp>"
                f"<sample_count>{self.counts[sid]}</sample_count>"
                f"<clock_offsets>{offs}</clock_offsets></info>"
            )
            self._chunk(6, xml.encode(), sid)

    def close(self, footers: bool = True) -> None:
        """Write the footers (unless told not to) and close the file."""
        if footers:
            self.footers()
        self.f.close()


def first_stamped(t: np.ndarray, srate: float, prev: float | None = None) -> np.ndarray:
    """The stamps LabRecorder writes: NaN where exactly 1/srate after the previous sample.

    ``t`` must already be what liblsl hands over (a chunk's deduced stamps are the previous one
    plus 1/srate, summed sample after sample), so the comparison is exact. ``prev``: the last
    stamp of the stream's previous chunk (LabRecorder compares across chunks too).
    """
    out = t.copy()
    if srate > 0 and len(t):
        before = np.concatenate([[np.nan if prev is None else prev], t[:-1]])
        out[t == before + 1.0 / srate] = np.nan
    return out


def liblsl_stamps(t0: float, n: int, srate: float) -> np.ndarray:
    """Stamps of ``n`` samples pushed as one chunk stamped ``t0``: t0, then + 1/srate each."""
    steps = np.full(n, 1.0 / srate)
    steps[0] = t0
    return np.cumsum(steps)


def write_first_stamped(path: Path, rng: np.random.Generator) -> None:
    """Regular streams in LabRecorder's first-stamped runs: chunks of varying size, a dropout
    restamped inside a chunk, chunks of one sample, and chunks that continue the previous one
    exactly (so even their first stamp is left out)."""
    w = RawXdf(path)
    w.file_header()
    specs = [
        (1, "Gaze", "Gaze", 8, 120.0, "float32"),
        (2, "EEG", "EEG", 4, 250.0, "double64"),
    ]
    for sid, name, typ, nch, srate, fmt in specs:
        labels = [f"ch{i}" for i in range(nch)]
        w.stream(sid, header_xml(name, typ, nch, srate, fmt, f"{name}-1", labels=labels))
    start = {1: 4000.0, 2: 4000.003}
    prev: dict[int, float | None] = {1: None, 2: None}
    for step in range(24):
        for sid, _, _, nch, srate, _ in specs:
            n = 1 if step == 5 else int(rng.integers(1, 40))
            stamps = liblsl_stamps(start[sid], n, srate)
            if step == 9 and n > 4:  # a 0.3-s dropout inside the chunk: stamped again there
                stamps[n // 2 :] += 0.3
            w.samples(sid, first_stamped(stamps, srate, prev[sid]), rng.normal(size=(n, nch)) * 100)
            prev[sid] = float(stamps[-1])
            start[sid] = stamps[-1] + 1.0 / srate
            if not (sid == 2 and step in (2, 3, 4)):  # else the next chunk continues exactly
                start[sid] += float(rng.uniform(1e-4, 2e-3))
        if step % 8 == 0:
            for sid, *_ in specs:
                w.clock_offset(sid, 4000.0 + step * 0.2, -0.0012 + 1e-5 * step)
        if step % 10 == 9:
            w.boundary()
    w.close()


def write_epoch_and_lsl(path: Path, rng: np.random.Generator) -> None:
    """An Empatica-like setup: gaze on the LSL clock, GSR 4 Hz and HR 1 Hz stamped in Unix-epoch
    seconds (first-stamped), string markers on the LSL clock."""
    w = RawXdf(path)
    w.file_header()
    w.stream(1, header_xml("Gaze", "Gaze", 3, 60.0, "float32", "gz", labels=["x", "y", "pupil"]))
    w.stream(2, header_xml("E4_Gsr", "GSR", 1, 4.0, "float32", "e4-gsr", hostname="phone"))
    w.stream(3, header_xml("E4_Hr", "HR", 1, 1.0, "float32", "e4-hr", hostname="phone"))
    w.stream(4, header_xml("Markers", "Markers", 1, 0.0, "string", "mk"))
    t_lsl, t_unix = 5123.25, 1_748_772_000.125
    for step in range(20):
        a = t_lsl + step * 0.5
        w.samples(1, first_stamped(liblsl_stamps(a, 30, 60.0), 60.0), rng.random((30, 3)))
        if step % 2 == 0:
            g = liblsl_stamps(t_unix + step * 0.5, 4, 4.0)
            w.samples(2, first_stamped(g, 4.0), rng.random((4, 1)) + 0.3)
        if step % 4 == 0:
            w.samples(3, [t_unix + step * 0.5 + 0.01], [[70 + step]])
        if step % 5 == 2:
            w.samples(4, [a + 0.123], [[f"onset:img{step:02d}"]])
        if step % 10 == 0:
            for sid in (1, 2, 3, 4):
                w.clock_offset(sid, a, -2e-4)
            w.boundary()
    w.close()


def write_formats(path: Path, rng: np.random.Generator) -> None:
    """Every channel format, regular and first-stamped; multi-channel strings with UTF-8, empty
    and 300-byte values (a 4-byte length field)."""
    w = RawXdf(path)
    w.file_header()
    fmts = ["int8", "int16", "int32", "int64", "float32", "double64"]
    for i, fmt in enumerate(fmts, start=1):
        w.stream(i, header_xml(f"S_{fmt}", "Misc", 3, 50.0, fmt, f"fmt-{fmt}"))
    w.stream(7, header_xml("Strings", "Markers", 2, 0.0, "string", "str"))
    w.stream(8, header_xml("RegularStrings", "Text", 1, 10.0, "string", "rstr"))
    lims = {"int8": 127, "int16": 32767, "int32": 2**31 - 1, "int64": 2**62}
    words = ["", "onset:a", "ÄÖü – ☺", "x" * 300, "rating:5"]
    for step in range(10):
        t0 = 100.0 + step * 0.4
        for i, fmt in enumerate(fmts, start=1):
            n = 20
            lim = lims.get(fmt)
            vals = (
                rng.integers(-lim, lim, size=(n, 3), endpoint=True)
                if lim
                else rng.normal(size=(n, 3)) * 1e3
            )
            w.samples(i, first_stamped(liblsl_stamps(t0, n, 50.0), 50.0), vals)
        rows = [[words[(step + k) % 5], words[(step + 2 * k) % 5]] for k in range(2)]
        w.samples(7, [t0 + 0.05, t0 + 0.2], rows)
        w.samples(
            8, first_stamped(liblsl_stamps(t0, 4, 10.0), 10.0), [[f"r{step}.{k}"] for k in range(4)]
        )
    for i in range(1, 9):
        w.clock_offset(i, 101.0, 0.25)
        w.clock_offset(i, 104.0, 0.25)
    w.close()


def write_irregular(path: Path, rng: np.random.Generator) -> None:
    """Irregular streams (nominal rate 0): every sample stamped, uneven spacing, one stamp
    omitted (deduced as the previous one, 1/srate being 0), and an empty irregular stream."""
    w = RawXdf(path)
    w.file_header()
    w.stream(1, header_xml("RR", "RR", 1, 0.0, "double64", "rr"))
    w.stream(2, header_xml("Events", "Markers", 1, 0.0, "int32", "ev"))
    w.stream(3, header_xml("Never", "Markers", 1, 0.0, "string", "never"))
    t = 700.0
    for step in range(15):
        n = int(rng.integers(1, 6))
        gaps = rng.uniform(0.4, 1.2, size=n)
        stamps = t + np.cumsum(gaps)
        t = float(stamps[-1])
        written = stamps.copy()
        if step == 7 and n > 1:
            written[1] = np.nan
        w.samples(1, written, gaps[:, None])
        w.samples(2, [t + 0.01], [[step]])
    for sid in (1, 2, 3):
        w.clock_offset(sid, 705.0, 1e-4)
        w.clock_offset(sid, 710.0, 1.2e-4)
    w.close()


def write_two_hosts(path: Path, rng: np.random.Generator) -> None:
    """Streams from two hosts: host B's clock 12.5 s off and drifting 20 ppm, clock offsets every
    2 s for each stream, boundary chunks every second, LabRecorder's 8-byte length fields avoided
    (minimal ones, as xdfwriter writes)."""
    w = RawXdf(path)
    w.file_header()
    w.stream(1, header_xml("HostA_ECG", "ECG", 1, 130.0, "float32", "ecg", hostname="host-a"))
    w.stream(2, header_xml("HostB_Gaze", "Gaze", 2, 90.0, "float32", "gaze", hostname="host-b"))
    w.stream(3, header_xml("HostB_Markers", "Markers", 1, 0.0, "string", "mkb", hostname="host-b"))
    ta, tb = 2000.0, 2000.0 - 12.5
    for step in range(40):
        now = 2000.0 + step * 0.25
        a = liblsl_stamps(ta, 33, 130.0)
        w.samples(1, first_stamped(a, 130.0), rng.normal(size=(33, 1)))
        ta = a[-1] + 1 / 130.0
        b = liblsl_stamps(tb, 22, 90.0)
        w.samples(2, first_stamped(b, 90.0), rng.random((22, 2)))
        tb = b[-1] + 1 / 90.0
        if step % 6 == 3:
            w.samples(3, [tb - 0.1], [[f"trial {step}"]])
        if step % 8 == 0:
            w.clock_offset(1, now, -3e-5 + rng.normal() * 1e-5)
            off_b = 12.5 - 20e-6 * (now - 2000.0) + rng.normal() * 2e-5
            w.clock_offset(2, now + 0.001, off_b)
            w.clock_offset(3, now + 0.002, off_b)
        if step % 4 == 3:
            w.boundary()
    w.close()


def transcode_labrecorder_style(src: Path, dst: Path, chunk_seconds: float = 0.5) -> None:
    """Rewrite an XDF file chunk by chunk as LabRecorder lays files out.

    Every ``chunk_seconds`` of data, one chunk per stream; a regular numeric stream's chunk has
    its first sample stamped and the following ones deduced, except a sample after a gap (more
    than 1.5/srate), stamped again; clock offsets (0) and a boundary chunk every 10 s. Read
    back, deduced stamps are the previous one plus 1/srate. Values are streamed (bounded
    memory), so an hour transcodes in well under a minute.
    """
    from acquisition.xdf.reader import read_xdf

    f = read_xdf(src, synchronize_clocks=False, dejitter=False)
    w = RawXdf(dst)
    w._chunk(1, f.header.encode())
    streams = [s for s in f.streams if len(s)]
    for s in f.streams:
        w.stream(s.stream_id, s.header)
    t0 = min(s.timestamps[0] for s in streams)
    t1 = max(s.timestamps[-1] for s in streams)
    cursors = dict.fromkeys((s.stream_id for s in streams), 0)
    k = 0
    while True:
        edge = t0 + (k + 1) * chunk_seconds
        for s in streams:
            c = cursors[s.stream_id]
            j = int(np.searchsorted(s.timestamps, edge, side="left"))
            if j <= c:
                continue
            stamps = s.timestamps[c:j]
            written = stamps
            rate = s.spec.nominal_srate
            if rate > 0 and not s.is_string:
                # First-stamped: later samples deduced unless they follow a gap.
                written = stamps.copy()
                steps = np.diff(stamps)
                written[1:][steps < 1.5 / rate] = np.nan
            w.samples(s.stream_id, written, s.values(c, j))
            cursors[s.stream_id] = j
        if k % int(round(10 / chunk_seconds)) == 0:
            for s in streams:
                w.clock_offset(s.stream_id, edge, 0.0)
            w.boundary()
        k += 1
        if edge > t1:
            break
    w.close()


def write_live(path: Path) -> None:
    """Record live pylsl outlets with the ``labrecorder`` package (LabRecorder's engine)."""
    import labrecorder
    import pylsl

    outlets = []
    specs = [
        ("LR_Float", "EEG", 4, 100.0, pylsl.cf_float32),
        ("LR_Int16", "Misc", 2, 50.0, pylsl.cf_int16),
        ("LR_Markers", "Markers", 1, 0.0, pylsl.cf_string),
        ("LR_Epoch", "GSR", 1, 4.0, pylsl.cf_double64),
    ]
    for name, typ, nch, srate, fmt in specs:
        info = pylsl.StreamInfo(name, typ, nch, srate, fmt, f"corpus-{name}")
        outlets.append(pylsl.StreamOutlet(info, chunk_size=0))
    time.sleep(0.5)
    infos = []
    for name, *_ in specs:
        infos += pylsl.resolve_byprop("source_id", f"corpus-{name}", timeout=5)
    rec = labrecorder.Recording(str(path), [i.as_xml() for i in infos])
    time.sleep(1.0)
    rng = np.random.default_rng(0)
    for step in range(12):
        now = pylsl.local_clock()
        outlets[0].push_chunk(rng.random((25, 4)).astype(np.float32).tolist(), now)
        outlets[1].push_chunk(rng.integers(-999, 999, (12, 2)).tolist(), now)
        if step % 3 == 0:
            outlets[2].push_sample([f"marker {step}"], now)
        if step % 2 == 0:
            outlets[3].push_chunk([[0.5 + step], [0.6 + step]], time.time())
        time.sleep(0.25)
    time.sleep(1.0)
    del rec  # stops the engine and writes the footers
    del outlets


def write_can_drop_samples(path: Path, rng: np.random.Generator) -> None:
    """A 30-Hz video-frame stream declaring ``can_drop_samples`` (never dejittered: dropped frames
    stay gaps) next to an ordinary jittery 30-Hz stream, with a 1-s pause (two dejitter
    segments) in the latter."""
    w = RawXdf(path)
    w.file_header()
    sync = "<synchronization><can_drop_samples>true</can_drop_samples></synchronization>"
    w.stream(1, header_xml("Frames", "VideoFrames", 1, 30.0, "int32", "cam", desc=sync))
    w.stream(2, header_xml("Jittery", "Misc", 2, 30.0, "float32", "jit"))
    frame = 0
    t = 300.0
    for step in range(12):
        n = 15
        keep = rng.random(n) > 0.15  # dropped frames
        stamps = t + np.arange(n) / 30.0 + rng.normal(size=n) * 2e-3
        w.samples(1, stamps[keep], (frame + np.arange(n))[keep][:, None])
        frame += n
        jit = t + np.arange(n) / 30.0 + rng.normal(size=n) * 3e-3 + (1.0 if step >= 6 else 0.0)
        w.samples(2, jit, rng.random((n, 2)))
        t += n / 30.0
        if step % 4 == 0:
            w.clock_offset(1, t, 2e-3)
            w.clock_offset(2, t, 2e-3)
    w.close()


WRITERS = {
    "can_drop_samples.xdf": write_can_drop_samples,
    "first_stamped.xdf": write_first_stamped,
    "epoch_and_lsl_clock.xdf": write_epoch_and_lsl,
    "formats.xdf": write_formats,
    "irregular.xdf": write_irregular,
    "two_hosts_boundaries.xdf": write_two_hosts,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="also record labrecorder_package.xdf")
    args = parser.parse_args()
    for name, write in sorted(WRITERS.items()):
        write(HERE / name, np.random.default_rng(zlib.crc32(name.encode())))  # seed per file
        print(f"{name}: {(HERE / name).stat().st_size} bytes")
    if args.live:
        write_live(HERE / "labrecorder_package.xdf")
        print(f"labrecorder_package.xdf: {(HERE / 'labrecorder_package.xdf').stat().st_size} bytes")


if __name__ == "__main__":
    main()
