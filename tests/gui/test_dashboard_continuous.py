"""The dashboard in continuous mode: arousal and valence as time courses with their class
probabilities (heatmap + expected-value line), real Qt widgets offscreen."""

from __future__ import annotations

import numpy as np
import pytest
from gui_sessions import OfflineSession

from acquisition.sim.simulator import Simulation, SimulationConfig
from inference.prediction import Prediction

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def continuous_session() -> OfflineSession:
    s = OfflineSession(
        Simulation(
            SimulationConfig(device_set="gazepoint", n_trials=4, isi=6.0, rating_delay=5.5, seed=1)
        )
    )
    s.live.core.enable_continuous(1.0)
    return s


@pytest.fixture
def window(make_window, continuous_session):
    return make_window(continuous_session)


def test_continuous_time_courses_with_probabilities(continuous_session, window):
    s = continuous_session
    assert window.continuous is not None and window.continuous.isVisible()
    s.advance(25.0)
    window.tick()
    preds = s.store.latest(1000)
    windows = [p for p in preds if p.mode == "continuous"]
    trials = [p for p in preds if p.mode == "trial"]
    assert len(windows) >= 15 and len(trials) >= 2
    panel = window.continuous
    assert panel.shown == len(windows)
    # Trials stay trials: the trial panels never see a window.
    assert len(window.log.predictions) == len(trials)
    assert len(window.values.arousal_pts.points()) == len(trials)
    assert window.plane.shown.mode == "trial"
    for head in ("arousal", "valence"):
        _, image, line = panel.heads[head]
        assert image.image.shape == (7, len(windows))
        assert np.allclose(image.image[:, -1], getattr(windows[-1], f"{head}_probs"))
        x, y = line.getData()
        assert np.allclose(y, [getattr(p, head) for p in windows])
        ends = np.array([p.onset + 5.0 for p in windows]) - window.origin
        assert np.allclose(x, ends)
        rect = image.mapRectToParent(image.boundingRect())
        assert rect.left() == pytest.approx(ends[0] - 0.5) and rect.right() == pytest.approx(
            ends[-1] + 0.5
        )
    assert windows[-1].trial_id in panel.caption.text
    # A window without a prediction: a blank column and a gap in the line.
    uniform = np.full(7, 1 / 7)
    last = windows[-1]
    s.store.add(
        Prediction("c99", last.onset + 1.0, "", uniform, uniform, status="no_data",
                   error="no usable data: gsr", mode="continuous")
    )  # fmt: skip
    window.tick()
    _, image, line = panel.heads["arousal"]
    assert image.image[:, -1].sum() == 0
    assert np.isnan(line.getData()[1][-1])
    assert "not predicted" in panel.caption.text
    # It is drawn: the arousal plot holds pixels of its colour.
    img = panel.grab().toImage()
    reds = sum(
        1
        for x in range(0, img.width(), 4)
        for y in range(0, img.height(), 4)
        if (c := img.pixelColor(x, y)).red() > 150 and c.blue() < 120 and c.green() < 150
    )
    assert reds > 20  # the red title alone gives ~5; drawn heatmaps gave 37-73 (size, load)


def test_trial_mode_dashboard_has_no_continuous_panel(gazepoint_session, make_window):
    assert make_window(gazepoint_session).continuous is None
