"""Grouped K-fold cross-validation: by participant (new people) or by stimulus (new pictures).

Each fold trains a fresh network (and fits fresh baselines) without the fold's groups and tests
on them; leave-one-group-out when K equals the number of groups. Figures are balanced accuracy
per head, for the network and every baseline, as the mean over folds with a 95 % t-interval.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from models.evaluate import HEADS, METHODS, compare_methods, predict_dataset

GROUPS = ("participant", "stimulus")


def grouped_folds(groups: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """The distinct groups dealt into ``k`` folds (seeded order); K = number of groups gives
    leave-one-group-out."""
    unique = np.unique(np.asarray(groups).astype(str))
    if not 2 <= k <= len(unique):
        raise ValueError(f"--folds must be between 2 and the number of groups ({len(unique)})")
    order = np.random.default_rng([seed, 23]).permutation(unique)
    return [np.sort(f) for f in np.array_split(order, k)]


def fold_indices(
    ds: Any, test_groups: np.ndarray, group: str, val_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Train, validation and test trials of one fold.

    By participant: the fold's participants are the test set (pictures all seen in training);
    validation is a share of the other participants. By stimulus: trials on the fold's pictures
    are the test set (people all seen in training); validation is a share of the other pictures.
    """
    labelled = ds.labelled()
    key = ds.participants if group == "participant" else ds.stimulus_ids
    test_mask = np.isin(key[labelled], test_groups)
    rest = labelled[~test_mask]
    rest_groups = np.unique(key[rest])
    n_val = max(1, int(round(val_fraction * len(rest_groups))))
    if len(rest_groups) - n_val < 1:
        raise ValueError("too few groups left to train on after the test and validation groups")
    val_groups = np.random.default_rng([seed, 29]).permutation(rest_groups)[:n_val]
    is_val = np.isin(key[rest], val_groups)
    test = labelled[test_mask]
    name = "participant" if group == "participant" else "stimulus"
    return {"train": rest[~is_val], "val": rest[is_val], name: test}


def mean_ci(
    values: Sequence[float], bounds: tuple[float, float] = (0.0, 1.0)
) -> dict[str, float | None]:
    """Mean and 95 % t-interval of per-fold figures, clipped to ``bounds``.

    With few folds the t-interval is wide (2 folds: t = 12.7) and would leave the range a
    balanced accuracy can take; the clipped interval says the same without impossible values.
    """
    v = np.asarray([x for x in values if x is not None], float)
    if len(v) == 0:
        return {"mean": None, "ci95": None}
    m = float(v.mean())
    if len(v) < 2:
        return {"mean": m, "ci95": None}
    half = float(sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return {"mean": m, "ci95": [max(m - half, bounds[0]), min(m + half, bounds[1])]}


def crossval(
    dataset_dir: str | Path,
    out_dir: str | Path,
    folds: int,
    group: str = "participant",
    config: Any = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    log: Callable[[str], None] | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Run grouped K-fold cross-validation; writes one checkpoint per fold and ``crossval.json``.

    Parameters
    ----------
    dataset_dir
        The dataset.
    out_dir
        ``fold-1/`` ... checkpoints and ``crossval.json`` go here.
    folds
        K (2 .. number of groups; equal to it for leave-one-out).
    group
        ``"participant"`` or ``"stimulus"``.
    config
        Network config (e.g. with a branch dropped); default config otherwise.
    train_kwargs
        Passed to :func:`models.train.train` (epochs, batch_size, device, ...).

    Returns
    -------
    dict
        ``folds`` (per fold: test groups, trials, balanced accuracy per method and head) and
        ``summary`` (method -> head -> mean and ci95).
    """
    from models.checkpoint import load_checkpoint
    from models.dataset import TrialDataset
    from models.train import train

    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, not {group!r}")
    say = log or (lambda _m: None)
    ds = TrialDataset(dataset_dir)
    labelled = ds.labelled()
    key = ds.participants if group == "participant" else ds.stimulus_ids
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, test_groups in enumerate(grouped_folds(key[labelled], folds, seed), start=1):
        idx = fold_indices(ds, test_groups, group, val_fraction, seed + k)
        test = idx["participant" if group == "participant" else "stimulus"]
        say(
            f"fold {k}/{folds}: testing on {', '.join(test_groups[:4])}{'...' * (len(test_groups) > 4)}"
        )
        ckpt = out / f"fold-{k}"
        train(dataset_dir, ckpt, config, seed=seed, indices=idx, progress=False, **train_kwargs)
        model, meta = load_checkpoint(ckpt)
        eval_ds = TrialDataset(
            dataset_dir, meta["stats"], train_kwargs.get("catalogue"), model.config.image_size
        )
        probs = predict_dataset(model, eval_ds, test)
        res = compare_methods(
            eval_ds, test, probs, meta["training"].get("baselines"), model.config.n_classes
        )
        row = {"fold": k, "test_groups": test_groups.tolist(), "trials": int(len(test))}
        for m in METHODS:
            src = res["heads"] if m == "network" else res["baselines"][m]
            row[m] = {
                h: (src[h]["balanced_accuracy"] if src[h] is not None else None) for h in HEADS
            }
        rows.append(row)
        say(
            "  balanced accuracy (arousal/valence): "
            + ", ".join(
                f"{m} {row[m]['arousal']:.3f}/{row[m]['valence']:.3f}"
                for m in METHODS
                if row[m]["arousal"] is not None
            )
        )
    summary = {m: {h: mean_ci([r[m][h] for r in rows]) for h in HEADS} for m in METHODS}
    report = {
        "dataset": str(dataset_dir),
        "group": group,
        "folds": folds,
        "leave_one_out": folds == len(np.unique(key[labelled])),
        "branches": list(config.branches) if config is not None else None,
        "per_fold": rows,
        "summary": summary,
    }
    (out / "crossval.json").write_text(json.dumps(report, indent=2))
    return report


def format_crossval(report: dict[str, Any]) -> str:
    """Mean balanced accuracy ± 95 % CI over folds, per method and head."""
    lines = [
        f"{report['folds']}-fold cross-validation by {report['group']}"
        + (" (leave-one-out)" if report["leave_one_out"] else "")
        + ": balanced accuracy, mean [95 % CI over folds]"
    ]
    for m in METHODS:
        cells = []
        for h in HEADS:
            s = report["summary"][m][h]
            if s["mean"] is None:
                cells.append(f"{h} n/a")
            elif s["ci95"] is None:
                cells.append(f"{h} {s['mean']:.3f}")
            else:
                cells.append(f"{h} {s['mean']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]")
        lines.append(f"  {m:11s} " + "   ".join(cells))
    return "\n".join(lines)
