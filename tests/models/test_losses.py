from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.losses import FocalLoss, balanced_class_weights


@pytest.mark.parametrize("weighted", [False, True])
def test_focal_gamma0_equals_cross_entropy(weighted: bool) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=g) * 3
    target = torch.randint(0, 7, (64,), generator=g)
    w = torch.rand(7, generator=g) + 0.1 if weighted else None
    focal = FocalLoss(gamma=0.0, weight=w)(logits, target)
    ce = F.cross_entropy(logits, target, weight=w)
    torch.testing.assert_close(focal, ce)


def test_focal_downweights_easy_examples() -> None:
    logits = torch.tensor([[5.0, 0, 0, 0, 0, 0, 0], [0.2, 0, 0, 0, 0, 0, 0]])
    target = torch.tensor([0, 0])
    per = FocalLoss(gamma=3.0, reduction="none")(logits, target)
    ce = F.cross_entropy(logits, target, reduction="none")
    assert (per < ce).all()
    assert per[0] / ce[0] < per[1] / ce[1]  # the confident one is cut far more


def test_focal_default_gamma_is_3_and_gradients_flow() -> None:
    loss = FocalLoss()
    assert loss.gamma == 3.0
    logits = torch.randn(8, 7, requires_grad=True)
    loss(logits, torch.randint(0, 7, (8,))).backward()
    assert torch.isfinite(logits.grad).all()


def test_balanced_class_weights_formula() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1 + [-1] * 4)  # -1: unlabelled, ignored
    w = balanced_class_weights(labels, n_classes=4)
    n = 10
    np.testing.assert_allclose(w[:3], [n / (4 * 6), n / (4 * 3), n / (4 * 1)], rtol=1e-6)
    assert w[3] == 0.0  # a class never seen gets weight 0, not inf
    assert np.isfinite(w).all()
