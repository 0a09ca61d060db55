"""The dashboard over simulated sessions: panels fill, states show, flags stand out, pause holds."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from gui_sessions import OfflineSession, fake_prediction

from acquisition.config import AcquisitionConfig
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.trials.types import TrialSpec
from gui.app import DashboardWindow, run_dashboard
from gui.panels.signals import MAX_POINTS, POINTS_PER_PIXEL
from gui.qt import QtCore

pytestmark = pytest.mark.timeout(60)


def curve_len(window: DashboardWindow, track: str, field: str) -> int:
    x, _ = window.signals.curves[(track, field)].getData()
    return 0 if x is None else len(x)


def test_panels_fill_from_a_simulated_session(gazepoint_session, make_window):
    s = gazepoint_session
    window = make_window(s)
    window.tick()  # no data yet: nothing breaks, nothing drawn
    assert curve_len(window, "gaze", "x") == 0
    s.advance(21.0)
    window.tick()
    for track, field in (("gaze", "x"), ("gaze", "y"), ("pupil", "pupil"), ("gsr", "gsr")):
        assert curve_len(window, track, field) > 500, (track, field)
    assert curve_len(window, "hr", "hr") > 10
    window._slow_update()
    assert window.health.states == {"gaze": "ok", "gsr": "ok", "hr": "ok", "markers": "ok"}
    assert window.banner.isHidden()
    # The newest onset's picture is on show, with the live gaze point over it.
    trial_id, _, stimulus_id = s.live.core.aligner.last_onset
    assert window.stimulus.stimulus_id == stimulus_id
    assert window.stimulus.image.image.shape == (256, 256, 3)
    assert window.stimulus.gaze_point is not None
    # Predictions: the current one on the plane, earlier ones behind it, bars per trial.
    assert len(s.store) >= 2
    assert window.plane.shown.trial_id == s.store.latest(1)[0].trial_id
    assert len(window.plane.current.points()) == 1
    assert len(window.plane.history.points()) == len(s.store) - 1
    assert len(window.values.arousal_pts.points()) == len(s.store)
    assert np.allclose(window.plane.arousal_bars.opts["height"], s.store.latest(1)[0].arousal_probs)
    # Trial windows in view are shaded and their onsets marked.
    shown = [r for r in window.signals._regions["gsr"] if r.isVisible()]
    assert shown and all(r.rect().width() == pytest.approx(5.0) for r in shown)
    # ... across the plot's whole height.
    y0, y1 = window.signals.plots["gsr"].getViewBox().viewRange()[1]
    assert all(r.rect().top() <= y0 and r.rect().bottom() >= y1 for r in shown)


def test_stimulus_changes_at_onset(gazepoint_session, make_window):
    s = gazepoint_session
    window = make_window(s)
    seen = []
    for _ in range(80):
        s.advance(0.25)
        window.tick()
        sid = window.stimulus.stimulus_id
        if sid is not None and (not seen or seen[-1][0] != sid):
            seen.append((sid, window.stimulus.image.image.copy()))
        if len(seen) == 3:
            break
    assert len(seen) == 3
    onsets = [t.stimulus_id for t in s.trials] + [s.live.core.aligner.last_onset[2]]
    assert [sid for sid, _ in seen] == onsets[: len(seen)] or seen[-1][0] == onsets[-1]
    assert not np.array_equal(seen[0][1], seen[1][1])


def test_missing_roles_named_in_a_red_banner(make_window):
    sim = Simulation(SimulationConfig(device_set="lab", n_trials=3, isi=6.0, rating_delay=5.5))
    config = AcquisitionConfig(trial=TrialSpec(grace=1.0, required_roles=("gaze", "gsr")))
    s = OfflineSession(sim, config, drop_streams=("ECG", "RR", "PPG"))
    window = make_window(s)
    s.advance(8.0)
    window.tick()
    window._slow_update()
    assert not window.banner.isHidden()
    assert "hr" in window.banner.text() and "not required" in window.banner.text()
    assert "background: #c62828" in window.banner.styleSheet()
    assert window.health.states["hr"] == "missing"
    assert window.health.item(2, 2).text() == "MISSING"
    assert curve_len(window, "hr", "hr") == 0
    assert curve_len(window, "gsr", "gsr") > 500


def test_lost_stream_shows_in_table_and_banner(gazepoint_session, make_window):
    from acquisition.lsl.health import StreamState

    s = gazepoint_session
    window = make_window(s)
    s.advance(3.0)
    (health,) = (
        s.live.health.values()
        if len(s.live.health) == 1
        else [h for h in s.live.health.values() if "gaze" in h.roles]
    )
    health.state = StreamState.LOST
    window._slow_update()
    assert window.health.states["gaze"] == "lost"
    assert "lost" in window.banner.text()


def test_flagged_predictions_look_different(gazepoint_session, make_window):
    s = gazepoint_session
    s.flag_every = 2  # trials 2, 4, ... flagged
    window = make_window(s)
    s.advance(30.0)
    window.tick()
    preds = s.store.latest(100)
    assert any(p.flagged for p in preds) and not all(p.flagged for p in preds)
    for pts in (window.values.arousal_pts.points(), window.values.valence_pts.points()):
        assert len(pts) == len(preds)
        for spot, p in zip(pts, preds, strict=True):
            if p.flagged:
                assert spot.symbol() == "s" and spot.brush().color().alpha() == 0
            else:
                assert spot.symbol() == "o" and spot.brush().color().alpha() == 255
    brushes = window.timeline.bars.opts["brushes"]
    grey = [b.color().name() for b, p in zip(brushes, preds, strict=True) if p.flagged]
    assert set(grey) == {"#9e9e9e"}
    # The newest trial flagged: its marker on the plane is hollow and its bars grey.
    last = fake_prediction(s.trials[-1], flagged=True)
    last.trial_id = "late"
    s.store.add(last)
    window.tick()
    (spot,) = window.plane.current.points()
    assert spot.symbol() == "s" and spot.brush().color().alpha() == 0
    assert "flagged" in window.plane.caption.text


def test_pause_freezes_display_while_acquisition_goes_on(gazepoint_session, make_window, qtbot):
    s = gazepoint_session
    window = make_window(s)
    s.advance(10.0)
    window.tick()
    before = window.signals.curves[("gsr", "gsr")].getData()[0].copy()
    end_before = s.live.core.roles["gsr"].buffer.last_timestamp
    qtbot.mouseClick(window.pause_button, QtCore.Qt.LeftButton)
    assert window.paused and window.pause_button.text() == "Resume display"
    s.advance(10.0)
    window.tick()
    window._slow_update()
    assert s.live.core.roles["gsr"].buffer.last_timestamp > end_before + 9
    assert np.array_equal(window.signals.curves[("gsr", "gsr")].getData()[0], before)
    assert "PAUSED" in window.status.currentMessage()
    window.set_paused(False)
    window.tick()
    assert window.signals.curves[("gsr", "gsr")].getData()[0][-1] > before[-1] + 9


def test_full_rate_streams_are_decimated(lab_session, make_window):
    s = lab_session
    window = make_window(s)
    s.advance(22.0)
    window.tick()
    n = curve_len(window, "gaze", "x")
    # 1200 Hz x 20 s = 24,000 samples: about two per pixel column are drawn.
    budget = window.signals.points_budget()
    width = window.signals.plots["gaze"].getViewBox().width()
    assert width > 300 and budget == min(MAX_POINTS, int(POINTS_PER_PIXEL * width))
    assert budget // 2 <= n <= budget + 1
    assert curve_len(window, "gsr", "gsr") <= budget + 1
    x, _ = window.signals.curves[("gaze", "x")].getData()
    assert x[-1] - x[0] == pytest.approx(20.0, abs=0.1)
    assert curve_len(window, "hr", "hr") > 5  # heart rate from Polar RR intervals


def test_window_length_can_change(gazepoint_session, make_window):
    s = gazepoint_session
    window = make_window(s)
    s.advance(25.0)
    window.window_combo.setCurrentIndex(window.window_combo.findData(10.0))
    window.tick()
    x, _ = window.signals.curves[("gsr", "gsr")].getData()
    assert x[-1] - x[0] == pytest.approx(10.0, abs=0.1)


def test_controls_without_recording_or_rebinding_explain_why(gazepoint_session, make_window):
    window = make_window(gazepoint_session)
    assert not window.record_button.isEnabled()
    assert "cannot record" in window.record_button.toolTip()
    dialog = window.show_streams()
    assert set(dialog.combos) == {"gaze", "gsr", "hr", "markers"}
    for combo in dialog.combos.values():
        assert not combo.isEnabled() and "cannot rebind" in combo.toolTip()
        assert combo.count() >= 1
    assert dialog.combos["gaze"].currentText().startswith("GazepointEyeTracker")
    assert not dialog.apply_button.isEnabled()
    dialog.close()


class RecordingSession(OfflineSession):
    """An offline session with the optional recording and rebinding abilities."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.recording = None
        self.calls: list = []

    def start_recording(self, path) -> None:
        time.sleep(0.05)  # as a real one may: the GUI must not wait for it
        self.calls.append(("start", path))
        self.recording = path

    def stop_recording(self) -> None:
        self.calls.append(("stop",))
        self.recording = None

    def rebind(self, role: str, key: str) -> None:
        self.calls.append(("rebind", role, key))


def test_recording_starts_and_stops_off_the_gui_thread(make_window, qtbot, tmp_path):
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=2, isi=6.0, rating_delay=5.5)
    )
    s = RecordingSession(sim)
    window = make_window(s)
    target = str(tmp_path / "session.xdf")
    window.ask_record_path = lambda: target
    assert window.record_button.isEnabled()
    qtbot.mouseClick(window.record_button, QtCore.Qt.LeftButton)
    assert not window.record_button.isEnabled()  # waiting for the session, GUI still live
    qtbot.waitUntil(lambda: (window._slow_update() or True) and window.record_button.isEnabled())
    assert s.calls == [("start", target)]
    assert "REC" in window.rec_label.text() and "session.xdf" in window.rec_label.text()
    assert window.record_button.text() == "■ Stop recording"
    qtbot.mouseClick(window.record_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: (window._slow_update() or True) and s.recording is None)
    window._slow_update()
    assert s.calls[-1] == ("stop",) and window.rec_label.text() == ""
    # Rebinding is offered when the session can do it.
    dialog = window.show_streams()
    assert all(c.isEnabled() for c in dialog.combos.values())
    dialog.apply()
    assert dialog.result_text.text() == "nothing changed"
    dialog.close()


def test_run_dashboard_closes_after_seconds(gazepoint_session, qapp):
    gazepoint_session.advance(3.0)
    started = time.monotonic()
    assert run_dashboard(gazepoint_session, seconds=0.5) == 0
    assert time.monotonic() - started < 10


def test_session_protocol_is_minimal(make_window):
    """A session with only live/store/catalogue works (catalogue may be None)."""
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=2, isi=6.0, rating_delay=5.5)
    )
    s = OfflineSession(sim)
    bare = SimpleNamespace(live=s.live, store=s.store, catalogue=None)
    window = make_window(bare)
    s.advance(5.0)
    window.tick()
    assert window.catalogue is s.live.core.catalogue
    assert window.stimulus.stimulus_id is not None


def test_dropouts_are_holes_in_the_curves(make_window):
    sim = Simulation(
        SimulationConfig(
            device_set="gazepoint", n_trials=3, isi=6.0, seed=2, dropouts=[("gaze", 5.0, 2.0)]
        )
    )
    s = OfflineSession(sim)
    window = make_window(s)
    s.advance(12.0)
    window.tick()
    x, y = window.signals.curves[("gsr", "gsr")].getData()
    holes = np.flatnonzero(np.isnan(y))
    assert len(holes) >= 1
    before, after = x[holes[0] - 1], x[holes[0] + 1]
    assert after - before > 1.5  # the 2-s dropout is not bridged by a line


def test_records_without_a_prediction_show_their_reason(gazepoint_session, make_window):
    """An error or no-data record: the caption says why, the plane and the values keep only
    real predictions, the timeline shows a red (failed) or grey (no data) stub."""
    from inference.prediction import Prediction

    s = gazepoint_session
    window = make_window(s)
    s.advance(30.0)
    window.tick()
    n = len(s.store)
    assert n >= 3

    def record(trial_id: str, status: str, error: str) -> Prediction:
        uniform = np.full(7, 1 / 7)
        return Prediction(
            trial_id, s.t, "moon", uniform, uniform, flagged=True, flag_reason=error,
            error=error, status=status,
        )  # fmt: skip

    s.store.add(record("late", "failed", "cut failed: KeyError: 'hr'"))
    window.tick()
    caption = window.plane.caption.text
    assert "not predicted" in caption and "cut failed: KeyError" in caption
    assert len(window.plane.current.points()) == 0
    assert len(window.plane.history.points()) == n
    assert len(window.values.arousal_pts.points()) == n
    assert window.timeline.bars.opts["brushes"][-1].color().name() == "#c62828"
    assert window.plane.arousal_bars.opts["height"].sum() == 0
    s.store.add(
        record("later", "no_data", "no usable data: gsr: usable data 0.00 < min_coverage 0.5")
    )
    window.tick()
    assert "no usable data: gsr" in window.plane.caption.text
    assert window.timeline.bars.opts["brushes"][-1].color().name() == "#9e9e9e"
    # The next real prediction is drawn as usual.
    s.advance(8.0)
    window.tick()
    assert len(window.plane.current.points()) == 1
    assert window.plane.shown.status == "predicted"


def test_stimulus_named_by_its_file_name_shows_the_picture(gazepoint_session, make_window):
    s = gazepoint_session
    window = make_window(s)
    s.advance(2.0)
    window.tick()
    panel = window.stimulus
    panel.update_view(("x1", s.t, "Coffee.JPG"), None, s.t)
    assert panel.stimulus_id == "Coffee.JPG"
    assert panel.placeholder.textItem.toPlainText() == ""
    assert np.array_equal(panel.image.image, s.catalogue.image_hwc("coffee", 256))
    panel.update_view(("x2", s.t, "no_such_picture.jpg"), None, s.t)
    assert "no picture for stimulus" in panel.placeholder.textItem.toPlainText()


def test_eeg_and_face_panels_appear_only_when_bound(make_window, gazepoint_session):
    """The full set's EEG and face get their panels (band powers, asymmetry, top AUs); a
    session without them has none (docs/modalities.md)."""
    window = make_window(gazepoint_session)
    assert window.eeg is None and window.face is None
    s = OfflineSession(
        Simulation(SimulationConfig(device_set="full", n_trials=3, isi=6.0, rating_delay=5.5))
    )
    window = make_window(s)
    assert window.eeg is not None and window.face is not None
    s.advance(8.0)
    window.tick()
    window._slow_update()  # their streams' health gets rows of its own
    assert window.health.states["eeg"] == "ok" and window.health.states["face"] == "ok"
    assert window.eeg.update_view(s.live.core.roles["eeg"], force=True)
    powers = window.eeg.powers
    assert set(powers) == {"theta", "alpha", "beta"} and all(np.isfinite(list(powers.values())))
    assert powers["alpha"] > powers["beta"]  # the simulated alpha rhythm
    assert window.eeg.pair == "F4/F3" and np.isfinite(window.eeg.asymmetry)
    assert list(window.eeg.bars.opts["height"]) == [powers[b] for b in ("theta", "alpha", "beta")]
    assert window.face.update_view(s.live.core.roles["face"], 20.0, force=True)
    assert len(window.face.top) == 5 and all(au.startswith("AU") for au in window.face.top)
    x, _ = window.face.curves[0].getData()
    assert x is not None and len(x) > 100 and 0.5 < window.face.tracked <= 1.0


def _clipped(window) -> list[str]:
    """Panels that do not fit: a widget outside the window, or a plot layout wider or taller
    than its view (pyqtgraph then cuts titles, axes and bars off at the edge)."""
    from gui.qt import pg

    bad = []
    frame = window.rect()
    for view in window.findChildren(pg.GraphicsView):
        if not view.isVisible():
            continue  # a tab not on show
        name = type(view).__name__
        corner = view.mapTo(window, QtCore.QPoint(0, 0))
        box = QtCore.QRect(corner, view.size())
        if not frame.contains(box):
            bad.append(f"{name} at {box.getRect()} outside {frame.getRect()}")
        inner, shown = view.centralWidget.geometry(), view.viewport().rect()
        if inner.width() > shown.width() + 1 or inner.height() > shown.height() + 1:
            bad.append(
                f"{name} {inner.width():.0f}x{inner.height():.0f} in {shown.width()}x{shown.height()}"
            )
    return bad


@pytest.mark.parametrize("continuous", [False, True])
def test_full_set_fits_1366x768(make_window, qapp, continuous):
    """With EEG and face bound every panel fits a 1366×768 screen, contents included; with
    continuous mode too, the time courses and the EEG/face strip share it as tabs."""
    s = OfflineSession(
        Simulation(SimulationConfig(device_set="full", n_trials=3, isi=6.0, rating_delay=5.5))
    )
    if continuous:
        s.live.core.enable_continuous(1.0)
    window = make_window(s)
    assert window.eeg is not None and window.face is not None
    assert window.width() <= 1366 and window.height() <= 768
    window.resize(1366, 768)
    s.advance(14.0)
    window.tick()
    window._slow_update()
    window.eeg.update_view(s.live.core.roles["eeg"], force=True)  # the long asymmetry title
    window.face.update_view(s.live.core.roles["face"], 20.0, force=True)
    qapp.processEvents()
    assert _clipped(window) == []
    if continuous:
        assert window.strip_tabs is not None and window.strip_tabs.count() == 2
        window.strip_tabs.setCurrentIndex(1)
        qapp.processEvents()
        assert window.eeg.isVisible() and _clipped(window) == []
    # The test can fail: the same panels squeezed into a fourth column overflow.
    window.resize(900, 768)
    qapp.processEvents()
    assert _clipped(window)


def _scale_axes(window) -> dict[str, tuple[list[float], str, float, float]]:
    """(tick values, title, pixels per unit, axis length in px) of the 1..7 axes."""
    out = {}
    for name, plot, axis in (
        ("plane left", window.plane.plane, "left"),
        ("plane bottom", window.plane.plane, "bottom"),
        ("values left", window.values.plot, "left"),
    ):
        ax = plot.getAxis(axis)
        rect = plot.vb.sceneBoundingRect()
        pixels = rect.height() if axis == "left" else rect.width()
        low, high = plot.vb.viewRange()[1 if axis == "left" else 0]
        ticks = [v for v, _ in ax._tickLevels[0]]
        out[name] = (ticks, ax.labelText, pixels / (high - low), pixels)
    return out


@pytest.mark.parametrize("device_set", ["gazepoint", "full"])
def test_scale_axes_stay_legible_at_1366x768(make_window, qapp, device_set):
    """The arousal/valence axes keep their tick labels apart and their titles within the axis:
    with every panel shown they are 25-90 px tall, too short for seven labels or
    'arousal (1 calm … 7 excited)'."""
    from gui.panels.predictions import TICK_PITCH_PX
    from gui.qt import QtGui

    s = OfflineSession(Simulation(SimulationConfig(device_set=device_set, n_trials=2, isi=6.0)))
    window = make_window(s)
    window.resize(1366, 768)
    qapp.processEvents()
    axes = _scale_axes(window)
    for name, (ticks, title, per_unit, pixels) in axes.items():
        gaps = np.diff(ticks) * per_unit
        assert len(ticks) >= 1 and (gaps >= TICK_PITCH_PX).all(), (name, ticks, per_unit)
        if title:
            font = window.plane.plane.getAxis("left").label.font()
            assert QtGui.QFontMetrics(font).horizontalAdvance(title) <= pixels, (name, title)
    if device_set == "gazepoint":  # room enough: every value, the long valence title
        assert axes["plane bottom"][:2] == (
            [1, 2, 3, 4, 5, 6, 7],
            "valence (1 unpleasant … 7 pleasant)",
        )
        assert axes["plane left"][0] == [1, 2, 3, 4, 5, 6, 7]
    else:  # squeezed: fewer ticks on the short values chart
        assert len(axes["values left"][0]) < 7
    # The plane is the panel's point: with the probability bars under it, it had 50-62 px of
    # height with the EEG and face strip shown; beside it, it has the panel's height.
    assert axes["plane left"][3] >= 120, axes["plane left"]
    assert axes["plane left"][3] >= 0.5 * window.plane.height(), axes["plane left"]
    # The 0..1 axes keep all three labels: the probability bars always, the quality timeline
    # where it is 70 px tall (gridded, it showed only ".5"); at 37 px, with the EEG and face
    # strip, its title says "0–1".
    unit_axes = [window.plane.arousal_plot, window.plane.valence_plot]
    if device_set == "gazepoint":
        unit_axes.append(window.timeline.plot)
    for plot in unit_axes:
        ax = plot.getAxis("left")
        assert _drawn_labels(ax) == ["0", ".5", "1"], (plot.titleLabel.text, ax.geometry())


def _drawn_labels(axis) -> list[str]:
    """The tick labels pyqtgraph would draw on ``axis`` now (it leaves out those that do not
    fit)."""
    from gui.qt import QtGui

    image = QtGui.QImage(8, 8, QtGui.QImage.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _, _, text in specs[2]]
