"""Fixtures of the inference suite: a small checkpoint (untrained, default shapes), a predictor
loaded from it, and synthetic trials."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from models.checkpoint import save_checkpoint
from models.network import EmoEyeNet
from models.preprocess import NormStats
from models.synthetic import make_synthetic_trials


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # The worker's default; the suite shares a 2-core box with LSL threads.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model with the default architecture (same cost per trial as the bundled)."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "model"
    return save_checkpoint(out, EmoEyeNet().eval(), NormStats.identity())


@pytest.fixture(scope="session")
def predictor(checkpoint: Path):
    from models.predictor import Predictor

    return Predictor(checkpoint, "cpu", num_threads=1)


@pytest.fixture(scope="session")
def _trials():
    trials, _ = make_synthetic_trials(n_participants=1, trials_per_participant=12, seed=5)
    return trials


@pytest.fixture
def trials(_trials):
    """12 fresh copies of synthetic trials (tests may change them)."""
    return [copy.deepcopy(t) for t in _trials]
