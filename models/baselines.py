"""Baselines every evaluation reports beside the network, on the same trials and metrics.

* **majority**: the most frequent class of the training labels.
* **lookup**: picture -> mean training rating (rounded); for a picture the training never showed,
  its normative rating when the dataset gives norms (``stimulus_norms``), else not applicable.
* **physiology**: a multinomial logistic regression (L2, class-balanced) on hand-made features:
  SCR amplitude and count (neurokit2), baseline-corrected pupil dilation, heart-rate change,
  fixation count and mean fixation duration (I-VT) (:func:`physiology_features`, the code of
  ``emoeye features``'s table).
* **oracle**: the simulator's felt state rounded through the participant's scale use (stored in
  simulated datasets as ``oracle_*``), the best any per-trial model can do.
* **ceiling** (simulated datasets only): a per-trial yardstick of what one trial can reveal at
  best: the same regression on the physiology features plus the picture's norms and the trial's
  response amplitudes before sensor noise (``response_*``, :data:`CEILING_FEATURES`), fitted on
  the training trials.

Everything fitted (majority class, lookup table, regression weights) is fitted on the training
trials only and stored in the checkpoint's ``config.json`` under ``baselines``, so an evaluation
on another dataset uses exactly what the network's training saw. numpy/torch; the features
neurokit2 (:mod:`features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from acquisition.trials.scale import axis_class
from features.trial import BASELINE_FEATURES, Grid, baseline_features

FEATURES = BASELINE_FEATURES
"""The features of :func:`physiology_features`, in column order (shared with the table of
``emoeye features``: :data:`features.trial.BASELINE_FEATURES`)."""

FEATURES_VERSION = 2
"""Version of the feature code a physiology regression was fitted on, stored beside it
(``baselines.physiology_features``). 2: :mod:`features` (neurokit2 SCRs, I-VT fixations); 1 (or
absent): the hand-made features before it. Regression weights only mean something on the
features they were fitted on, so an evaluation with another version leaves the baseline out and
says so (:func:`physiology_applies`)."""


CEILING_FEATURES = (
    "norm_arousal",
    "norm_valence",
    "response_pupil",
    "response_scr",
    "response_hr",
)
"""The ceiling baseline's inputs beyond the physiology features (:data:`FEATURES`): per-trial
truth fields of a simulated dataset
(:data:`models.dataset.TRUTH_FIELDS`): the picture's norms and the response amplitudes the
simulator drove (participant gain, felt state, trial-to-trial variability) before sensor noise,
drift and overlapping responses."""


CEILING_INPUTS = (*FEATURES, *CEILING_FEATURES)
"""The ceiling regression's columns: everything the physiology baseline sees, plus the truth."""


def ceiling_features(ds, idx: np.ndarray) -> np.ndarray | None:
    """(N, 5) :data:`CEILING_FEATURES` of a dataset's trials ``idx``, or None when any is
    unknown (a real dataset, or one written before the simulator stored them)."""
    idx = np.asarray(idx, np.int64)
    cols = [
        np.asarray(getattr(ds, name, np.full(len(ds), np.nan)))[idx] for name in CEILING_FEATURES
    ]
    x = np.stack(cols, axis=1).astype(np.float64) if len(idx) else np.zeros((0, len(cols)))
    return x if len(x) and np.isfinite(x).all() else None


def dataset_features(ds, idx: np.ndarray) -> np.ndarray:
    """:func:`physiology_features` of a dataset's trials ``idx`` (its grid rate and baseline)."""
    spec = ds.spec
    raw = ds.arrays(idx, ("signals", "mask", "baseline"))
    return physiology_features(
        raw["signals"],
        raw["baseline"],
        spec.n_baseline if spec else 60,
        spec.grid_rate if spec else 60.0,
        raw["mask"],
        spec.duration if spec else None,
    )


def physiology_features(
    signals: np.ndarray,
    baseline: np.ndarray,
    n_baseline: int,
    rate: float,
    mask: np.ndarray | None = None,
    duration: float | None = None,
) -> np.ndarray:
    """The features (N, 6) of raw trial arrays (channels x, y, pupil, gsr, hr).

    The same code as the per-trial table of ``emoeye features`` on the same grid
    (:func:`features.trial.baseline_features`): neurokit2's SCRs starting 1-5 s after onset
    (largest amplitude, 0 when none; count), pupil dilation and heart-rate change (mean from
    0.5 s minus the baseline), I-VT fixation count and mean duration.

    Parameters
    ----------
    signals
        (N, 5, T) grid signals: ``n_baseline`` pre-onset samples, then the window.
    baseline
        (N, 5) pre-onset means.
    n_baseline, rate
        Baseline samples and grid rate (Hz) of the trial spec.
    mask
        (N, 5, T) True where the grid point had data (None: everywhere).
    duration
        Window length, s (None: the rest of the grid).

    Returns
    -------
    np.ndarray
        float64 (N, 6), columns as :data:`FEATURES`; missing data gives 0 (the training mean
        after standardisation is close to it).
    """
    s = np.asarray(signals, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    n = len(s)
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    if duration is None:
        duration = (s.shape[-1] - n_baseline) / rate
    grid = Grid(float(rate), int(n_baseline), float(duration))
    for i in range(n):
        out[i] = baseline_features(s[i], None if mask is None else mask[i], b[i], grid)
    return out


class LogisticBaseline:
    """Multinomial logistic regression on standardised features, class-balanced, L2.

    Fitted with L-BFGS in float64 (deterministic); stored as plain lists.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, coef: np.ndarray, bias: np.ndarray):
        self.mean, self.std = np.asarray(mean, float), np.asarray(std, float)
        self.coef, self.bias = np.asarray(coef, float), np.asarray(bias, float)

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, n_classes: int = 7, l2: float = 1e-2
    ) -> LogisticBaseline:
        """Fit on features ``x`` (N, F) and 0-based classes ``y`` (N,)."""
        x = np.asarray(x, float)
        mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
        std = x.std(axis=0) if len(x) else np.ones(x.shape[1])
        std = np.where(std > 0, std, 1.0)
        z = torch.from_numpy((x - mean) / std)
        yt = torch.from_numpy(np.asarray(y, np.int64))
        counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(float)
        cw = np.divide(len(y), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
        weight = torch.from_numpy(cw)
        w = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(z @ w.T + b, yt, weight=weight)
            loss = loss + l2 * (w**2).sum()
            loss.backward()
            return loss

        if len(y):
            opt.step(closure)
        return cls(mean, std, w.detach().numpy(), b.detach().numpy())

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, n_classes)."""
        z = (np.asarray(x, float) - self.mean) / self.std
        logits = z @ self.coef.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def to_dict(self, features: Sequence[str] = FEATURES) -> dict[str, Any]:
        return {
            "features": list(features),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "coef": self.coef.tolist(),
            "bias": self.bias.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogisticBaseline:
        return cls(d["mean"], d["std"], d["coef"], d["bias"])


def rating_lookup(
    stimulus_ids: Sequence[str], ratings: np.ndarray, n_classes: int = 7
) -> dict[str, float]:
    """Picture -> mean 0-based class of its training ratings."""
    ids = np.asarray(stimulus_ids).astype(str)
    r = np.asarray(ratings, float)
    return {s: float(r[ids == s].mean()) for s in np.unique(ids)}


def lookup_predict(
    stimulus_ids: Sequence[str],
    table: dict[str, float],
    norms: dict[str, float] | None,
    n_classes: int = 7,
) -> np.ndarray:
    """0-based class per trial from the lookup table, else the picture's norm (a position on the
    model's 1..n axis, see :func:`acquisition.trials.scale.model_axis`), else -1 (not
    applicable)."""
    out = np.full(len(stimulus_ids), -1, np.int64)
    for i, sid in enumerate(stimulus_ids):
        sid = str(sid)
        if sid in table:
            out[i] = int(np.clip(np.round(table[sid]), 0, n_classes - 1))
        elif norms and sid in norms and np.isfinite(norms[sid]):
            out[i] = axis_class(norms[sid], n_classes)  # a 1..n position, half up
    return out


def fit_baselines(
    stimulus_ids: Sequence[str],
    labels: tuple[np.ndarray, np.ndarray],
    features: np.ndarray,
    n_classes: int = 7,
    ceiling: np.ndarray | None = None,
) -> dict[str, Any]:
    """Majority classes, lookup tables and physiology regressions of both heads, JSON-ready;
    with ``ceiling`` (the training trials' :func:`ceiling_features`) the ceiling regressions on
    ``features`` and ``ceiling`` side by side (:data:`CEILING_INPUTS`)."""
    out: dict[str, Any] = {
        "majority": {},
        "lookup": {},
        "physiology": {},
        "physiology_features": FEATURES_VERSION,
    }
    for head, y in zip(("arousal", "valence"), labels, strict=True):
        y = np.asarray(y, np.int64)
        out["majority"][head] = int(np.bincount(y, minlength=n_classes).argmax()) if len(y) else 0
        out["lookup"][head] = rating_lookup(stimulus_ids, y, n_classes)
        out["physiology"][head] = LogisticBaseline.fit(features, y, n_classes).to_dict()
        if ceiling is not None:
            fit = LogisticBaseline.fit(np.hstack([features, ceiling]), y, n_classes)
            out.setdefault("ceiling", {})[head] = fit.to_dict(CEILING_INPUTS)
    return out


def physiology_applies(baselines: dict[str, Any] | None) -> str | None:
    """None when the stored physiology regression fits today's features, else why not."""
    if not baselines or "physiology" not in baselines:
        return "the checkpoint holds no physiology baseline"
    version = baselines.get("physiology_features", 1)
    if version != FEATURES_VERSION:
        return (
            f"the checkpoint's physiology regression was fitted on feature code v{version}, "
            f"this is v{FEATURES_VERSION}: retrain, or refit it (scripts/refit_baselines.py)"
        )
    return None
