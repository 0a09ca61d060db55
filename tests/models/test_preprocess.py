from __future__ import annotations

import numpy as np
import pytest

from models.preprocess import (
    NormStats,
    baseline_relative,
    compute_stats,
    normalise_signals,
    prepare_inputs,
)


def test_physio_channels_are_relative_gaze_absolute() -> None:
    sig = np.ones((5, 10), np.float32) * np.array([[0.3], [0.6], [4.0], [5.0], [70.0]], np.float32)
    base = np.array([0.5, 0.5, 3.0, 4.0, 60.0], np.float32)
    out = baseline_relative(sig, base)
    np.testing.assert_allclose(out[:, 0], [0.3, 0.6, 1.0, 1.0, 10.0], rtol=1e-6)


def test_nan_baseline_is_zero_change_and_output_finite() -> None:
    sig = np.random.default_rng(0).normal(size=(2, 5, 20)).astype(np.float32)
    sig[1, 0, 3] = np.nan  # stray NaN in a gaze channel
    base = np.zeros((2, 5), np.float32)
    base[0, 2] = np.nan  # no pupil baseline
    stats = NormStats(np.array([0.5, 0.5, 0.1, 0.2, 1.0]), np.array([0.2, 0.2, 0.3, 0.5, 4.0]))
    out = normalise_signals(sig, base, stats)
    assert np.isfinite(out).all()
    # Zero change, standardised: (0 - mean) / std.
    np.testing.assert_allclose(out[0, 2], (0 - 0.1) / 0.3, rtol=1e-5)


def test_flat_channel_does_not_divide_by_zero() -> None:
    sig = np.zeros((3, 5, 8), np.float32)
    stats = compute_stats(sig, np.zeros((3, 5), np.float32))
    assert np.isfinite(normalise_signals(sig, np.zeros((3, 5)), stats)).all()


def test_stats_standardise_training_data() -> None:
    rng = np.random.default_rng(1)
    sig = rng.normal(loc=[[1], [2], [3], [4], [5]], scale=2.0, size=(50, 5, 30)).astype(np.float32)
    base = np.zeros((50, 5), np.float32)
    stats = compute_stats(sig, base)
    out = normalise_signals(sig, base, stats)
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2)), 1, atol=1e-3)
    again = NormStats.from_dict(stats.to_dict())
    np.testing.assert_allclose(again.mean, stats.mean)
    np.testing.assert_allclose(again.std, stats.std)


def test_prepare_inputs_from_trials(few_trials) -> None:
    trials, _ = few_trials
    inputs = prepare_inputs(trials[:4], NormStats.identity())
    assert inputs.timeseries.shape == (4, 5, 360)
    assert inputs.scanpath.shape == (4, 2, 64, 64)
    assert inputs.stimulus_ids == [t.stimulus_id for t in trials[:4]]
    single = prepare_inputs(trials[0], NormStats.identity())
    assert single.timeseries.shape == (1, 5, 360)


def test_prepare_inputs_refuses_other_spec(few_trials) -> None:
    trials, _ = few_trials
    with pytest.raises(ValueError, match="trained with 300 grid samples"):
        prepare_inputs(trials[:1], NormStats.identity(), n_time=300)


def test_augment_scales_responses_around_baseline_and_moves_gaze(few_trials) -> None:
    from models.preprocess import Augment

    trials, _ = few_trials
    arrays = {
        "signals": np.stack([t.signals for t in trials]),
        "baseline": np.stack([t.baseline for t in trials]),
        "scanpath": np.stack([t.scanpath for t in trials]).astype(np.float16),
    }
    before = {k: v.copy() for k, v in arrays.items()}
    Augment(gain_sd=0.3, gaze_offset_sd=0.05, seed=0)(arrays)
    sig, base = arrays["signals"], arrays["baseline"]
    assert np.isfinite(sig).all()
    # Physio change from baseline is scaled by one gain per trial and channel.
    ch = before["signals"][:, 2:] - before["baseline"][:, 2:, None]
    ratio = (sig[:, 2:] - base[:, 2:, None])[..., 200] / ch[..., 200]
    assert not np.allclose(ratio, 1.0)
    np.testing.assert_allclose(
        (sig[:, 2:] - base[:, 2:, None])[..., 300] / ch[..., 300], ratio, rtol=1e-3
    )
    # Gaze moves by a constant offset per trial; the scanpath image moves with it.
    d = sig[:, :2] - before["signals"][:, :2]
    np.testing.assert_allclose(d, d[..., :1].repeat(d.shape[-1], axis=-1), atol=1e-5)
    assert (arrays["scanpath"] != before["scanpath"]).any()
