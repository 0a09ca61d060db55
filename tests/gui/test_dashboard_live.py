"""The dashboard on a real LSL session: simulated devices → LslPlayer outlets → LiveAcquisition
inlet threads → the dashboard's own frame timer (no manual ticks)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from gui_sessions import fake_prediction

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.lsl.live import LiveAcquisition, discover
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.trials.types import TrialSpec
from acquisition.xdf.player import LslPlayer
from gui.app import DashboardWindow
from gui.qt import QtCore
from inference.prediction import PredictionStore

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


def tear_down(qapp, stop: threading.Event, window, live, player) -> None:
    """Stop polling, delete the window, then the inlets before the outlets."""
    stop.set()
    if window is not None:
        window.close()
        window.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
        qapp.processEvents()
    if live is not None:
        live.stop()
    player.close()


def test_live_session_over_lsl(qtbot, qapp):
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=4, isi=4.0, lead_in=1.0, seed=3)
    )
    player = LslPlayer(sim, speed=2.0, wait_consumers=10.0)
    player.start()
    live = window = None
    stop = threading.Event()
    try:
        visible = discover(5.0, [s.source_id for s in sim.streams])
        live = LiveAcquisition(AcquisitionConfig(trial=TrialSpec(grace=1.0)), streams=visible)
        live.start()
        store = PredictionStore()

        def on_event(event) -> None:
            if isinstance(event, TrialEvent):
                store.add(fake_prediction(event.trial, flagged=len(store) % 2 == 1))

        poller = threading.Thread(target=live.run, args=(on_event, stop), daemon=True)
        poller.start()
        window = DashboardWindow(SimpleNamespace(live=live, store=store, catalogue=None))
        window.show()

        def x_len() -> int:
            x, _ = window.signals.curves[("gaze", "x")].getData()
            return 0 if x is None else len(x)

        qtbot.waitUntil(
            lambda: (
                window.health.states.get("gaze") == "ok"
                and x_len() > 30
                and window.stimulus.stimulus_id is not None
                and window.plane.shown is not None
            ),
            timeout=20_000,
        )
        assert window.frames > 10  # the frame timer drives the display
        assert window.stimulus.stimulus_id == live.core.aligner.last_onset[2]
        # Pause: the picture freezes, acquisition goes on.
        window.set_paused(True)
        frozen = window.signals.curves[("gaze", "x")].getData()[0].copy()
        samples = live.health[live.plan.roles["gaze"].spec.key].samples
        qtbot.wait(600)
        assert live.health[live.plan.roles["gaze"].spec.key].samples > samples
        assert np.array_equal(window.signals.curves[("gaze", "x")].getData()[0], frozen)
        window.set_paused(False)
        qtbot.waitUntil(
            lambda: window.signals.curves[("gaze", "x")].getData()[0][-1] > frozen[-1],
            timeout=5_000,
        )
    finally:
        tear_down(qapp, stop, window, live, player)


def test_streams_dialog_rebinds_a_role_while_running(qtbot, qapp):
    """The experimenter moves HR from the Polar RR stream to its ECG in the streams dialog:
    the session pulls the ECG from then on, drops the RR inlet, and later trials have HR."""
    sim = Simulation(
        SimulationConfig(device_set="pupil-polar", n_trials=4, isi=5.0, lead_in=1.0, seed=4)
    )
    player = LslPlayer(sim, speed=1.0, wait_consumers=10.0)
    player.start()
    live = window = None
    stop = threading.Event()
    trials: list = []
    try:
        visible = discover(5.0, [s.source_id for s in sim.streams])
        live = LiveAcquisition(AcquisitionConfig(trial=TrialSpec(grace=1.0)), streams=visible)
        live.start()

        def on_event(event) -> None:
            if isinstance(event, TrialEvent):
                trials.append(event.trial)

        poller = threading.Thread(target=live.run, args=(on_event, stop), daemon=True)
        poller.start()
        session = SimpleNamespace(
            live=live, store=PredictionStore(), catalogue=None, rebind=live.rebind_role
        )
        window = DashboardWindow(session)
        window.show()
        rr = live.plan.roles["hr"].spec
        assert rr.type == "RR"
        ecg = next(c.spec for c in live.plan.candidates["hr"] if c.spec.type == "ECG")
        qtbot.waitUntil(lambda: window.health.states.get("hr") == "ok", timeout=15_000)

        dialog = window.show_streams()
        hr = dialog.combos["hr"]
        assert hr.isEnabled()
        hr.setCurrentIndex(hr.findData(ecg.key))
        gaze = dialog.combos["gaze"]  # a stream with no reading for gaze: refused, says why
        gaze.setCurrentIndex(gaze.findData(rr.key))
        dialog.apply()
        text = dialog.result_text.text()
        assert "hr → PolarH10 ECG" in text and "gaze: no preset says how" in text, text
        assert "hr       -> 'PolarH10 ECG'" in dialog.details.toPlainText()
        assert gaze.currentData() == live.plan.roles["gaze"].spec.key  # the refusal undone
        dialog.close()
        switched = live.core.roles["hr"].buffer.last_timestamp
        assert live.plan.roles["hr"].spec.key == ecg.key
        assert live.plan.roles["gaze"].spec.type == "Gaze"  # unchanged
        assert rr.key not in live.health and ecg.key in live.health  # RR no longer pulled
        assert any("rebound by the experimenter" in e for e in live.health[ecg.key].events)
        qtbot.waitUntil(
            lambda: (
                window.health.states.get("hr") == "ok"
                and window.signals.curves[("hr", "hr")].getData()[0] is not None
                and any(t.onset > switched + 2.5 for t in trials)
            ),
            timeout=20_000,
        )
        later = [t for t in trials if t.onset > switched + 2.5]
        assert later[0].quality.coverage["hr"] > 0.9, later[0].quality
    finally:
        tear_down(qapp, stop, window, live, player)
