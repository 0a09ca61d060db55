"""Checkpoints: weights in safetensors, everything else in JSON. Nothing is ever unpickled.

A checkpoint is a directory::

    model.safetensors     the network's state dict (or model.pt: a torch.save'd state dict)
    config.json           model config, normalisation stats, class mapping, channels, spec,
                          training info, sha256 of the weights
    training_curve.png    loss and validation macro-F1 per epoch (when trained here)

:func:`load_checkpoint` refuses, with a message that says why: missing files, truncated or
corrupt weights, weights that do not fit the network described by ``config.json``, and pickle
files (a ``.pt`` is only read through ``torch.load(weights_only=True)``, which loads tensors and
nothing else; a bare pickle is not opened at all).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from acquisition.trials.types import CHANNELS
from models.backbone import ENV_WEIGHTS, FrozenVGG16
from models.network import EmoEyeNet, ModelConfig
from models.preprocess import NormStats
from models.weights import CheckpointError, _check_safetensors, read_state_dict

__all__ = [
    "CheckpointError",
    "default_checkpoint_dir",
    "load_checkpoint",
    "read_state_dict",
    "save_checkpoint",
]

FORMAT = "emoeye-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
WEIGHTS_PT = "model.pt"
CONFIG = "config.json"
CURVE = "training_curve.png"
_OPTIONAL_BUFFERS = {"temperature": torch.ones_like}


def default_checkpoint_dir() -> Path:
    """The bundled default model, ``models/default_model/`` inside the installed package."""
    return Path(__file__).resolve().parent / "default_model"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    directory: str | Path,
    model: EmoEyeNet,
    stats: NormStats,
    spec: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    history: list[dict[str, float]] | None = None,
) -> Path:
    """Write a checkpoint directory.

    Parameters
    ----------
    directory
        Created if missing; existing checkpoint files in it are replaced.
    model
        The network (its ``config`` is stored).
    stats
        Normalisation statistics the inputs were standardised with.
    spec
        The trial spec (``dataclasses.asdict(TrialSpec)``) the training trials were cut with.
    training
        Free-form training facts (dataset, split, epochs, seed, metrics...).
    history
        Per-epoch dicts (``epoch``, ``train_loss``, ``val_loss``, ``val_macro_f1``) for the curve.

    Returns
    -------
    Path
        The directory.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = out / WEIGHTS
    save_file(state, str(weights), metadata={"format": FORMAT})
    (out / WEIGHTS_PT).unlink(missing_ok=True)  # one weights file per checkpoint
    n = model.config.n_classes
    config = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.config.to_dict(),
        "normalisation": stats.to_dict(),
        "channels": list(stats.channels),
        "classes": {
            "arousal": list(range(1, n + 1)),
            "valence": list(range(1, n + 1)),
            "note": "class index i (0-based) is rating i+1 on the 1..n scale",
        },
        "spec": spec,
        "training": training or {},
        "history": history or [],
        "weights": {"file": WEIGHTS, "sha256": _sha256(weights)},
    }
    if model.backbone is not None:
        # The frozen convolutions are not stored: only which file they come from.
        config["backbone"] = model.backbone.describe()
    (out / CONFIG).write_text(json.dumps(config, indent=2, default=_json_default))
    if history:
        plot_training_curve(history, out / CURVE)
    return out


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def plot_training_curve(history: list[dict[str, float]], path: str | Path) -> Path:
    """Loss and validation macro-F1 per epoch as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(8, 3.2), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if any(key in h for h in history):
            ax1.plot(epochs, [h.get(key, float("nan")) for h in history], label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("focal loss")
    ax1.legend()
    for key, label in (
        ("val_macro_f1", "mean"),
        ("val_f1_arousal", "arousal"),
        ("val_f1_valence", "valence"),
    ):
        if any(key in h for h in history):
            ax2.plot(epochs, [h.get(key, float("nan")) for h in history], label=label)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation macro-F1")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(str(path))
    return Path(path)


def _resolve(path: Path) -> tuple[Path, Path]:
    """(weights file, config.json) of a checkpoint directory or weights file."""
    if path.is_dir():
        config = path / CONFIG
        weights = path / WEIGHTS
        if not weights.exists() and (path / WEIGHTS_PT).exists():
            weights = path / WEIGHTS_PT
        if not weights.exists():
            others = sorted(p.name for p in path.iterdir())
            raise CheckpointError(
                f"{path} holds no {WEIGHTS} (or {WEIGHTS_PT}); found: {others or 'nothing'}"
            )
    else:
        if not path.exists():
            raise CheckpointError(f"checkpoint {path} does not exist")
        weights, config = path, path.parent / CONFIG
    if not config.is_file():
        raise CheckpointError(
            f"{config} is missing: a checkpoint needs its config.json (model config and "
            "normalisation) beside the weights"
        )
    return weights, config


def load_checkpoint(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    expect: ModelConfig | None = None,
    backbone: str | Path | None = None,
) -> tuple[EmoEyeNet, dict[str, Any]]:
    """Load a checkpoint into a fresh :class:`EmoEyeNet` in eval mode.

    Parameters
    ----------
    path
        Checkpoint directory, or its weights file (``config.json`` beside it); ``None`` = the
        bundled default model.
    device
        Where to put the model.
    expect
        When given, the shapes the caller will feed (e.g. built from its trial spec); any
        difference in input shapes is refused.
    backbone
        For a VGG16 checkpoint: the backbone weights file. Default: ``$EMOEYE_BACKBONE_WEIGHTS``,
        else the file recorded at training time. Its SHA-256 must be the recorded one.

    Returns
    -------
    tuple
        (model, meta): meta is ``config.json`` as a dict plus ``"stats"`` (:class:`NormStats`),
        ``"model_config"`` (:class:`ModelConfig`) and ``"path"``.

    Raises
    ------
    CheckpointError
        Missing files, pickles, truncated or corrupt weights, mismatched config or shapes.
    """
    path = Path(path) if path is not None else default_checkpoint_dir()
    weights, config_path = _resolve(path)
    try:
        meta = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{config_path} is not an {FORMAT} config")
    if int(meta.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{config_path} has checkpoint version {meta['version']}; this emoeye reads up to {VERSION}"
        )
    try:
        cfg = ModelConfig.from_dict(meta["model"])
        stats = NormStats.from_dict(meta["normalisation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_path}: bad model config or normalisation: {exc}") from exc
    if len(stats.channels) != cfg.channels:
        raise CheckpointError(
            f"{config_path}: normalisation has {len(stats.channels)} channels, model {cfg.channels}"
        )
    if expect is not None:
        for name in ("channels", "n_time", "scanpath_size", "scanpath_channels", "n_classes"):
            have, want = getattr(cfg, name), getattr(expect, name)
            if have != want:
                raise CheckpointError(
                    f"checkpoint was trained with {name}={have} but the network expects {want}"
                )
    recorded = (meta.get("weights") or {}).get("sha256")
    if recorded and weights.suffix == ".safetensors":
        _check_safetensors(weights)
        if _sha256(weights) != recorded:
            raise CheckpointError(
                f"{weights} does not match the sha256 recorded in {config_path}: corrupt or "
                "replaced weights"
            )
    frozen = None
    if cfg.use_stimulus and cfg.stimulus_backbone == "vgg16":
        frozen = _load_backbone(meta, config_path, cfg, backbone, device)
    state = read_state_dict(weights)
    model = EmoEyeNet(cfg)
    expected = model.state_dict()
    for key, default in _OPTIONAL_BUFFERS.items():
        # Checkpoints written before a buffer existed get its neutral value.
        if key in expected and key not in state:
            state[key] = default(expected[key])
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"checkpoint weights do not fit the network described by {config_path}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"checkpoint was trained with {key} of shape {tuple(tensor.shape)} but the "
                f"network expects {tuple(expected[key].shape)} (config.json and weights disagree)"
            )
    model.load_state_dict(state)
    if frozen is not None:
        model.attach_backbone(frozen)
    model.to(device).eval()
    meta["stats"] = stats
    meta["model_config"] = cfg
    meta["path"] = str(path)
    meta.setdefault("channels", list(CHANNELS))
    return model, meta


def _load_backbone(
    meta: dict[str, Any],
    config_path: Path,
    cfg: ModelConfig,
    given: str | Path | None,
    device: str | torch.device,
) -> FrozenVGG16:
    """The frozen VGG16 a checkpoint needs: the given file, ``$EMOEYE_BACKBONE_WEIGHTS`` or the
    recorded one, refused unless its SHA-256 is the recorded one."""
    rec = meta.get("backbone") or {}
    sha = rec.get("sha256")
    if not sha:
        raise CheckpointError(
            f"{config_path} describes a VGG16 model but records no backbone sha256 (written "
            "before frozen-backbone checkpoints): retrain it"
        )
    env = os.environ.get(ENV_WEIGHTS)
    path = given or env or rec.get("file")
    how = "given" if given else (f"from ${ENV_WEIGHTS}" if env else "recorded at training")
    if not path or not Path(path).is_file():
        raise CheckpointError(
            f"this checkpoint needs its VGG16 backbone weights file (sha256 {sha}); {how} "
            f"{path or '(none)'} does not exist: pass --backbone-weights FILE or set {ENV_WEIGHTS}"
        )
    return FrozenVGG16(path, cfg.image_size, device, expect_sha256=sha)
