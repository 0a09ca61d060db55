"""Simulated datasets with generated pictures, split safety, the protocols, baselines and CIs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.baselines import (
    CEILING_INPUTS,
    FEATURES,
    LogisticBaseline,
    lookup_predict,
    physiology_features,
)
from models.dataset import TrialDataset
from models.evaluate import bootstrap_ci, evaluate_checkpoint

# Module fixtures build two simulated datasets and train once (inside the first test's timeout).
pytestmark = pytest.mark.timeout(400)


def emoeye(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emoeye", *args], capture_output=True, text=True, timeout=300
    )


def build(out: Path, participants: int, trials: int, seed: int, stimulus_seed: int) -> Path:
    r = emoeye(
        "dataset", "build", "--simulate", "--participants", str(participants), "--trials",
        str(trials), "--seed", str(seed), "--stimulus-seed", str(stimulus_seed),
        "--stimuli-count", "20", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory) -> tuple[Path, Path]:
    """A training dataset (7 participants, pictures gen5-*) and a fresh one (3 new participants,
    pictures gen5-* and gen6-*)."""
    root = tmp_path_factory.mktemp("sim")
    train_ds = build(root / "train", 7, 30, seed=1, stimulus_seed=5)
    fresh = build(root / "fresh", 3, 20, seed=2, stimulus_seed=6)
    return train_ds, fresh


@pytest.fixture(scope="module")
def sim_model(sim_data, tmp_path_factory) -> Path:
    from models.train import train

    out = tmp_path_factory.mktemp("simckpt") / "m"
    train(sim_data[0], out, epochs=2, batch_size=32, seed=0, device="cpu", progress=False)
    return out


def test_simulated_dataset_carries_felt_state_norms_and_fingerprint(sim_data):
    ds = TrialDataset(sim_data[0])
    assert len(ds) == 210 and set(ds.stimulus_ids) <= {f"gen5-{k:02d}" for k in range(20)}
    assert np.isfinite(ds.felt_arousal).all() and np.isfinite(ds.norm_valence).all()
    assert not np.allclose(ds.felt_arousal, ds.norm_arousal)  # felt per trial, not the picture
    assert (ds.oracle_arousal >= 0).all()
    # The response amplitudes the simulator drove (the ceiling's inputs), from the felt state.
    for name in ("response_pupil", "response_scr", "response_hr"):
        assert np.isfinite(getattr(ds, name)).all()
    assert np.corrcoef(ds.felt_arousal, ds.response_scr)[0, 1] > 0.2
    assert np.corrcoef(ds.felt_arousal, ds.response_pupil)[0, 1] > 0.2
    assert set(ds.stimulus_norms) == {f"gen5-{k:02d}" for k in range(20)}
    sid = ds.stimulus_ids[0]
    assert ds.norm_arousal[0] == pytest.approx(ds.stimulus_norms[sid][0], abs=1e-5)
    assert ds.stimulus_images().shape[1:] == (3, 64, 64)
    # Same participant names (P01...) in another dataset, another fingerprint.
    assert ds.fingerprint == TrialDataset(sim_data[0]).fingerprint
    assert ds.fingerprint != TrialDataset(sim_data[1]).fingerprint


def test_checkpoint_records_split_fingerprint_and_baselines(sim_data, sim_model):
    meta = json.loads((sim_model / "config.json").read_text())["training"]
    ds = TrialDataset(sim_data[0])
    assert meta["dataset_fingerprint"] == ds.fingerprint
    split = meta["split"]
    assert len(split["held_out_stimuli"]) == 4  # 20 % of 20 pictures
    assert not set(split["held_out_stimuli"]) & set(split["train_stimuli"])
    ids = split["test_trial_ids"]
    assert ids["participant"] and ids["stimulus"] and ids["both"]
    assert not set(ids["participant"]) & set(ids["stimulus"])
    b = meta["baselines"]
    assert set(b) == {"majority", "lookup", "physiology", "physiology_features", "ceiling"}
    assert set(b["lookup"]["arousal"]) == set(split["train_stimuli"])
    assert b["physiology"]["valence"]["features"] == list(FEATURES)
    assert b["ceiling"]["arousal"]["features"] == list(CEILING_INPUTS)
    assert CEILING_INPUTS[: len(FEATURES)] == FEATURES and "response_scr" in CEILING_INPUTS


def test_protocols_on_the_training_dataset(sim_data, sim_model):
    meta = json.loads((sim_model / "config.json").read_text())["training"]
    ds = TrialDataset(sim_data[0])
    held = set(meta["split"]["held_out_stimuli"])
    test_parts = set(meta["split"]["test_participants"])
    for protocol in ("participant", "stimulus", "both"):
        rep = evaluate_checkpoint(sim_model, sim_data[0], protocol=protocol, n_boot=200)
        assert rep["same_dataset"] and rep["protocol"] == protocol
        ids = set(meta["split"]["test_trial_ids"][protocol])
        sel = np.isin(ds.trial_ids, list(ids))
        assert rep["trials"] == sel.sum()
        new_pic = np.isin(ds.stimulus_ids[sel], list(held))
        new_person = np.isin(ds.participants[sel], list(test_parts))
        assert new_pic.all() == (protocol != "participant")
        assert new_person.all() == (protocol != "stimulus")


def test_json_report_on_a_fresh_dataset(sim_data, sim_model):
    r = emoeye(
        "evaluate", "--data", str(sim_data[1]), "--checkpoint", str(sim_model),
        "--protocol", "both", "--json", "--bootstrap", "200",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["protocol"] == "both" and rep["participants"] == 3 and rep["trials"] == 60
    for head in ("arousal", "valence"):
        assert set(rep["heads"][head]) >= {"balanced_accuracy", "macro_f1", "mae", "ece"}
        for m in ("majority", "lookup", "physiology", "oracle", "ceiling"):
            assert 0.0 <= rep["baselines"][m][head]["balanced_accuracy"] <= 1.0
            assert rep["ci95"][m][head] is not None
        lo, hi = rep["ci95"]["network"][head]
        assert 0.0 <= lo <= rep["heads"][head]["balanced_accuracy"] <= hi <= 1.0
        # New pictures: the lookup falls back on the norms the dataset carries.
        assert rep["lookup_coverage"][head] == 1.0
        assert rep["baselines"]["majority"][head]["balanced_accuracy"] == pytest.approx(1 / 7)
    assert len(rep["per_participant"]) == 3
    assert rep["baselines"]["oracle"]["arousal"]["balanced_accuracy"] > 0.4
    # The ceiling reads the physiology features, the norms and the response amplitudes: above
    # the majority, below the
    # oracle (which also knows the felt state and the participant's scale use).
    ceiling = rep["baselines"]["ceiling"]["arousal"]["balanced_accuracy"]
    assert 1 / 7 + 0.05 < ceiling < rep["baselines"]["oracle"]["arousal"]["balanced_accuracy"]
    assert rep["per_participant"][0]["ceiling"]["arousal"] is not None


def test_a_ceiling_fitted_on_other_columns_is_left_out(sim_data, sim_model, tmp_path):
    import shutil

    ckpt = tmp_path / "m"
    shutil.copytree(sim_model, ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    for head in ("arousal", "valence"):
        cfg["training"]["baselines"]["ceiling"][head]["features"] = list(CEILING_INPUTS[-5:])
    (ckpt / "config.json").write_text(json.dumps(cfg))
    rep = evaluate_checkpoint(ckpt, sim_data[1], protocol="both", n_boot=20)
    assert rep["baselines"]["ceiling"] == {"arousal": None, "valence": None}
    assert rep["baselines"]["physiology"]["arousal"] is not None


def test_ceiling_is_not_applicable_without_the_simulators_truth(trained, synthetic_dir):
    meta = json.loads((trained.checkpoint / "config.json").read_text())["training"]
    assert "ceiling" not in meta["baselines"]  # synthetic trials carry no response amplitudes
    rep = evaluate_checkpoint(trained.checkpoint, synthetic_dir, split="test", n_boot=20)
    assert rep["baselines"]["ceiling"] == {"arousal": None, "valence": None}
    assert rep["ci95"]["ceiling"] == {"arousal": None, "valence": None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "is not the dataset the checkpoint was trained on"),
        (("--split", "test"), "is not the dataset the checkpoint was trained on"),
        (("--protocol", "stimulus"), "needs the training participants"),
        (("--protocol", "participant"), "shows a picture the checkpoint was trained on"),
    ],
)
def test_refusals_are_one_line(sim_data, sim_model, args, message):
    r = emoeye("evaluate", "--data", str(sim_data[1]), "--checkpoint", str(sim_model), *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_physiology_features_on_a_known_trial():
    rate, nb = 60.0, 60
    t = np.arange(nb + 300) / rate - 1.0
    sig = np.zeros((1, 5, len(t)))
    # Gaze: fixations of 1, 1, 1 and 2 s joined by instant jumps.
    x = np.where(t < 1, 0.2, np.where(t < 2, 0.5, np.where(t < 3, 0.8, 0.3)))
    sig[0, 0], sig[0, 1] = x, 0.5
    sig[0, 2] = 4.0 + 0.3 * (t > 0.4)  # pupil dilates by 0.3 mm
    sig[0, 3] = 5.0 + 0.4 * np.exp(-(((t - 2.5) / 0.5) ** 2))  # one SCR of 0.4 µS
    sig[0, 4] = 70.0 - 3.0 * (t > 0.4)  # heart slows by 3 bpm
    base = np.array([[0.2, 0.5, 4.0, 5.0, 70.0]])
    f = dict(zip(FEATURES, physiology_features(sig, base, nb, rate)[0], strict=True))
    assert f["scr_amplitude"] == pytest.approx(0.4, abs=0.01) and f["scr_count"] == 1
    assert f["pupil_dilation"] == pytest.approx(0.3, abs=0.01)
    assert f["hr_change"] == pytest.approx(-3.0, abs=0.01)
    assert f["fixation_count"] == 4 and f["fixation_duration"] == pytest.approx(1.25, abs=0.05)


def test_logistic_baseline_learns_and_round_trips():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.c_[y + rng.normal(0, 0.3, 300), rng.normal(0, 1, 300)]
    lr = LogisticBaseline.fit(x, y, n_classes=7)
    assert (lr.predict_proba(x).argmax(1) == y).mean() > 0.9
    again = LogisticBaseline.from_dict(json.loads(json.dumps(lr.to_dict())))
    np.testing.assert_allclose(again.predict_proba(x), lr.predict_proba(x))


def test_lookup_uses_training_ratings_then_norms_else_not_applicable():
    table = {"a": 2.4, "b": 5.6}
    pred = lookup_predict(["a", "b", "c", "d"], table, {"c": 3.0})
    np.testing.assert_array_equal(pred, [2, 6, 2, -1])  # c: rating 3 -> class 2


def test_bootstrap_ci_brackets_and_narrows_with_more_participants():
    rng = np.random.default_rng(1)

    def ci(n_parts):
        g = np.repeat(np.arange(n_parts), 40)
        y = rng.integers(0, 7, len(g))
        pred = np.where(rng.uniform(size=len(g)) < 0.5, y, rng.integers(0, 7, len(g)))
        return bootstrap_ci(y, pred, g, n_boot=500)

    lo, hi = ci(5)
    assert lo < 0.57 < hi
    lo2, hi2 = ci(40)
    assert hi2 - lo2 < hi - lo
    assert bootstrap_ci(np.zeros(3, int), np.zeros(3, int), np.zeros(3)) is None


def test_grouped_folds_cover_every_group_once():
    from models.crossval import grouped_folds

    groups = np.repeat([f"P{i}" for i in range(7)], 3)
    folds = grouped_folds(groups, 3)
    flat = np.concatenate(folds)
    assert sorted(flat) == sorted(set(groups)) and len(flat) == 7
    assert [len(f) for f in grouped_folds(groups, 7)] == [1] * 7  # leave-one-out
    with pytest.raises(ValueError, match="between 2 and the number of groups"):
        grouped_folds(groups, 8)


def test_fold_indices_keep_groups_apart(sim_data):
    from models.crossval import fold_indices

    ds = TrialDataset(sim_data[0])
    idx = fold_indices(ds, np.array(["P02"]), "participant", 0.15, 0)
    assert set(ds.participants[idx["participant"]]) == {"P02"}
    assert "P02" not in set(ds.participants[idx["train"]]) | set(ds.participants[idx["val"]])
    assert not set(ds.participants[idx["train"]]) & set(ds.participants[idx["val"]])
    idx = fold_indices(ds, np.array(["gen5-03", "gen5-07"]), "stimulus", 0.15, 0)
    assert set(ds.stimulus_ids[idx["stimulus"]]) == {"gen5-03", "gen5-07"}
    seen = set(ds.stimulus_ids[idx["train"]]) | set(ds.stimulus_ids[idx["val"]])
    assert not seen & {"gen5-03", "gen5-07"}
    assert not set(ds.stimulus_ids[idx["train"]]) & set(ds.stimulus_ids[idx["val"]])


def test_crossval_cli_by_stimulus_with_a_dropped_branch(sim_data, tmp_path):
    r = emoeye(
        "crossval", "--data", str(sim_data[0]), "--out", str(tmp_path / "cv"), "--folds", "2",
        "--group", "stimulus", "--epochs", "1", "--drop-branch", "timeseries", "--json",
        "--threads", "1", "--device", "cpu",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["group"] == "stimulus" and len(rep["per_fold"]) == 2
    assert rep["branches"] == ["scanpath", "stimulus"]
    held = [set(f["test_groups"]) for f in rep["per_fold"]]
    assert not held[0] & held[1] and len(held[0] | held[1]) == 20
    for m in ("network", "majority", "physiology", "oracle"):
        s = rep["summary"][m]["arousal"]
        assert 0 <= s["mean"] <= 1 and s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    assert (tmp_path / "cv" / "fold-2" / "model.safetensors").is_file()
    cfg = json.loads((tmp_path / "cv" / "fold-1" / "config.json").read_text())
    assert cfg["model"]["use_timeseries"] is False
    r = emoeye(
        "crossval", "--data", str(sim_data[0]), "--out", str(tmp_path / "x"), "--folds", "99"
    )
    assert r.returncode == 2 and "between 2 and the number of groups" in r.stderr


def test_train_drop_branch_retrains_without_it(sim_data, tmp_path):
    r = emoeye(
        "train", "--data", str(sim_data[0]), "--out", str(tmp_path / "m"), "--epochs", "1",
        "--drop-branch", "stimulus", "--drop-branch", "scanpath", "--no-progress",
        "--threads", "1", "--device", "cpu",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert (cfg["use_timeseries"], cfg["use_scanpath"], cfg["use_stimulus"]) == (True, False, False)


def test_train_image_size_option(sim_data, tmp_path):
    r = emoeye(
        "train", "--data", str(sim_data[0]), "--out", str(tmp_path / "m"), "--epochs", "1",
        "--image-size", "32", "--no-progress", "--threads", "1", "--device", "cpu",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert cfg["image_size"] == 32
    rep = evaluate_checkpoint(tmp_path / "m", sim_data[0], protocol="both", n_boot=100)
    assert rep["trials"] > 0


def test_crossval_interval_stays_within_what_a_balanced_accuracy_can_be():
    from models.crossval import mean_ci

    wide = mean_ci([0.1, 0.9])  # 2 folds: t(0.975, 1) = 12.7, the raw interval is [-4.5, 5.5]
    assert wide["mean"] == pytest.approx(0.5)
    assert wide["ci95"] == [0.0, 1.0]
    narrow = mean_ci([0.40, 0.42, 0.41, 0.43, 0.39])
    assert 0.38 < narrow["ci95"][0] < 0.41 < narrow["ci95"][1] < 0.44
    assert mean_ci([0.4])["ci95"] is None and mean_ci([None])["mean"] is None


def test_a_regression_fitted_on_older_features_is_left_out_then_refitted(
    sim_data, sim_model, tmp_path
):
    """Regression weights mean something only on the features they were fitted on: an older
    checkpoint's physiology baseline is left out with a note, and refit_baselines brings it back
    (the network untouched, the same numbers as a fresh training's)."""
    import shutil

    from models.baselines import FEATURES_VERSION
    from models.train import refit_baselines

    old = tmp_path / "old"
    shutil.copytree(sim_model, old)
    cfg = json.loads((old / "config.json").read_text())
    fresh = json.loads(json.dumps(cfg["training"]["baselines"]))  # a copy: cfg is edited next
    assert fresh["physiology_features"] == FEATURES_VERSION
    del cfg["training"]["baselines"]["physiology_features"]  # as saved before the version
    (old / "config.json").write_text(json.dumps(cfg))
    rep = evaluate_checkpoint(old, sim_data[1], protocol="both", n_boot=50)
    assert rep["baselines"]["physiology"] == {"arousal": None, "valence": None}
    assert any("feature code v1" in n for n in rep["notes"])
    assert rep["baselines"]["majority"]["arousal"] is not None  # the others stay

    with pytest.raises(ValueError, match="is not the dataset"):
        refit_baselines(old, sim_data[1])
    again = refit_baselines(old, sim_data[0])
    assert again == fresh
    rep = evaluate_checkpoint(old, sim_data[1], protocol="both", n_boot=50)
    assert rep["baselines"]["physiology"]["arousal"] is not None and not rep["notes"]
