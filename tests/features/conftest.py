"""Fixtures of the feature suite: simulated recordings written as real XDF files, and their
trials cut by the project's one trial path."""

from __future__ import annotations

from pathlib import Path

import pytest

from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import record_simulation


def record(path: Path, tag: str, **kw) -> Path:
    """A short simulated session written to ``path`` as XDF."""
    base = dict(n_trials=4, isi=7.0, lead_in=1.5, seed=3, participants=1, source_tag=tag)
    record_simulation(Simulation(SimulationConfig(**{**base, **kw})), path, progress=False)
    return path


@pytest.fixture(scope="session")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """The Gazepoint set (60 Hz gaze, GSR, HR in one stream) and the lab set (1200 Hz gaze,
    128 Hz GSR and PPG, 130 Hz ECG, RR intervals)."""
    d = tmp_path_factory.mktemp("feature-recordings")
    return {
        "gazepoint": record(d / "gp.xdf", "fgp"),
        "lab": record(d / "lab.xdf", "flab", device_set="lab"),
    }


@pytest.fixture(scope="session")
def trials_of(recordings) -> dict[str, list]:
    """Every trial of each recording, cut by the one trial path."""
    return {name: cut_trials(path) for name, path in recordings.items()}


def cut_trials(path: Path) -> list:
    """Every trial of a recording, cut as ``emoeye replay --fast`` cuts them (no model)."""
    from acquisition.config import AcquisitionConfig
    from emoeye.commands.common import open_recording
    from emoeye.commands.replay import replay_fast

    trials: list = []
    replay_fast(open_recording(path), AcquisitionConfig(), use_model=False, on_trial=trials.append)
    return trials
