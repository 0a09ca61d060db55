"""Tiny-EmotioNet: learns continuous affect from AU series, is readable, saves without pickle."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models import tiny_emotionet as te

AUS = ["AU01_r", "AU04_r", "AU06_r", "AU12_r", "AU25_r"]
RATE = 10.0


def windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """AU windows whose smile (AU06+AU12) and frown (AU04) carry valence, overall intensity
    arousal, as in the simulator; tracking drop-outs as NaN."""
    rng = np.random.default_rng(seed)
    valence = rng.uniform(1, 7, n)
    arousal = rng.uniform(1, 7, n)
    t = 50
    x = rng.gamma(1.0, 0.3, (n, len(AUS), t))
    gain = 0.3 + 0.15 * (arousal - 1)
    smile = np.clip(valence - 4, 0, None)[:, None] * gain[:, None]
    frown = np.clip(4 - valence, 0, None)[:, None] * gain[:, None]
    x[:, 3] += smile
    x[:, 2] += 0.7 * smile
    x[:, 1] += frown
    x[:, 4] += 0.4 * gain[:, None]
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, np.stack([arousal, valence], axis=1)


@pytest.fixture(scope="module")
def trained():
    x, y = windows(300, seed=1)
    model, losses = te.fit(x, y, te.TinyConfig(aus=AUS, rate=RATE, n_filters=4), epochs=300)
    return model, losses


def test_learns_valence_and_arousal_on_new_windows(trained):
    model, losses = trained
    assert losses[-1] < 0.5 * losses[0]
    x, y = windows(200, seed=2)
    pred = te.predict(model, x)
    assert te.concordance(pred[:, 1], y[:, 1]) > 0.7  # valence from smile/frown
    assert te.concordance(pred[:, 0], y[:, 0]) > 0.3  # arousal from intensity: weaker
    assert pred.min() >= 1.0 and pred.max() <= 7.0


def test_smiling_raises_valence_and_frowning_lowers_it(trained):
    model, _ = trained
    base = np.full((1, len(AUS), 50), 0.3)
    smile, frown = base.copy(), base.copy()
    smile[:, 3] += 1.5
    frown[:, 1] += 1.5
    v = te.predict(model, np.concatenate([base, smile, frown]))[:, 1]
    assert v[1] > v[0] + 0.5 and v[2] < v[0] - 0.5


def test_round_trip_through_safetensors(trained, tmp_path):
    model, _ = trained
    te.save(model, tmp_path / "m", extra={"trained_on": "test"})
    again = te.load(tmp_path / "m")
    x, _ = windows(20, seed=3)
    np.testing.assert_array_equal(te.predict(model, x), te.predict(again, x))
    assert again.config.aus == AUS and again.config.kernel == model.config.kernel


def test_bad_inputs_are_clear_errors(tmp_path):
    cfg = te.TinyConfig(aus=AUS, rate=RATE)
    with pytest.raises(ValueError, match=r"shape \(N, 5, T\)"):
        te.fit(np.zeros((4, 3, 10)), np.zeros((4, 2)), cfg)
    with pytest.raises(ValueError, match="fewer than 2 windows"):
        te.fit(np.zeros((2, 5, 10)), np.full((2, 2), np.nan), cfg)
    with pytest.raises(ValueError, match="no Tiny-EmotioNet here"):
        te.load(tmp_path)
    with pytest.raises(ValueError, match="at least one action unit"):
        te.TinyEmotioNet(te.TinyConfig(aus=[]))


def test_filters_are_plotted(trained, tmp_path):
    model, _ = trained
    path = te.plot_filters(model, tmp_path / "filters.png")
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 100 and img.shape[1] > 200
    assert img.std() > 10  # drawn, not blank


def test_concordance_known_values():
    a = np.linspace(-1, 1, 50)
    assert te.concordance(a, a) == pytest.approx(1.0)
    assert te.concordance(a, -a) == pytest.approx(-1.0, abs=1e-9)
    assert te.concordance(a, a + 1.0) < 0.5
    assert np.isnan(te.concordance([1.0], [1.0]))  # correlated but not concordant
