from __future__ import annotations

import numpy as np
import torch

from models.balancing import balanced_subset, joint_labels, make_sampler, sampler_weights


def _skewed(seed: int = 0):
    rng = np.random.default_rng(seed)
    a = np.clip(np.round(rng.normal(3, 1.2, 2000)), 0, 6).astype(int)
    v = np.clip(np.round(rng.normal(4, 1.0, 2000)), 0, 6).astype(int)
    return a, v


def test_weights_inverse_to_joint_cell_count() -> None:
    a, v = _skewed()
    w = sampler_weights(a, v)
    assert np.isclose(w.sum(), 1.0)
    joint = joint_labels(a, v)
    cells, counts = np.unique(joint, return_counts=True)
    # Each occupied cell gets the same total probability.
    per_cell = np.array([w[joint == c].sum() for c in cells])
    np.testing.assert_allclose(per_cell, 1 / len(cells))
    i, j = (
        np.flatnonzero(joint == cells[counts.argmax()])[0],
        np.flatnonzero(joint == cells[counts.argmin()])[0],
    )
    assert np.isclose(w[i] / w[j], counts.min() / counts.max())


def test_sampler_flattens_joint_distribution() -> None:
    a, v = _skewed()
    sampler = make_sampler(a, v, num_samples=20000, generator=torch.Generator().manual_seed(0))
    drawn = np.fromiter(iter(sampler), dtype=int)
    _, counts = np.unique(joint_labels(a, v)[drawn], return_counts=True)
    raw = np.unique(joint_labels(a, v), return_counts=True)[1]
    assert counts.max() / counts.min() < raw.max() / raw.min() / 5


def test_balanced_subset_caps_cells() -> None:
    a, v = _skewed()
    idx = np.arange(len(a)) + 1000
    kept = balanced_subset(idx, a, v, cap=20, seed=0)
    pos = kept - 1000
    _, counts = np.unique(joint_labels(a, v)[pos], return_counts=True)
    assert counts.max() <= 20
    assert len(np.unique(kept)) == len(kept)
    # Rare cells are kept whole.
    cells, raw = np.unique(joint_labels(a, v), return_counts=True)
    rare = cells[raw <= 20]
    assert np.isin(np.flatnonzero(np.isin(joint_labels(a, v), rare)) + 1000, kept).all()
    # Default cap: median occupied-cell size; deterministic for a seed.
    np.testing.assert_array_equal(
        balanced_subset(idx, a, v, seed=1), balanced_subset(idx, a, v, seed=1)
    )
