from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint
from models.cli import add_evaluate_parser, add_train_parser, cmd_evaluate
from models.evaluate import evaluate_checkpoint
from models.predictor import Predictor, expected_value
from models.synthetic import make_synthetic_trials


def test_training_learns_planted_signal(trained) -> None:
    t = trained.test_report
    # Chance is 1/7 = 0.14; the planted signal is strong (oracle accuracy is 1).
    assert t["valence"]["accuracy"] > 0.6, t["valence"]
    assert t["arousal"]["accuracy"] > 0.4, t["arousal"]
    assert t["arousal"]["accuracy"] > t["arousal"]["majority"]["accuracy"] + 0.1
    assert t["valence"]["oracle"]["accuracy"] == 1.0
    names = {p.name for p in trained.checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "training_curve.png"} <= names
    assert (trained.checkpoint / "model.safetensors").stat().st_size < 5 * 1024 * 1024


def test_checkpoint_records_split_and_stats(trained) -> None:
    cfg = json.loads((trained.checkpoint / "config.json").read_text())
    split = cfg["training"]["split"]
    tr, va, te = (
        set(split[k]) for k in ("train_participants", "val_participants", "test_participants")
    )
    assert tr and va and te and tr.isdisjoint(va) and tr.isdisjoint(te) and va.isdisjoint(te)
    assert len(cfg["history"]) == cfg["training"]["epochs_run"]
    assert cfg["normalisation"]["relative_to_baseline"] == ["pupil", "gsr", "hr"]


def test_training_is_deterministic(synthetic_dir, tmp_path) -> None:
    from models.network import ModelConfig
    from models.train import train

    small = ModelConfig(
        conv_channels=(8, 8),
        lstm_hidden=8,
        scanpath_cnn=(4,),
        stimulus_cnn=(4,),
        embed_dim=8,
        fusion_hidden=16,
    )
    runs = [
        train(synthetic_dir, tmp_path / f"r{i}", small, epochs=1, batch_size=64, seed=5,
              steps_per_epoch=2, device="cpu", progress=False)
        for i in range(2)
    ]  # fmt: skip
    a, _ = load_checkpoint(runs[0].checkpoint)
    b, _ = load_checkpoint(runs[1].checkpoint)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), k


def test_evaluate_checkpoint_writes_report_and_ablates(trained, synthetic_dir, tmp_path) -> None:
    rep = evaluate_checkpoint(trained.checkpoint, synthetic_dir, tmp_path / "ev")
    assert rep["split"] == "test"
    assert np.isclose(rep["valence"]["accuracy"], trained.test_report["valence"]["accuracy"])
    assert (tmp_path / "ev" / "evaluation.json").is_file()
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000
    abl = evaluate_checkpoint(
        trained.checkpoint, synthetic_dir, tmp_path / "ev", ablate=["stimulus"]
    )
    assert (tmp_path / "ev" / "evaluation-no-stimulus.json").is_file()
    # Valence is planted in the stimulus: without it, valence accuracy drops.
    assert abl["valence"]["accuracy"] < rep["valence"]["accuracy"] - 0.2


def test_predictor_matches_evaluation_path(trained) -> None:
    pred = Predictor(trained.checkpoint, num_threads=None)
    assert pred.warm_up() < 1000
    trials, oracle = make_synthetic_trials(n_participants=1, trials_per_participant=8, seed=99)
    pa, pv = pred.predict(trials)
    assert pa.shape == pv.shape == (8, 7)
    np.testing.assert_allclose(pa.sum(1), 1, rtol=1e-5)
    # Embeddings computed at onset give the same answer as looking images up by id.
    embs = [pred.embed_stimulus(pred.catalogue.image(t.stimulus_id)) for t in trials]
    pa2, pv2 = pred.predict(trials, embs)
    np.testing.assert_allclose(pa, pa2, atol=1e-6)
    arrays = (
        np.stack([t.signals for t in trials]),
        np.stack([t.baseline for t in trials]),
        np.stack([t.scanpath for t in trials]),
    )
    pa3, _ = pred.predict(arrays, torch.cat(embs))
    np.testing.assert_allclose(pa, pa3, atol=1e-6)
    one = pred.predict_trial(trials[0])
    assert 1.0 <= one.arousal <= 7.0
    assert np.isclose(one.valence, expected_value(pv[0]))
    # Unseen participant, planted signal: mostly right.
    assert (pv.argmax(1) == oracle[:, 1]).mean() >= 0.5


def test_predictor_refuses_other_spec(trained, few_trials) -> None:
    import dataclasses

    pred = Predictor(trained.checkpoint, num_threads=None)
    trials, _ = few_trials
    short = dataclasses.replace(trials[0], signals=trials[0].signals[:, :300])
    with pytest.raises(ValueError, match="trained with 360"):
        pred.predict([short])


def test_cli_parsers_and_evaluate(trained, synthetic_dir, tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser(prog="emoeye")
    sub = parser.add_subparsers(dest="command")
    add_train_parser(sub)
    add_evaluate_parser(sub)
    args = parser.parse_args(
        ["train", "--data", "d", "--out", "o", "--epochs", "3", "--no-scanpath"]
    )
    assert args.epochs == 3 and args.no_scanpath and not args.no_stimulus and args.device == "auto"
    args = parser.parse_args(
        ["evaluate", "--data", str(synthetic_dir), "--checkpoint", str(trained.checkpoint),
         "--out", str(tmp_path / "e"), "--no-timeseries"]
    )  # fmt: skip
    assert args.func is cmd_evaluate
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "arousal" in out and "majority" in out and "timeseries" in out
    assert (tmp_path / "e" / "evaluation-no-timeseries.json").is_file()


def test_calibrate_checkpoint_refits_temperature(trained, synthetic_dir, tmp_path) -> None:
    from models.train import calibrate_checkpoint

    temps = calibrate_checkpoint(trained.checkpoint, synthetic_dir, tmp_path / "cal")
    assert temps == pytest.approx(trained.info["temperature"], rel=1e-3)
    model, meta = load_checkpoint(tmp_path / "cal")
    assert model.temperature.tolist() == pytest.approx([temps["arousal"], temps["valence"]])
    assert meta["training"]["split"] == trained.info["split"]


@pytest.mark.parametrize("balance", ["subset", "weights", "none"])
def test_other_balance_modes_run(synthetic_dir, tmp_path, balance) -> None:
    from models.network import ModelConfig
    from models.train import train

    tiny = ModelConfig(
        conv_channels=(4,), lstm_hidden=4, scanpath_cnn=(4,), stimulus_cnn=(4,), embed_dim=4,
        fusion_hidden=8,
    )  # fmt: skip
    r = train(synthetic_dir, tmp_path / "m", tiny, epochs=1, batch_size=64, steps_per_epoch=1,
              balance=balance, device="cpu", progress=False)  # fmt: skip
    assert r.info["balance"] == balance
    with pytest.raises(ValueError, match="balance must be one of"):
        train(synthetic_dir, tmp_path / "x", tiny, balance="magic", progress=False)
