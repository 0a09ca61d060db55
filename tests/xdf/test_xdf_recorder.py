"""Recording a live LSL session (simulated devices played in real time) and replaying it.

Inlets (the recorder's) always go before the player's outlets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pylsl
import pytest

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.offline_acquisition import collect
from acquisition.xdf.player import LslPlayer
from acquisition.xdf.recorder import Recorder, RecorderUnavailable, labrecorder_available
from acquisition.xdf.source import XdfSource

pytestmark = pytest.mark.lsl

ONE_TRIAL = dict(n_trials=1, isi=6.5, lead_in=0.5, rating_delay=6.0, seed=5)  # 7 s of data


def trials_of(source) -> list:
    cfg = AcquisitionConfig()
    acq = Acquisition(bind_roles(source.streams, cfg.rules), cfg)
    return [e.trial for e in acq.run_offline(source, 0.5) if isinstance(e, TrialEvent)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", ["labrecorder", "emoeye"])
def test_live_recording_replays_to_the_same_samples_and_trials(make_sim, tmp_path, backend):
    if backend == "labrecorder" and not labrecorder_available():
        pytest.skip("labrecorder package not installed")
    sim = make_sim(**ONE_TRIAL)
    ref = collect(sim)
    path = tmp_path / f"live-{backend}.xdf"
    player = LslPlayer(sim, speed=1.0, wait_consumers=10.0)
    try:
        recorder = Recorder(path, source_ids=[s.source_id for s in sim.streams], backend=backend)
        recorder.start()
        player.start()
        assert player.wait_started(15.0), "the recorder never connected"
        assert player.join(timeout=20.0)
        time.sleep(1.0)  # let the last chunks reach the recorder
        summary = recorder.stop()
    finally:
        player.close()
    assert summary["bytes"] > 0 and sorted(summary["streams"]) == sorted(
        s.name for s in sim.streams
    )
    src = XdfSource(path)
    assert not [w for w in src.warnings if "cut off" in w or "unreadable" in w]
    for spec in sim.streams:
        got = next(s for s in src.xdf_streams if s.spec.source_id == spec.source_id)
        ts, values = ref[spec.key]
        assert got.spec.channel_labels == spec.channel_labels
        assert len(got) == len(ts), f"{spec.name}: {len(got)} of {len(ts)} samples recorded"
        if spec.is_string:
            assert got.values()[:, 0].tolist() == values[:, 0].tolist()
        else:
            assert np.allclose(got.values(), values, equal_nan=True)
        # Same spacing as generated (the whole session shifted onto the LSL clock).
        local = player.to_local(ts, spec.key)
        shift = got.timestamps - local
        assert np.ptp(shift) < 2e-3, spec.name
    # The recording cuts the trial the simulation holds (onset moved by the clock mapping).
    (live,) = trials_of(src)
    (direct,) = trials_of(sim)
    assert live.stimulus_id == direct.stimulus_id
    assert abs(live.onset - player.to_local(direct.onset)) < 2e-3
    assert live.ratings is not None and live.ratings.arousal == direct.ratings.arousal
    assert np.allclose(live.signals, direct.signals, atol=0.05, equal_nan=True)


def test_recorder_unavailable_message(monkeypatch, tmp_path):
    import acquisition.xdf.recorder as rec

    monkeypatch.setattr(rec, "labrecorder_available", lambda: False)
    with pytest.raises(RecorderUnavailable, match="pip install"):
        Recorder(tmp_path / "x.xdf", backend="labrecorder")
    assert Recorder(tmp_path / "x.xdf", backend="auto").backend == "emoeye"
    with pytest.raises(ValueError, match="backend"):
        Recorder(tmp_path / "x.xdf", backend="nope")


@pytest.mark.timeout(60)
def test_replay_realtime_republishes_the_file(sim_file):
    sim, path = sim_file
    ref = collect(sim)
    markers = next(s for s in sim.streams if s.is_string)
    gaze = next(s for s in sim.streams if not s.is_string)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emoeye",
            "replay",
            str(path),
            "--realtime",
            "--speed",
            "4",
            "--wait-consumers",
            "30",
        ],
        env=os.environ.copy(),  # the test run's LSL session config
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        inlets = {}
        for spec in (gaze, markers):
            found = pylsl.resolve_byprop("source_id", spec.source_id, minimum=1, timeout=20.0)
            assert found, f"{spec.name} not republished"
            inlets[spec.key] = pylsl.StreamInlet(found[0], max_buflen=60)
            inlets[spec.key].open_stream(timeout=5.0)
        info = inlets[gaze.key].info(timeout=5.0)
        assert info.name() == gaze.name and info.nominal_srate() == gaze.nominal_srate
        got: dict[str, list] = {k: [] for k in inlets}
        stamps: dict[str, list] = {k: [] for k in inlets}
        deadline = time.monotonic() + 25.0
        while time.monotonic() < deadline and len(got[markers.key]) < 2:
            for key, inlet in inlets.items():
                values, ts = inlet.pull_chunk(timeout=0.05)
                got[key].extend(values)
                stamps[key].extend(ts)
        for inlet in inlets.values():
            inlet.close_stream()
        del inlet, inlets  # before the replay's outlets go
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "replaying over LSL at 4x" in out
    # The first markers of the file arrive in order, with the original spacing / 4.
    first = [row[0] for row in got[markers.key][:2]]
    assert first == ref[markers.key][1][:2, 0].tolist()
    spacing = np.diff(stamps[markers.key][:2])[0]
    assert abs(spacing - np.diff(ref[markers.key][0][:2])[0] / 4) < 1e-3
    g = np.asarray(got[gaze.key])
    assert len(g) > 100
    rows = ref[gaze.key][1]
    # Received gaze rows are a contiguous run of the file's rows.
    k = int(np.flatnonzero(np.all(np.isclose(rows, g[0], equal_nan=True), axis=1))[0])
    assert np.allclose(g, rows[k : k + len(g)], equal_nan=True)


@pytest.mark.timeout(60)
def test_default_recorder_adds_late_streams_and_is_readable_while_recording(tmp_path, uid):
    """Ours (the default back end) is connected when ``start()`` returns, takes a stream that
    appears later (``add``), and its file reads while it records (what a crash leaves)."""
    from acquisition.lsl.presets import PRESETS
    from acquisition.xdf.player import make_outlet

    mk = PRESETS["psychopy"][0].spec(f"mk-{uid}", name=f"Markers-{uid}")
    gsr = PRESETS["shimmer"][0].spec(f"gsr-{uid}", name=f"Shimmer-{uid}")
    outlets = {"mk": make_outlet(mk)}
    (mk_info,) = pylsl.resolve_byprop("source_id", mk.source_id, minimum=1, timeout=10.0)
    path = tmp_path / "rec.xdf"
    recorder = Recorder(path, streams=[mk_info])
    assert recorder.backend == "emoeye"
    recorder.start()
    try:
        # Connected already: a sample pushed right after start() is recorded.
        first = pylsl.local_clock()
        outlets["mk"].push_sample(["onset:coffee"], first)
        outlets["gsr"] = make_outlet(gsr)
        (gsr_info,) = pylsl.resolve_byprop("source_id", gsr.source_id, minimum=1, timeout=10.0)
        assert recorder.add(gsr_info) and not recorder.add(gsr_info)  # once
        time.sleep(0.5)  # the writer thread connects the added inlet
        n = gsr.channel_count
        t0 = pylsl.local_clock()
        for k in range(40):  # 128 Hz for ~0.3 s
            outlets["gsr"].push_sample([1.0 + k] * n, t0 + k / 128)
        time.sleep(2.5)  # > one flush period
        mid = XdfSource(path)  # the file as a kill -9 would leave it
        by_sid = {s.spec.source_id: s for s in mid.xdf_streams}
        assert by_sid[mk.source_id].values()[:, 0].tolist() == ["onset:coffee"]
        assert abs(by_sid[mk.source_id].timestamps[0] - first) < 1e-3
        assert len(by_sid[gsr.source_id]) == 40
    finally:
        summary = recorder.stop()
        outlets.clear()
    assert summary["streams"] == [mk.name, gsr.name]
