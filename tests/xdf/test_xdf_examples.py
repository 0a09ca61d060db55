"""The real example files (tests/data/xdf/examples, MIT): values as their README documents,
timestamps as pyxdf computes them, and the problems of each file reported."""

from __future__ import annotations

import numpy as np
import pytest
import pyxdf

from acquisition.xdf.reader import read_xdf
from acquisition.xdf.source import XdfSource


def pyxdf_streams(path):
    streams, _ = pyxdf.load_xdf(str(path))
    return {s["info"]["stream_id"]: s for s in streams}


def test_minimal_values_as_documented(shared_xdf_dir):
    f = read_xdf(shared_xdf_dir / "minimal.xdf")
    (ints,) = [s for s in f.streams if s.spec.name == "SendDataC"]
    (strs,) = [s for s in f.streams if s.spec.name == "SendDataString"]
    assert ints.spec.channel_count == 3 and ints.spec.channel_format == "int16"
    assert ints.spec.nominal_srate == 10 and strs.stream_id == 0x02C0FFEE
    v = ints.values()
    assert v.shape == (9, 3)
    assert v[0].tolist() == [192, 255, 238]
    assert v[1:5].tolist() == [[12, 22, 32], [13, 23, 33], [14, 24, 34], [15, 25, 35]]
    assert v[5:].tolist() == v[1:5].tolist()
    words = [row[0] for row in strs.values()]
    assert words[0].startswith("<?xml") and "<sample_count>9</sample_count>" in words[0]
    assert words[1:] == ["Hello", "World", "from", "LSL"] * 2
    # Raw timestamps 5.1..5.9; clock offset -0.1 s applies to the int stream only.
    assert np.allclose(strs.timestamps, 5.1 + 0.1 * np.arange(9))
    assert np.allclose(ints.timestamps, 5.0 + 0.1 * np.arange(9))
    ref = pyxdf_streams(shared_xdf_dir / "minimal.xdf")
    for s in f.streams:
        assert np.allclose(s.timestamps, ref[s.stream_id]["time_stamps"], atol=1e-9)
    assert any("SendDataString" in w and "no clock offsets" in w for w in f.warnings)


def test_clock_resets_handled_and_reported(shared_xdf_dir):
    path = shared_xdf_dir / "clock_resets.xdf"
    f = read_xdf(path)
    counts = {s.spec.name: len(s) for s in f.streams}
    assert counts == {"MyMarkerStream": 175, "BioSemi": 27815}
    ref = pyxdf_streams(path)
    for s in f.streams:
        assert np.all(np.diff(s.timestamps) >= 0), "monotonic after reset handling"
        assert len(s.clock_segments) == 2
        assert np.allclose(s.timestamps, ref[s.stream_id]["time_stamps"], atol=1e-9)
        assert np.array_equal(
            s.values(), np.asarray(ref[s.stream_id]["time_series"], dtype=s.values().dtype)
        )
    resets = [w for w in f.warnings if "clock reset" in w]
    assert len(resets) == 2
    # Without handling, the raw stamps jump back by ~650000 s: sorted and reported.
    raw = read_xdf(path, synchronize_clocks=False, dejitter=False)
    assert any("went backwards" in w for w in raw.warnings)
    assert all(np.all(np.diff(s.timestamps) >= 0) for s in raw.streams)


def test_empty_streams_reported(shared_xdf_dir):
    f = read_xdf(shared_xdf_dir / "empty_streams.xdf")
    by_name = {s.spec.name: s for s in f.streams}
    assert len(by_name) == 4
    empty = [w for w in f.warnings if "is empty" in w]
    assert len(empty) == 2
    assert all("Empty" in w for w in empty)
    data = by_name["Data stream: test stream 0 counter"]
    assert data.values()[:, 0].tolist() == list(range(10))
    assert data.spec.channel_labels == ("ch:00",) and data.spec.manufacturer == "pylsltools"
    assert by_name["ctrl"].values().tolist() == [['{"state": 2}']]
    assert by_name["Empty data stream: test stream 0 counter"].values().shape == (0, 1)
    assert f.header_value("datetime") == "2025-01-31T00:21:17+0000"


@pytest.mark.parametrize("name", ["minimal", "clock_resets", "empty_streams"])
def test_source_blocks_deliver_every_sample_in_order(shared_xdf_dir, name):
    src = XdfSource(shared_xdf_dir / f"{name}.xdf")
    got: dict[str, list] = {}
    last_end = -np.inf
    for block in src.iter_blocks(0.5):
        assert block.t_end > last_end
        for chunk in block.chunks:
            assert np.all(chunk.timestamps < block.t_end)
            assert np.all(chunk.timestamps >= last_end)
            assert chunk.values.shape == (len(chunk), chunk.stream.channel_count)
            got.setdefault(chunk.stream.key, []).append(chunk.timestamps)
        last_end = block.t_end
    for s in src.xdf_streams:
        ts = np.concatenate(got.get(s.spec.key, [np.zeros(0)]))
        assert np.array_equal(ts, s.timestamps)
