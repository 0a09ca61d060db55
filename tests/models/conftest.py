"""Shared fixtures of the models suite: synthetic trials, a dataset and one short training run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.synthetic import make_synthetic_trials, write_synthetic_dataset


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # The suite shares a 2-core box with other processes: with 2 OpenMP threads on a busy box,
    # training ran 6x slower than with 1 (threads spin waiting for each other).
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def few_trials():
    """12 synthetic trials (2 participants) and their planted classes."""
    return make_synthetic_trials(n_participants=2, trials_per_participant=6, seed=3)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset of 6 participants x 64 synthetic trials with a planted class signal."""
    d = tmp_path_factory.mktemp("synthetic") / "ds"
    return write_synthetic_dataset(
        d, shard_size=100, n_participants=6, trials_per_participant=64, seed=0
    )


@pytest.fixture(scope="session")
def trained(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One short training run shared by the training, evaluation and predictor tests."""
    from models.train import train

    out = tmp_path_factory.mktemp("ckpt") / "model"
    return train(
        synthetic_dir,
        out,
        epochs=7,
        batch_size=32,
        seed=0,
        device="cpu",
        progress=False,
        patience=7,
    )
