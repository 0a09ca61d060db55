"""Evaluation: per-head metrics beside baselines, confusion matrices, calibration, ablations.

Pure numpy/torch. Every figure is reported beside the majority-class baseline and, when the
ground truth is known (simulated data), beside the oracle (Bayes-optimal) accuracy, so a number
is never read without its floor and its ceiling.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

HEADS = ("arousal", "valence")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 7) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = true class, columns = predicted."""
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    cm = np.bincount(yt * n_classes + yp, minlength=n_classes * n_classes)
    return cm[: n_classes * n_classes].reshape(n_classes, n_classes)


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes present in the truth or the predictions."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = (support + predicted) > 0
    if not present.any():
        return 0.0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean())


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in the truth."""
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return 0.0
    return float((np.diag(cm)[present] / support[present]).mean())


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: confidence-weighted gap between confidence and accuracy over bins."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    bins = np.clip((conf * n_bins).astype(int), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return float(ece)


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Softmax temperature minimising the negative log-likelihood of ``y_true``.

    ``probs`` are the model's probabilities at temperature 1; ``log(probs)`` differs from the
    logits by a per-row constant, which softmax ignores. A log-spaced grid search (0.05..20) is
    deterministic and cannot diverge.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return 1.0
    logp = np.log(np.clip(p, 1e-12, None))
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 241)):
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        nll = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def head_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    n_classes: int = 7,
    train_labels: np.ndarray | None = None,
    oracle: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of one head.

    Parameters
    ----------
    y_true
        0-based true classes (N,).
    probs
        (N, n_classes) predicted probabilities.
    train_labels
        Training labels: the majority class is taken from them (from ``y_true`` otherwise).
    oracle
        0-based oracle (Bayes-optimal) classes (N,), or negative where unknown.

    Returns
    -------
    dict
        accuracy, balanced_accuracy, macro_f1, mae (on the 1..n scale, of the argmax and of the
        expected value), ece, confusion, majority baseline, oracle accuracy when given.
    """
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    pred = p.argmax(axis=1) if len(p) else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(y, pred, n_classes)
    scale = np.arange(1, n_classes + 1)
    expected = p @ scale if len(p) else np.zeros(0)
    ref = np.asarray(train_labels if train_labels is not None else y, dtype=np.int64)
    ref = ref[ref >= 0]
    majority = int(np.bincount(ref, minlength=n_classes).argmax()) if ref.size else 0
    maj_pred = np.full_like(y, majority)
    maj_cm = confusion_matrix(y, maj_pred, n_classes)
    out: dict[str, Any] = {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "balanced_accuracy": balanced_accuracy(cm),
        "macro_f1": macro_f1(cm),
        "mae": float(np.abs(pred - y).mean()) if len(y) else 0.0,
        "mae_expected": float(np.abs(expected - (y + 1)).mean()) if len(y) else 0.0,
        "ece": expected_calibration_error(p, y),
        "confusion": cm.tolist(),
        "majority": {
            "class": majority + 1,
            "accuracy": float((maj_pred == y).mean()) if len(y) else 0.0,
            "balanced_accuracy": balanced_accuracy(maj_cm),
            "macro_f1": macro_f1(maj_cm),
            "mae": float(np.abs(maj_pred - y).mean()) if len(y) else 0.0,
        },
        "chance_accuracy": 1.0 / n_classes,
    }
    if oracle is not None:
        o = np.asarray(oracle, dtype=np.int64)
        known = o >= 0
        if known.any():
            out["oracle"] = {
                "accuracy": float((o[known] == y[known]).mean()),
                "n": int(known.sum()),
                "model_accuracy_same_trials": float((pred[known] == y[known]).mean()),
            }
    return out


def plot_confusions(report: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Both heads' confusion matrices (row-normalised) side by side as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4), dpi=100)
    axes = fig.subplots(1, len(HEADS))
    for ax, head in zip(axes, HEADS, strict=True):
        cm = np.asarray(report[head]["confusion"], dtype=np.float64)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="viridis")
        n = len(cm)
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] < 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(n), [str(k + 1) for k in range(n)])
        ax.set_yticks(range(n), [str(k + 1) for k in range(n)])
        ax.set_xlabel("predicted")
        ax.set_ylabel("rated")
        m = report[head]
        ax.set_title(f"{head}: acc {m['accuracy']:.2f}, F1 {m['macro_f1']:.2f}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path))
    return Path(path)


@torch.inference_mode()
def predict_dataset(
    model: torch.nn.Module,
    dataset: Any,
    indices: np.ndarray,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    ablate: Collection[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of both heads for the given trials of a :class:`TrialDataset`.

    The stimulus branch runs once per distinct stimulus (as the live worker does at onset).
    """
    model.eval()
    cfg = model.config
    emb = None
    if cfg.use_stimulus:
        images = torch.from_numpy(dataset.stimulus_images()).to(device)
        emb = model.embed_stimulus(images) if len(images) else None
    pa, pv = [], []
    for start in range(0, len(indices), batch_size):
        idx = indices[start : start + batch_size]
        b = dataset.batch(idx, with_images=False)
        se = emb[b["stimulus_index"].to(device)] if emb is not None else None
        la, lv = model(
            b["timeseries"].to(device),
            b["scanpath"].to(device),
            stimulus_embedding=se,
            ablate=ablate,
        )
        pa.append(torch.softmax(la, 1).float().cpu().numpy())
        pv.append(torch.softmax(lv, 1).float().cpu().numpy())
    n = cfg.n_classes
    if not pa:
        return np.zeros((0, n), np.float32), np.zeros((0, n), np.float32)
    return np.concatenate(pa), np.concatenate(pv)


def evaluate_predictions(
    y_arousal: np.ndarray,
    y_valence: np.ndarray,
    probs_arousal: np.ndarray,
    probs_valence: np.ndarray,
    n_classes: int = 7,
    train_labels: tuple[np.ndarray, np.ndarray] | None = None,
    oracle: tuple[np.ndarray, np.ndarray]
    | Callable[[], tuple[np.ndarray, np.ndarray]]
    | None = None,
) -> dict[str, Any]:
    """Metrics of both heads (see :func:`head_metrics`) plus their mean macro-F1.

    ``oracle`` is a pair of 0-based oracle-class arrays, or a callable returning that pair.
    """
    if callable(oracle):
        oracle = oracle()
    report: dict[str, Any] = {}
    for h, (y, p) in enumerate(((y_arousal, probs_arousal), (y_valence, probs_valence))):
        report[HEADS[h]] = head_metrics(
            y,
            p,
            n_classes,
            train_labels[h] if train_labels is not None else None,
            oracle[h] if oracle is not None else None,
        )
    report["macro_f1_mean"] = float(np.mean([report[h]["macro_f1"] for h in HEADS]))
    return report


def evaluate_checkpoint(
    checkpoint: str | Path | None,
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    split: str = "auto",
    ablate: Sequence[str] = (),
    oracle: tuple[np.ndarray, np.ndarray]
    | Callable[[Any], tuple[np.ndarray, np.ndarray]]
    | None = None,
    device: str = "cpu",
    catalogue: Any = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset directory; write ``evaluation.json`` and a PNG.

    Parameters
    ----------
    checkpoint
        Checkpoint directory (``None`` = the bundled default model).
    dataset_dir
        Dataset written by :class:`~models.dataset.DatasetWriter`.
    out_dir
        Where to write ``evaluation.json`` and ``confusion.png`` (nothing written when None).
    split
        ``"test"`` (the checkpoint's test participants), ``"all"``, or ``"auto"`` (test when the
        dataset holds any of the checkpoint's test participants, all otherwise).
    ablate
        Branches whose features are zeroed (see :meth:`EmoEyeNet.forward`).
    oracle
        Oracle classes (pair of arrays aligned with the evaluated trials, or a callable taking the
        dataset and the indices); by default the dataset's ``oracle_*`` arrays where present.
    """
    from models.checkpoint import load_checkpoint
    from models.dataset import TrialDataset

    model, meta = load_checkpoint(checkpoint, device)
    ds = TrialDataset(dataset_dir, meta["stats"], catalogue, image_size=model.config.image_size)
    from models.preprocess import check_shapes

    check_shapes(ds.n_time, ds.scanpath_size, model.config.n_time, model.config.scanpath_size)
    labelled = ds.labelled()
    test_parts = set(meta.get("training", {}).get("split", {}).get("test_participants", []))
    in_test = np.isin(ds.participants[labelled], list(test_parts)) if test_parts else None
    if split == "test" and (in_test is None or not in_test.any()):
        raise ValueError(
            "the dataset holds none of the checkpoint's test participants; use split='all'"
        )
    if split in ("test", "auto") and in_test is not None and in_test.any():
        idx, used = labelled[in_test], "test"
    elif split in ("all", "auto"):
        idx, used = labelled, "all"
    else:
        raise ValueError(f"split must be test, all or auto, not {split!r}")
    pa, pv = predict_dataset(model, ds, idx, batch_size, device, ablate)
    if oracle is None:
        oa, ov = ds.oracle_arousal[idx], ds.oracle_valence[idx]
        orc = (oa, ov) if (oa >= 0).any() or (ov >= 0).any() else None
    elif callable(oracle):
        orc = oracle(ds, idx)
    else:
        orc = oracle
    report = evaluate_predictions(
        ds.arousal_class[idx], ds.valence_class[idx], pa, pv, model.config.n_classes, oracle=orc
    )
    report.update(
        {
            "checkpoint": meta["path"],
            "dataset": str(dataset_dir),
            "split": used,
            "n_trials": int(len(idx)),
            "n_participants": int(len(np.unique(ds.participants[idx]))),
            "ablate": list(ablate),
            "branches": list(model.config.branches),
        }
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        suffix = "" if not ablate else "-no-" + "-".join(sorted(ablate))
        (out / f"evaluation{suffix}.json").write_text(json.dumps(report, indent=2))
        plot_confusions(report, out / f"confusion{suffix}.png", title=f"{used} split{suffix}")
    return report


def format_report(report: dict[str, Any]) -> str:
    """A few human-readable lines of a report."""
    lines = []
    for head in HEADS:
        m = report[head]
        line = (
            f"{head:8s} acc {m['accuracy']:.3f} (majority {m['majority']['accuracy']:.3f}, "
            f"chance {m['chance_accuracy']:.3f})  bal.acc {m['balanced_accuracy']:.3f}  "
            f"macro-F1 {m['macro_f1']:.3f}  MAE {m['mae']:.2f}  ECE {m['ece']:.3f}"
        )
        if "oracle" in m:
            line += f"  oracle acc {m['oracle']['accuracy']:.3f}"
        lines.append(line)
    return "\n".join(lines)
