"""Damaged files: cut off at any byte, no footer, corrupted bytes, not XDF at all."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.streams import StreamSpec
from acquisition.xdf.reader import XdfError, read_xdf
from acquisition.xdf.writer import XdfWriter, write_streams

GAZE = StreamSpec("Gaze", "Gaze", 3, 100.0, "float32", "gz-1", ("x", "y", "p"))
MARK = StreamSpec("Mk", "Markers", 1, 0.0, "string", "mk-1")


def make_file(path, seconds: float = 20.0):
    rng = np.random.default_rng(0)
    n = int(seconds * 100)
    tg = 100 + np.arange(n) / 100
    vg = rng.random((n, 3)).astype(np.float32)
    tm = 100 + np.arange(1, seconds, 2.0)
    vm = np.array([[f"onset:m{i}"] for i in range(len(tm))], dtype=object)
    write_streams(path, [(GAZE, tg, vg), (MARK, tm, vm)], chunk_seconds=0.5)
    return tg, vg, tm, vm


def cut_offsets(size: int) -> list[int]:
    head = list(range(0, 400, 7))
    spread = np.linspace(400, size - 1, 40).astype(int).tolist()
    return sorted(set(head + spread + [size - 1, size - 5, size - 17]))


def test_truncated_at_any_byte_loads_what_is_there(tmp_path):
    full = tmp_path / "full.xdf"
    tg, vg, tm, vm = make_file(full)
    data = full.read_bytes()
    cut = tmp_path / "cut.xdf"
    for off in cut_offsets(len(data)):
        cut.write_bytes(data[:off])
        if off < 4:
            with pytest.raises(XdfError):
                read_xdf(cut)
            continue
        f = read_xdf(cut, dejitter=False)
        streams = {s.spec.name: s for s in f.streams}
        if "Gaze" in streams:
            g = streams["Gaze"]
            n = len(g)
            assert np.array_equal(g.timestamps, tg[:n]), off
            assert np.array_equal(g.values(dtype=np.float32), vg[:n]), off
        if "Mk" in streams:
            m = streams["Mk"]
            assert m.values().tolist() == vm[: len(m)].tolist(), off
        if off < len(data):
            assert f.warnings, f"no warning for a file cut at {off}"


def test_truncated_sample_chunk_keeps_complete_samples(tmp_path):
    path = tmp_path / "f.xdf"
    with XdfWriter(path) as w:
        sid = w.add_stream(GAZE)
        w.write_samples(sid, np.arange(50) / 100, np.ones((50, 3)))
    data = path.read_bytes()
    # Cut in the middle of the (only) sample chunk: 9 + 12 bytes per sample.
    start = data.index(b"\x03\x00\x01\x00\x00\x00") + 6 + 2  # tag, stream id, varlen count
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(data[: start + 21 * 20 + 10])
    f = read_xdf(cut, dejitter=False)
    assert len(f.streams[0]) == 20
    assert any("kept 20 of its 50" in w for w in f.warnings)


def test_no_footer_while_recording(tmp_path):
    """A file being written (or left by a crash) reads up to its last flush, footers missing."""
    path = tmp_path / "live.xdf"
    w = XdfWriter(path, flush_seconds=0.0)
    sid = w.add_stream(GAZE)
    w.write_samples(sid, np.arange(100) / 100, np.zeros((100, 3)))
    w.write_clock_offset(sid, 1.0, 0.0)
    f = read_xdf(path)
    assert len(f.streams[0]) == 100
    assert any("no footer" in m for m in f.warnings)
    w.close()
    f = read_xdf(path)
    assert not f.warnings


def test_corrupted_bytes_lose_one_chunk_at_most(tmp_path):
    path = tmp_path / "f.xdf"
    tg, vg, _, _ = make_file(path)
    data = bytearray(path.read_bytes())
    pos = len(data) // 3
    data[pos : pos + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    f = read_xdf(path, dejitter=False)
    g = f.by_name("Gaze")
    # The chunk holding the damage keeps its samples before it; the next chunk header is
    # intact, so reading resumes there and the loss stays inside that one 50-sample chunk.
    assert any("damaged sample chunk" in w and "resumes at the next chunk" in w for w in f.warnings)
    assert len(tg) - 50 < len(g) < len(tg)
    # What was read is genuine: every timestamp is one of the written ones, and the values
    # match but for the sample the damage starts in.
    assert np.all(np.isfinite(g.timestamps))
    idx = np.searchsorted(tg, g.timestamps)
    assert np.array_equal(tg[idx], g.timestamps)
    wrong = np.any(vg[idx] != g.values(dtype=np.float32), axis=1)
    assert wrong.sum() <= 1
    assert g.timestamps[-1] == tg[-1], "data after the damage is read again"


def test_not_xdf(tmp_path):
    p = tmp_path / "x.xdf"
    p.write_bytes(b"RIFF0000")
    with pytest.raises(XdfError, match="magic"):
        read_xdf(p)
    with pytest.raises(XdfError, match="cannot open"):
        read_xdf(tmp_path / "missing.xdf")


def test_unix_epoch_stream_mapped_and_reported(tmp_path):
    gsr = StreamSpec("E4_Gsr", "GSR", 1, 4.0, "float32", "e4-1", ("gsr",))
    t_local = 1000 + np.arange(400) / 100
    t_unix = 1.7e9 + 5.0 + np.arange(40) / 4
    data = [(GAZE, t_local, np.zeros((400, 3))), (gsr, t_unix, np.ones((40, 1)))]
    exact = tmp_path / "pair.xdf"
    write_streams(exact, data, metadata={"clock_pair": f"{1000.0!r} {1.7e9!r}"})
    f = read_xdf(exact, dejitter=False)
    g = f.by_name("E4_Gsr")
    assert g.unix_epoch and not f.by_name("Gaze").unix_epoch
    assert np.allclose(g.timestamps, 1005.0 + np.arange(40) / 4)
    assert any("Unix-epoch" in w and "clock pair" in w for w in f.warnings)
    rough = tmp_path / "rough.xdf"
    write_streams(rough, data)
    f = read_xdf(rough, dejitter=False)
    assert np.isclose(f.by_name("E4_Gsr").timestamps[0], 1000.0)
    assert any("Unix-epoch" in w and "approximately" in w for w in f.warnings)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("run", [1, 2])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1e300, 1e300, 5.0])
def test_garbage_timestamps_replay_in_finite_blocks(tmp_path, bad, run):
    """Stamps that a corrupted chunk turned into garbage: blocks still end. One stray stamp or
    unreadable ones are dropped and counted; two garbage stamps in a row are sorted, reported."""
    from acquisition.xdf.source import XdfSource

    path = tmp_path / "g.xdf"
    ts = 100 + np.arange(200) / 100
    ts[120 : 120 + run] = bad
    vals = np.arange(600, dtype=np.float32).reshape(200, 3)
    with XdfWriter(path) as w:
        sid = w.add_stream(GAZE)
        w.write_samples(sid, ts, vals)
    src = XdfSource(path, dejitter=False, synchronize_clocks=False, handle_clock_resets=False)
    blocks = list(src.iter_blocks(0.5))
    got = np.concatenate([c.timestamps for b in blocks for c in b.chunks])
    assert np.all(np.isfinite(got)) and np.all(np.diff(got) >= 0)
    if not np.isfinite(bad):
        assert len(got) == 200 - run
        warning = f"{run} sample(s) with unreadable timestamps dropped"
    elif run == 1:  # out of line with both neighbours (1e300 would stretch the stream)
        assert len(got) == 199
        warning = "1 sample(s) with a corrupt timestamp (far out of line"
    else:  # each agrees with one neighbour: kept, sorted by the reader (1e300 last)
        assert len(got) == 200
        warning = "1 timestamp(s) went backwards"
    assert any(warning in m for m in src.warnings), src.warnings
