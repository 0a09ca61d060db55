from __future__ import annotations

import numpy as np

from models.evaluate import (
    balanced_accuracy,
    confusion_matrix,
    evaluate_predictions,
    expected_calibration_error,
    head_metrics,
    macro_f1,
)


def test_confusion_and_scores_on_a_known_case() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 1, 0])
    cm = confusion_matrix(y, p, 3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 2, 0], [1, 0, 0]])
    assert np.isclose(balanced_accuracy(cm), (2 / 3 + 1 + 0) / 3)
    f1 = [2 * 2 / (3 + 3), 2 * 2 / (2 + 3), 0.0]
    assert np.isclose(macro_f1(cm), np.mean(f1))


def test_head_metrics_with_baselines_and_oracle() -> None:
    y = np.array([3, 3, 3, 2, 4])
    probs = np.eye(7)[[3, 3, 2, 2, 4]] * 0.9 + 0.1 / 7
    m = head_metrics(y, probs, oracle=np.array([3, 3, 3, 2, -1]))
    assert np.isclose(m["accuracy"], 0.8)
    assert np.isclose(m["mae"], 0.2)
    assert m["majority"]["class"] == 4 and np.isclose(m["majority"]["accuracy"], 0.6)
    assert m["oracle"]["n"] == 4 and m["oracle"]["accuracy"] == 1.0
    assert np.isclose(m["chance_accuracy"], 1 / 7)


def test_ece_zero_when_calibrated_and_positive_when_not() -> None:
    y = np.zeros(100, dtype=int)
    confident_right = np.tile([1.0, 0, 0], (100, 1))
    assert expected_calibration_error(confident_right, y) == 0.0
    confident_wrong = np.tile([0.0, 1.0, 0], (100, 1))
    assert np.isclose(expected_calibration_error(confident_wrong, y), 1.0)


def test_oracle_as_callable() -> None:
    y = np.array([1, 2])
    p = np.eye(7)[[1, 2]]
    r = evaluate_predictions(y, y, p, p, oracle=lambda: (y, y))
    assert r["arousal"]["oracle"]["accuracy"] == 1.0
    assert r["macro_f1_mean"] == 1.0


def test_fit_temperature_sharpens_flat_probabilities() -> None:
    from models.evaluate import fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.0, (2000, 7))
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(7, p=row) for row in p])  # calibrated at temperature 1
    flat = np.exp(logits / 4.0)  # too flat: temperature 4 applied
    flat /= flat.sum(1, keepdims=True)
    t = fit_temperature(flat, y)
    assert 0.18 < t < 0.35
    assert fit_temperature(flat[:0], y[:0]) == 1.0
