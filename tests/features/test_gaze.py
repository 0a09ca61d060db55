"""I-VT fixations and saccades on synthetic gaze traces with known fixations."""

from __future__ import annotations

import numpy as np
import pytest

from features import gaze

# (start, end, x, y) of each fixation; 40-ms saccades between them.
FIXATIONS = [
    (0.0, 0.6, 0.2, 0.3),
    (0.64, 1.5, 0.7, 0.3),
    (1.54, 2.3, 0.5, 0.8),
    (2.34, 3.0, 0.2, 0.2),
]


def trace(rate: float, noise: float = 0.0, seed: int = 0):
    """A gaze trace at ``rate``: the fixations of :data:`FIXATIONS`, straight saccades between."""
    t = np.arange(0, 3.0, 1 / rate)
    keys_t = [v for f in FIXATIONS for v in (f[0], f[1])]
    keys_x = [v for f in FIXATIONS for v in (f[2], f[2])]
    keys_y = [v for f in FIXATIONS for v in (f[3], f[3])]
    x, y = np.interp(t, keys_t, keys_x), np.interp(t, keys_t, keys_y)
    rng = np.random.default_rng(seed)
    return t, x + rng.normal(0, noise, len(t)), y + rng.normal(0, noise, len(t))


@pytest.mark.parametrize(("rate", "noise"), [(60.0, 0.0), (300.0, 0.001), (1200.0, 0.0005)])
def test_known_fixations_are_found(rate, noise):
    t, x, y = trace(rate, noise)
    fixations, saccades = gaze.ivt(t, x, y)
    assert len(fixations) == len(FIXATIONS)
    assert len(saccades) == len(FIXATIONS) - 1
    # One velocity span of the sample on each side of a saccade is lost to it.
    tol = gaze.VELOCITY_SPAN + 2.5 / rate
    for f, (a, b, fx, fy) in zip(fixations, FIXATIONS, strict=True):
        assert f.start == pytest.approx(a, abs=tol) and f.end == pytest.approx(b, abs=tol)
        assert f.x == pytest.approx(fx, abs=0.01) and f.y == pytest.approx(fy, abs=0.01)
        assert f.dispersion < 0.02 + 10 * noise


def test_invalid_samples_split_a_fixation_and_short_ones_are_dropped():
    t, x, y = trace(60.0)
    x[(t > 0.9) & (t < 1.0)] = np.nan  # a blink in the second fixation
    fixations, _ = gaze.ivt(t, x, y)
    assert len(fixations) == len(FIXATIONS) + 1
    fixations, _ = gaze.ivt(t, x, y, min_fixation=0.7)
    assert len(fixations) == 1  # only the 0.76-s one is left
    assert fixations[0].start == pytest.approx(1.54, abs=0.05)


def test_trial_figures_clip_fixations_to_the_window():
    t, x, y = trace(60.0)
    f, kept = gaze.gaze_features(t - 0.3, x, y, duration=2.5)  # onset 0.3 s into the first
    assert f["fixation_count"] == 4 and kept[0].start == 0.0
    assert f["first_fixation"] == 0.0 and kept[-1].end == 2.5
    assert f["saccade_count"] == 3
    assert f["saccade_duration"] == pytest.approx(0.04 + 1 / 60, abs=0.02)
    assert f["fixation_duration"] == pytest.approx(np.mean([k.duration for k in kept]))
    f, _ = gaze.gaze_features(t, x * np.nan, y, duration=2.5)
    assert all(np.isnan(v) for v in f.values())


def test_single_noisy_samples_over_the_threshold_do_not_split_a_fixation():
    t, x, y = trace(1200.0)
    spikes = [300, 900, 1500]  # single samples inside the first three fixations
    x[spikes] += 0.01  # 0.01 screen units for 1 sample over a 20-ms span: 0.5 units/s each side
    fixations, saccades = gaze.ivt(t, x, y, threshold=0.4)
    assert len(fixations) == len(FIXATIONS) and len(saccades) == len(FIXATIONS) - 1
    fixations, saccades = gaze.ivt(t, x, y, threshold=0.4, min_fixation=0.0)
    assert len(saccades) == len(FIXATIONS) - 1


def test_threshold_is_in_screen_units_per_second():
    t, x, y = trace(60.0)
    slow_pursuit = 0.2 + 0.5 * t / 3.0  # 0.17 screen units/s
    fixations, _ = gaze.ivt(t, slow_pursuit, np.full(len(t), 0.5))
    assert len(fixations) == 1
    fixations, _ = gaze.ivt(t, slow_pursuit, np.full(len(t), 0.5), threshold=0.1)
    assert fixations == []
