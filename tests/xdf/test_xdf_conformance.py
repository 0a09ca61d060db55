"""Conformance: every corpus file (tests/data/xdf) and example file reads sample for sample as
``pyxdf.load_xdf`` reads it; LabRecorder's first-stamped chunks, damage and cut-offs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from acquisition.xdf import reader
from acquisition.xdf.reader import read_xdf

DATA = Path(__file__).resolve().parents[1] / "data" / "xdf"
CORPUS = sorted(DATA.glob("*.xdf")) + sorted((DATA / "examples").glob("*.xdf"))


def _load_corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", DATA / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_module()


def pyxdf_streams(path: Path, dejitter: bool) -> dict[int, dict]:
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, dejitter_timestamps=dejitter)
    return {s["info"]["stream_id"]: s for s in streams}


def assert_like_pyxdf(path: Path, dejitter: bool = False) -> None:
    """Every stream: same count, same stamps (to the bit without dejitter), same values."""
    f = read_xdf(path, synchronize_clocks=True, dejitter=dejitter)
    ref = pyxdf_streams(path, dejitter)
    assert sorted(s.stream_id for s in f.streams) == sorted(ref)
    for s in f.streams:
        r = ref[s.stream_id]
        name = f"{path.name}:{s.spec.name}"
        assert len(s) == len(r["time_stamps"]), name
        ts = s.timestamps - s.epoch_shift  # pyxdf leaves Unix-epoch stamps as they are
        if s.unix_epoch and s.epoch_shift:
            # Mapped and mapped back: the rounding of stamps near 1.7e9 s (2.4e-7 s), plus, when
            # dejittered, closed-form least squares against pyxdf's lstsq at that magnitude.
            tol = 3e-6 if dejitter else 5e-7
            np.testing.assert_allclose(ts, r["time_stamps"], rtol=0, atol=tol, err_msg=name)
        elif dejitter:
            np.testing.assert_allclose(ts, r["time_stamps"], rtol=0, atol=1e-8, err_msg=name)
        else:
            np.testing.assert_array_equal(ts, r["time_stamps"], err_msg=name)
        if s.is_string:
            assert s.values().tolist() == [list(row) for row in r["time_series"]], name
        else:
            want = np.asarray(r["time_series"])
            got = s.values(dtype=want.dtype) if len(s) else s.values().reshape(want.shape)
            np.testing.assert_array_equal(got, want, err_msg=name)
        assert s.spec.channel_count == int(r["info"]["channel_count"][0]), name
        assert s.spec.nominal_srate == float(r["info"]["nominal_srate"][0]), name


def test_corpus_is_there():
    names = {p.name for p in CORPUS}
    assert {
        "first_stamped.xdf",
        "can_drop_samples.xdf",
        "epoch_and_lsl_clock.xdf",
        "formats.xdf",
        "irregular.xdf",
        "two_hosts_boundaries.xdf",
        "labrecorder_package.xdf",
        "minimal.xdf",
        "clock_resets.xdf",
        "empty_streams.xdf",
    } <= names
    assert all(p.stat().st_size < 100_000 for p in CORPUS if p.parent == DATA)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_reads_like_pyxdf(path):
    assert_like_pyxdf(path)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_reads_like_pyxdf_dejittered(path):
    assert_like_pyxdf(path, dejitter=True)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_values_read_in_small_pieces(path, monkeypatch):
    """Values come from the file in bounded reads: tiny limits give the same values."""
    whole = {s.stream_id: s.values() for s in read_xdf(path).streams}
    monkeypatch.setattr(reader, "_SPAN_BYTES", 400)
    monkeypatch.setattr(reader, "_SLICE", 7)
    f = read_xdf(path)
    for s in f.streams:
        n = len(s)
        parts = [s.values(i, i + 5) for i in range(0, n, 5)] or [s.values()]
        got = np.concatenate(parts)
        if s.is_string:
            assert got.tolist() == whole[s.stream_id].tolist()
        else:
            np.testing.assert_array_equal(got, whole[s.stream_id])


def test_corpus_layouts_are_what_labrecorder_writes():
    """The corpus really holds first-stamped chunks (else the tests above prove little)."""
    for name in ("first_stamped.xdf", "labrecorder_package.xdf", "two_hosts_boundaries.xdf"):
        f = read_xdf(DATA / name)
        numeric = [s for s in f.streams if not s.is_string and s.spec.nominal_srate > 0]
        assert numeric
        for s in numeric:
            assert 0 < s._stamped.sum() < len(s), (name, s.spec.name)
    two = read_xdf(DATA / "two_hosts_boundaries.xdf")
    assert {s.spec.hostname for s in two.streams} == {"host-a", "host-b"}
    assert DATA.joinpath("two_hosts_boundaries.xdf").read_bytes().count(reader.BOUNDARY) >= 5


def _bvp_like(
    path: Path, n_chunks: int = 30, footers: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A 64-Hz stream in LabRecorder's 2-sample first-stamped chunks (the E4_Bvp of issue 14)."""
    rng = np.random.default_rng(1)
    w = corpus.RawXdf(path)
    w.file_header()
    w.stream(6, corpus.header_xml("E4_Bvp", "BVP", 1, 64.0, "float32", "bvp"))
    w.stream(7, corpus.header_xml("Markers", "Markers", 1, 0.0, "string", "mk"))
    stamps, values = [], []
    for k in range(n_chunks):
        t = corpus.liblsl_stamps(300.0 + k * 0.25, 2, 64.0)
        v = rng.normal(size=(2, 1)).astype(np.float32)
        w.samples(6, corpus.first_stamped(t, 64.0), v)
        stamps.append(t)
        values.append(v)
        if k % 10 == 0:
            w.samples(7, [t[0]], [[f"m{k}"]])
            w.clock_offset(6, t[0], 0.0)
            w.clock_offset(7, t[0], 0.0)
            w.boundary()
    w.close(footers=footers)
    return np.concatenate(stamps), np.concatenate(values)


def test_first_stamped_two_sample_chunks_read_whole(tmp_path):
    """Issue 14, case 1: such a chunk was taken for a cut-off one and the read stopped."""
    path = tmp_path / "bvp.xdf"
    ts, vals = _bvp_like(path)
    f = read_xdf(path, dejitter=False)
    assert f.warnings == []
    bvp = f.by_name("E4_Bvp")
    np.testing.assert_array_equal(bvp.timestamps, ts)
    np.testing.assert_array_equal(bvp.values(dtype=np.float32), vals)
    assert len(f.by_name("Markers")) == 3
    assert_like_pyxdf(path)


def test_cut_off_only_past_the_end_of_the_file(tmp_path):
    path = tmp_path / "bvp.xdf"
    ts, _ = _bvp_like(path, footers=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.xdf"
    # Cut inside the last sample chunk's second (deduced) sample: one sample kept.
    cut.write_bytes(data[:-2])
    f = read_xdf(cut, dejitter=False)
    assert len(f.by_name("E4_Bvp")) == len(ts) - 1
    assert any("kept 1 of its 2 sample(s); the recording was cut off" in w for w in f.warnings)
    # Every cut keeps every whole sample before it and says the file was cut.
    starts, pos = set(), 4
    while pos < len(data):
        starts.add(pos)
        width = data[pos]
        pos += 1 + width + int.from_bytes(data[pos + 1 : pos + 1 + width], "little")
    for off in range(len(data) - 120, len(data)):
        cut.write_bytes(data[:off])
        f = read_xdf(cut, dejitter=False, synchronize_clocks=False)  # parsing only: fast
        got = f.by_name("E4_Bvp").timestamps
        np.testing.assert_array_equal(got, ts[: len(got)])
        assert len(got) >= len(ts) - 10  # the 120 bytes hold at most five 2-sample chunks
        # A cut between two chunks leaves a file that only lacks its footers.
        assert any("cut off" in w for w in f.warnings) == (off not in starts), off


def test_damaged_flag_loses_only_its_chunk(tmp_path):
    path = tmp_path / "bvp.xdf"
    ts, _ = _bvp_like(path)
    data = bytearray(path.read_bytes())
    first = data.index(b"\x03\x00\x06\x00\x00\x00", len(data) // 2)
    data[first + 6 + 2] = 0x55  # the first sample's flag byte
    path.write_bytes(bytes(data))
    f = read_xdf(path, dejitter=False)
    got = f.by_name("E4_Bvp").timestamps
    assert len(got) == len(ts) - 2  # that chunk's two samples, nothing else
    assert np.isin(got, ts).all() and got[-1] == ts[-1]
    assert any(
        "invalid timestamp flag 85" in w and "resumes at the next chunk" in w for w in f.warnings
    )
    # The footer counts the two samples the damage took: the file holds fewer readable ones.
    assert any("footer declares 60 sample(s), the file holds 58" in w for w in f.warnings)


def test_damaged_chunk_length_resyncs_at_a_boundary(tmp_path):
    path = tmp_path / "bvp.xdf"
    ts, _ = _bvp_like(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x03\x00\x06\x00\x00\x00", 400) - 1  # the length byte of a sample chunk
    data[at - 1 : at + 1] = b"\x04\xff"  # a 4-byte length: 0xff.. bytes past the end
    path.write_bytes(bytes(data))
    f = read_xdf(path, dejitter=False)
    got = f.by_name("E4_Bvp").timestamps
    assert got[-1] == ts[-1], "the data after the next boundary chunk is read"
    assert len(got) >= len(ts) - 2 * 10
    assert any("boundary chunk" in w for w in f.warnings)
    assert not any("cut off" in w for w in f.warnings)


def test_footer_count_is_the_files_not_what_was_kept(tmp_path):
    """A stray stamp is dropped and reported once; the footer's count matches the file's."""
    path = tmp_path / "stray.xdf"
    w = corpus.RawXdf(path)
    w.file_header()
    w.stream(1, corpus.header_xml("Markers", "Markers", 1, 0.0, "string", "mk"))
    t = 10.0 + np.arange(59) * 3.0
    t[20] = 1e7  # one damaged stamp
    w.samples(1, t, [[f"m{i}"] for i in range(59)])
    w.close()
    f = read_xdf(path)
    assert len(f.streams[0]) == 58 and f.streams[0].file_samples == 59
    assert not any("footer declares" in m for m in f.warnings)
    assert any("1 sample(s) with a corrupt timestamp" in m for m in f.warnings)


def test_alternating_stamps_decoded(tmp_path):
    """Stamped and deduced samples alternating (as LabRecorder writes live chunks)."""
    path = tmp_path / "alt.xdf"
    w = corpus.RawXdf(path)
    w.file_header()
    w.stream(1, corpus.header_xml("Alt", "EEG", 3, 500.0, "int32", "alt"))
    rng = np.random.default_rng(2)
    for k in range(20):
        t = corpus.liblsl_stamps(50.0 + k * 0.2, 100, 500.0) + rng.normal(size=100) * 1e-5
        written = t.copy()
        written[1::2] = np.nan
        w.samples(1, written, rng.integers(-1000, 1000, size=(100, 3)))
    w.close()
    assert_like_pyxdf(path)
    assert read_xdf(path).warnings == []


def test_read_needs_no_pyxdf():
    """The reader carries the pyxdf routines it needs: pyxdf's private API can change freely."""
    code = (
        "import sys; from acquisition.xdf.reader import read_xdf; "
        f"f = read_xdf({str(DATA / 'examples' / 'clock_resets.xdf')!r}); "
        "assert len(f.streams) == 2 and len(f.streams[1]) == 27815; "
        "assert 'pyxdf' not in sys.modules, 'pyxdf imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_pyxdf_warnings_join_ours(tmp_path):
    """What pyxdf would only log (here: a clock segment with no samples) is a file warning."""
    path = tmp_path / "reset.xdf"
    w = corpus.RawXdf(path)
    w.file_header()
    w.stream(1, corpus.header_xml("S", "Misc", 1, 10.0, "float32", "s"))
    w.samples(1, corpus.liblsl_stamps(100.0, 50, 10.0), np.zeros((50, 1)))
    # Offsets before a reset, then ones after it at times no sample is near.
    for k in range(6):
        w.clock_offset(1, 100.0 + k, 0.5)
    for k in range(6):
        w.clock_offset(1, 90000.0 + k, 700.0)
    w.close()
    f = read_xdf(path)
    assert any("no samples in clock offsets" in m for m in f.warnings)


def test_damaged_chunk_header_loses_only_that_chunk(tmp_path):
    """No boundary chunk near: reading resumes at the next chunk header that checks out."""
    path = tmp_path / "bvp.xdf"
    ts, vals = _bvp_like(path)
    data = bytearray(path.read_bytes())
    tag = data.index(b"\x03\x00\x06\x00\x00\x00", len(data) // 2 + 30)
    data[tag - 2] = 7  # the length field's width byte: 7 is no width
    path.write_bytes(bytes(data))
    f = read_xdf(path, dejitter=False)
    bvp = f.by_name("E4_Bvp")
    assert len(bvp) == len(ts) - 2
    keep = np.isin(ts, bvp.timestamps)
    np.testing.assert_array_equal(bvp.values(dtype=np.float32), vals[keep])
    assert any(
        "invalid length-field width 7" in w and "next readable chunk" in w for w in f.warnings
    )


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_replay_blocks_deliver_every_sample(path):
    """Replay's blocks (XdfSource) carry every sample the reader holds, values included."""
    from acquisition.xdf.source import XdfSource

    src = XdfSource(path, dejitter=False)
    got: dict[str, list] = {}
    for block in src.iter_blocks(0.5):
        for chunk in block.chunks:
            got.setdefault(chunk.stream.key, []).append((chunk.timestamps, chunk.values))
    for s in src.xdf_streams:
        parts = got.get(s.spec.key, [])
        ts = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        np.testing.assert_array_equal(ts, s.timestamps)
        if parts and not s.is_string:
            np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), s.values())


def test_values_follow_samples_sorted_by_time():
    """Unsynchronised, clock_resets.xdf steps back ~650000 s: samples are sorted by time and
    their values come along (read through the permutation, in pieces)."""
    path = DATA / "examples" / "clock_resets.xdf"
    f = read_xdf(path, synchronize_clocks=False, dejitter=False)
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    ref = {s["info"]["stream_id"]: s for s in streams}
    for s in f.streams:
        r = ref[s.stream_id]
        order = np.argsort(r["time_stamps"], kind="stable")
        assert s._order is not None
        np.testing.assert_array_equal(s.timestamps, r["time_stamps"][order])
        want = np.asarray(r["time_series"], dtype=object if s.is_string else None)[order]
        got = np.concatenate([s.values(i, i + 1000) for i in range(0, len(s), 1000)])
        if s.is_string:
            assert got.tolist() == want.tolist()
        else:
            np.testing.assert_array_equal(got, want.astype(np.float64))


def test_labrecorder_layout_replays_to_the_same_trials(tmp_path, make_sim):
    """Issue 14, case 1 end to end: a Tobii + E4 session in LabRecorder's layout (regular
    streams first-stamped, 2-sample GSR chunks) replays to the trials of the same session as our
    writer lays it out, instead of reading as empty."""
    from acquisition.aligner import TrialEvent
    from acquisition.config import AcquisitionConfig
    from acquisition.core import Acquisition
    from acquisition.lsl.binding import bind_roles
    from acquisition.xdf.source import XdfSource
    from acquisition.xdf.writer import record_simulation

    def trials(path):
        src = XdfSource(path, dejitter=False)
        cfg = AcquisitionConfig()
        acq = Acquisition(bind_roles(src.streams, cfg.rules), cfg)
        return src, [e.trial for e in acq.run_offline(src, 0.5) if isinstance(e, TrialEvent)]

    ours = tmp_path / "ours.xdf"
    record_simulation(make_sim(device_set="tobii-e4", n_trials=3), ours, progress=False)
    lab = tmp_path / "labrecorder.xdf"
    corpus.transcode_labrecorder_style(ours, lab)
    src_ours, want = trials(ours)
    src_lab, got = trials(lab)
    assert not [w for w in src_lab.warnings if "cut off" in w or "damaged" in w]
    regular = [s for s in src_lab.xdf_streams if s.spec.nominal_srate > 0 and not s.is_string]
    # Deduced samples in every regular stream: GSR's 2-sample chunks are the E4_Bvp case.
    assert regular and all(0 < s._stamped.sum() <= len(s) / 2 for s in regular)
    for a, b in zip(src_ours.xdf_streams, src_lab.xdf_streams, strict=True):
        assert len(a) == len(b), a.spec.name
        np.testing.assert_array_equal(a.values(), b.values())
    assert len(got) == len(want) == 3
    for a, b in zip(want, got, strict=True):
        assert a.onset == pytest.approx(b.onset, abs=1e-6)


def test_values_of_a_file_replaced_after_reading(tmp_path):
    """Values come from the file as it was read, even once it is replaced or deleted."""
    path = tmp_path / "f.xdf"
    path.write_bytes((DATA / "first_stamped.xdf").read_bytes())
    f = read_xdf(path)
    tmp = tmp_path / "other.xdf"
    tmp.write_bytes((DATA / "formats.xdf").read_bytes())
    tmp.replace(path)  # an atomic replace, as a recorder finishing a file does
    want = {s.stream_id: s.values() for s in read_xdf(DATA / "first_stamped.xdf").streams}
    for s in f.streams:
        np.testing.assert_array_equal(s.values(), want[s.stream_id])
    path.unlink()
    assert f.streams[0].values(0, 3).shape == (3, f.streams[0].spec.channel_count)
    f.close()


@pytest.mark.parametrize("outliers", [False, True])
def test_robust_fit_equals_pyxdf(outliers: bool):
    """The early-stopping clock fit gives, bit for bit, pyxdf's 1000-iteration result."""
    from pyxdf import pyxdf as reference

    from acquisition.xdf import _pyxdf

    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 3600, 300))
    A = np.c_[np.ones_like(t), t]
    y = 0.012 + 2e-6 * t + rng.normal(0, 1e-4, len(t))
    if outliers:
        y[::11] += rng.choice([-3.0, 3.0], len(y[::11]))  # beyond the Huber threshold
    np.testing.assert_array_equal(_pyxdf._robust_fit(A, y), reference._robust_fit(A, y))


def test_median_equals_numpy():
    from acquisition.xdf import _pyxdf

    rng = np.random.default_rng(4)
    for n in range(1, 40):
        x = 5 + 1e-3 * rng.normal(size=n)
        assert _pyxdf.median(x) == np.median(x)
    assert np.isnan(_pyxdf.median(np.array([1.0, np.nan])))
