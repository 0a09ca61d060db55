"""The pictures' norms as a network input (``emoeye train --norms-input``): trained, recorded in
the checkpoint, looked up at run time in ``[stimuli] norms`` or the catalogue; a picture without
norms is predicted with the flag 0 and flagged; checkpoints without norms are unchanged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from acquisition.stimulus_catalogue import StimulusCatalogue, default_catalogue
from emoeye.cli import main
from inference.worker import InferenceWorker, WorkerConfig
from models.checkpoint import default_checkpoint_dir
from models.dataset import DatasetWriter, TrialDataset
from models.evaluate import evaluate_checkpoint, predict_dataset
from models.network import EmoEyeNet, ModelConfig
from models.norms import NormSource, read_norms
from models.predictor import Predictor
from models.preprocess import norm_values, prepare_inputs
from models.synthetic import iter_synthetic_trials, make_synthetic_trials

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def normed(tmp_path_factory):
    """5 participants x 24 synthetic trials on the bundled photos, with their norms in the
    dataset (as the simulator and ``dataset build --norms`` write them)."""
    out = tmp_path_factory.mktemp("normed") / "ds"
    cat = default_catalogue()
    with DatasetWriter(out, shard_size=64) as w:
        for trial, oracle in iter_synthetic_trials(
            n_participants=5, trials_per_participant=24, seed=5
        ):
            w.add(trial, oracle=oracle)
            s = cat.get(trial.stimulus_id)
            w.stimulus_norms[trial.stimulus_id] = (s.arousal, s.valence)
    return out


@pytest.fixture(scope="module")
def normed_ckpt(normed, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("normed-ckpt") / "m"
    rc = main(["train", "--data", str(normed), "--out", str(ckpt), "--epochs", "2",
               "--no-progress", "--norms-input", "--seed", "1"])  # fmt: skip
    assert rc == 0
    return ckpt


def test_norm_input_masks_unknown_norms_and_a_model_without_norms_ignores_them():
    cfg = ModelConfig(use_norms=True, use_stimulus=False)
    model = EmoEyeNet(cfg).eval()
    assert model.norms is not None and "norms.mean" in model.state_dict()
    ts, sp = torch.randn(3, 5, 360), torch.rand(3, 2, 64, 64)
    norms = torch.tensor([[2.0, 6.0], [float("nan"), 3.0], [6.0, 1.5]])
    feats = model.norms(norms)
    assert feats.shape == (3, 3) and torch.isfinite(feats).all()
    assert feats[:, 2].tolist() == [1.0, 0.0, 1.0]  # the "known" flag
    assert feats[1].tolist() == [0.0, 0.0, 0.0]  # any NaN: zeros and flag 0
    with torch.no_grad():
        given = model(ts, sp, norms=norms)
        none = model(ts, sp)  # no norms at all: every trial unknown
        nan = model(ts, sp, norms=torch.full((3, 2), float("nan")))
    assert torch.equal(none[0], nan[0]) and torch.equal(given[0][1], none[0][1])
    assert not torch.allclose(given[0][0], none[0][0])
    # Standardised with the training trials' mean and std (unknown rows skipped).
    model.norms.fit(torch.tensor([[2.0, 3.0], [4.0, 5.0], [float("nan"), 1.0], [6.0, 7.0]]))
    assert model.norms.mean.tolist() == [4.0, 5.0] and model.norms.std.tolist() == [2.0, 2.0]
    plain = EmoEyeNet(ModelConfig(use_stimulus=False)).eval()
    assert plain.norms is None and not any("norms" in k for k in plain.state_dict())
    with torch.no_grad():
        assert torch.equal(plain(ts, sp)[0], plain(ts, sp, norms=norms)[0])


def test_norm_values_looks_up_each_picture():
    ids = ["clock", "nope", "", "clock"]
    got = norm_values(ids, {"clock": (3.0, 3.0)})
    assert got.dtype == np.float32 and got.shape == (4, 2)
    assert got[0].tolist() == [3.0, 3.0] and np.isnan(got[1:3]).all() and got[3].tolist() == [3, 3]
    assert np.isnan(norm_values(ids)).all()
    src = NormSource({"nope": (5.0, 2.0)}, default_catalogue())
    assert src.get("clock") == (3.0, 3.0)  # the bundled photos' stimuli.json norms
    assert src.get("nope") == (5.0, 2.0) and src.get("missing") is None and src.get("") is None


def test_trained_with_norms_round_trip(normed, normed_ckpt, tmp_path):
    config = json.loads((normed_ckpt / "config.json").read_text())
    assert config["model"]["use_norms"] is True  # recorded in the checkpoint
    assert config["training"]["norms_dropout"] == 0.1
    ds = TrialDataset(normed)
    assert np.isfinite(ds.trial_norms()).all()
    p = Predictor(normed_ckpt)
    assert p.uses_norms
    m = p.model.norms
    known = ds.trial_norms()
    assert not torch.allclose(m.mean, torch.full((2,), 4.0))  # fitted on the training trials
    assert m.mean.tolist()[0] == pytest.approx(float(np.mean(known[:, 0])), abs=0.5)
    trials, _ = make_synthetic_trials(n_participants=1, trials_per_participant=4, seed=8)
    t = trials[0]
    # Run time: the bundled photo's norms from stimuli.json; the same as the dataset path.
    assert p.role_notes(t) == ([], [])
    pa, pv = p.predict([t])
    s = default_catalogue().get(t.stimulus_id)
    pa2, _ = p.predict([t], norms=np.array([[s.arousal, s.valence]]))
    assert np.allclose(pa, pa2, atol=1e-6)
    inputs = prepare_inputs([t], p.stats, norms=p.norm_source)
    assert inputs.norms_known.tolist() == [True]
    # Another norm for the picture (a [stimuli] norms table comes first) changes the prediction.
    p.set_norms({t.stimulus_id: (7.0, 1.0)})
    pa3, _ = p.predict([t])
    assert not np.allclose(pa, pa3, atol=1e-4)
    p.set_norms(None)
    # evaluate runs the network with the dataset's norms.
    full = predict_dataset(p.model, TrialDataset(normed, p.stats), np.arange(8))
    ds_no = TrialDataset(normed, p.stats)
    ds_no.stimulus_norms = {}
    ds_no.norm_arousal[:] = np.nan
    without = predict_dataset(p.model, ds_no, np.arange(8))
    assert not np.allclose(full[0], without[0], atol=1e-4)
    rep = evaluate_checkpoint(normed_ckpt, normed, split="test", n_boot=10)
    assert rep["norms_input"] is True and rep["trials"] > 0


def test_a_picture_without_norms_is_predicted_with_flag_0_and_flagged(normed_ckpt, tmp_path):
    # A user's picture folder: its pictures carry no norms unless [stimuli] norms gives them.
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(default_catalogue().get("clock").path, folder / "beach.jpg")
    cat = StimulusCatalogue(folder)
    trials, _ = make_synthetic_trials(n_participants=1, trials_per_participant=2, seed=9)
    t = trials[0]
    t.stimulus_id = "beach"
    p = Predictor(normed_ckpt, catalogue=cat)
    flags, notes = p.role_notes(t)
    assert flags == ["no norms for stimulus 'beach': masked (the model was trained with norms; "
                     "give them in [stimuli] norms)"] and notes == []  # fmt: skip
    masked = p.predict([t])
    assert np.allclose(masked[0], p.predict([t], norms=np.full((1, 2), np.nan))[0])
    table = tmp_path / "norms.csv"
    table.write_text("Theme,Valence_mean,Arousal_mean\nbeach,6.5,5.5\n")  # OASIS, 1..7
    norms = read_norms(table)
    p.set_norms(norms)
    assert p.role_notes(t) == ([], [])
    assert not np.allclose(masked[0], p.predict([t])[0], atol=1e-4)
    # The live worker: the session's table first, then its catalogue; never silent.
    worker = InferenceWorker(
        checkpoint=normed_ckpt, config=WorkerConfig(device="cpu"), catalogue=cat, norms=norms
    )
    assert worker.predictor.norm_table is norms and worker._traced is None
    rec = worker.process(t)
    assert rec.error is None and "no norms" not in rec.flag_reason
    bare = InferenceWorker(checkpoint=normed_ckpt, config=WorkerConfig(device="cpu"), catalogue=cat)
    rec = bare.process(t)
    assert rec.error is None and rec.flagged and "no norms for stimulus 'beach'" in rec.flag_reason
    assert np.allclose(rec.arousal_probs, masked[0][0], atol=1e-5)
    # A predictor handed over with its own table keeps it.
    own = InferenceWorker(Predictor(normed_ckpt, norms=norms), catalogue=cat)
    assert own.predictor.norm_table is norms and "no norms" not in own.process(t).flag_reason


def test_norms_input_needs_a_dataset_with_norms(synthetic_dir, tmp_path, capsys):
    assert not TrialDataset(synthetic_dir).stimulus_norms
    rc = main(["train", "--data", str(synthetic_dir), "--out", str(tmp_path / "x"),
               "--epochs", "1", "--no-progress", "--norms-input"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "--norms-input needs picture norms" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


# The bundled model's probabilities for the first three trials of
# make_synthetic_trials(n_participants=2, trials_per_participant=6, seed=3), computed with the
# code before norms could be a network input (commit 9560751).
BUNDLED_AROUSAL = [
    [0.000706, 0.009448, 0.06499, 0.146312, 0.308353, 0.244604, 0.225587],
    [0.000054, 0.002468, 0.042234, 0.087367, 0.313531, 0.216793, 0.337553],
    [0.000001, 0.000061, 0.002333, 0.016914, 0.13422, 0.348416, 0.498054],
]
BUNDLED_VALENCE = [
    [0.000199, 0.004889, 0.022703, 0.087497, 0.231415, 0.353786, 0.299512],
    [0.0, 0.000038, 0.000443, 0.007342, 0.127745, 0.2707, 0.593731],
    [0.010935, 0.251244, 0.274746, 0.301999, 0.142405, 0.015524, 0.003148],
]


def test_checkpoints_without_norms_load_and_predict_as_before(few_trials, normed, tmp_path):
    bundled = Predictor()
    assert not bundled.uses_norms
    config = json.loads((default_checkpoint_dir() / "config.json").read_text())
    assert "use_norms" not in config["model"]  # written before the option existed
    trials = few_trials[0][:3]
    pa, pv = bundled.predict(trials)
    assert np.allclose(pa, BUNDLED_AROUSAL, atol=2e-5) and np.allclose(
        pv, BUNDLED_VALENCE, atol=2e-5
    )
    # A norms table changes nothing for it, and nothing is flagged about norms.
    bundled.set_norms({t.stimulus_id: (7.0, 1.0) for t in trials})
    qa, qv = bundled.predict(trials)
    assert np.array_equal(pa, qa) and np.array_equal(pv, qv)
    assert bundled.role_notes(trials[0]) == ([], [])
    # Through the dataset path (evaluate): norms in the dataset are ignored by it.
    ds = TrialDataset(normed, bundled.stats)
    a = predict_dataset(bundled.model, ds, np.arange(6))
    ds.stimulus_norms = {}
    b = predict_dataset(bundled.model, ds, np.arange(6))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
