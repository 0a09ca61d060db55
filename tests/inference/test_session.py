"""Sessions: offline prediction through the worker, and the live path over real LSL
(simulated devices → LiveSession → predictions in the log and on the EmoEye-Predictions outlet),
and the ``emoeye run`` command."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pylsl
import pytest

from acquisition.config import AcquisitionConfig
from acquisition.lsl.live import LiveAcquisition, discover
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.player import LslPlayer
from emoeye.errors import CliError
from emoeye.headless import HeadlessView, format_prediction
from emoeye.session import LiveSession, SessionConfig, predict_offline
from inference.sinks import OUTLET_NAME, OUTLET_TYPE, outlet_labels


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_offline_one_prediction_per_trial(checkpoint, tmp_path):
    sim = Simulation(SimulationConfig(n_trials=4, isi=6, seed=2))
    seen = []
    result = predict_offline(
        sim,
        AcquisitionConfig(),
        checkpoint,
        tmp_path / "p.jsonl",
        csv_path=tmp_path / "p.csv",
        on_trial=seen.append,
    )
    truth = [g["stimulus_id"] for g in sim.ground_truth()]
    preds = result["predictions"]
    assert [p.stimulus_id for p in preds] == truth == [t.stimulus_id for t in seen]
    assert result["aligner"]["trials_cut"] == 4 and result["worker"]["predicted"] == 4
    assert result["device"] == "cpu" and "predictions" in result and "model" not in result
    # The stimulus branch ran at each onset, not when the trial closed.
    assert result["worker"]["embeds_at_onset"] == 4
    assert result["worker"]["embeds_late"] == 0
    records = read_jsonl(tmp_path / "p.jsonl")
    events = [r["event"] for r in records]
    assert events[0] == "session" and events[-1] == "session_end"
    assert events.count("prediction") == 4 and events.count("rating") == 4
    assert (tmp_path / "p.csv").read_text().count("\nprediction,") == 4
    # .csv as the main log picks the CSV sink.
    predict_offline(sim, AcquisitionConfig(), checkpoint, tmp_path / "only.csv")
    assert (tmp_path / "only.csv").read_text().startswith("event,trial_id")


def test_predict_offline_missing_role_is_a_clear_error(checkpoint):
    sim = Simulation(SimulationConfig(device_set="gazepoint", n_trials=1))
    sim.streams = [s for s in sim.streams if s.type != "Markers"]
    with pytest.raises(CliError, match="markers"):
        predict_offline(sim, AcquisitionConfig(), checkpoint)


@pytest.mark.lsl
@pytest.mark.timeout(90)
def test_live_session_end_to_end_over_lsl(checkpoint, tmp_path, uid):
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=3, isi=6, lead_in=1.5, source_tag=uid)
    )
    truth = [g["stimulus_id"] for g in sim.ground_truth()]
    player = LslPlayer(sim, speed=1.0, wait_consumers=15.0)
    config = AcquisitionConfig()
    visible = discover(5.0, [s.source_id for s in sim.streams])
    live = LiveAcquisition(config, streams=visible)
    session = LiveSession(
        config,
        SessionConfig(
            checkpoint=checkpoint,
            log_path=tmp_path / "p.jsonl",
            outlet_source_id=f"pred-{uid}",
        ),
        live=live,
        say=lambda *_: None,
    )
    inlet = None
    before = sys.getswitchinterval()
    try:
        session.start()
        assert sys.getswitchinterval() == pytest.approx(0.001)
        # Resolve our outlet the way LabRecorder or a viewer would: by name and type.
        infos = pylsl.resolve_bypred(
            f"name='{OUTLET_NAME}' and type='{OUTLET_TYPE}'", minimum=1, timeout=5.0
        )
        (info,) = [i for i in infos if i.source_id() == f"pred-{uid}"]
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(timeout=5.0)
        session.start_recording(tmp_path / "session.xdf")
        assert session.recording == tmp_path / "session.xdf"
        player.start()
        deadline = time.monotonic() + sim.duration + 15
        while session.store.count < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        samples, stamps = [], []
        while len(samples) < 3 and time.monotonic() < deadline:
            chunk, ts = inlet.pull_chunk(timeout=0.5)
            samples += chunk
            stamps += ts
        text = io.StringIO()
        view = HeadlessView(session, out=text, rich_view=False)
        assert view.print_new() == 3
        panel = HeadlessView(session, out=io.StringIO(), rich_view=True).render()
        rec = session.stop_recording()
    finally:
        del inlet  # inlets before outlets
        summary = session.stop()
        player.close()
    assert session.recording is None
    assert sys.getswitchinterval() == before
    assert player.error is None
    preds = session.store.latest(10)
    assert [p.stimulus_id for p in preds] == truth
    assert summary["trials_cut"] == 3 and summary["drained"]
    assert summary["worker"]["overflowed"] == 0 and summary["worker"]["errors"] == 0
    assert summary["worker"]["embeds_at_onset"] == 3  # stimulus branch ran at onset
    assert summary["worker"]["embeds_late"] == 0
    for p in preds:
        assert p.latency_ms["embed"] < p.latency_ms["total"] < 1000
    records = read_jsonl(tmp_path / "p.jsonl")
    logged = [r for r in records if r["event"] == "prediction"]
    assert [r["trial_id"] for r in logged] == [p.trial_id for p in preds]
    assert len({r["trial_id"] for r in logged}) == 3
    assert sum(r["event"] == "rating" for r in records) == 3
    assert records[-1]["event"] == "session_end"
    # The outlet carried one sample per prediction, stamped with the trial's onset.
    assert len(samples) == 3
    idx = outlet_labels().index("sequence")
    assert [s[idx] for s in samples] == [1, 2, 3]
    assert stamps == pytest.approx([p.onset for p in preds], abs=1e-4)
    # The recording holds the raw streams and the predictions beside them.
    import pyxdf

    assert {"GazepointEyeTracker", "EmoEye-Predictions"} <= set(rec["streams"])
    streams, _ = pyxdf.load_xdf(str(tmp_path / "session.xdf"), dejitter_timestamps=False)
    names = [st["info"]["name"][0] for st in streams]
    assert sorted(names) == sorted(
        ["GazepointEyeTracker", "PsychoPyMarkers", "EmoEye-Predictions", "EmoEye-PredictionIds"]
    )
    by_name = dict(zip(names, streams, strict=True))
    recorded = by_name["EmoEye-Predictions"]
    assert len(recorded["time_stamps"]) == 3
    assert recorded["time_stamps"] == pytest.approx([p.onset for p in preds], abs=0.01)
    assert len(by_name["EmoEye-PredictionIds"]["time_series"]) == 3
    assert len(by_name["GazepointEyeTracker"]["time_stamps"]) > 60 * 10
    lines = text.getvalue().splitlines()
    assert lines == [format_prediction(p) for p in preds]
    assert lines[0].startswith(f"prediction trial {preds[0].trial_id} {truth[0]}: arousal ")
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160)
    console.print(panel)
    out = console.file.getvalue()
    assert "GazepointEyeTracker" in out and preds[-1].stimulus_id in out


@pytest.mark.lsl
@pytest.mark.timeout(110)
def test_emoeye_run_headless_cli_sigterm_flushes_pending_trial(checkpoint, tmp_path, uid):
    """``emoeye run`` prints a line per prediction; SIGTERM while a trial's window is still open
    cuts it and closes the log. Its window holds ~1.5 s of 5 (below ``trial.min_coverage``), so
    it is not predicted: a ``no_data`` record with the reason stands for it."""
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=2, isi=5, lead_in=1.0, source_tag=uid)
    )
    player = LslPlayer(sim, speed=1.0, wait_consumers=60.0).start()
    log = tmp_path / "run.jsonl"
    env = dict(os.environ)  # LSLAPICFG of this test run: the child sees our streams only
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "emoeye", "run", "--checkpoint", str(checkpoint), "--log"]
    cmd += [str(log), "--wait", "20", "--no-outlet", "--headless"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    try:
        deadline = time.monotonic() + 80
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line.rstrip("\n"))
            if line.startswith("prediction trial"):
                break
        # The second onset (5 s after the first) is in; its window is still open.
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        player.close()
    out += rest.splitlines()
    assert proc.returncode == 0, err
    lines = [x for x in out if x.startswith("prediction trial")]
    assert len(lines) == 1 and "FLAGGED" not in lines[0], "\n".join(out)
    (no_data,) = [x for x in out if x.startswith("no usable data trial")]
    assert "min_coverage 0.5" in no_data
    assert any(x.startswith("stopped: 2 onset(s), 2 trial(s) cut; 1 predicted") for x in out)
    assert f"predictions log: {log}" in out
    records = read_jsonl(log)
    preds = [r for r in records if r["event"] in ("prediction", "no_data")]
    assert [r["event"] for r in preds] == ["prediction", "no_data"]
    assert records[-1]["event"] == "session_end"
    assert records[-1]["onsets"] == 2 and records[-1]["trials_no_data"] == 1
    assert not preds[1]["quality"]["complete"] and preds[1]["flagged"]
    assert preds[1]["error"].startswith("no usable data: gaze: usable data 0.")
    assert any("cut at shutdown" in n for n in preds[1]["quality"]["notes"])


def test_emoeye_run_reports_bad_model_and_device(tmp_path, capsys, checkpoint):
    import torch

    from emoeye.cli import main

    rc = main(["run", "--checkpoint", str(tmp_path / "nope"), "--log", str(tmp_path / "x.jsonl")])
    assert rc == 2
    assert "cannot load the model" in capsys.readouterr().err
    if not torch.cuda.is_available():
        log = str(tmp_path / "y.jsonl")
        rc = main(["run", "--checkpoint", str(checkpoint), "--device", "cuda", "--log", log])
        assert rc == 2
        assert "no CUDA GPU" in capsys.readouterr().err
