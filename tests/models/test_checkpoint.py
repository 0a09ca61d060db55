from __future__ import annotations

import builtins
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from models.checkpoint import (
    CheckpointError,
    default_checkpoint_dir,
    load_checkpoint,
    save_checkpoint,
)
from models.network import EmoEyeNet, ModelConfig
from models.preprocess import NormStats


class _Evil:
    """Unpickling this creates a file: the loader must never get that far."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.open, (self.target, "w"))


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    model = EmoEyeNet(ModelConfig(conv_channels=(8, 8), lstm_hidden=16)).eval()
    stats = NormStats(np.arange(5.0), np.ones(5) + 1)
    history = [{"epoch": 1, "train_loss": 2.0, "val_loss": 1.9, "val_macro_f1": 0.2}]
    out = save_checkpoint(tmp_path / "ck", model, stats, spec={"grid_rate": 60.0}, history=history)
    return out, model, stats


def _same_outputs(a: EmoEyeNet, b: EmoEyeNet) -> None:
    g = torch.Generator().manual_seed(1)
    ts, sp, im = (
        torch.randn(2, 5, 360, generator=g),
        torch.rand(2, 2, 64, 64, generator=g),
        torch.rand(2, 3, 64, 64, generator=g),
    )
    with torch.inference_mode():
        for x, y in zip(a(ts, sp, im), b(ts, sp, im), strict=True):
            torch.testing.assert_close(x, y)


def test_round_trip(ckpt) -> None:
    path, model, stats = ckpt
    assert {p.name for p in path.iterdir()} == {
        "model.safetensors",
        "config.json",
        "training_curve.png",
    }
    loaded, meta = load_checkpoint(path)
    assert meta["model_config"] == model.config
    np.testing.assert_allclose(meta["stats"].mean, stats.mean)
    assert meta["classes"]["arousal"] == list(range(1, 8))
    assert meta["channels"] == ["x", "y", "pupil", "gsr", "hr"]
    assert not loaded.training
    _same_outputs(model, loaded)
    # The weights file alone works too (config.json beside it).
    loaded2, _ = load_checkpoint(path / "model.safetensors")
    _same_outputs(model, loaded2)


def test_torch_state_dict_loads_weights_only(ckpt) -> None:
    path, model, _ = ckpt
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "model.pt")
    loaded, _ = load_checkpoint(path)
    _same_outputs(model, loaded)


@pytest.mark.parametrize("name", ["model.pt", "model.pkl", "model.safetensors"])
def test_plain_pickle_is_refused_unopened(ckpt, tmp_path, name) -> None:
    path, _, _ = ckpt
    target = tmp_path / "pwned.txt"
    (path / "model.safetensors").unlink()
    weights = path / name
    weights.write_bytes(pickle.dumps({"w": _Evil(str(target))}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(weights)
    assert not target.exists()


def test_torch_zip_with_code_is_refused(ckpt, tmp_path) -> None:
    path, _, _ = ckpt
    target = tmp_path / "pwned.txt"
    (path / "model.safetensors").unlink()
    torch.save({"w": _Evil(str(target))}, path / "model.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)
    assert not target.exists()


def test_truncated_safetensors_is_refused(ckpt) -> None:
    path, _, _ = ckpt
    w = path / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)
    w.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_corrupt_weights_fail_the_checksum(ckpt) -> None:
    path, _, _ = ckpt
    w = path / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_config_and_weights_mismatch_is_refused(ckpt) -> None:
    path, _, _ = ckpt
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model"]["lstm_hidden"] = 32
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(
        CheckpointError, match="checkpoint was trained with .* but the network expects"
    ):
        load_checkpoint(path)
    cfg["model"]["lstm_hidden"] = 16
    cfg["model"]["use_scanpath"] = False
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_checkpoint(path)


def test_expected_shapes_are_checked(ckpt) -> None:
    path, _, _ = ckpt
    with pytest.raises(
        CheckpointError, match="trained with n_time=360 but the network expects 300"
    ):
        load_checkpoint(path, expect=ModelConfig(n_time=300))


def test_missing_files_are_named(ckpt, tmp_path) -> None:
    path, _, _ = ckpt
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    other = tmp_path / "other"
    shutil.copytree(path, other)
    (other / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(other)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="holds no model.safetensors"):
        load_checkpoint(path)


def test_default_checkpoint_dir_is_in_the_package() -> None:
    d = default_checkpoint_dir()
    assert d.name == "default_model" and d.parent.name == "models"


def test_checkpoint_without_temperature_loads_with_temperature_one(ckpt) -> None:
    from safetensors.torch import load_file, save_file

    path, model, _ = ckpt
    w = path / "model.safetensors"
    state = load_file(str(w))
    state.pop("temperature")
    save_file(state, str(w))
    cfg = json.loads((path / "config.json").read_text())
    cfg["weights"].pop("sha256")
    (path / "config.json").write_text(json.dumps(cfg))
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.temperature, torch.ones(2))
    _same_outputs(model, loaded)


def test_bundled_default_model_loads_and_fits_budget() -> None:
    d = default_checkpoint_dir()
    if not (d / "config.json").is_file():
        pytest.skip("no bundled default model yet (see docs/models.md to train it)")
    size = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    assert size < 5 * 1024 * 1024
    model, meta = load_checkpoint(None)
    assert meta["model_config"].n_time == 360 and meta["model_config"].n_classes == 7
    split = meta["training"]["split"]
    assert split["by"] == "participant and stimulus"
    # Trained on generated pictures, some held out; the baselines and fingerprint are recorded.
    assert split["held_out_stimuli"] and not set(split["held_out_stimuli"]) & set(
        split["train_stimuli"]
    )
    assert all(s.startswith("gen1-") for s in split["train_stimuli"])
    assert meta["training"]["dataset_fingerprint"] and meta["training"]["baselines"]["physiology"]


@pytest.mark.parametrize("fault", ["pickle", "truncated", "other-architecture"])
def test_f08_bad_checkpoint_stops_emoeye_run_with_one_clear_line(ckpt, tmp_path, capsys, fault):
    """Fault 8 as the experimenter meets it: ``emoeye run --checkpoint`` on a bad checkpoint
    exits 2 with one line saying what is wrong, before any stream is opened."""
    from emoeye.cli import main

    path, _, _ = ckpt
    target = tmp_path / "pwned.txt"
    weights = path / "model.safetensors"
    if fault == "pickle":
        weights.unlink()
        torch.save({"w": _Evil(str(target))}, path / "model.pt")
        expected = "weights_only"
    elif fault == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
        expected = "truncated"
    else:
        cfg = json.loads((path / "config.json").read_text())
        cfg["model"]["conv_channels"] = [32, 64, 64]
        (path / "config.json").write_text(json.dumps(cfg))
        expected = "do not fit the network described by"
    rc = main(["run", "--checkpoint", str(path), "--log", str(tmp_path / "x.jsonl"), "--wait", "1"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines[0].startswith("emoeye: error: cannot load the model") and expected in err, err
    assert "Traceback" not in err and not target.exists()
    assert not (tmp_path / "x.jsonl").exists()
