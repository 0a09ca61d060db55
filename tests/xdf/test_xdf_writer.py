"""Our writer: simulated sessions read back through pyxdf and our reader exactly as generated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyxdf

from acquisition.offline_acquisition import collect
from acquisition.xdf.reader import read_xdf
from acquisition.xdf.writer import XdfWriter, record_simulation, varlen


def test_varlen_widths():
    assert varlen(5) == b"\x01\x05"
    assert varlen(300) == b"\x04" + (300).to_bytes(4, "little")
    assert varlen(2**33)[0] == 8


def test_simulated_session_reads_back_identically(tmp_path, make_sim):
    # Float, int and string streams, regular and irregular.
    sim = make_sim(presets=("tobii", "polar-h10", "presentation", "psychopy"))
    path = tmp_path / "sim.xdf"
    info = record_simulation(sim, path, progress=False)
    ref = collect(sim)
    assert info["samples"] == {s.name: len(ref[s.key][0]) for s in sim.streams}
    streams, header = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    assert header["info"]["writer"] == ["emoeye"]
    assert header["info"]["participant"] == ["P01"]
    by_sid = {s["info"]["source_id"][0]: s for s in streams}
    assert set(by_sid) == {s.source_id for s in sim.streams}
    for spec in sim.streams:
        ts, values = ref[spec.key]
        got = by_sid[spec.source_id]
        assert got["info"]["channel_format"] == [spec.channel_format]
        assert np.array_equal(got["time_stamps"], ts), spec.name
        if spec.is_string:
            assert [r[0] for r in got["time_series"]] == list(values[:, 0]), spec.name
        else:
            assert np.array_equal(np.asarray(got["time_series"]), values, equal_nan=True), spec.name
        labels = [ch["label"][0] for ch in got["info"]["desc"][0]["channels"][0]["channel"]]
        assert tuple(labels) == spec.channel_labels
    # Our reader agrees with pyxdf's timestamps (dejittered too) and with the values.
    ours = read_xdf(path)
    assert not ours.warnings
    streams, _ = pyxdf.load_xdf(str(path))
    by_sid = {s["info"]["source_id"][0]: s for s in streams}
    for s in ours.streams:
        assert np.allclose(s.timestamps, by_sid[s.spec.source_id]["time_stamps"], atol=1e-12)
        spec = next(x for x in sim.streams if x.key == s.spec.key)
        assert s.spec == dataclasses.replace(spec, uid=s.spec.uid, hostname=s.spec.hostname)
        ts, values = ref[s.spec.key]
        assert np.allclose(s.timestamps, ts, atol=1e-9)
        if not s.is_string:
            assert np.array_equal(s.values(), values.astype(np.float64), equal_nan=True)


def test_writer_flushes_boundaries_and_offsets(tmp_path, make_sim):
    sim = make_sim()
    path = tmp_path / "s.xdf"
    record_simulation(sim, path, progress=False, block_seconds=0.5)
    data = path.read_bytes()
    from acquisition.xdf.reader import BOUNDARY

    # A boundary about every second of data, clock offsets every 5 s per stream.
    assert data.count(BOUNDARY) >= sim.duration - 2
    f = read_xdf(path)
    for s in f.streams:
        assert len(s.clock_times) >= sim.duration // 5
    # Everything but the footers is on disk before close (flushed at once with flush_seconds=0).
    w = XdfWriter(tmp_path / "live.xdf", flush_seconds=0.0)
    sid = w.add_stream(sim.streams[0])
    t, v = sim.samples(0, 0.0, 2.0)
    w.write_samples(sid, t, v)
    size_open = (tmp_path / "live.xdf").stat().st_size
    w.close()
    assert size_open > v.nbytes
    assert len(read_xdf(tmp_path / "live.xdf").streams[0]) == len(t)


def test_participant_schedule_in_header(sim_file):
    sim, path = sim_file
    f = read_xdf(path)
    assert f.header_value("participant_schedule") == (
        f"P01@{sim.start_time!r};P02@{sim.start_time + sim.participant_seconds!r}"
    )
