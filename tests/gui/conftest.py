"""Fixtures of the dashboard tests (the session helpers live in gui_sessions.py)."""

from __future__ import annotations

import pytest
from gui_sessions import OfflineSession

from acquisition.sim.simulator import Simulation, SimulationConfig
from gui.app import DashboardWindow
from gui.qt import QtCore


@pytest.fixture
def gazepoint_session() -> OfflineSession:
    """One participant, Gazepoint (60 Hz gaze + GSR + HR in one stream), 6 trials 6 s apart."""
    return OfflineSession(
        Simulation(
            SimulationConfig(device_set="gazepoint", n_trials=6, isi=6.0, rating_delay=5.5, seed=1)
        )
    )


@pytest.fixture
def lab_session() -> OfflineSession:
    """The full-rate lab set: Tobii 1200 Hz, Shimmer GSR 128 Hz, Polar H10 ECG 130 Hz."""
    return OfflineSession(
        Simulation(
            SimulationConfig(device_set="lab", n_trials=4, isi=6.0, rating_delay=5.5, seed=2)
        )
    )


@pytest.fixture
def make_window(qtbot, qapp):
    """Windows driven frame by frame with ``tick()``, closed and deleted by Qt at teardown (a
    window left to Python's garbage collector is destroyed in an order pyqtgraph dislikes)."""
    windows = []

    def make(session, **kw) -> DashboardWindow:
        window = DashboardWindow(session, **kw)
        window.timer.stop()
        windows.append(window)
        window.show()
        return window

    yield make
    for window in windows:
        window.close()
        window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    qapp.processEvents()
