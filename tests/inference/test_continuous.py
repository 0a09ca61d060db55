"""Continuous mode: windows every ``step`` seconds through the one trial path, beside the trials,
offline and live over real LSL."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import numpy as np
import pylsl
import pytest
from rich.console import Console

from acquisition.config import AcquisitionConfig
from acquisition.lsl.live import LiveAcquisition, discover
from acquisition.offline_acquisition import offline_acquisition
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.trials.continuous import NO_STIMULUS, StepTooSmallError, check_step
from acquisition.trials.cut import cut_trial
from acquisition.trials.types import TrialSpec
from acquisition.xdf.player import LslPlayer
from emoeye.errors import CliError
from emoeye.headless import HeadlessView
from emoeye.session import LiveSession, SessionConfig, predict_offline, summary_line
from inference.sinks import IDS_OUTLET_TYPE, CsvSink


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_step_below_the_grid_period_is_refused():
    spec = TrialSpec(grid_rate=60.0)
    assert check_step(1 / 60, spec) == pytest.approx(1 / 60)
    assert check_step(0.5, spec) == 0.5
    for bad in (0.01, 0.0, -1.0, float("nan")):
        with pytest.raises(StepTooSmallError) as exc:
            check_step(bad, spec)
        assert "\n" not in str(exc.value)
    assert "grid period" in str(pytest.raises(StepTooSmallError, check_step, 0.01, spec).value)


def test_windows_are_cut_trials_on_the_step_grid():
    """Every window is exactly what cut_trial gives for onset = end - duration (the one trial
    path), ends lie on multiples of the step, and the stimulus is the newest onset's."""
    sim = Simulation(SimulationConfig(n_trials=3, isi=6, lead_in=8.0, seed=5))
    config = AcquisitionConfig()
    acq = offline_acquisition(sim, config, "test")
    acq.enable_continuous(0.5)
    events = list(acq.run_offline(sim, 1.0))
    windows = [e.trial for e in events if e.trial is not None and e.trial.mode == "continuous"]
    trials = [e.trial for e in events if e.trial is not None and e.trial.mode == "trial"]
    assert len(trials) == 3
    spec = config.trial
    ends = np.array([w.onset + spec.duration for w in windows])
    assert np.allclose(ends / 0.5, np.round(ends / 0.5))
    assert np.allclose(np.diff(ends), 0.5)
    # From one window length after the first data to the end of the data.
    assert ends[0] == pytest.approx(sim.start_time + 1.0 + spec.duration)
    assert ends[-1] == pytest.approx(sim.end_time)
    onsets = [g["onset"] for g in sim.ground_truth()]
    stims = [g["stimulus_id"] for g in sim.ground_truth()]
    for w in windows:
        end = w.onset + spec.duration
        before = [s for t, s in zip(onsets, stims, strict=True) if t < end]
        assert w.stimulus_id == (before[-1] if before else NO_STIMULUS)
    assert windows[0].stimulus_id == NO_STIMULUS
    assert any("neutral stimulus embedding" in n for n in windows[0].quality.notes)
    # The same data cut directly gives the same arrays.
    acq2 = offline_acquisition(sim, config, "test")
    for block in sim.iter_blocks(1.0):
        for chunk in block.chunks:
            acq2.write(chunk)
    w = windows[7]
    ref = cut_trial(w.trial_id, w.onset, w.stimulus_id, acq2.roles, spec, complete=True)
    assert np.array_equal(ref.signals, w.signals) and np.array_equal(ref.mask, w.mask)
    assert np.array_equal(ref.scanpath, w.scanpath)


def test_predict_offline_continuous_beside_trials(checkpoint, tmp_path):
    sim = Simulation(SimulationConfig(n_trials=3, isi=6, lead_in=7.0, seed=2))
    seen = []
    old_csv = tmp_path / "old.csv"  # a log started by an older version: no mode column
    old_csv.write_text("event,trial_id,onset\nprediction,0,1.0\n")
    result = predict_offline(
        sim,
        AcquisitionConfig(),
        checkpoint,
        tmp_path / "p.jsonl",
        csv_path=tmp_path / "p.csv",
        on_trial=seen.append,
        continuous_step=1.0,
        sinks=[CsvSink(old_csv)],
    )
    preds = result["predictions"]
    trials = [p for p in preds if p.mode == "trial"]
    windows = [p for p in preds if p.mode == "continuous"]
    assert len(trials) == 3 == len(seen) and all(t.mode == "trial" for t in seen)
    assert len(windows) == result["continuous"]["cut"] == int(sim.duration - 1 - 5) + 1
    assert result["worker"]["predicted"] == 3  # the trial counters stay one per onset
    assert result["worker"]["continuous"] == {"predicted": len(windows)}
    assert result["worker"]["embeds_late"] == 0
    assert all(w.trial_id.startswith("c") or "-c" in w.trial_id for w in windows)
    assert not windows[0].stimulus_id and not windows[0].flagged
    records = read_jsonl(tmp_path / "p.jsonl")
    logged = [r for r in records if r["event"] == "prediction"]
    assert sorted(r["mode"] for r in logged) == sorted(
        ["trial"] * 3 + ["continuous"] * len(windows)
    )
    assert records[0]["continuous_step"] == 1.0
    assert records[-1]["continuous"]["cut"] == len(windows)
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["event"] == "prediction"]
    assert [r["mode"] for r in rows].count("continuous") == len(windows)
    assert [r["mode"] for r in rows].count("trial") == 3
    # Appending to an older log keeps its header: every row has its columns, no more.
    with open(old_csv, newline="") as fh:
        old_rows = list(csv.reader(fh))
    assert old_rows[0] == ["event", "trial_id", "onset"]
    assert len(old_rows) == 2 + len(preds) + 3 and {len(r) for r in old_rows} == {3}  # + ratings


def test_continuous_runs_without_markers(checkpoint):
    sim = Simulation(SimulationConfig(n_trials=2, isi=6, seed=3))
    sim.streams = [s for s in sim.streams if s.type != "Markers"]
    with pytest.raises(CliError, match="markers"):
        predict_offline(sim, AcquisitionConfig(), checkpoint)
    result = predict_offline(sim, AcquisitionConfig(), checkpoint, continuous_step=2.0)
    preds = result["predictions"]
    assert preds and all(p.mode == "continuous" and p.status == "predicted" for p in preds)
    assert all(p.stimulus_id == NO_STIMULUS for p in preds)
    assert result["onsets"] == 0


@pytest.mark.lsl
@pytest.mark.timeout(90)
def test_live_session_continuous_over_lsl(checkpoint, other_checkpoint, tmp_path, uid):
    """Live: windows every 0.5 s (by a model of their own) and the trials at onsets, both in
    the log and on the outlet."""
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=2, isi=5, lead_in=1.0, source_tag=uid)
    )
    player = LslPlayer(sim, speed=1.0, wait_consumers=15.0)
    config = AcquisitionConfig()
    live = LiveAcquisition(config, streams=discover(5.0, [s.source_id for s in sim.streams]))
    session = LiveSession(
        config,
        SessionConfig(
            checkpoint=checkpoint,
            log_path=tmp_path / "p.jsonl",
            outlet_source_id=f"pred-{uid}",
            continuous_step=0.5,
            continuous_checkpoint=other_checkpoint,
        ),
        live=live,
        say=lambda *_: None,
    )
    inlet = None
    ids = []
    try:
        session.start()
        infos = pylsl.resolve_byprop("source_id", f"pred-{uid}-ids", minimum=1, timeout=5.0)
        assert infos and infos[0].type() == IDS_OUTLET_TYPE
        inlet = pylsl.StreamInlet(infos[0])
        inlet.open_stream(timeout=5.0)
        player.start()
        deadline = time.monotonic() + sim.duration + 15
        while session.trials_cut < 2 and time.monotonic() < deadline:
            chunk, _ = inlet.pull_chunk(timeout=0.2)
            ids += [json.loads(s[0]) for s in chunk]
        time.sleep(0.5)
        chunk, _ = inlet.pull_chunk(timeout=0.5)
        ids += [json.loads(s[0]) for s in chunk]
        # The terminal's rich view lists trials, and the newest window on a line of its own.
        console = Console(file=io.StringIO(), width=160)
        console.print(HeadlessView(session, out=io.StringIO(), rich_view=True).render())
        shown = console.file.getvalue()
    finally:
        del inlet  # inlets before outlets
        summary = session.stop()
        player.close()
    assert player.error is None
    assert summary["trials_cut"] == 2
    c = summary["continuous"]
    assert c["step"] == 0.5 and c["cut"] >= 8 and c["failed"] == 0
    assert summary["windows_cut"] == c["cut"]
    assert sum(summary["worker"]["continuous"].values()) == c["cut"]
    assert session.worker.stats.continuous == {} and summary["worker"]["predicted"] == 2
    assert summary["window_worker"]["predicted"] == 0 and summary["drained"]
    records = read_jsonl(tmp_path / "p.jsonl")
    modes = [r["mode"] for r in records if r["event"] in ("prediction", "no_data", "error")]
    assert modes.count("trial") == 2 and modes.count("continuous") == c["cut"]
    ends = [r["onset"] + 5.0 for r in records if r.get("mode") == "continuous"]
    assert np.allclose(np.diff(ends), 0.5, atol=1e-6)
    assert {"trial", "continuous"} <= {m["mode"] for m in ids}
    assert "continuous every 0.5 s" in summary_line(summary)
    table, line = shown.split("Continuous: window ")
    assert not re.search(r"\bc\d+\b", table)  # no window among the trial rows
    assert re.match(r"c\d+ ending at ", line)
    stims = [p.stimulus_id for p in session.store.latest(100) if p.mode == "trial"]
    assert len(stims) == 2 and all(sid in table for sid in stims)


class _DataOnly:
    """An offline source without its marker (and annotation) streams: a lab without markers."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.streams = [s for s in sim.streams if s.type not in ("Markers", "Annotation")]
        self.start_time = sim.start_time
        self.duration = sim.duration

    def iter_blocks(self, block_seconds: float = 0.5):
        from acquisition.offline_acquisition import Block

        keys = {s.key for s in self.streams}
        for block in self.sim.iter_blocks(block_seconds):
            yield Block(block.t_end, [c for c in block.chunks if c.stream.key in keys])


@pytest.mark.lsl
@pytest.mark.timeout(120)
def test_emoeye_run_continuous_without_markers_over_lsl(checkpoint, tmp_path, uid):
    """``emoeye run --continuous`` starts with no marker stream at all (trial mode would refuse)
    and prints a line per window; the video condition's devices over real LSL."""
    import os
    import subprocess
    import sys

    from acquisition.sim.video import VideoModel, VideoSimulation

    sim = VideoSimulation(
        SimulationConfig(n_trials=1, lead_in=2.0, source_tag=uid), VideoModel(clip_seconds=12.0)
    )
    player = LslPlayer(_DataOnly(sim), speed=1.0, wait_consumers=60.0).start()
    log = tmp_path / "run.jsonl"
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "emoeye", "run", "--checkpoint", str(checkpoint), "--log"]
    cmd += [str(log), "--wait", "20", "--no-outlet", "--headless", "--continuous"]
    cmd += ["--step", "0.5", "--seconds", "14"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=100)
    finally:
        player.close()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "continuous mode: a prediction every 0.5 s" in out
    windows = [x for x in out if x.startswith("prediction window")]
    assert len(windows) >= 8, "\n".join(out)
    assert all(" -: arousal " in x for x in windows)  # no stimulus: neutral embedding
    assert not [x for x in out if x.startswith("prediction trial")]
    (last,) = [x for x in out if x.startswith("stopped:")]
    assert (
        last.startswith("stopped: 0 onset(s), 0 trial(s) cut") and "continuous every 0.5 s" in last
    )
    records = read_jsonl(log)
    assert records[0]["continuous_step"] == 0.5 and "markers" not in records[0]["roles"]
    preds = [r for r in records if r["event"] == "prediction"]
    assert {r["mode"] for r in preds} == {"continuous"} and len(preds) == len(windows)
    assert all(r["stimulus_id"] == "" for r in preds)


def test_a_window_whose_cut_fails_is_an_error_record(caplog):
    """As for trials: a reading that raises gives the window's error record (logged once),
    and the next windows are cut."""
    sim = Simulation(SimulationConfig(n_trials=1, isi=6, lead_in=6.0, seed=4))
    acq = offline_acquisition(sim, AcquisitionConfig(), "test")
    cutter = acq.enable_continuous(1.0)
    gsr = acq.roles["gsr"]
    real = gsr.read
    calls = {"n": 0}

    def flaky(t0, t1):
        calls["n"] += 1
        if calls["n"] in (3, 4):
            raise KeyError("gsr column")
        return real(t0, t1)

    gsr.read = flaky
    events = [e for e in acq.run_offline(sim, 1.0) if (e.trial or e.error).mode == "continuous"]
    errors = [e.error for e in events if e.error is not None]
    assert len(errors) == 2 == cutter.failed and cutter.cut == len(events)
    assert errors[0].mode == "continuous" and errors[0].role == "gsr"
    assert errors[0].reason.startswith("cut failed: KeyError")
    assert sum("cut failed: KeyError" in r.getMessage() for r in caplog.records) == 1
    assert events[-1].trial is not None


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    """A second model (other weights), standing for one trained for continuous use."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet
    from models.preprocess import NormStats

    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("ckpt2") / "model"
    return save_checkpoint(out, EmoEyeNet().eval(), NormStats.identity())


def test_a_continuous_model_predicts_the_windows(checkpoint, other_checkpoint, tmp_path):
    sim = Simulation(SimulationConfig(n_trials=2, isi=6, seed=6))
    both = predict_offline(
        sim,
        AcquisitionConfig(),
        checkpoint,
        tmp_path / "p.jsonl",
        continuous_step=1.0,
        continuous_checkpoint=other_checkpoint,
    )
    trial_only = predict_offline(sim, AcquisitionConfig(), checkpoint, continuous_step=1.0)
    windows_only = predict_offline(sim, AcquisitionConfig(), other_checkpoint, continuous_step=1.0)

    def probs(result, mode):
        return np.array([p.arousal_probs for p in result["predictions"] if p.mode == mode])

    assert np.allclose(probs(both, "trial"), probs(trial_only, "trial"), atol=1e-6)
    assert np.allclose(probs(both, "continuous"), probs(windows_only, "continuous"), atol=1e-6)
    assert not np.allclose(probs(both, "continuous"), probs(trial_only, "continuous"), atol=1e-3)
    assert both["worker"]["predicted"] == 2 and both["window_worker"]["predicted"] == 0
    assert both["worker"]["continuous"] == {"predicted": both["continuous"]["cut"]}
    header = read_jsonl(tmp_path / "p.jsonl")[0]
    assert header["continuous_checkpoint"] == str(other_checkpoint)
