"""A trial's features: trials cut by :func:`acquisition.trials.cut.cut_trial` from known
signals (pupil dilation, blinks on injected NaN runs, fixations in AOIs, missing roles), and the
physiology baseline on the same code."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.lsl.reading import RoleSeries
from acquisition.trials.cut import cut_trial
from acquisition.trials.types import TrialSpec
from features.aoi import Aoi, AoiSet
from features.trial import BASELINE_FEATURES, Grid, baseline_features, trial_features
from models.baselines import physiology_features

ONSET = 100.0
SPEC = TrialSpec(required_roles=("gaze",))


class Reader:
    """A role's series held in memory (the RoleReader protocol cut_trial reads)."""

    def __init__(self, t: np.ndarray, values: np.ndarray, fields: tuple[str, ...], rate: float):
        self.series = RoleSeries(t, values, fields)
        self.max_gap = 3.0 / rate

    def read(self, t0: float, t1: float) -> RoleSeries:
        return self.series.between(t0 - 1.0, t1 + 1.0)


def gaze_reader(rate: float = 120.0, blinks=()) -> Reader:
    """Gaze fixating (0.3, 0.4) until onset + 2 s, then (0.7, 0.6); pupil 4 mm dilating by
    0.5 mm from onset + 1 s; NaN (invalid) during each ``(start, length)`` of ``blinks``."""
    t = ONSET - 2.0 + np.arange(int(9.0 * rate)) / rate
    rel = t - ONSET
    x = np.where(rel < 2.0, 0.3, 0.7)
    y = np.where(rel < 2.0, 0.4, 0.6)
    pupil = 4.0 + 0.5 * np.clip(rel - 1.0, 0, 1)
    valid = np.ones(len(t))
    for start, length in blinks:
        lost = (rel >= start) & (rel < start + length)
        x[lost] = y[lost] = pupil[lost] = np.nan
        valid[lost] = 0.0
    return Reader(t, np.column_stack([x, y, pupil, valid]), ("x", "y", "pupil", "valid"), rate)


def test_pupil_dilation_peak_and_latency():
    trial = cut_trial("1", ONSET, "pic", {"gaze": gaze_reader()}, SPEC)
    f, _ = trial_features(trial)
    assert f["pupil_baseline"] == pytest.approx(4.0)
    assert f["pupil_peak"] == pytest.approx(0.5, abs=1e-6)
    assert 2.0 <= f["pupil_peak_latency"] < 2.1  # the plateau's first point
    expected = np.mean(0.5 * np.clip(np.arange(0.5, 5.0, 1 / 60) - 1.0, 0, 1))
    assert f["pupil_dilation"] == pytest.approx(expected, abs=0.01)


def test_blinks_are_counted_on_injected_nan_runs():
    # Three blinks (100, 200, 400 ms); a 30-ms dropout and a 900-ms loss are no blinks.
    blinks = [(0.5, 0.1), (1.5, 0.2), (2.5, 0.03), (3.0, 0.4), (3.8, 0.9)]
    trial = cut_trial("1", ONSET, "pic", {"gaze": gaze_reader(blinks=blinks)}, SPEC)
    f, _ = trial_features(trial)
    assert f["blink_count"] == 3
    assert f["blink_rate"] == pytest.approx(3 * 60 / SPEC.duration)
    clean = trial_features(cut_trial("1", ONSET, "pic", {"gaze": gaze_reader()}, SPEC))[0]
    assert clean["blink_count"] == 0


def test_fixations_and_aoi_dwell():
    aois = AoiSet(
        {
            "pic": [Aoi("left", 0.2, 0.3, 0.4, 0.5), Aoi("right", 0.6, 0.5, 0.8, 0.7)],
            "*": [Aoi("top", 0.0, 0.0, 1.0, 0.2)],
        }
    )
    trial = cut_trial("1", ONSET, "pic", {"gaze": gaze_reader()}, SPEC)
    f, _ = trial_features(trial, aois=aois)
    assert f["fixation_count"] == 2 and f["first_fixation"] == 0.0
    assert f["aoi_left_dwell"] == pytest.approx(2.0, abs=0.03)
    assert f["aoi_right_dwell"] == pytest.approx(3.0, abs=0.03)
    assert f["aoi_left_first"] == 0.0 and f["aoi_right_first"] == pytest.approx(2.0, abs=0.03)
    assert f["aoi_top_dwell"] == 0.0 and f["aoi_top_fixations"] == 0
    assert np.isnan(f["aoi_top_first"])
    other = trial_features(cut_trial("2", ONSET, "other", {"gaze": gaze_reader()}, SPEC), aois=aois)
    assert np.isnan(other[0]["aoi_left_dwell"]) and other[0]["aoi_top_dwell"] == 0.0


def test_a_trial_with_missing_roles_has_nan_there_and_says_why():
    trial = cut_trial("1", ONSET, "pic", {"gaze": gaze_reader()}, SPEC)
    f, notes = trial_features(trial)
    for col in ("eda_tonic", "scr_count", "scr_amplitude", "hr_change", "wave_beats"):
        assert np.isnan(f[col]), col
    assert any(n.startswith("gsr:") for n in notes) and any(n.startswith("hr:") for n in notes)
    assert f["fixation_count"] == 2 and np.isfinite(f["pupil_dilation"])
    none = cut_trial("1", ONSET, "pic", {}, TrialSpec(required_roles=()))
    f, notes = trial_features(none)
    assert np.isnan(f["fixation_count"]) and np.isnan(f["blink_count"])
    assert "gaze: no samples" in notes


def test_the_baseline_uses_the_tables_grid_features():
    """One implementation: physiology_features of a trial's arrays are its table values."""
    trial = cut_trial("1", ONSET, "pic", {"gaze": gaze_reader()}, SPEC)
    grid = Grid.of(trial.spec)
    row = baseline_features(trial.signals, trial.mask, trial.baseline, grid)
    f = physiology_features(
        trial.signals[None], trial.baseline[None], grid.n_baseline, grid.rate,
        trial.mask[None], grid.duration,
    )[0]  # fmt: skip
    np.testing.assert_array_equal(f, row)
    table, _ = trial_features(trial)
    for k, name in enumerate(BASELINE_FEATURES):
        if name.startswith("fixation"):
            continue  # the table's fixations are at the tracker's rate, the baseline's on the grid
        expected = table[name] if np.isfinite(table[name]) else 0.0
        assert f[k] == pytest.approx(expected, abs=1e-12), name
    assert f[BASELINE_FEATURES.index("fixation_count")] == 2
