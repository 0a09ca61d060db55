"""Flattening the joint arousal x valence class distribution.

Self-reports cluster (many "neutral 4/4", few "very aroused, very negative"), so a network trained
on raw frequencies learns to answer the middle. Two heuristics, usable together:

* :func:`sampler_weights` / :func:`make_sampler`: draw each trial with probability inversely
  proportional to the size of its joint (arousal, valence) cell, so every occupied cell is drawn
  about equally often;
* :func:`balanced_subset`: keep at most ``cap`` trials per joint cell (the frequent cells are cut
  down, the rare ones kept whole).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


def joint_labels(arousal: np.ndarray, valence: np.ndarray, n_classes: int = 7) -> np.ndarray:
    """Joint cell index ``arousal * n_classes + valence`` (0-based classes in, int64 out)."""
    a = np.asarray(arousal, dtype=np.int64)
    v = np.asarray(valence, dtype=np.int64)
    if a.shape != v.shape:
        raise ValueError(f"arousal {a.shape} and valence {v.shape} differ in shape")
    return a * n_classes + v


def sampler_weights(arousal: np.ndarray, valence: np.ndarray, n_classes: int = 7) -> np.ndarray:
    """Per-trial sampling weights ∝ 1 / (count of the trial's joint cell), summing to 1."""
    joint = joint_labels(arousal, valence, n_classes)
    if joint.size == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(joint, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse].astype(np.float64)
    return w / w.sum()


def make_sampler(
    arousal: np.ndarray,
    valence: np.ndarray,
    num_samples: int | None = None,
    n_classes: int = 7,
    generator: torch.Generator | None = None,
) -> WeightedRandomSampler:
    """A :class:`~torch.utils.data.WeightedRandomSampler` that flattens the joint classes.

    ``num_samples`` defaults to the number of trials (one "epoch"). Positions it yields index
    into the given label arrays.
    """
    w = sampler_weights(arousal, valence, n_classes)
    n = len(w) if num_samples is None else int(num_samples)
    return WeightedRandomSampler(
        torch.as_tensor(w, dtype=torch.double), n, replacement=True, generator=generator
    )


def sampled_marginals(
    arousal: np.ndarray, valence: np.ndarray, weights: np.ndarray, n_classes: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """Expected per-class frequency of each head when trials are drawn with ``weights``.

    Class weights for the loss are computed from these (not from the raw counts), so the sampler
    and the loss do not both correct the same imbalance.
    """
    a = np.bincount(np.asarray(arousal, dtype=np.int64), weights=weights, minlength=n_classes)
    v = np.bincount(np.asarray(valence, dtype=np.int64), weights=weights, minlength=n_classes)
    return a[:n_classes], v[:n_classes]


def balanced_subset(
    indices: np.ndarray,
    arousal: np.ndarray,
    valence: np.ndarray,
    cap: int | None = None,
    seed: int = 0,
    n_classes: int = 7,
) -> np.ndarray:
    """Keep at most ``cap`` trials per joint (arousal, valence) cell.

    Parameters
    ----------
    indices
        Trial indices (any ints), aligned with ``arousal`` and ``valence`` (0-based classes).
    cap
        Trials kept per cell; ``None`` uses the median size of the occupied cells, which cuts the
        crowded cells and keeps the rare ones whole.
    seed
        Which trials of a crowded cell are kept.

    Returns
    -------
    np.ndarray
        The kept indices, sorted.
    """
    indices = np.asarray(indices)
    joint = joint_labels(arousal, valence, n_classes)
    if joint.shape != indices.shape:
        raise ValueError("indices, arousal and valence must have the same length")
    if indices.size == 0:
        return indices.copy()
    cells, inverse, counts = np.unique(joint, return_inverse=True, return_counts=True)
    if cap is None:
        cap = max(1, int(np.median(counts)))
    if cap < 1:
        raise ValueError(f"cap must be at least 1, not {cap}")
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for cell in range(len(cells)):
        members = np.flatnonzero(inverse == cell)
        if len(members) > cap:
            members = rng.choice(members, cap, replace=False)
        keep.append(indices[members])
    return np.sort(np.concatenate(keep))
