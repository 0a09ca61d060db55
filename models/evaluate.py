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
    from models.network import role_inputs

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
            **role_inputs(b, device),
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


PROTOCOLS = ("participant", "stimulus", "both")
"""Generalisation protocols: new people (pictures seen in training), new pictures (people seen
in training), or both at once."""

METHODS = ("network", "majority", "lookup", "physiology", "oracle", "ceiling")


class EvaluationError(ValueError):
    """An evaluation that cannot be done as asked (one line saying why)."""


def select_trials(
    ds: Any, training: dict[str, Any], protocol: str | None, split: str
) -> tuple[np.ndarray, str, bool]:
    """Labelled trials to evaluate, a label for them and whether ``ds`` is the training dataset.

    On the training dataset (same fingerprint) the protocols use the test trials the checkpoint
    recorded. On any other dataset every participant is new; the participant protocol takes the
    trials on pictures the checkpoint was trained on, the both protocol those on other pictures.
    """
    labelled = ds.labelled()
    trained_on = training.get("dataset_fingerprint")
    same = trained_on is not None and trained_on == ds.fingerprint
    sp = training.get("split", {})
    recorded = sp.get("test_trial_ids") or {}
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise EvaluationError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        if same:
            ids = set(recorded.get(protocol, []))
            idx = labelled[np.isin(np.asarray(ds.trial_ids)[labelled], list(ids))]
            if not len(idx):
                raise EvaluationError(
                    f"--protocol {protocol}: the checkpoint recorded no {protocol}-protocol test "
                    "trials on this dataset (too few pictures held out, or none)"
                )
            return idx, protocol, True
        if protocol == "stimulus":
            raise EvaluationError(
                "--protocol stimulus needs the training participants, which only the training "
                "dataset holds; on a new dataset every participant is new (use --protocol both)"
            )
        seen = set(sp.get("train_stimuli") or [])
        if not seen:
            raise EvaluationError(
                "the checkpoint records no training pictures (trained before protocols existed)"
            )
        on_seen = np.isin(ds.stimulus_ids[labelled], list(seen))
        idx = labelled[on_seen] if protocol == "participant" else labelled[~on_seen]
        if not len(idx):
            which = (
                "a picture the checkpoint was trained on"
                if protocol == "participant"
                else ("a picture the checkpoint was not trained on")
            )
            raise EvaluationError(
                f"--protocol {protocol}: none of the dataset's {len(labelled)} rated trials shows "
                f"{which} (it was trained on {', '.join(sorted(seen)[:3])}, ...)"
            )
        return idx, protocol, False
    if split == "all":
        return labelled, "all", same
    if split not in ("auto", "test"):
        raise EvaluationError(f"split must be auto, test or all, not {split!r}")
    if not same:
        why = (
            "the checkpoint records no dataset fingerprint"
            if trained_on is None
            else f"{ds.directory} (fingerprint {ds.fingerprint}) is not the dataset the "
            f"checkpoint was trained on ({trained_on})"
        )
        raise EvaluationError(
            f"--split {split}: {why}; use --protocol participant|both for new people or --split all"
        )
    ids = set(recorded.get("participant", [])) | set(recorded.get("both", []))
    idx = labelled[np.isin(np.asarray(ds.trial_ids)[labelled], list(ids))]
    if not len(idx):
        raise EvaluationError(f"--split {split}: the checkpoint recorded no test trials")
    return idx, "test", True


def _onehot(pred: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n)[np.clip(pred, 0, n - 1)]


def _short(m: dict[str, Any]) -> dict[str, float]:
    return {k: m[k] for k in ("balanced_accuracy", "macro_f1", "mae", "ece", "accuracy")}


def bootstrap_ci(
    y: np.ndarray,
    pred: np.ndarray,
    groups: np.ndarray,
    n_classes: int = 7,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[float] | None:
    """95 % percentile interval of the balanced accuracy over participants resampled with
    replacement (each resample pools its participants' trials); None for fewer than two."""
    uniq, g = np.unique(groups, return_inverse=True)
    if len(uniq) < 2:
        return None
    cms = np.zeros((len(uniq), n_classes, n_classes))
    np.add.at(cms, (g, np.asarray(y), np.clip(np.asarray(pred), 0, n_classes - 1)), 1)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), (n_boot, len(uniq)))
    counts = np.stack([np.bincount(d, minlength=len(uniq)) for d in draws])
    cm = np.einsum("bp,pij->bij", counts, cms)
    support = cm.sum(axis=2)
    recall = np.divide(
        np.einsum("bii->bi", cm), support, out=np.full(support.shape, np.nan), where=support > 0
    )
    ba = np.nanmean(recall, axis=1)
    return [float(np.percentile(ba, 2.5)), float(np.percentile(ba, 97.5))]


def compare_methods(
    ds: Any,
    idx: np.ndarray,
    probs: tuple[np.ndarray, np.ndarray],
    baselines: dict[str, Any] | None,
    n_classes: int = 7,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """The network beside majority, lookup, physiology, oracle and (simulated data, a checkpoint
    fitted with it) ceiling on the same trials: metrics, 95 % bootstrap CIs over participants and
    a per-participant table."""
    from models.baselines import (
        CEILING_INPUTS,
        LogisticBaseline,
        ceiling_features,
        dataset_features,
        lookup_predict,
        physiology_applies,
    )

    ys = (ds.arousal_class[idx], ds.valence_class[idx])
    parts = ds.participants[idx]
    stim = ds.stimulus_ids[idx]
    preds: dict[str, list[np.ndarray | None]] = {m: [None, None] for m in METHODS}
    full: dict[str, list[dict[str, Any] | None]] = {m: [None, None] for m in METHODS}
    feats = None
    physiology_note = physiology_applies(baselines) if baselines else None
    if baselines and physiology_note is None:
        feats = dataset_features(ds, idx)
    oracles = (ds.oracle_arousal[idx], ds.oracle_valence[idx])
    ceiling = None
    stored = (baselines or {}).get("ceiling") or {}
    if feats is not None and all(
        stored.get(h, {}).get("features") == list(CEILING_INPUTS) for h in HEADS
    ):
        extra = ceiling_features(ds, idx)  # None on a dataset without the simulator's truth
        ceiling = None if extra is None else np.hstack([feats, extra])
    coverage: dict[str, float] = {}
    for h, head in enumerate(HEADS):
        y = ys[h]
        preds["network"][h] = probs[h].argmax(axis=1)
        full["network"][h] = _short(head_metrics(y, probs[h], n_classes))
        if baselines:
            maj = int(baselines["majority"][head])
            preds["majority"][h] = np.full(len(y), maj)
            norms = {k: v[h] for k, v in ds.stimulus_norms.items()}
            lk = lookup_predict(stim, baselines["lookup"][head], norms, n_classes)
            coverage[head] = float((lk >= 0).mean()) if len(lk) else 0.0
            if len(lk) and (lk >= 0).all():
                preds["lookup"][h] = lk
            if feats is not None:
                lr = LogisticBaseline.from_dict(baselines["physiology"][head])
                p_lr = lr.predict_proba(feats)
                preds["physiology"][h] = p_lr.argmax(axis=1)
                full["physiology"][h] = _short(head_metrics(y, p_lr, n_classes))
            if ceiling is not None:
                p_c = LogisticBaseline.from_dict(baselines["ceiling"][head]).predict_proba(ceiling)
                preds["ceiling"][h] = p_c.argmax(axis=1)
                full["ceiling"][h] = _short(head_metrics(y, p_c, n_classes))
        if len(oracles[h]) and (oracles[h] >= 0).all():
            preds["oracle"][h] = oracles[h]
        for m in ("majority", "lookup", "oracle"):
            if preds[m][h] is not None:
                full[m][h] = _short(head_metrics(y, _onehot(preds[m][h], n_classes), n_classes))
    out: dict[str, Any] = {
        "heads": {head: full["network"][h] for h, head in enumerate(HEADS)},
        "baselines": {m: {head: full[m][h] for h, head in enumerate(HEADS)} for m in METHODS[1:]},
        "lookup_coverage": coverage,
        "notes": [f"physiology baseline left out: {physiology_note}"] if physiology_note else [],
        "ci95": {
            m: {
                head: bootstrap_ci(ys[h], preds[m][h], parts, n_classes, n_boot)
                if preds[m][h] is not None
                else None
                for h, head in enumerate(HEADS)
            }
            for m in METHODS
        },
    }
    table = []
    for p in np.unique(parts):
        sel = parts == p
        row: dict[str, Any] = {"participant": str(p), "trials": int(sel.sum())}
        for m in METHODS:
            row[m] = {
                head: balanced_accuracy(confusion_matrix(ys[h][sel], preds[m][h][sel], n_classes))
                if preds[m][h] is not None
                else None
                for h, head in enumerate(HEADS)
            }
        table.append(row)
    out["per_participant"] = table
    return out


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
    protocol: str | None = None,
    n_boot: int = 2000,
    norms: Any = None,
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
        Without ``protocol``: ``"auto"``/``"test"`` (the checkpoint's test participants; only on
        the dataset it was trained on, else :class:`EvaluationError`) or ``"all"``.
    protocol
        ``"participant"`` (new people), ``"stimulus"`` (new pictures) or ``"both"``; see
        :func:`select_trials`.
    ablate
        Branches whose features are zeroed (see :meth:`EmoEyeNet.forward`); to measure what a
        branch contributes, retrain without it instead (``emoeye train --drop-branch``).
    oracle
        Oracle classes (pair of arrays aligned with the evaluated trials, or a callable taking the
        dataset and the indices); by default the dataset's ``oracle_*`` arrays where present.
    norms
        A :class:`models.norms.Norms` table replacing the dataset's ``stimulus_norms``: the lookup
        baseline's ratings for pictures the training never showed. Every evaluated picture
        needs a row (else :class:`EvaluationError`).

    Returns
    -------
    dict
        Per-head metrics (``arousal``, ``valence``, as :func:`head_metrics`), and ``heads``,
        ``baselines``, ``ci95``, ``per_participant`` (see :func:`compare_methods`),
        ``protocol``, ``participants``, ``trials``.
    """
    from models.checkpoint import load_checkpoint
    from models.dataset import TrialDataset

    model, meta = load_checkpoint(checkpoint, device)
    ds = TrialDataset(dataset_dir, meta["stats"], catalogue, image_size=model.config.image_size)
    from models.preprocess import check_shapes

    check_shapes(ds.n_time, ds.scanpath_size, model.config.n_time, model.config.scanpath_size)
    training = meta.get("training", {})
    idx, used, same = select_trials(ds, training, protocol, split)
    if norms is not None:
        from models.norms import NormsError

        try:
            ds.stimulus_norms = norms.for_stimuli(np.unique(ds.stimulus_ids[idx]), str(dataset_dir))
        except NormsError as exc:
            raise EvaluationError(str(exc)) from None
    pa, pv = predict_dataset(model, ds, idx, batch_size, device, ablate)
    if oracle is None:
        oa, ov = ds.oracle_arousal[idx], ds.oracle_valence[idx]
        orc = (oa, ov) if (oa >= 0).any() or (ov >= 0).any() else None
    elif callable(oracle):
        orc = oracle(ds, idx)
    else:
        orc = oracle
    baselines = training.get("baselines")
    train_labels = None
    if baselines:
        maj = [int(baselines["majority"][h]) for h in HEADS]
        train_labels = (np.array([maj[0]]), np.array([maj[1]]))
    report = evaluate_predictions(
        ds.arousal_class[idx],
        ds.valence_class[idx],
        pa,
        pv,
        model.config.n_classes,
        train_labels=train_labels,
        oracle=orc,
    )
    report.update(compare_methods(ds, idx, (pa, pv), baselines, model.config.n_classes, n_boot))
    report.update(
        {
            "checkpoint": meta["path"],
            "dataset": str(dataset_dir),
            "dataset_fingerprint": ds.fingerprint,
            "same_dataset": same,
            "protocol": protocol,
            "split": used,
            "participants": int(len(np.unique(ds.participants[idx]))),
            "trials": int(len(idx)),
            "n_trials": int(len(idx)),
            "n_participants": int(len(np.unique(ds.participants[idx]))),
            "ablate": list(ablate),
            "branches": list(model.config.branches),
            "norms_input": bool(model.config.use_norms),
            # Where the lookup baseline's ratings for pictures new to the training come from.
            "lookup_norms": f"{norms.path} ({norms.format})"
            if norms is not None
            else ("dataset" if ds.stimulus_norms else None),
        }
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        suffix = f"-{protocol}" if protocol else ""
        suffix += "" if not ablate else "-no-" + "-".join(sorted(ablate))
        (out / f"evaluation{suffix}.json").write_text(json.dumps(report, indent=2))
        plot_confusions(report, out / f"confusion{suffix}.png", title=f"{used}{suffix}")
    return report


def format_comparison(report: dict[str, Any]) -> str:
    """Balanced accuracy with 95 % CIs of the network and every baseline, and the
    per-participant table."""
    lines = ["balanced accuracy [95 % CI over participants]"]
    lines.append(f"{'':12s}" + "".join(f"{h:>24s}" for h in HEADS))
    for m in METHODS:
        cells = []
        for head in HEADS:
            res = report["heads"][head] if m == "network" else report["baselines"][m][head]
            ci = report["ci95"][m][head]
            if res is None:
                cells.append(f"{'n/a':>24s}")
            elif ci is None:
                cells.append(f"{res['balanced_accuracy']:>8.3f} (one participant)")
            else:
                cells.append(f"{res['balanced_accuracy']:>8.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
        lines.append(f"{m:12s}" + "".join(f"{c:>24s}" for c in cells))
    lines.extend(f"note: {n}" for n in report.get("notes", []))
    lines.append("per participant (arousal / valence balanced accuracy):")
    lines.append("  participant trials " + " ".join(f"{m:>13s}" for m in METHODS))
    for row in report["per_participant"]:
        cells = []
        for m in METHODS:
            v = row[m]
            cells.append(
                "          n/a"
                if v["arousal"] is None
                else f"  {v['arousal']:.2f} / {v['valence']:.2f}"
            )
        lines.append(f"  {row['participant']:>11s} {row['trials']:>6d} " + " ".join(cells))
    return "\n".join(lines)


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
