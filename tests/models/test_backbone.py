"""The frozen VGG16 backbone: torchvision-layout weights from a local file, features computed once
per picture and cached, head-only checkpoints that name the weights file by its SHA-256.

Weights are random (seeded) and written by the tests; nothing is downloaded. Images are 64 px to
keep VGG16 on a CPU fast.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.backbone import (
    ENV_WEIGHTS,
    FEATURE_DIM,
    VGG16,
    BackboneError,
    FrozenVGG16,
    file_sha256,
    read_vgg16_features,
)
from models.checkpoint import CheckpointError, load_checkpoint
from models.dataset import TrialDataset
from models.evaluate import predict_dataset
from models.network import EmoEyeNet, ModelConfig
from models.synthetic import write_synthetic_dataset

SIZE = 64
pytestmark = pytest.mark.timeout(120)


def random_vgg16_state(seed: int) -> dict[str, torch.Tensor]:
    """A VGG16 ``features`` state dict with torchvision's keys and init (He, fan-out), seeded."""
    torch.manual_seed(seed)
    net = VGG16()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # a torchvision file's extra keys are ignored
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """The same random weights as .safetensors and as .pth (so: two files, two hashes)."""
    d = tmp_path_factory.mktemp("vgg")
    state = random_vgg16_state(0)
    save_file(state, str(d / "vgg16.safetensors"))
    torch.save(state, d / "vgg16.pth")
    return {"st": d / "vgg16.safetensors", "pth": d / "vgg16.pth"}


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory) -> Path:
    """4 participants x 24 synthetic trials on the bundled pictures (15 or 16 of them drawn)."""
    d = tmp_path_factory.mktemp("vggds") / "ds"
    return write_synthetic_dataset(d, n_participants=4, trials_per_participant=24, seed=1)


def n_shown(ds: Path) -> int:
    """Pictures the dataset's trials show: each goes through VGG16 exactly once."""
    n = len(set(TrialDataset(ds).stimulus_names))
    assert n >= 12
    return n


def vgg_config(ds: Path) -> ModelConfig:
    t = TrialDataset(ds)
    return ModelConfig(
        n_time=t.n_time, scanpath_size=t.scanpath_size, stimulus_backbone="vgg16", image_size=SIZE
    )


@pytest.fixture(scope="module")
def trained_vgg(weights, small_ds, tmp_path_factory):
    """One short training run with the VGG16 backbone; its backbone object and cache dir."""
    from models.train import train

    cache = tmp_path_factory.mktemp("featcache")
    bb = FrozenVGG16(weights["st"], SIZE, cache_dir=cache)
    before = bb.state_dict()
    out = tmp_path_factory.mktemp("vggckpt") / "m"
    result = train(
        small_ds, out, vgg_config(small_ds), vgg_weights=bb, epochs=3, batch_size=16, seed=0,
        device="cpu", progress=False, hold_out_stimuli=0,
    )  # fmt: skip
    return result, bb, before, cache


def test_vgg16_features_load_from_pth_and_safetensors_alike(weights):
    st, pth = read_vgg16_features(weights["st"]), read_vgg16_features(weights["pth"])
    assert set(st) == set(pth) == set(VGG16().to("meta").state_dict())
    assert all(torch.equal(st[k], pth[k]) for k in st)
    imgs = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    a = FrozenVGG16(weights["st"], SIZE, disk_cache=False).features(imgs)
    b = FrozenVGG16(weights["pth"], SIZE, disk_cache=False).features(imgs)
    assert a.shape == (2, FEATURE_DIM) and torch.equal(a, b) and a.abs().sum() > 0
    assert not a.requires_grad


def test_not_a_vgg16_file_is_refused(tmp_path):
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(BackboneError, match="lacks 25 of the 26 features"):
        read_vgg16_features(tmp_path / "x.safetensors")
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(BackboneError, match="pickle"):
        read_vgg16_features(tmp_path / "x.pkl")


def test_training_never_touches_the_backbone_and_computes_each_picture_once(trained_vgg, small_ds):
    result, bb, before, cache = trained_vgg
    n_pictures = n_shown(small_ds)
    # 3 epochs, validation and test passes: still one trip through VGG16 per picture.
    assert bb.computed == n_pictures
    after = bb.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None and not p.requires_grad for p in bb._network().parameters())
    # The network's own parameters hold no convolution of the backbone.
    names = [n for n, _ in result.model.named_parameters()]
    assert not any("features" in n for n in names)
    assert result.info["backbone"]["sha256"] == file_sha256(bb.path)
    files = list(bb.cache_dir.glob("*.npy"))
    assert len(files) == n_pictures
    assert bb.cache_dir.parent.parent == cache and bb.cache_dir.name == f"{SIZE}px"


def test_second_run_reads_every_picture_from_the_disk_cache(trained_vgg, small_ds, tmp_path):
    from models.train import train

    _, first, _, cache = trained_vgg
    bb = FrozenVGG16(first.path, SIZE, cache_dir=cache)
    train(
        small_ds, tmp_path / "m2", vgg_config(small_ds), vgg_weights=bb, epochs=1,
        batch_size=16, seed=0, device="cpu", progress=False, hold_out_stimuli=0,
    )  # fmt: skip
    assert bb.computed == 0 and bb.disk_hits == n_shown(small_ds)
    assert bb._net is None  # the weights were hashed but never even loaded


def test_checkpoint_is_small_holds_the_head_only_and_records_the_hash(trained_vgg):
    result, bb, _, _ = trained_vgg
    ck = result.checkpoint
    size = sum(p.stat().st_size for p in ck.iterdir() if p.is_file())
    assert size < 5 * 1024 * 1024, size
    from safetensors import safe_open

    with safe_open(str(ck / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("stimulus.head.") for k in keys)
    assert not any("features" in k or "backbone" in k for k in keys)
    meta = json.loads((ck / "config.json").read_text())
    assert meta["backbone"]["sha256"] == file_sha256(bb.path)
    assert meta["backbone"]["image_size"] == meta["model"]["image_size"] == SIZE


def test_reloaded_checkpoint_predicts_identically(trained_vgg, small_ds, tmp_path, monkeypatch):
    result, bb, _, _ = trained_vgg
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # a cold cache: features recomputed
    model, meta = load_checkpoint(result.checkpoint)  # the recorded weights file
    assert model.backbone is not None and model.backbone.sha256 == bb.sha256
    ds = TrialDataset(small_ds, meta["stats"], image_size=SIZE)
    idx = ds.labelled()[:40]
    pa, pv = predict_dataset(model, ds, idx)
    qa, qv = predict_dataset(result.model.eval(), ds, idx)
    assert np.array_equal(pa, qa) and np.array_equal(pv, qv)
    assert model.backbone.computed == n_shown(
        small_ds
    )  # cold cache here, so it ran the convolutions
    from models.predictor import Predictor

    pred = Predictor(result.checkpoint, backbone=bb.path, num_threads=None)
    raw = ds.arrays(idx[:1], ("signals", "baseline", "scanpath"))
    emb = pred.embedding_for(str(ds.stimulus_ids[idx[0]]))  # catalogue image at SIZE px
    ra, rv = pred.predict((raw["signals"], raw["baseline"], raw["scanpath"]), [emb])
    assert np.allclose(ra[0], pa[0], atol=1e-6) and np.allclose(rv[0], pv[0], atol=1e-6)


def test_wrong_or_missing_backbone_is_refused_in_one_line(trained_vgg, weights, monkeypatch):
    result, bb, _, _ = trained_vgg
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    want, other = file_sha256(weights["st"]), file_sha256(weights["pth"])
    with pytest.raises(CheckpointError, match=f"expected sha256 {want}, found {other}") as e:
        load_checkpoint(result.checkpoint, backbone=weights["pth"])
    assert "\n" not in str(e.value)
    monkeypatch.setenv(ENV_WEIGHTS, str(weights["pth"]))
    with pytest.raises(CheckpointError, match="expected sha256"):
        load_checkpoint(result.checkpoint)
    with pytest.raises(CheckpointError, match=f"backbone weights file \\(sha256 {want}\\)"):
        load_checkpoint(result.checkpoint, backbone=weights["st"].with_name("gone.safetensors"))


def test_moved_weights_file_is_found_through_the_flag_or_env(trained_vgg, tmp_path, monkeypatch):
    result, bb, _, _ = trained_vgg
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    ck = tmp_path / "ck"
    shutil.copytree(result.checkpoint, ck)
    meta = json.loads((ck / "config.json").read_text())
    meta["backbone"]["file"] = str(tmp_path / "moved-away.safetensors")
    (ck / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="recorded at training .*moved-away.* does not exist"):
        load_checkpoint(ck)
    monkeypatch.setenv(ENV_WEIGHTS, str(bb.path))
    model, _ = load_checkpoint(ck)
    assert model.backbone.path == bb.path


def test_unattached_vgg_branch_says_what_is_missing():
    model = EmoEyeNet(ModelConfig(stimulus_backbone="vgg16", image_size=SIZE))
    with pytest.raises(RuntimeError, match="backbone is not attached"):
        model.embed_stimulus(torch.zeros(3, SIZE, SIZE))
    with pytest.raises(ValueError, match="at least 32 px"):
        ModelConfig(stimulus_backbone="vgg16", image_size=16)


def test_cli_train_caches_features_in_the_user_cache_dir(weights, small_ds, tmp_path, monkeypatch):
    from emoeye.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    rc = main([
        "train", "--data", str(small_ds), "--out", str(tmp_path / "m"), "--epochs", "1",
        "--backbone-weights", str(weights["st"]), "--image-size", str(SIZE), "--no-progress",
        "--threads", "1", "--device", "cpu", "--hold-out-stimuli", "0",
    ])  # fmt: skip
    assert rc == 0
    sha = file_sha256(weights["st"])
    cached = tmp_path / "xdg" / "emoeye" / "vgg16-features" / sha[:16] / f"{SIZE}px"
    assert len(list(cached.glob("*.npy"))) == n_shown(small_ds)
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model"]["stimulus_backbone"] == "vgg16" and meta["model"]["image_size"] == SIZE
    assert meta["backbone"]["sha256"] == sha
    assert ENV_WEIGHTS not in os.environ  # the flag held for the command only


def test_cli_evaluate_refuses_another_weights_file_in_one_line(
    trained_vgg, weights, small_ds, tmp_path, monkeypatch, capsys
):
    from emoeye.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    result = trained_vgg[0]
    capsys.readouterr()
    rc = main([
        "evaluate", "--data", str(small_ds), "--checkpoint", str(result.checkpoint),
        "--split", "all", "--bootstrap", "10", "--backbone-weights", str(weights["pth"]),
    ])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    sha = file_sha256(weights["st"])
    assert err.count("\n") == 0 and f"expected sha256 {sha}" in err, err


def test_replay_runs_a_vgg16_checkpoint_and_refuses_the_wrong_backbone(
    weights, tmp_path, monkeypatch, capsys
):
    """The live/replay path (inference worker, Predictor) embeds pictures through the frozen
    backbone at the checkpoint's image size; the weights file comes from --backbone-weights,
    $EMOEYE_BACKBONE_WEIGHTS or the recorded path."""
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.xdf.writer import record_simulation
    from emoeye.cli import main
    from models.checkpoint import save_checkpoint
    from models.preprocess import NormStats

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=4, isi=7.0, lead_in=1.5, seed=7)
    )
    record_simulation(sim, tmp_path / "r.xdf", progress=False)
    torch.manual_seed(0)
    model = EmoEyeNet(ModelConfig(stimulus_backbone="vgg16", image_size=SIZE))
    model.attach_backbone(FrozenVGG16(weights["st"], SIZE))
    ck = save_checkpoint(tmp_path / "ck", model.eval(), NormStats.identity())
    table = tmp_path / "t.csv"
    argv = ["replay", str(tmp_path / "r.xdf"), "--fast", "--checkpoint", str(ck), "--quiet"]
    assert main([*argv, "--out", str(table)]) == 0
    rows = table.read_text().splitlines()[1:]
    assert len(rows) == 4 and all(",predicted," in r for r in rows)
    cached = tmp_path / "xdg" / "emoeye" / "vgg16-features" / file_sha256(weights["st"])[:16]
    assert len(list(cached.rglob("*.npy"))) >= 4  # the four pictures (and a neutral one)
    capsys.readouterr()
    monkeypatch.setenv(ENV_WEIGHTS, str(weights["pth"]))
    assert main([*argv, "--out", str(tmp_path / "t2.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected sha256" in err, err
    # --backbone-weights wins over the environment.
    assert main([*argv, "--out", str(table), "--backbone-weights", str(weights["st"])]) == 0
    assert os.environ[ENV_WEIGHTS] == str(weights["pth"])  # the caller's value is back


def test_a_checkpoint_with_the_whole_vgg16_inside_is_refused_with_advice(tmp_path):
    from models.checkpoint import save_checkpoint
    from models.preprocess import NormStats

    model = EmoEyeNet(ModelConfig(stimulus_backbone="vgg16", image_size=SIZE))
    ck = save_checkpoint(tmp_path / "old", model, NormStats.identity())  # no backbone attached
    assert "backbone" not in json.loads((ck / "config.json").read_text())
    with pytest.raises(CheckpointError, match="records no backbone sha256 .*retrain"):
        load_checkpoint(ck)
