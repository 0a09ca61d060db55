"""A Tiny-EmotioNet-style model: one 1-D convolution over action-unit time series, then a linear
layer to continuous arousal and valence (docs/modalities.md, "Tiny-EmotioNet").

The input is a trial's (or a continuous window's) action units on the common grid, each minus
its baseline and divided by its spread over the training set; units a device does not give are
zero and masked. ``n_filters`` temporal filters of ``kernel`` samples span all units; their
responses (ReLU) are averaged over the tracked samples and a linear layer maps them to arousal
and valence on −1..1 (the rating scale's ends). Being a single convolution, each filter can be
read as "which units, with which time course": :func:`plot_filters` draws them.

Checkpoint: a directory with ``model.pt`` (a state dict, read with ``weights_only=True``) and
``config.json`` (``"model": "tiny-emotionet"``, sizes, the units, normalisation, test metrics).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from acquisition.lsl.presets import FACE_AUS

MODEL_NAME = "tiny-emotionet"
WEIGHTS = "model.pt"
CONFIG = "config.json"
FILTERS_PNG = "tiny_emotionet_filters.png"


class TinyEmotioNetError(ValueError):
    """A dataset or checkpoint the model cannot use; the message is one line."""


@dataclass
class TinyConfig:
    """Sizes of :class:`TinyEmotioNet`.

    Attributes
    ----------
    units
        Action units of the input, in order (default: all of :data:`FACE_AUS`).
    n_filters
        Temporal filters of the one convolution.
    kernel
        Filter length in grid samples (15 at 60 Hz: a quarter of a second).
    grid_rate
        Rate of the input grid, Hz.
    """

    units: tuple[str, ...] = FACE_AUS
    n_filters: int = 4
    kernel: int = 15
    grid_rate: float = 60.0

    def __post_init__(self) -> None:
        self.units = tuple(self.units)
        if self.n_filters < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("n_filters must be >= 1 and kernel an odd number >= 1")


class TinyEmotioNet(nn.Module):
    """One ``Conv1d`` over the units, ReLU, a masked mean over time, one ``Linear`` to
    (arousal, valence)."""

    def __init__(self, config: TinyConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or TinyConfig()
        self.conv = nn.Conv1d(len(cfg.units), cfg.n_filters, cfg.kernel, padding=cfg.kernel // 2)
        self.head = nn.Linear(cfg.n_filters, 2)

    def forward(self, units: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2) arousal and valence on −1..1 (unbounded: a linear output).

        Parameters
        ----------
        units
            (B, units, T), baseline-relative and normalised (:func:`prepare`).
        mask
            (B, T) True where the face was tracked; None: every sample counts.
        """
        h = torch.relu(self.conv(units))
        if mask is None:
            pooled = h.mean(dim=2)
        else:
            m = mask.to(h.dtype).unsqueeze(1)
            pooled = (h * m).sum(dim=2) / m.sum(dim=2).clamp(min=1.0)
        return self.head(pooled)


def prepare(
    face: np.ndarray, face_mask: np.ndarray, n_baseline: int, sd: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Model input from canonical AU arrays.

    Parameters
    ----------
    face, face_mask
        (B, units, T) intensities and per-unit masks (``FaceTrack.canonical``, or a dataset's
        ``face`` / ``face_mask``), baseline first.
    n_baseline
        Baseline samples at the start (0: none, nothing subtracted).
    sd
        Per-unit spread to divide by (None: 1).

    Returns
    -------
    (x, mask)
        x float32 (B, units, T - n_baseline), 0 where a unit is absent; mask bool
        (B, T - n_baseline): True where any unit was tracked.
    """
    face = np.asarray(face, np.float32)
    m = np.asarray(face_mask, bool)
    if n_baseline > 0:
        bm = m[..., :n_baseline]
        with np.errstate(invalid="ignore", divide="ignore"):
            base = np.where(bm, face[..., :n_baseline], 0).sum(-1) / bm.sum(-1)
        base = np.nan_to_num(base)
        x = face[..., n_baseline:] - base[..., None]
        m = m[..., n_baseline:]
    else:
        x = face.copy()
    if sd is not None:
        x = x / np.asarray(sd, np.float32)[None, :, None]
    x = np.where(m, x, 0.0).astype(np.float32)
    return x, m.any(axis=1)


def _targets(ds) -> np.ndarray:
    """(N, 2) ratings mapped onto −1..1 by each trial's scale (NaN when unrated)."""
    a = ds.arrays(np.arange(len(ds)), ("arousal", "valence", "scale"))
    lo, hi = a["scale"][:, 0], a["scale"][:, 1]
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return np.stack([(a["arousal"] - mid) / half, (a["valence"] - mid) / half], 1)


def _metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for k, name in enumerate(("arousal", "valence")):
        p, t = pred[:, k], y[:, k]
        r = float(np.corrcoef(p, t)[0, 1]) if len(p) > 2 and p.std() > 0 and t.std() > 0 else 0.0
        out[name] = {
            "r": round(r, 4),
            "rmse": round(float(np.sqrt(np.mean((p - t) ** 2))), 4),
            "mae": round(float(np.mean(np.abs(p - t))), 4),
        }
    return out


def _load_face(data: str | Path) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, int]:
    from models.dataset import TrialDataset

    ds = TrialDataset(data)
    if "face" not in ds.roles:
        raise TinyEmotioNetError(
            f"{data} holds no action units (dataset roles: {ds.roles or 'none'}): build it from "
            "sessions with a face stream, e.g. --simulate --device-set full (docs/modalities.md)"
        )
    spec = ds.spec
    nb = spec.n_baseline if spec is not None else 0
    arrays = ds.arrays(np.arange(len(ds)), ("face", "face_mask"))
    return ds, arrays["face"], arrays["face_mask"], _targets(ds), nb


def train_tiny(
    data: str | Path,
    out: str | Path,
    config: TinyConfig | None = None,
    epochs: int = 600,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
    test_fraction: float = 0.2,
    patience: int = 60,
    log=None,
) -> dict[str, Any]:
    """Train on a dataset with the face role and write a checkpoint directory.

    Participants are split into train / validation / test (no participant in two of them);
    full-batch Adam on the mean squared error, early stopping on the validation loss.

    Returns
    -------
    dict
        ``checkpoint``, ``test`` (r, RMSE, MAE per target), ``epochs``, ``trials``.
    """
    from models.dataset import split_by_participant

    cfg = config or TinyConfig()
    ds, face, fmask, y, nb = _load_face(data)
    cfg.grid_rate = ds.spec.grid_rate if ds.spec is not None else cfg.grid_rate
    labelled = np.flatnonzero(np.isfinite(y).all(axis=1))
    if len(labelled) < 10:
        raise TinyEmotioNetError(f"{data} has {len(labelled)} rated trials; need at least 10")
    parts = ds.participants[labelled]
    rest, test = split_by_participant(parts, test_fraction, seed)
    tr, va = split_by_participant(parts[rest], 0.2, seed + 1)
    tr, va, test = labelled[rest[tr]], labelled[rest[va]], labelled[test]
    x_raw, m_raw = prepare(face, fmask, nb)
    with np.errstate(invalid="ignore"):
        tracked = np.broadcast_to(m_raw[:, None, :], x_raw.shape)[tr]
        sd = np.sqrt((np.where(tracked, x_raw[tr], 0) ** 2).sum((0, 2)) / tracked.sum((0, 2)))
    sd = np.where(np.isfinite(sd) & (sd > 1e-6), sd, 1.0).astype(np.float32)
    x, m = prepare(face, fmask, nb, sd)
    torch.manual_seed(seed)
    model = TinyEmotioNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    X, M, Y = torch.from_numpy(x), torch.from_numpy(m), torch.from_numpy(y.astype(np.float32))
    best, best_state, since, history = np.inf, None, 0, []
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        loss = ((model(X[tr], M[tr]) - Y[tr]) ** 2).mean()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            val = float(((model(X[va], M[va]) - Y[va]) ** 2).mean()) if len(va) else float(loss)
        history.append({"epoch": epoch + 1, "train_mse": float(loss.detach()), "val_mse": val})
        if val < best - 1e-5:
            best, since = val, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        pred = model(X[test], M[test]).numpy()
    test_metrics = _metrics(pred, y[test])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / WEIGHTS)
    meta = {
        "model": MODEL_NAME,
        "config": {**asdict(cfg), "units": list(cfg.units)},
        "n_baseline": int(nb),
        "unit_sd": sd.tolist(),
        "dataset": str(data),
        "split": {"train": len(tr), "val": len(va), "test": len(test)},
        "test": test_metrics,
        "history": history,
        "train_s": round(time.perf_counter() - started, 2),
    }
    (out / CONFIG).write_text(json.dumps(meta, indent=2))
    if log is not None:
        log(f"tiny-emotionet: {len(history)} epochs, test {test_metrics}")
    return {
        "checkpoint": str(out),
        "test": test_metrics,
        "epochs": len(history),
        "trials": len(labelled),
    }


def is_tiny_checkpoint(path: str | Path) -> bool:
    """True when ``path`` (a directory or its weights file) is a Tiny-EmotioNet checkpoint."""
    p = Path(path)
    config = (p if p.is_dir() else p.parent) / CONFIG
    try:
        return json.loads(config.read_text()).get("model") == MODEL_NAME
    except (OSError, ValueError, AttributeError):
        return False


class TinyPredictor:
    """A trained Tiny-EmotioNet for trials or continuous windows.

    Parameters
    ----------
    checkpoint
        Its directory (or weights file).
    """

    def __init__(self, checkpoint: str | Path) -> None:
        p = Path(checkpoint)
        folder = p if p.is_dir() else p.parent
        try:
            self.meta = json.loads((folder / CONFIG).read_text())
        except (OSError, ValueError) as exc:
            raise TinyEmotioNetError(f"{folder}: cannot read {CONFIG}: {exc}") from None
        if self.meta.get("model") != MODEL_NAME:
            raise TinyEmotioNetError(f"{folder} is not a {MODEL_NAME} checkpoint")
        self.config = TinyConfig(**self.meta["config"])
        self.model = TinyEmotioNet(self.config)
        try:
            state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched weights
            raise TinyEmotioNetError(f"{folder / WEIGHTS}: {type(exc).__name__}: {exc}") from None
        self.model.eval()
        self.sd = np.asarray(self.meta["unit_sd"], np.float32)
        self.n_baseline = int(self.meta.get("n_baseline", 0))

    def predict_arrays(
        self, face: np.ndarray, face_mask: np.ndarray, n_baseline: int | None = None
    ) -> np.ndarray:
        """(B, 2) arousal, valence on −1..1 from canonical (B, units, T) arrays."""
        nb = self.n_baseline if n_baseline is None else n_baseline
        x, m = prepare(face, face_mask, nb, self.sd)
        with torch.no_grad():
            return self.model(torch.from_numpy(x), torch.from_numpy(m)).numpy()

    def predict_trial(self, trial) -> tuple[float, float] | None:
        """(arousal, valence) on −1..1 for a cut trial; None when it has no face track."""
        if trial.face is None:
            return None
        f, m = trial.face.canonical()
        a, v = self.predict_arrays(f[None], m[None], trial.spec.n_baseline)[0]
        return float(a), float(v)

    def predict_window(self, series, t0: float, t1: float, baseline: float = 1.0):
        """(arousal, valence) on −1..1 for a continuous window ``[t0, t1)`` of a face role's
        series (a :class:`~acquisition.lsl.reading.RoleSeries` with AU fields and ``valid``),
        relative to the ``baseline`` seconds before it (continuous mode)."""
        from acquisition.trials.modalities import face_track

        step = 1.0 / self.config.grid_rate
        nb = int(round(baseline * self.config.grid_rate))
        grid = t0 + np.arange(-nb, int(round((t1 - t0) * self.config.grid_rate))) * step
        track = face_track(series, grid, nb, max(3 * step, 0.1))
        f, m = track.canonical()
        a, v = self.predict_arrays(f[None], m[None], nb)[0]
        return float(a), float(v)


def continuous_to_classes(value: float, n_classes: int = 7) -> np.ndarray:
    """A −1..1 prediction as class probabilities on 1..n: the two classes around its position
    on the scale, weighted so that the expected rating is exactly that position (4.3 on 1..7 is
    P(4) = 0.7, P(5) = 0.3). It carries the value, not a confidence: the model gives none."""
    pos = float(np.clip((value + 1.0) / 2.0 * (n_classes - 1), 0.0, n_classes - 1))
    lo = int(np.floor(pos))
    probs = np.zeros(n_classes)
    probs[lo] = 1.0 - (pos - lo)
    if lo + 1 < n_classes:
        probs[lo + 1] += pos - lo
    return probs


class TinyClassPredictor:
    """A Tiny-EmotioNet behind the inference worker's predictor interface (continuous mode's
    ``--continuous-checkpoint``): no picture, eager, class probabilities carrying the value
    (:func:`continuous_to_classes`). A window without a face track is an error record saying so.
    """

    uses_stimulus = False
    device = "cpu"

    def __init__(self, checkpoint: str | Path, n_classes: int = 7) -> None:
        self.tiny = TinyPredictor(checkpoint)
        self.config = SimpleNamespace(n_classes=n_classes)
        self.meta = {"path": str(checkpoint), "model": MODEL_NAME}

    def warm_up(self, n: int = 1) -> float:
        """Time (ms) of one forward on an empty window."""
        cfg = self.tiny.config
        t = np.zeros((1, len(cfg.units), int(2 * cfg.grid_rate)), np.float32)
        t0 = time.perf_counter()
        for _ in range(max(1, n)):
            self.tiny.predict_arrays(t, np.ones_like(t, dtype=bool), 0)
        return (time.perf_counter() - t0) * 1e3 / max(1, n)

    def embed_stimulus(self, image: Any) -> None:
        return None

    def predict(self, trials: list, embeddings: Any = None) -> tuple[list, list]:
        """Arousal and valence class probabilities of each trial or window."""
        n = self.config.n_classes
        pa, pv = [], []
        for trial in trials:
            out = self.tiny.predict_trial(trial)
            if out is None:
                raise TinyEmotioNetError(
                    "no face track in this window: the Tiny-EmotioNet model needs the face role"
                )
            pa.append(continuous_to_classes(out[0], n))
            pv.append(continuous_to_classes(out[1], n))
        return pa, pv


def evaluate_tiny(checkpoint: str | Path, data: str | Path, out: str | Path | None = None) -> dict:
    """Metrics of a Tiny-EmotioNet checkpoint on every rated trial of a dataset, and its
    filters plotted to ``out/tiny_emotionet_filters.png`` when ``out`` is given."""
    predictor = TinyPredictor(checkpoint)
    ds, face, fmask, y, nb = _load_face(data)
    labelled = np.flatnonzero(np.isfinite(y).all(axis=1))
    pred = predictor.predict_arrays(face[labelled], fmask[labelled], nb)
    report = {
        "model": MODEL_NAME,
        "trials": int(len(labelled)),
        "participants": int(len(set(ds.participants[labelled]))),
        "metrics": _metrics(pred, y[labelled]),
        "checkpoint_test": predictor.meta.get("test"),
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report["filters_png"] = str(plot_filters(predictor.model, out / FILTERS_PNG))
        (out / "tiny_emotionet_evaluation.json").write_text(json.dumps(report, indent=2))
    return report


def plot_filters(model: TinyEmotioNet, path: str | Path) -> Path:
    """Each filter of the convolution as a units × time heat map, titled with its weight on
    arousal and valence (what the filter is "for")."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    w = model.conv.weight.detach().numpy()  # (filters, units, kernel)
    head = model.head.weight.detach().numpy()  # (2, filters)
    cfg = model.config
    n = w.shape[0]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    lim = float(np.abs(w).max()) or 1.0
    t = (np.arange(cfg.kernel) - cfg.kernel // 2) / cfg.grid_rate
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        if k >= n:
            ax.axis("off")
            continue
        im = ax.imshow(
            w[k],
            aspect="auto",
            cmap="RdBu_r",
            vmin=-lim,
            vmax=lim,
            extent=(t[0], t[-1], len(cfg.units) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(cfg.units)), cfg.units, fontsize=6)
        ax.set_xlabel("s", fontsize=7)
        ax.set_title(f"filter {k + 1}: A {head[0, k]:+.2f} V {head[1, k]:+.2f}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.colorbar(im, ax=axes, shrink=0.6)
    fig.suptitle("Tiny-EmotioNet filters (units × time); weights on arousal (A), valence (V)")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
