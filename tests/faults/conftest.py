"""Fixtures of the fault suite: a small model checkpoint made here (the bundled default model
may not exist), on one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model with the default architecture, saved as a checkpoint directory."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet
    from models.preprocess import NormStats

    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("fault-ckpt") / "model"
    return save_checkpoint(out, EmoEyeNet().eval(), NormStats.identity())
