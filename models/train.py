"""Training: participant split, focal loss with balanced weights, balanced sampler, early stopping.

One call, :func:`train`, goes from a dataset directory to a checkpoint directory; it is
deterministic for a given seed on a given device and thread count.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.backbone import FrozenVGG16
from models.balancing import balanced_subset, sampled_marginals, sampler_weights
from models.baselines import ceiling_features, dataset_features, fit_baselines
from models.checkpoint import default_checkpoint_dir, save_checkpoint
from models.dataset import DatasetError, TrialDataset, split_by_participant
from models.evaluate import evaluate_predictions, fit_temperature, format_report
from models.losses import FocalLoss, balanced_class_weights, weights_from_counts
from models.network import EmoEyeNet, ModelConfig, count_parameters, role_inputs
from models.preprocess import Augment, StatsAccumulator

BALANCE_MODES = ("both", "sampler", "subset", "weights", "none")
DEFAULT_MODEL_MAX_BYTES = 5 * 1024 * 1024


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    checkpoint
        The checkpoint directory.
    history
        Per-epoch figures.
    best_epoch
        Epoch (1-based) whose weights were kept.
    test_report
        Metrics on the held-out test participants (see :mod:`models.evaluate`).
    trials_per_s
        Training throughput (trials per second of optimisation).
    """

    checkpoint: Path
    history: list[dict[str, float]]
    best_epoch: int
    test_report: dict[str, Any]
    val_report: dict[str, Any]
    trials_per_s: float
    info: dict[str, Any] = field(default_factory=dict)
    model: EmoEyeNet | None = None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python-visible RNGs torch uses (CPU and CUDA) and ask cuDNN for determinism."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - third-party code may use the global RNG
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def split_three_ways(
    participants: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (into ``participants``) of train / validation / test, disjoint by participant."""
    n_parts = len(np.unique(participants))
    if n_parts < 3:
        raise ValueError(
            f"training needs at least 3 participants (train, validation and test are split by "
            f"participant); the dataset has {n_parts}"
        )
    rest, test = split_by_participant(participants, test_fraction, seed)
    frac = val_fraction / max(1.0 - test_fraction, 1e-9)
    tr, va = split_by_participant(participants[rest], min(frac, 0.9), seed + 1)
    return rest[tr], rest[va], test


def held_out_stimuli(stimulus_ids: np.ndarray, fraction: float, seed: int) -> list[str]:
    """Pictures kept out of training: ``fraction`` of the distinct ones (at least one) when
    there are at least 5, else none."""
    unique = np.unique(np.asarray(stimulus_ids).astype(str))
    if fraction <= 0 or len(unique) < 5:
        return []
    if fraction >= 1:
        raise ValueError("hold_out_stimuli must be below 1")
    n = max(1, int(round(fraction * len(unique))))
    rng = np.random.default_rng([seed, 17])
    return sorted(rng.permutation(unique)[:n].tolist())


def _batches(n: int, batch_size: int) -> range:
    return range(0, n, batch_size)


def _forward_batch(
    model: EmoEyeNet, b: dict[str, torch.Tensor], images: torch.Tensor | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    emb = None
    if model.config.use_stimulus and images is not None:
        # Embed each distinct stimulus of the batch once (as the live worker does at onset).
        uniq, inv = torch.unique(b["stimulus_index"], return_inverse=True)
        emb = model.embed_stimulus(images[uniq.to(images.device)])[inv.to(device)]
    return model(
        b["timeseries"].to(device),
        b["scanpath"].to(device),
        stimulus_embedding=emb,
        **role_inputs(b, device),
    )


@torch.inference_mode()
def _predict(
    model: EmoEyeNet,
    ds: TrialDataset,
    idx: np.ndarray,
    images: torch.Tensor | None,
    device: torch.device,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    emb_all = (
        model.embed_stimulus(images) if model.config.use_stimulus and images is not None else None
    )
    pa, pv = [], []
    for s in _batches(len(idx), batch_size):
        b = ds.batch(idx[s : s + batch_size], with_images=False)
        emb = emb_all[b["stimulus_index"].to(device)] if emb_all is not None else None
        la, lv = model(
            b["timeseries"].to(device),
            b["scanpath"].to(device),
            stimulus_embedding=emb,
            **role_inputs(b, device),
        )
        pa.append(torch.softmax(la.float(), 1).cpu().numpy())
        pv.append(torch.softmax(lv.float(), 1).cpu().numpy())
    n = model.config.n_classes
    if not pa:
        return np.zeros((0, n)), np.zeros((0, n))
    return np.concatenate(pa), np.concatenate(pv)


def _focal_from_probs(loss: FocalLoss, probs: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return float("nan")
    logp = torch.log(torch.from_numpy(probs).double().clamp_min(1e-12))
    return float(loss(logp, torch.from_numpy(y)))


def train(
    dataset_dir: str | Path,
    out_dir: str | Path,
    config: ModelConfig | None = None,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    hold_out_stimuli: float = 0.2,
    indices: dict[str, np.ndarray] | None = None,
    patience: int = 6,
    gamma: float = 3.0,
    balance: str = "both",
    augment: bool = False,
    steps_per_epoch: int | None = None,
    catalogue: Any = None,
    vgg_weights: str | Path | FrozenVGG16 | None = None,
    feature_cache: str | Path | None = None,
    num_threads: int | None = None,
    norms_dropout: float = 0.1,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train an :class:`EmoEyeNet` on a dataset directory and write a checkpoint.

    Parameters
    ----------
    dataset_dir
        Written by :class:`~models.dataset.DatasetWriter`.
    out_dir
        Checkpoint directory to write (see :mod:`models.checkpoint`).
    config
        Network config; defaults to :class:`ModelConfig` with the dataset's shapes.
    epochs, batch_size, lr, weight_decay
        Optimisation (AdamW, cosine-annealed learning rate).
    seed
        Seeds the split, the sampler, initialisation and dropout.
    device
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    progress
        Show a rich progress bar and a summary.
    val_fraction, test_fraction
        Shares of participants held out for early stopping and for the final test.
    hold_out_stimuli
        Share of pictures never trained on (when the dataset shows at least 5): trials on them
        form the stimulus protocol's test set (training participants) and the both protocol's
        (test participants). 0 trains on every picture.
    indices
        An explicit split instead of the above: dataset indices under ``train``, ``val`` and any
        of ``participant``, ``stimulus``, ``both`` (test sets), as cross-validation uses.
    patience
        Epochs without a better validation macro-F1 (mean of both heads) before stopping.
    gamma
        Focal-loss gamma (3 in the EmoEye design; 0 = cross-entropy).
    balance
        ``"both"``: joint-class sampler plus class weights of what the sampler draws;
        ``"sampler"``; ``"subset"`` (at most the median cell size per joint cell, drawn
        uniformly, plus class weights of the subset); ``"weights"`` (balanced weights of the raw
        counts); ``"none"``.
    augment
        Scale physiological responses and offset gaze per trial (see
        :class:`~models.preprocess.Augment`) while training. Off by default: on the simulated
        default dataset it did not improve held-out scores.
    steps_per_epoch
        Batches per epoch (default: one pass worth of trials).
    catalogue
        Stimulus catalogue (``image(id, size)``); the bundled one by default.
    vgg_weights
        Local torchvision-layout VGG16 state dict (or a ready :class:`FrozenVGG16`), required by
        ``stimulus_backbone="vgg16"``. Its convolutions stay frozen: every picture's features
        are computed once (or read from the cache) before the first epoch, so training runs
        the head only. The checkpoint records the file's SHA-256, not its weights.
    feature_cache
        Root of the disk cache of frozen features (default: the user cache directory, see
        :mod:`models.backbone`).
    num_threads
        ``torch.set_num_threads`` for the run (process-wide; None leaves it).
    norms_dropout
        For a ``use_norms`` model: share of training trials whose norms are hidden (zeros,
        flag 0) in each batch, so the network also learns to predict a picture without norms
        as it will meet one at run time.
    log
        Where summary lines go (default: the rich console when ``progress``, else nowhere).

    Returns
    -------
    TrainResult

    Raises
    ------
    DatasetError
        ``config.use_norms`` and no training trial has its picture's norms.
    """
    if balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {BALANCE_MODES}, not {balance!r}")
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    dev = resolve_device(device)
    console = None
    if log is None and progress:
        from rich.console import Console

        console = Console(stderr=True)
        log = console.print
    say = log or (lambda _msg: None)
    seed_everything(seed)
    t_start = time.perf_counter()

    ds = TrialDataset(dataset_dir, catalogue=catalogue)
    labelled = ds.labelled()
    if len(labelled) == 0:
        raise ValueError(f"{dataset_dir} holds no rated trials")
    if config is None:
        config = ModelConfig(n_time=ds.n_time, scanpath_size=ds.scanpath_size)
    if (config.n_time, config.scanpath_size) != (ds.n_time, ds.scanpath_size):
        raise ValueError(
            f"the dataset has {ds.n_time} samples and {ds.scanpath_size}px scanpaths per trial "
            f"but the config asks for {config.n_time} and {config.scanpath_size}"
        )
    if ds.spec is not None and config.n_baseline != ds.spec.n_baseline:
        config = dataclasses.replace(config, n_baseline=ds.spec.n_baseline)
    ds.image_size = config.image_size
    n_classes = config.n_classes
    if indices is None:
        pos_tr, pos_va, pos_te = split_three_ways(
            ds.participants[labelled], val_fraction, test_fraction, seed
        )
        held = held_out_stimuli(ds.stimulus_ids[labelled], hold_out_stimuli, seed)
        new_pic = np.isin(ds.stimulus_ids, held)
        # Train and validate on seen pictures only; the held-out pictures are for the protocols.
        tr_all, va_all, te_all = labelled[pos_tr], labelled[pos_va], labelled[pos_te]
        tr, va = tr_all[~new_pic[tr_all]], va_all[~new_pic[va_all]]
        protocols = {
            "participant": te_all[~new_pic[te_all]],
            "stimulus": tr_all[new_pic[tr_all]],
            "both": te_all[new_pic[te_all]],
        }
    else:  # an explicit split (cross-validation folds)
        tr, va = (np.sort(np.asarray(indices[k], np.int64)) for k in ("train", "val"))
        protocols = {
            k: np.sort(np.asarray(indices.get(k, []), np.int64))
            for k in ("participant", "stimulus", "both")
        }
        tr_all, va_all = tr, va
        te_all = np.unique(np.concatenate([*protocols.values(), np.zeros(0, np.int64)]))
        held = sorted(set(ds.stimulus_ids[te_all].tolist()) - set(ds.stimulus_ids[tr].tolist()))
        if not len(tr) or not len(va):
            raise ValueError("an explicit split needs training and validation trials")
    te = np.sort(te_all)  # the test participants, every picture (= evaluate --split test)
    ya, yv = ds.arousal_class, ds.valence_class

    # Refused before the training signals are read for the statistics below.
    if config.use_norms:
        known = np.isfinite(ds.trial_norms()[tr]).all(axis=1)
        if not known.any():
            raise DatasetError(
                f"--norms-input needs picture norms, but no training trial of {dataset_dir} has "
                "any: build the dataset with --norms FILE (or [stimuli] norms), or train without "
                "--norms-input"
            )
        if not 0.0 <= norms_dropout < 1.0:
            raise ValueError(f"norms_dropout must be in [0, 1), not {norms_dropout}")

    # Normalisation statistics from the training participants only.
    acc = StatsAccumulator()
    for s in range(0, len(tr), 2048):
        a = ds.arrays(tr[s : s + 2048], ("signals", "baseline"))
        acc.update(a["signals"], a["baseline"])
    stats = acc.result()
    ds.stats = stats

    # Balancing: the sampler flattens the joint cells; the loss weights correct what remains.
    if balance in ("both", "sampler"):
        draw_w = sampler_weights(ya[tr], yv[tr], n_classes)
    elif balance == "subset":
        kept = np.isin(tr, balanced_subset(tr, ya[tr], yv[tr], seed=seed, n_classes=n_classes))
        draw_w = kept / kept.sum()
    else:
        draw_w = np.full(len(tr), 1.0 / len(tr))
    n_drawable = int(np.count_nonzero(draw_w))
    if balance in ("both", "subset"):
        ma, mv = sampled_marginals(ya[tr], yv[tr], draw_w, n_classes)
        wa, wv = weights_from_counts(ma), weights_from_counts(mv)
    elif balance == "weights":
        wa, wv = (
            balanced_class_weights(ya[tr], n_classes),
            balanced_class_weights(yv[tr], n_classes),
        )
    else:
        wa = wv = np.ones(n_classes, dtype=np.float32)
    loss_a = FocalLoss(gamma, wa).to(dev)
    loss_v = FocalLoss(gamma, wv).to(dev)
    # Validation losses are computed from numpy probabilities on the CPU.
    val_loss_a, val_loss_v = FocalLoss(gamma, wa), FocalLoss(gamma, wv)

    model = EmoEyeNet(config)
    if model.norms is not None:  # standardise the norms with the training trials' mean and std
        model.norms.fit(torch.from_numpy(ds.trial_norms()[tr]))
        say(
            f"norms input: {int(known.sum())} of {len(tr)} training trials have norms "
            f"(mean {model.norms.mean.tolist()}, std {model.norms.std.tolist()}); "
            f"{norms_dropout:.0%} hidden per batch"
        )
    norm_rng = np.random.default_rng([seed, 29])
    backbone = _backbone(config, vgg_weights, dev, feature_cache)
    if backbone is not None:
        model.attach_backbone(backbone)
    model.to(dev)
    images = None
    if config.use_stimulus:
        t_feat = time.perf_counter()
        # VGG16: frozen features of every picture, once (cached); the small CNN: the images.
        images = model.prepare_stimulus(torch.from_numpy(ds.stimulus_images()).to(dev))
        if backbone is not None:
            say(
                f"VGG16 features of {len(images)} pictures at {config.image_size}px: "
                f"{backbone.computed} computed, {backbone.memory_hits + backbone.disk_hits} from "
                f"the cache, {time.perf_counter() - t_feat:.1f} s"
            )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps = steps_per_epoch or max(1, -(-n_drawable // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps))
    gen = torch.Generator().manual_seed(seed)
    aug = Augment(seed=seed) if augment else None
    draw_t = torch.as_tensor(draw_w, dtype=torch.double)

    say(
        f"training on {dev}: {len(tr)} train / {len(va)} val / {len(te)} test trials "
        f"({len(np.unique(ds.participants[tr]))}/{len(np.unique(ds.participants[va]))}/"
        f"{len(np.unique(ds.participants[te]))} participants), "
        f"{count_parameters(model, True):,} trainable parameters, branches {config.branches}"
    )
    history: list[dict[str, float]] = []
    best_f1, best_epoch, best_state, best_val = -1.0, 0, None, {}
    stale = 0
    train_trials, train_seconds = 0, 0.0
    bar = _progress(progress)
    task = bar.add_task("training", total=epochs * steps) if bar else None
    try:
        if bar:
            bar.start()
        for epoch in range(1, epochs + 1):
            model.train()
            t0 = time.perf_counter()
            order = torch.multinomial(draw_t, steps * batch_size, replacement=True, generator=gen)
            pos = order.numpy()
            total, count = 0.0, 0
            for k in range(steps):
                idx = tr[pos[k * batch_size : (k + 1) * batch_size]]
                b = ds.batch(idx, with_images=False, augment=aug)
                if config.use_norms and norms_dropout > 0:
                    hide = torch.from_numpy(norm_rng.random(len(idx)) < norms_dropout)
                    b["norms"] = b["norms"].masked_fill(hide[:, None], float("nan"))
                la, lv = _forward_batch(model, b, images, dev)
                loss = loss_a(la, b["arousal"].to(dev)) + loss_v(lv, b["valence"].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
                if bar:
                    bar.update(
                        task,
                        advance=1,
                        description=f"epoch {epoch}/{epochs} loss {total / count:.3f}",
                    )
            train_seconds += time.perf_counter() - t0
            train_trials += count
            pa, pv = _predict(model, ds, va, images, dev, 512)
            val = evaluate_predictions(ya[va], yv[va], pa, pv, n_classes)
            row = {
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "val_loss": _focal_from_probs(val_loss_a, pa, ya[va])
                + _focal_from_probs(val_loss_v, pv, yv[va]),
                "val_macro_f1": val["macro_f1_mean"],
                "val_f1_arousal": val["arousal"]["macro_f1"],
                "val_f1_valence": val["valence"]["macro_f1"],
                "val_acc_arousal": val["arousal"]["accuracy"],
                "val_acc_valence": val["valence"]["accuracy"],
                "lr": opt.param_groups[0]["lr"],
            }
            history.append(row)
            if val["macro_f1_mean"] > best_f1:
                best_f1, best_epoch, best_val = val["macro_f1_mean"], epoch, val
                best_state = copy.deepcopy(model.state_dict())
                stale = 0
            else:
                stale += 1
            if bar is None and log is not None:
                say(
                    f"epoch {epoch}: loss {row['train_loss']:.4f}, val macro-F1 {row['val_macro_f1']:.3f}"
                )
            if stale >= patience:
                say(
                    f"early stop after epoch {epoch}: no better validation macro-F1 for {patience} epochs"
                )
                break
    finally:
        if bar:
            bar.stop()
    assert best_state is not None
    model.load_state_dict(best_state)
    # Calibrate: one temperature per head, fitted on the validation participants.
    pa, pv = _predict(model, ds, va, images, dev, 512)
    temps = [fit_temperature(pa, ya[va]), fit_temperature(pv, yv[va])]
    model.temperature.copy_(torch.tensor(temps, dtype=torch.float32))
    say(f"softmax temperature fitted on validation: arousal {temps[0]:.2f}, valence {temps[1]:.2f}")
    pa, pv = _predict(model, ds, te, images, dev, 512)
    oracle = None
    if (ds.oracle_arousal[te] >= 0).any():
        oracle = (ds.oracle_arousal[te], ds.oracle_valence[te])
    test = evaluate_predictions(
        ya[te], yv[te], pa, pv, n_classes, train_labels=(ya[tr], yv[tr]), oracle=oracle
    )
    by_protocol = {}
    for name, sel in protocols.items():
        if len(sel):
            qa, qv = _predict(model, ds, sel, images, dev, 512)
            orc = (ds.oracle_arousal[sel], ds.oracle_valence[sel])
            by_protocol[name] = _summary(
                evaluate_predictions(
                    ya[sel], yv[sel], qa, qv, n_classes, train_labels=(ya[tr], yv[tr]),
                    oracle=orc if (orc[0] >= 0).all() else None,
                )
            )  # fmt: skip
    tps = train_trials / max(train_seconds, 1e-9)
    feats = dataset_features(ds, tr)
    info = {
        "dataset": str(Path(dataset_dir).resolve()),
        "dataset_fingerprint": ds.fingerprint,
        "dataset_source": ds.meta.get("source"),
        "n_trials": {
            "train": len(tr),
            "val": len(va),
            "test": len(te),
            **{f"test_{k}": len(v) for k, v in protocols.items()},
        },
        "split": {
            "by": "participant and stimulus",
            "seed": seed,
            "train_participants": sorted(set(ds.participants[tr_all].tolist())),
            "val_participants": sorted(set(ds.participants[va_all].tolist())),
            "test_participants": sorted(set(ds.participants[te_all].tolist())),
            "train_stimuli": sorted(set(ds.stimulus_ids[tr].tolist())),
            "held_out_stimuli": sorted(held),
            "test_trial_ids": {
                k: [ds.trial_ids[i] for i in v.tolist()] for k, v in protocols.items()
            },
        },
        "baselines": fit_baselines(
            ds.stimulus_ids[tr], (ya[tr], yv[tr]), feats, n_classes, ceiling_features(ds, tr)
        ),
        "epochs": epochs,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "seed": seed,
        "gamma": gamma,
        "balance": balance,
        "augment": augment,
        **({"norms_dropout": norms_dropout} if config.use_norms else {}),
        "class_weights": {"arousal": [float(w) for w in wa], "valence": [float(w) for w in wv]},
        "temperature": {"arousal": temps[0], "valence": temps[1]},
        "device": str(dev),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "trials_per_s": round(tps, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
        "parameters": count_parameters(model),
        **({"backbone": backbone.describe()} if backbone is not None else {}),
        "val_macro_f1": best_f1,
        "test": _summary(test),
        "test_protocols": by_protocol,
    }
    model.cpu()
    spec = ds.meta.get("spec")
    out = save_checkpoint(out_dir, model, stats, spec=spec, training=info, history=history)
    say(f"best epoch {best_epoch} (val macro-F1 {best_f1:.3f}); test participants:")
    say(format_report(test))
    say(f"checkpoint written to {out}")
    return TrainResult(out, history, best_epoch, test, best_val, tps, info, model)


def _backbone(
    config: ModelConfig,
    weights: str | Path | FrozenVGG16 | None,
    device: torch.device,
    cache_dir: str | Path | None,
) -> FrozenVGG16 | None:
    """The frozen backbone a config needs (None for the small CNN), or a clear error."""
    if not (config.use_stimulus and config.stimulus_backbone == "vgg16"):
        if weights is not None and config.use_stimulus:
            raise ValueError("VGG16 weights were given but the model's stimulus branch is 'small'")
        return None
    if weights is None:
        raise ValueError(
            "the VGG16 stimulus backbone needs a local weights file (--backbone-weights FILE); "
            "nothing is downloaded (docs/models.md says how to make one)"
        )
    if isinstance(weights, FrozenVGG16):
        return weights
    return FrozenVGG16(weights, config.image_size, device, cache_dir=cache_dir)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1", "mae", "ece")
    out: dict[str, Any] = {}
    for head in ("arousal", "valence"):
        m = report[head]
        out[head] = {k: m[k] for k in keys}
        out[head]["majority_accuracy"] = m["majority"]["accuracy"]
        if "oracle" in m:
            out[head]["oracle_accuracy"] = m["oracle"]["accuracy"]
    return out


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} batches"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def train_default_model(
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    seed: int = 0,
    epochs: int = 30,
    **kwargs: Any,
) -> TrainResult:
    """Train the bundled default model (default config) and check it stays under 5 MB.

    ``out_dir`` defaults to :func:`~models.checkpoint.default_checkpoint_dir`; other keyword
    arguments go to :func:`train`.
    """
    out = Path(out_dir) if out_dir is not None else default_checkpoint_dir()
    result = train(dataset_dir, out, ModelConfig(), epochs=epochs, seed=seed, **kwargs)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    if size > DEFAULT_MODEL_MAX_BYTES:
        raise RuntimeError(f"default model is {size / 1e6:.1f} MB, over the 5 MB budget")
    return result


def calibrate_checkpoint(
    checkpoint: str | Path,
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    catalogue: Any = None,
) -> dict[str, float]:
    """Fit the per-head softmax temperature of an existing checkpoint on its validation
    participants (recorded in ``config.json``) and write the checkpoint again.

    For checkpoints trained before temperatures were fitted; weights are otherwise unchanged.

    Parameters
    ----------
    checkpoint
        Checkpoint directory.
    dataset_dir
        The dataset it was trained on (must hold the validation participants).
    out_dir
        Where to write the calibrated checkpoint (default: in place).

    Returns
    -------
    dict
        ``{"arousal": T_a, "valence": T_v}``.
    """
    from models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    cfg = model.config
    ds = TrialDataset(dataset_dir, meta["stats"], catalogue, image_size=cfg.image_size)
    val_parts = meta.get("training", {}).get("split", {}).get("val_participants", [])
    labelled = ds.labelled()
    held = meta.get("training", {}).get("split", {}).get("held_out_stimuli", [])
    va = labelled[
        np.isin(ds.participants[labelled], val_parts) & ~np.isin(ds.stimulus_ids[labelled], held)
    ]
    if not len(va):
        raise ValueError(f"{dataset_dir} holds none of the checkpoint's validation participants")
    model.temperature.fill_(1.0)
    images = torch.from_numpy(ds.stimulus_images()) if cfg.use_stimulus else None
    pa, pv = _predict(model, ds, va, images, torch.device("cpu"), 512)
    temps = [fit_temperature(pa, ds.arousal_class[va]), fit_temperature(pv, ds.valence_class[va])]
    model.temperature.copy_(torch.tensor(temps, dtype=torch.float32))
    training = dict(meta.get("training", {}))
    training["temperature"] = {"arousal": temps[0], "valence": temps[1]}
    save_checkpoint(
        out_dir if out_dir is not None else checkpoint,
        model,
        meta["stats"],
        spec=meta.get("spec"),
        training=training,
        history=meta.get("history"),
    )
    return training["temperature"]


def config_with(base: ModelConfig | None = None, **changes: Any) -> ModelConfig:
    """A copy of ``base`` (default config) with fields changed."""
    return dataclasses.replace(base or ModelConfig(), **changes)


def default_threads() -> int:
    """A sensible training thread count: all cores but leave one when there are more than 2."""
    n = os.cpu_count() or 1
    return n if n <= 2 else n - 1


def refit_baselines(checkpoint_dir: str | Path, dataset_dir: str | Path) -> dict[str, Any]:
    """Refit a checkpoint's baselines on its own training trials with today's feature code, and
    write them into its ``config.json``; returns the new baselines.

    For checkpoints whose physiology regression was fitted on an older feature version
    (:data:`models.baselines.FEATURES_VERSION`): the network is untouched. The training trials
    are those of the recorded training participants on the pictures not held out, in the
    dataset the checkpoint was trained on (its fingerprint must match).

    Raises
    ------
    ValueError
        Another dataset, or not the recorded number of training trials.
    """
    import json

    cfg_path = Path(checkpoint_dir) / "config.json"
    meta = json.loads(cfg_path.read_text())
    training = meta["training"]
    ds = TrialDataset(dataset_dir)
    if ds.fingerprint != training.get("dataset_fingerprint"):
        raise ValueError(
            f"{dataset_dir} (fingerprint {ds.fingerprint}) is not the dataset the checkpoint was "
            f"trained on ({training.get('dataset_fingerprint')})"
        )
    split = training["split"]
    labelled = ds.labelled()
    keep = np.isin(ds.participants[labelled], split["train_participants"]) & ~np.isin(
        ds.stimulus_ids[labelled], split.get("held_out_stimuli", [])
    )
    tr = labelled[keep]
    if len(tr) != int(training["n_trials"]["train"]):
        raise ValueError(
            f"found {len(tr)} training trials, the checkpoint recorded "
            f"{training['n_trials']['train']}"
        )
    n_classes = int(meta["model"].get("n_classes", 7))
    ya, yv = ds.arousal_class, ds.valence_class
    baselines = fit_baselines(
        ds.stimulus_ids[tr],
        (ya[tr], yv[tr]),
        dataset_features(ds, tr),
        n_classes,
        ceiling_features(ds, tr),
    )
    training["baselines"] = baselines
    cfg_path.write_text(json.dumps(meta, indent=2))
    return baselines
