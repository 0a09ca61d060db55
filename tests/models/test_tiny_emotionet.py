"""The Tiny-EmotioNet-style model: trains on simulated action units, predicts continuous arousal
and valence for trials and continuous windows, plots its filters (docs/modalities.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acquisition.aligner import TrialEvent
from acquisition.config import parse_config
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.sim.simulator import Simulation, SimulationConfig
from emoeye.cli import main
from models.dataset import DatasetWriter
from models.tiny_emotionet import TinyPredictor

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def face_data(tmp_path_factory):
    """8 simulated participants x 24 trials of OpenFace action units, as a dataset."""
    sim = Simulation(
        SimulationConfig(presets=("openface", "psychopy"), participants=8, n_trials=24, seed=3)
    )
    cfg = parse_config({"trial": {"required_roles": ["face"]}})
    acq = Acquisition(bind_roles(sim.streams), cfg, catalogue=sim.catalogue)
    trials = [e.trial for e in acq.run_offline(sim, 2.0) if isinstance(e, TrialEvent)]
    for t in trials:
        t.participant = sim.participant_of(t.onset)
    out = tmp_path_factory.mktemp("tiny") / "ds"
    with DatasetWriter(out) as w:
        for t in trials:
            w.add(t)
    return out, trials, sim


def test_trains_evaluates_and_plots_filters(face_data, tmp_path, capsys):
    data, trials, sim = face_data
    ckpt, report = tmp_path / "ckpt", tmp_path / "eval"
    rc = main(["train", "--model", "tiny-emotionet", "--data", str(data), "--out", str(ckpt),
               "--no-progress"])  # fmt: skip
    assert rc == 0
    meta = json.loads((ckpt / "config.json").read_text())
    assert meta["model"] == "tiny-emotionet" and meta["config"]["n_filters"] == 4
    assert meta["split"]["test"] > 0
    capsys.readouterr()
    rc = main(["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(report),
               "--json"])  # fmt: skip
    assert rc == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["trials"] == len(trials) == 192
    # Smiles and frowns carry the felt valence, expression intensity the arousal.
    assert ev["metrics"]["valence"]["r"] > 0.3 and ev["metrics"]["arousal"]["r"] > 0.2
    png = report / "tiny_emotionet_filters.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    # Trials and continuous windows: the same network, the same numbers for the same data.
    predictor = TinyPredictor(ckpt)
    t = trials[5]
    a, v = predictor.predict_trial(t)
    series = sim_face_series(sim, t.onset - 1.0, t.onset + 5.0)
    a2, v2 = predictor.predict_window(series, t.onset, t.onset + 5.0, baseline=1.0)
    assert np.allclose([a, v], [a2, v2], atol=1e-4)
    truth = np.array([g["felt_valence"] for g in sim.ground_truth()])
    pred = np.array([predictor.predict_trial(x)[1] for x in trials])
    assert np.corrcoef(truth, pred)[0, 1] > 0.3


def sim_face_series(sim, t0, t1):
    from acquisition.lsl.reading import extract

    ps, spec = sim.preset_streams[0], sim.streams[0]
    ts, values = sim.samples(0, t0 - 0.2, t1 + 0.2)
    return extract(ps.readings[0], spec, ts, values)


def test_a_dataset_without_action_units_is_refused_in_one_line(tmp_path, capsys):
    sim = Simulation(SimulationConfig(device_set="gazepoint", n_trials=3, seed=1))
    acq = Acquisition(bind_roles(sim.streams), parse_config({}), catalogue=sim.catalogue)
    out = tmp_path / "ds"
    with DatasetWriter(out) as w:
        for e in acq.run_offline(sim):
            if isinstance(e, TrialEvent):
                w.add(e.trial)
    rc = main(["train", "--model", "tiny-emotionet", "--data", str(out), "--out",
               str(tmp_path / "c")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc != 0 and "holds no action units" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_checkpoint(face_data, tmp_path_factory):
    data, _, _ = face_data
    ckpt = tmp_path_factory.mktemp("tinyckpt") / "ckpt"
    rc = main(["train", "--model", "tiny-emotionet", "--data", str(data), "--out", str(ckpt),
               "--no-progress"])  # fmt: skip
    assert rc == 0
    return ckpt


def test_continuous_mode_predicts_windows_with_the_tiny_model(tiny_checkpoint):
    """`--continuous-checkpoint` takes a Tiny-EmotioNet: the windows get its values (as the two
    classes around them), the trials the picture model's; without a face stream a window is an
    error record saying so, never a made-up value."""
    from emoeye.session import predict_offline

    presets = ("gazepoint", "openface", "psychopy")
    sim = Simulation(SimulationConfig(presets=presets, n_trials=2, isi=6, seed=4))
    result = predict_offline(
        sim, parse_config({}), None, continuous_step=1.0, continuous_checkpoint=tiny_checkpoint
    )
    windows = [p for p in result["predictions"] if p.mode == "continuous"]
    trials = [p for p in result["predictions"] if p.mode == "trial"]
    assert len(trials) == 2 and len(windows) >= 8
    assert all(p.status == "predicted" for p in windows)
    for p in windows:  # the value as the two classes around it: its expected rating
        for probs in (p.arousal_probs, p.valence_probs):
            nz = np.flatnonzero(np.asarray(probs) > 1e-9)
            assert 1 <= len(nz) <= 2 and np.ptp(nz) <= 1 and sum(probs) == pytest.approx(1)
    values = {round(p.valence, 4) for p in windows}
    assert len(values) > len(windows) // 2  # a value per window, not a constant
    # The trials keep the picture model: seven-class probabilities, not two-point encodings.
    assert all(np.count_nonzero(np.asarray(p.arousal_probs) > 1e-6) > 2 for p in trials)

    no_face = Simulation(SimulationConfig(presets=("gazepoint", "psychopy"), n_trials=1, seed=4))
    result = predict_offline(
        no_face, parse_config({}), None, continuous_step=2.0, continuous_checkpoint=tiny_checkpoint
    )
    windows = [p for p in result["predictions"] if p.mode == "continuous"]
    assert windows and all(p.status == "failed" for p in windows)
    assert "no face track" in windows[0].error


def test_continuous_value_as_classes():
    from models.tiny_emotionet import continuous_to_classes

    p = continuous_to_classes(0.1)  # 4.3 on 1..7
    assert p[3] == pytest.approx(0.7) and p[4] == pytest.approx(0.3) and p.sum() == pytest.approx(1)
    assert continuous_to_classes(1.0)[6] == 1.0 and continuous_to_classes(-3.0)[0] == 1.0
