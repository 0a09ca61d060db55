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
from acquisition.lsl_live import LiveAcquisition, discover
from acquisition.player import LslPlayer
from acquisition.simulator import Simulation, SimulationConfig
from acquisition.trial import TrialSpec
from gui.app import DashboardWindow
from gui.qt import QtCore
from inference.prediction import PredictionStore

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


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
        stop.set()
        if window is not None:
            window.close()
            window.deleteLater()
            QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
            qapp.processEvents()
        if live is not None:
            live.stop()  # inlets go before the outlets
        player.close()
