"""Fixtures of the command-line suite: a small checkpoint, so sessions need no bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model with the default architecture (same cost per trial as the bundled)."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet
    from models.preprocess import NormStats

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "model"
    return save_checkpoint(out, EmoEyeNet().eval(), NormStats.identity())
