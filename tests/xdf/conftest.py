"""Shared helpers of the XDF tests: short simulated sessions written to temporary files."""

from __future__ import annotations

from pathlib import Path

import pytest

from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import record_simulation


def short_simulation(uid: str, **kw) -> Simulation:
    """A few trials of a simulated experiment (seeded, uuid source ids)."""
    base = dict(n_trials=3, isi=7.0, lead_in=1.5, seed=3, source_tag=uid)
    return Simulation(SimulationConfig(**{**base, **kw}))


@pytest.fixture
def make_sim(uid: str):
    """Factory of short simulations with this test's uuid source ids."""
    return lambda **kw: short_simulation(uid, **kw)


@pytest.fixture
def sim_file(tmp_path: Path, uid: str) -> tuple[Simulation, Path]:
    """A two-participant Gazepoint session and its XDF recording."""
    sim = short_simulation(uid, participants=2)
    path = tmp_path / "session.xdf"
    record_simulation(sim, path, progress=False)
    return sim, path
