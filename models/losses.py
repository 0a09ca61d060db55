"""Focal loss and balanced class weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def balanced_class_weights(labels: np.ndarray, n_classes: int = 7) -> np.ndarray:
    """``n_samples / (n_classes * count)`` per class, as in scikit-learn's "balanced".

    Parameters
    ----------
    labels
        0-based class indices; negative values (unlabelled) are ignored.
    n_classes
        Number of classes.

    Returns
    -------
    np.ndarray
        float32 (n_classes,). A class with no samples gets weight 0 (it cannot occur in the loss,
        and an infinite weight would poison any sum over classes).
    """
    labels = np.asarray(labels)
    labels = labels[labels >= 0]
    counts = np.bincount(labels.astype(np.int64), minlength=n_classes)[:n_classes]
    return weights_from_counts(counts)


def weights_from_counts(counts: np.ndarray) -> np.ndarray:
    """Balanced weights from (possibly fractional) per-class counts; zero counts → weight 0."""
    counts = np.asarray(counts, dtype=np.float64)
    n_classes = len(counts)
    total = counts.sum()
    weights = np.zeros(n_classes)
    nz = counts > 0
    weights[nz] = total / (n_classes * counts[nz])
    return weights.astype(np.float32)


class FocalLoss(nn.Module):
    """Multi-class focal loss, ``-w_y (1 - p_y)^gamma log p_y`` (Lin et al. 2017).

    With ``gamma=0`` it equals :func:`torch.nn.functional.cross_entropy` with the same ``weight``,
    including the weighted mean (divided by the sum of the samples' weights).

    Parameters
    ----------
    gamma
        Focusing parameter; 3 in the EmoEye design.
    weight
        Optional per-class weights (n_classes,).
    reduction
        ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        gamma: float = 3.0,
        weight: torch.Tensor | np.ndarray | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be mean, sum or none, not {reduction!r}")
        self.gamma = float(gamma)
        self.reduction = reduction
        w = None if weight is None else torch.as_tensor(np.asarray(weight), dtype=torch.float32)
        self.register_buffer("weight", w)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of (B, C) logits against (B,) 0-based targets."""
        logp = F.log_softmax(logits.float(), dim=1)
        logp_t = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
        # (1 - p)^gamma computed from log p for stability; gamma=0 gives exactly 1.
        focal = (-torch.expm1(logp_t)).clamp_min(0.0).pow(self.gamma) if self.gamma else 1.0
        loss = -focal * logp_t
        w = self.weight[target.long()] if self.weight is not None else None
        if w is not None:
            loss = loss * w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        denom = w.sum() if w is not None else torch.tensor(float(loss.numel()), device=loss.device)
        return loss.sum() / denom.clamp_min(1e-12)
