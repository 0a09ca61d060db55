"""Fixtures of the dashboard tests (the session helpers live in gui_sessions.py)."""

from __future__ import annotations

import pytest
from gui_sessions import OfflineSession

from acquisition.sim.simulator import Simulation, SimulationConfig


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
