"""A frozen VGG16 backbone for the stimulus branch, with a per-picture feature cache.

The convolutional layers of VGG16 (torchvision's ``features`` layout, so a torchvision/ImageNet
state dict loads unchanged) never train: each picture's features are computed once, under
``torch.no_grad``, and kept in memory and on disk, so training the stimulus branch costs a small
head only, and a checkpoint holds that head plus the SHA-256 of the weights file it needs.

Weights come only from a local file the user gives; nothing is downloaded and torchvision is not
imported.

Disk cache: ``<cache>/vgg16-features/<weights sha256[:16]>/<size>px/<image sha256>.npy``, where
``<cache>`` is ``platformdirs.user_cache_dir("emoeye")`` (``$XDG_CACHE_HOME/emoeye`` on Linux) by
default.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.weights import CheckpointError, read_state_dict

log = logging.getLogger(__name__)

# torchvision's VGG16 "D" configuration; "M" is a 2x2 max-pool.
VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRID = 2
"""The last feature map is average-pooled to GRID x GRID: coarse "where" survives, as in the
small CNN."""
FEATURE_DIM = 512 * GRID * GRID
MIN_IMAGE_SIZE = 32
"""Five 2x2 max-pools: smaller images leave no pixel for the last block."""
ENV_WEIGHTS = "EMOEYE_BACKBONE_WEIGHTS"
"""Environment variable naming the backbone weights file, for commands without a flag."""


class BackboneError(CheckpointError):
    """A backbone weights file that is missing, unreadable or not the one a checkpoint needs."""


class VGG16(nn.Module):
    """VGG16's convolutional part in plain torch, with torchvision's module layout: its state dict
    keys are ``features.0.weight`` … ``features.28.bias``, as in ``torchvision.models.vgg16``."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), ImageNet-normalised → (B, 512, H/32, W/32)."""
        return self.features(x)


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file; remembered per (path, size, mtime) for the process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    sha = _SHA_MEMO.get(key)
    if sha is None:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sha = _SHA_MEMO[key] = h.hexdigest()
    return sha


def default_cache_dir() -> Path:
    """Root of the feature cache: ``platformdirs.user_cache_dir("emoeye") / "vgg16-features"``."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("emoeye")) / "vgg16-features"


def image_key(image: np.ndarray) -> str:
    """Cache key of one (3, H, W) float32 image: SHA-256 of its shape and bytes."""
    arr = np.ascontiguousarray(image, dtype=np.float32)
    h = hashlib.sha256(f"{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def read_vgg16_features(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision-layout VGG16 state dict file.

    ``.safetensors``, or ``.pt``/``.pth`` read with ``torch.load(weights_only=True)``. Keys may
    carry a ``module.`` or ``vgg.`` prefix; ``classifier.*`` and anything else is ignored.
    """
    target = {k: tuple(v.shape) for k, v in VGG16().to("meta").state_dict().items()}
    try:
        state = read_state_dict(Path(path))
    except CheckpointError as exc:
        raise BackboneError(f"VGG16 weights: {exc}") from None
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key
        for prefix in ("module.", "vgg."):
            k = k.removeprefix(prefix)
        if k not in target:
            continue
        if tuple(value.shape) != target[k]:
            raise BackboneError(
                f"VGG16 weight {key} in {path} has shape {tuple(value.shape)}, expected {target[k]}"
            )
        out[k] = value.float()
    missing = sorted(set(target) - set(out))
    if missing:
        raise BackboneError(
            f"{path} is not a VGG16 state dict: it lacks {len(missing)} of the {len(target)} "
            f"features.* tensors, e.g. {missing[:3]}"
        )
    return out


class FrozenVGG16:
    """Frozen VGG16 convolutions with a per-picture feature cache (memory, then disk).

    Not an ``nn.Module`` on purpose: it is never part of a network's parameters or state dict,
    so no optimiser sees it and a checkpoint does not store it.

    Parameters
    ----------
    weights
        Local torchvision-layout VGG16 state dict (``.safetensors`` or ``.pt``/``.pth``).
    image_size
        Side of the images it will see (part of the cache key).
    device
        Where the convolutions run.
    expect_sha256
        When given, the file must have this SHA-256 (a checkpoint's recorded backbone).
    cache_dir
        Root of the disk cache (default :func:`default_cache_dir`); ``disk_cache=False`` keeps
        features in memory only.

    Attributes
    ----------
    computed, memory_hits, disk_hits
        Images that went through the convolutions, and cache hits (for tests and logs).
    """

    out_dim = FEATURE_DIM

    def __init__(
        self,
        weights: str | Path,
        image_size: int,
        device: str | torch.device = "cpu",
        expect_sha256: str | None = None,
        cache_dir: str | Path | None = None,
        disk_cache: bool = True,
    ) -> None:
        self.path = Path(weights)
        if not self.path.is_file():
            raise BackboneError(f"VGG16 weights file {self.path} does not exist")
        self.sha256 = file_sha256(self.path)
        if expect_sha256 and self.sha256 != expect_sha256:
            raise BackboneError(
                f"VGG16 weights {self.path} are not the ones this checkpoint was trained with: "
                f"expected sha256 {expect_sha256}, found {self.sha256}"
            )
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"VGG16 needs images of at least {MIN_IMAGE_SIZE} px, not {image_size}"
            )
        self.image_size = int(image_size)
        self.device = torch.device(device)
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_dir: Path | None = (
            root / self.sha256[:16] / f"{self.image_size}px" if disk_cache else None
        )
        self._net: nn.Module | None = None
        self._memory: dict[str, torch.Tensor] = {}
        self.computed = 0
        self.memory_hits = 0
        self.disk_hits = 0

    def describe(self) -> dict[str, object]:
        """What a checkpoint records about its backbone."""
        return {
            "arch": "vgg16",
            "sha256": self.sha256,
            "file": str(self.path.resolve()),
            "image_size": self.image_size,
            "feature_dim": FEATURE_DIM,
        }

    def _network(self) -> nn.Module:
        # Loaded on the first cache miss only: with a warm cache, inference never reads the file
        # beyond hashing it.
        if self._net is None:
            net = VGG16()
            net.load_state_dict(read_vgg16_features(self.path))
            net.requires_grad_(False)
            self._net = net.to(self.device).eval()
            self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
            self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        return self._net

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The convolutions' weights as loaded (for checks that they never change)."""
        return {k: v.detach().clone() for k, v in self._network().state_dict().items()}

    @torch.no_grad()
    def _compute(self, images: torch.Tensor) -> torch.Tensor:
        net = self._network()
        x = (images.to(self.device, torch.float32) - self._mean) / self._std
        fmap = net(x)
        self.computed += len(images)
        return nn.functional.adaptive_avg_pool2d(fmap, GRID).flatten(1)

    def _disk_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.npy"

    def _disk_get(self, key: str) -> torch.Tensor | None:
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:  # a damaged entry is recomputed, not trusted
            log.warning("ignoring unreadable feature cache entry %s (%s)", path, exc)
            return None
        if arr.shape != (FEATURE_DIM,) or arr.dtype != np.float32:
            return None
        return torch.from_numpy(arr)

    def _disk_put(self, key: str, feats: torch.Tensor) -> None:
        path = self._disk_path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, feats.cpu().numpy().astype(np.float32))
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:  # an unwritable cache costs time, never correctness
            log.warning("feature cache %s not writable (%s); keeping features in memory", path, exc)
            self.cache_dir = None

    def features(self, images: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
        """Frozen features (B, FEATURE_DIM) of (B, 3, H, W) images in 0..1 (no gradient).

        Each distinct picture goes through the convolutions once per weights file and size;
        later calls are served from memory or the disk cache.
        """
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"the VGG16 backbone was set up for {self.image_size}px images, got "
                f"{tuple(images.shape[-2:])}"
            )
        cpu = images.detach().to("cpu", torch.float32).numpy()
        keys = [image_key(img) for img in cpu]
        out: list[torch.Tensor | None] = []
        misses: list[int] = []
        for i, key in enumerate(keys):
            hit = self._memory.get(key)
            if hit is not None:
                self.memory_hits += 1
            else:
                hit = self._disk_get(key)
                if hit is not None:
                    self.disk_hits += 1
                    self._memory[key] = hit
                else:
                    misses.append(i)
            out.append(hit)
        # Distinct missing pictures only, in chunks (a 224 px batch is memory-hungry).
        todo = list(dict.fromkeys(keys[i] for i in misses))
        first = {keys[i]: i for i in reversed(misses)}
        for s in range(0, len(todo), batch_size):
            chunk = todo[s : s + batch_size]
            feats = self._compute(images[[first[k] for k in chunk]]).cpu()
            for k, f in zip(chunk, feats, strict=True):
                f = f.clone()
                self._memory[k] = f
                self._disk_put(k, f)
        result = torch.stack(
            [o if o is not None else self._memory[keys[i]] for i, o in enumerate(out)]
        )
        return result.to(images.device)
