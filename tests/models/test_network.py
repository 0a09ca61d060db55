from __future__ import annotations

import time

import pytest
import torch

from models.network import BRANCHES, VGG16, EmoEyeNet, ModelConfig, count_parameters


def _inputs(b: int = 3, cfg: ModelConfig | None = None):
    cfg = cfg or ModelConfig()
    return (
        torch.randn(b, cfg.channels, cfg.n_time),
        torch.rand(b, cfg.scanpath_channels, cfg.scanpath_size, cfg.scanpath_size),
        torch.rand(b, 3, cfg.image_size, cfg.image_size),
    )


def test_output_shapes() -> None:
    model = EmoEyeNet().eval()
    ts, sp, im = _inputs(4)
    la, lv = model(ts, sp, im)
    assert la.shape == (4, 7) and lv.shape == (4, 7)


def test_cached_embedding_equals_image_path() -> None:
    model = EmoEyeNet().eval()
    ts, sp, im = _inputs(1)
    with torch.inference_mode():
        emb = model.embed_stimulus(im[0])
        assert emb.shape == (1, model.config.embed_dim)
        a = model(ts, sp, stimulus=im)
        b = model(ts, sp, stimulus_embedding=emb)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])


def test_one_embedding_broadcasts_over_a_batch() -> None:
    model = EmoEyeNet().eval()
    ts, sp, im = _inputs(5)
    with torch.inference_mode():
        emb = model.embed_stimulus(im[0])
        la, _ = model(ts, sp, stimulus_embedding=emb)
    assert la.shape == (5, 7)


@pytest.mark.parametrize("off", BRANCHES)
def test_branch_switches(off: str) -> None:
    cfg = ModelConfig(**{f"use_{off}": False})
    model = EmoEyeNet(cfg).eval()
    assert getattr(model, off) is None
    ts, sp, im = _inputs(2)
    kwargs = {"timeseries": ts, "scanpath": sp, "stimulus": im}
    kwargs[off] = None  # the switched-off branch needs no input
    la, lv = model(**kwargs)
    assert la.shape == lv.shape == (2, 7)


def test_no_branch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one branch"):
        ModelConfig(use_timeseries=False, use_scanpath=False, use_stimulus=False)


def test_ablation_zeroes_a_branch() -> None:
    model = EmoEyeNet().eval()
    ts, sp, im = _inputs(2)
    with torch.inference_mode():
        full = model(ts, sp, im)[0]
        abl = model(ts, sp, im, ablate=("stimulus",))[0]
        # With the stimulus zeroed, the image no longer matters.
        abl2 = model(ts, sp, torch.rand_like(im), ablate=("stimulus",))[0]
    assert not torch.allclose(full, abl)
    torch.testing.assert_close(abl, abl2)
    with pytest.raises(ValueError, match="unknown branches"):
        model(ts, sp, im, ablate=("pupil",))


def test_config_round_trip_and_unknown_keys() -> None:
    cfg = ModelConfig(lstm_hidden=32, conv_channels=(8, 16))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_default_model_is_small_and_fast() -> None:
    model = EmoEyeNet().eval()
    assert count_parameters(model) * 4 < 2 * 1024 * 1024  # well under the 5 MB file budget
    ts, sp, im = _inputs(1)
    with torch.inference_mode():
        emb = model.embed_stimulus(im)
        for _ in range(3):
            model(ts, sp, stimulus_embedding=emb)
        best = float("inf")
        for _ in range(10):
            t0 = time.perf_counter()
            model(ts, sp, stimulus_embedding=emb)
            best = min(best, time.perf_counter() - t0)
    # Target is well under 10 ms; the bound is loose because the test box is shared.
    assert best < 0.010


def test_vgg16_uses_torchvision_keys() -> None:
    with torch.device("meta"):
        vgg = VGG16()
    keys = vgg.state_dict().keys()
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    expected = {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    assert set(keys) == expected
    assert tuple(vgg.state_dict()["features.28.weight"].shape) == (512, 512, 3, 3)


def test_vgg16_branch_owns_only_a_small_head() -> None:
    model = EmoEyeNet(ModelConfig(stimulus_backbone="vgg16", image_size=224))
    names = [n for n, _ in model.named_parameters()]
    assert any(n.startswith("stimulus.head.") for n in names)
    assert not any("features" in n or "backbone" in n for n in names)
    assert all(p.requires_grad for p in model.parameters())
    assert count_parameters(model.stimulus) < 200_000
    # Frozen features in, embedding out: no images, no backbone needed.
    emb = model.eval().embed_stimulus(torch.rand(3, 2048))
    assert emb.shape == (3, model.config.embed_dim)


def test_ts_summary_adds_window_statistics() -> None:
    from models.network import TimeSeriesBranch

    branch = TimeSeriesBranch(ModelConfig(ts_summary=True)).eval()
    assert branch.out_dim == 64 + 20
    x = torch.zeros(2, 5, 360)
    x[1, 3, 60 + 90 :] = 2.0  # a skin-conductance rise 1.5 s after onset in trial 2
    with torch.no_grad():
        raw = branch.summary.running_mean.clone()
        out = branch(x)
    assert out.shape == (2, 84) and torch.equal(raw, branch.summary.running_mean)
    peak = 5 + 3  # second statistic block (peak minus onset), gsr channel
    assert out[1, 64 + peak] > out[0, 64 + peak]
    assert TimeSeriesBranch(ModelConfig()).out_dim == 64  # off by default
