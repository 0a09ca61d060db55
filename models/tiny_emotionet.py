"""Tiny-EmotioNet: a shallow, interpretable model from facial action units to continuous affect.

One 1-D convolution over the action-unit time series (each filter spans every AU over a short
stretch of time), a rectifier, the mean over time, then one linear layer to continuous arousal
and valence. A few hundred parameters: it trains in seconds, runs live in well under a
millisecond, and each filter can be read as "these AUs, rising like this, push arousal/valence
this way" (:func:`plot_filters`). It serves continuous mode, where there is no picture.

Inputs are AU intensities on the trial grid, (N, n_aus, T), on OpenFace's 0-5 scale; targets are
(N, 2) arousal and valence on the model's 1-7 scale. Saved as safetensors plus a JSON config, so
loading never unpickles anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

CONFIG_FILE = "tiny_emotionet.json"
WEIGHTS_FILE = "tiny_emotionet.safetensors"
KIND = "tiny-emotionet"


@dataclass
class TinyConfig:
    """Shape of a Tiny-EmotioNet.

    Attributes
    ----------
    aus
        Action-unit labels, in input-channel order (``AU01_r`` ...).
    rate
        Grid rate (Hz) the model was trained at; a filter's width in seconds follows from it.
    n_filters
        Convolution filters.
    kernel_seconds
        Filter width in seconds (1 s: an expression's onset and apex).
    """

    aus: list[str] = field(default_factory=list)
    rate: float = 30.0
    n_filters: int = 8
    kernel_seconds: float = 1.0

    @property
    def kernel(self) -> int:
        """Filter width in grid samples: odd (centred 'same' padding), at least 1."""
        return max(int(round(self.kernel_seconds * self.rate)), 1) | 1


class TinyEmotioNet(nn.Module):
    """Conv1d(n_aus -> n_filters) -> ReLU -> mean over time -> Linear(n_filters -> 2).

    The output is (N, 2): arousal and valence on the 1-7 scale (4 + the linear output, so an
    untrained model predicts the scale's middle).
    """

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        if not config.aus:
            raise ValueError("Tiny-EmotioNet needs at least one action unit")
        self.config = config
        self.conv = nn.Conv1d(len(config.aus), config.n_filters, config.kernel, padding="same")
        self.head = nn.Linear(config.n_filters, 2)
        # Per-AU standardisation, fitted on the training set and saved with the weights.
        self.register_buffer("mean", torch.zeros(len(config.aus)))
        self.register_buffer("std", torch.ones(len(config.aus)))

    def forward(self, aus: torch.Tensor) -> torch.Tensor:
        """(N, n_aus, T) AU intensities (NaN allowed: untracked frames) -> (N, 2)."""
        x = (aus - self.mean[:, None]) / self.std[:, None]
        x = torch.nan_to_num(x, nan=0.0)  # an untracked frame is the average face
        h = torch.relu(self.conv(x)).mean(dim=-1)
        return 4.0 + self.head(h)


def concordance(a: np.ndarray, b: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two series (NaN pairs left out)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 2:
        return float("nan")
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    return float(2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2 + 1e-12))


def fit(
    aus: np.ndarray,
    targets: np.ndarray,
    config: TinyConfig,
    epochs: int = 200,
    lr: float = 0.01,
    seed: int = 0,
    weight_decay: float = 1e-3,
) -> tuple[TinyEmotioNet, list[float]]:
    """Train on (N, n_aus, T) AU series and (N, 2) arousal/valence; returns (model, losses).

    Full-batch Adam on mean squared error (the data are small: a session is a few hundred
    windows), seeded, so two fits of the same data give the same model.
    """
    x = np.asarray(aus, np.float32)
    y = np.asarray(targets, np.float32)
    if x.ndim != 3 or x.shape[1] != len(config.aus):
        raise ValueError(
            f"expected AU series of shape (N, {len(config.aus)}, T), got {tuple(x.shape)}"
        )
    if y.shape != (len(x), 2):
        raise ValueError(f"expected targets of shape ({len(x)}, 2), got {tuple(y.shape)}")
    keep = np.isfinite(y).all(axis=1)
    if keep.sum() < 2:
        raise ValueError("fewer than 2 windows with both arousal and valence to train on")
    x, y = x[keep], y[keep]
    torch.manual_seed(seed)
    model = TinyEmotioNet(config)
    with np.errstate(all="ignore"):
        mean = np.nanmean(x, axis=(0, 2))
        std = np.nanstd(x, axis=(0, 2))
    model.mean.copy_(torch.from_numpy(np.nan_to_num(mean).astype(np.float32)))
    model.std.copy_(
        torch.from_numpy(np.where(np.nan_to_num(std) > 1e-6, std, 1.0).astype(np.float32))
    )
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return model, losses


@torch.no_grad()
def predict(model: TinyEmotioNet, aus: np.ndarray) -> np.ndarray:
    """(N, 2) arousal and valence (1-7, clipped) for (N, n_aus, T) AU series."""
    out = model(torch.as_tensor(np.asarray(aus, np.float32)))
    return out.clamp(1.0, 7.0).numpy()


def save(model: TinyEmotioNet, folder: str | Path, extra: dict | None = None) -> Path:
    """Write ``folder/tiny_emotionet.{json,safetensors}``; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / WEIGHTS_FILE)
    meta = {"kind": KIND, "config": asdict(model.config), **(extra or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return folder


def load(folder: str | Path) -> TinyEmotioNet:
    """A saved Tiny-EmotioNet (safetensors: nothing is unpickled).

    Raises
    ------
    ValueError
        The folder holds no Tiny-EmotioNet, or its weights do not fit its config.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(f"{folder}: no Tiny-EmotioNet here ({CONFIG_FILE} + {WEIGHTS_FILE})")
    meta = json.loads(cfg_path.read_text())
    if meta.get("kind") != KIND:
        raise ValueError(f"{cfg_path}: kind {meta.get('kind')!r}, not {KIND!r}")
    model = TinyEmotioNet(TinyConfig(**meta["config"]))
    try:
        model.load_state_dict(load_file(folder / WEIGHTS_FILE))
    except RuntimeError as exc:
        raise ValueError(f"{folder}: weights do not fit the config: {exc}") from None
    return model.eval()


def plot_filters(model: TinyEmotioNet, path: str | Path) -> Path:
    """One heat map per filter (AU x time within the filter), titled by its pull on arousal and
    valence (the head's weights), so a reader sees which AUs drive which dimension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = model.conv.weight.detach().numpy()  # (filters, aus, kernel)
    head = model.head.weight.detach().numpy()  # (2, filters)
    n = w.shape[0]
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    height = max(2.4, 0.22 * len(model.config.aus) + 1.2)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.4 * cols + 1.0, height * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    lim = float(np.abs(w).max()) or 1.0
    seconds = w.shape[2] / model.config.rate
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        im = ax.imshow(
            w[k],
            aspect="auto",
            cmap="RdBu_r",
            vmin=-lim,
            vmax=lim,
            extent=(0, seconds, len(model.config.aus) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(model.config.aus)))
        ax.set_yticklabels(model.config.aus, fontsize=6)
        ax.set_xlabel("s", fontsize=7)
        ax.set_title(f"#{k}  arousal {head[0, k]:+.2f}  valence {head[1, k]:+.2f}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
    fig.suptitle(
        "Tiny-EmotioNet filters (AU x time in the filter); above each: its weight on arousal, valence",
        fontsize=9,
    )
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
