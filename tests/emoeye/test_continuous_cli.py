"""Continuous mode from the command line: the video simulation recorded to a real XDF file,
``emoeye replay --fast --continuous`` on it, ``emoeye evaluate-continuous`` against its
annotation stream, and the refusals; the agreement figures on synthetic series with known
answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acquisition.sim.simulator import SimulationConfig
from acquisition.sim.video import VideoModel, VideoSimulation
from emoeye.cli import main
from emoeye.continuous import ccc, compare, read_predictions, window_means


@pytest.fixture(scope="module")
def video_xdf(tmp_path_factory) -> tuple:
    from acquisition.xdf.writer import record_simulation

    sim = VideoSimulation(SimulationConfig(n_trials=2, seed=7), VideoModel(clip_seconds=30.0))
    path = tmp_path_factory.mktemp("video") / "video.xdf"
    record_simulation(sim, path, progress=False)
    return path, sim


# ---------------------------------------------------------------- the figures


def test_ccc_and_lag_on_known_series():
    t = np.arange(0.0, 300.0, 0.05)
    rng = np.random.default_rng(0)
    from scipy.signal import lfilter

    x = 4.0 + lfilter([0.02], [1, -0.98], rng.normal(0, 3, len(t)))  # smooth, 1..7-ish
    ends = np.arange(10.0, 290.0, 0.5)
    same, _ = window_means(t, x, ends, 5.0)
    r = compare(ends, same, t, x, window=5.0, max_lag=5.0)
    assert r.ccc == pytest.approx(1.0) and r.rmse == pytest.approx(0.0, abs=1e-12)
    assert r.best_lag == 0.0 and r.pearson == pytest.approx(1.0)
    # The annotation trails by 2 s: found at +2 s, where agreement is perfect again.
    lagged = np.interp(t - 2.0, t, x)
    r = compare(ends, same, t, lagged, window=5.0, max_lag=5.0)
    assert r.best_lag == pytest.approx(2.0)
    assert r.ccc_at_best_lag == pytest.approx(1.0, abs=1e-3) and r.ccc < 0.99
    # And leads by 1.5 s.
    r = compare(ends, same, t, np.interp(t + 1.5, t, x), window=5.0, max_lag=5.0)
    assert r.best_lag == pytest.approx(-1.5)
    # A constant offset keeps r = 1 but lowers CCC; RMSE is the offset.
    r = compare(ends, same + 1.0, t, x, window=5.0, max_lag=0.0)
    assert r.pearson == pytest.approx(1.0) and r.ccc < 0.9 and r.rmse == pytest.approx(1.0)
    assert ccc(np.ones(5), np.ones(5)) == 1.0
    assert ccc(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)


# ---------------------------------------------------------------- the video simulation


def test_video_simulation_annotation_and_physiology_follow_the_felt_state(video_xdf):
    path, sim = video_xdf
    assert [s.type for s in sim.streams] == ["Gaze", "Markers", "Annotation"]
    ann = sim.streams[-1]
    assert ann.nominal_srate == 20.0 and ann.channel_labels == ("arousal", "valence")
    t = np.arange(sim.start_time + 5, sim.end_time - 5, 0.05)
    felt_a, felt_v = sim.felt_at(t)
    assert np.ptp(felt_a) > 1.0 and np.ptp(felt_v) > 1.0  # it moves
    slider = sim.annotation(t)
    assert slider.min() >= 1.0 and slider.max() <= 7.0
    # The slider trails the felt state by the model's lag.
    r = compare(t[200:-200], slider[200:-200, 0], t, felt_a, window=0.0, max_lag=4.0)
    assert r.best_lag == pytest.approx(-VideoModel().annotation_lag, abs=0.1)
    # Physiology carries arousal: the pupil ~1 s later follows it.
    pupil = sim.pupil(t + 1.0)
    assert np.corrcoef(pupil, felt_a)[0, 1] > 0.5
    # The file holds the slider stream and no onset.
    from acquisition.xdf.source import XdfSource

    src = XdfSource(path)
    by_type = {s.spec.type: s for s in src.xdf_streams}
    assert len(by_type["Annotation"]) == pytest.approx(sim.duration * 20, abs=2)
    assert [v[0] for v in by_type["Markers"].values()] == [
        "video:start:clip-01",
        "video:start:clip-02",
    ]


# ---------------------------------------------------------------- the commands


def test_replay_continuous_and_evaluate(video_xdf, checkpoint, tmp_path, capsys):
    path, sim = video_xdf
    log = tmp_path / "p.jsonl"
    argv = ["replay", str(path), "--fast", "--continuous", "--step", "0.5", "--json"]
    assert main([*argv, "--checkpoint", str(checkpoint), "--log", str(log)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["trials"] == 0 and summary["windows"] == summary["continuous"]["cut"]
    ends, values = read_predictions(log)
    assert len(ends) == summary["windows"] and np.allclose(np.diff(ends), 0.5)
    assert ends[-1] == pytest.approx(sim.end_time, abs=0.51)
    assert values.shape == (len(ends), 2) and (values >= 1).all() and (values <= 7).all()
    argv = ["evaluate-continuous", str(path), "--predictions", str(log), "--json"]
    assert main([*argv, "--max-lag", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["windows"] == len(ends)
    for head in ("arousal", "valence"):
        h = result[head]
        assert -1 <= h["ccc"] <= 1 and h["rmse"] > 0 and abs(h["best_lag"]) <= 4
    # Without --predictions the model predicts here (same windows at step 0.5).
    argv = ["evaluate-continuous", str(path), "--step", "0.5", "--checkpoint", str(checkpoint)]
    assert main([*argv, "--json", "--max-lag", "4"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["windows"] == result["windows"]
    assert again["arousal"]["ccc"] == pytest.approx(result["arousal"]["ccc"], abs=1e-3)


def test_continuous_refusals(video_xdf, checkpoint, tmp_path, capsys):
    path, _ = video_xdf
    for argv in (
        ["replay", str(path), "--fast", "--continuous", "--step", "0.01"],
        ["run", "--continuous", "--step", "0.001", "--log", str(tmp_path / "x.jsonl")],
        ["evaluate-continuous", str(path), "--step", "0.01"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "below the trial grid period" in err[0]
    assert not (tmp_path / "x.jsonl").exists()
    nope = str(tmp_path / "nope")
    for argv in (
        ["replay", str(path), "--fast", "--continuous", "--continuous-checkpoint", nope],
        ["run", "--continuous", "--continuous-checkpoint", nope, "--log", str(tmp_path / "y.j")],
    ):
        assert main([*argv, "--checkpoint", str(checkpoint)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "nope" in err[0], err
    assert main(["replay", str(path), "--fast", "--continuous", "--no-model"]) == 2
    assert "--no-model" in capsys.readouterr().err
    empty = tmp_path / "trials.jsonl"
    empty.write_text('{"event": "prediction", "mode": "trial", "onset": 1}\n')
    assert main(["evaluate-continuous", str(path), "--predictions", str(empty)]) == 2
    assert "no continuous-mode predictions" in capsys.readouterr().err
    two = ["--predictions", str(empty), "--predictions", str(empty)]
    assert main(["evaluate-continuous", str(path), *two]) == 2
    assert "one log per file" in capsys.readouterr().err


def test_simulate_video_condition_cli(tmp_path, capsys):
    from acquisition.xdf.source import XdfSource

    path = tmp_path / "v.xdf"
    argv = ["simulate", "--condition", "video", "--clip-seconds", "10", "--trials", "1"]
    assert main([*argv, "--record", str(path), "--ground-truth", str(tmp_path / "g.json")]) == 0
    types = sorted(s.spec.type for s in XdfSource(path).xdf_streams)
    assert types == ["Annotation", "Gaze", "Markers"]
    (clip,) = json.loads((tmp_path / "g.json").read_text())
    assert clip["clip"] == "clip-01" and 1 <= clip["felt_arousal"] <= 7
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    assert "'ContinuousRating' (Annotation)" in info and "own output" not in info
    assert main([*argv[:-4], "--clip-seconds", "5", "--record", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clip_seconds must be >= 10" in err[0]
