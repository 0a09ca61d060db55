"""The EmoEye network: time-series, scanpath and stimulus branches fused into two 7-way heads.

The stimulus branch needs only the image, so the inference worker runs :meth:`EmoEyeNet.embed_stimulus`
at stimulus onset and passes the cached embedding to :meth:`EmoEyeNet.forward` when the trial closes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.backbone import FEATURE_DIM, MIN_IMAGE_SIZE, VGG16, FrozenVGG16

__all__ = ["BRANCHES", "VGG16", "EmoEyeNet", "ModelConfig", "count_parameters"]

BRANCHES = ("timeseries", "scanpath", "stimulus")
"""Branch names, as used by ``use_*`` switches and ablations."""

ROLE_BRANCHES = ("eeg", "face")
"""Branches of the optional roles (docs/modalities.md): built when the training data has the
role, recorded in the checkpoint's config (``use_eeg``, ``use_face``); at run time a missing
role's input is masked (zeros) and the prediction flagged, an extra one ignored and noted."""


@dataclass
class ModelConfig:
    """Shape and size of :class:`EmoEyeNet`.

    Attributes
    ----------
    channels, n_time
        Time-series input: channels (x, y, pupil, gsr, hr) by grid samples (baseline + window).
    n_baseline
        Of these, samples before onset.
    ts_summary
        Add per-channel window statistics (mean after 0.5 s, peak after 1 s minus the onset
        value, minimum, standard deviation) to the time-series branch's output: the responses
        the hand-made physiology features measure, in a form the LSTM need not learn. Off by
        default: in one comparison on the simulator it did not help (docs/models.md).
    scanpath_channels, scanpath_size
        Scanpath image input (density, time-of-visit) and its side in pixels.
    image_size
        Side of the stimulus image fed to the stimulus branch.
    use_timeseries, use_scanpath, use_stimulus
        Branch switches; a switched-off branch is not built and takes no input.
    conv_channels, conv_kernel
        1-D convolution stack of the time-series branch (each layer halves the length).
    lstm_hidden
        LSTM width after the convolutions (the branch's output size).
    scanpath_cnn, stimulus_cnn
        Channels of the small 2-D CNNs (each layer halves the image).
    embed_dim
        Output size of the scanpath and stimulus branches.
    fusion_hidden
        Width of the fused layer before the two heads.
    dropout
        Dropout before the fused layer and the heads.
    n_classes
        Classes per head (ratings 1..7).
    stimulus_backbone
        ``"small"`` (a CNN from scratch) or ``"vgg16"``: frozen VGG16 convolutions
        (:class:`models.backbone.FrozenVGG16`, weights from a local file, attached with
        :meth:`EmoEyeNet.attach_backbone`) and a small trainable head.
    use_eeg, use_face
        Branches of the optional roles (see :data:`ROLE_BRANCHES`).
    eeg_features, face_units
        Their input sizes: the EEG feature vector, the canonical action units.
    role_summary
        Pass per-trial summaries of the optional roles to the fused layer beside their learned
        embeddings: the EEG features batch-normalised, and each action unit's mean change from
        the baseline (over tracked samples), batch-normalised. Without it the branches' weak
        per-trial effects had to survive a ReLU layer (EEG) or a global mean of convolutions
        (face). Off for checkpoints written before it (their state dicts lack these layers);
        ``emoeye train`` switches it on.
    use_norms
        Take the picture's normative [arousal, valence] (model axis 1..7, standardised with the
        training trials' mean and std, kept as buffers) and a 0/1 "known" flag into the fused
        layer (:class:`NormInput`); a picture without norms gives zeros and flag 0.
    """

    channels: int = 5
    n_time: int = 360
    n_baseline: int = 60
    ts_summary: bool = False
    scanpath_channels: int = 2
    scanpath_size: int = 64
    image_size: int = 64
    use_timeseries: bool = True
    use_scanpath: bool = True
    use_stimulus: bool = True
    conv_channels: tuple[int, ...] = (32, 48, 64)
    conv_kernel: int = 7
    lstm_hidden: int = 64
    scanpath_cnn: tuple[int, ...] = (16, 32, 48)
    stimulus_cnn: tuple[int, ...] = (16, 32, 48)
    embed_dim: int = 64
    fusion_hidden: int = 128
    dropout: float = 0.3
    n_classes: int = 7
    stimulus_backbone: str = "small"
    use_eeg: bool = False
    use_face: bool = False
    eeg_features: int = 12
    face_units: int = 21
    use_norms: bool = False
    role_summary: bool = False

    def __post_init__(self) -> None:
        for name in ("conv_channels", "scanpath_cnn", "stimulus_cnn"):
            setattr(self, name, tuple(int(c) for c in getattr(self, name)))
        if self.stimulus_backbone not in ("small", "vgg16"):
            raise ValueError(
                f"stimulus_backbone must be 'small' or 'vgg16', not {self.stimulus_backbone!r}"
            )
        if self.stimulus_backbone == "vgg16" and self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"the VGG16 backbone needs images of at least {MIN_IMAGE_SIZE} px, not "
                f"{self.image_size}"
            )
        if not (self.use_timeseries or self.use_scanpath or self.use_stimulus):
            raise ValueError("at least one branch (timeseries, scanpath, stimulus) must be used")

    @property
    def branches(self) -> tuple[str, ...]:
        """Names of the branches switched on."""
        return tuple(b for b in (*BRANCHES, *ROLE_BRANCHES) if getattr(self, f"use_{b}"))

    @property
    def roles(self) -> tuple[str, ...]:
        """The optional roles the network takes (``eeg``, ``face``)."""
        return tuple(r for r in ROLE_BRANCHES if getattr(self, f"use_{r}"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown} (known: {sorted(known)})")
        return cls(**data)


def _conv2d_stack(in_ch: int, chans: tuple[int, ...], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, c in enumerate(chans):
        if i == 0:
            # A strided first layer: full-resolution activations dominate CPU time otherwise.
            layers += [nn.Conv2d(in_ch, c, 5, stride=2, padding=2, bias=False)]
        else:
            layers += [nn.Conv2d(in_ch, c, 3, padding=1, bias=False)]
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if i > 0:
            layers.append(nn.MaxPool2d(2))
        in_ch = c
    # A 2x2 grid keeps coarse "where" (left/right, top/bottom) that a global pool would lose.
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(in_ch * 4, out_dim), nn.ReLU()]
    return nn.Sequential(*layers)


class TimeSeriesBranch(nn.Module):
    """1-D convolutions (local shape, downsampling) then an LSTM (order, slow trends)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = cfg.channels
        k = cfg.conv_kernel
        for c in cfg.conv_channels:
            layers += [
                nn.Conv1d(in_ch, c, k, stride=2, padding=k // 2, bias=False),
                nn.BatchNorm1d(c),
                nn.ReLU(inplace=True),
            ]
            in_ch = c
        self.conv = nn.Sequential(*layers)
        self.lstm = nn.LSTM(in_ch, cfg.lstm_hidden, batch_first=True)
        self.out_dim = cfg.lstm_hidden
        self.summary: nn.Module | None = None
        if cfg.ts_summary:
            self.n_baseline = int(cfg.n_baseline)
            rate = max(cfg.n_time - cfg.n_baseline, 1) / 5.0  # grid samples per second
            self.post = self.n_baseline + int(round(0.5 * rate))
            self.late = self.n_baseline + int(round(1.0 * rate))
            self.summary = nn.BatchNorm1d(4 * cfg.channels)
            self.out_dim += 4 * cfg.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, channels, n_time) → (B, out_dim)."""
        h = self.conv(x).transpose(1, 2)  # (B, L, C) for a batch-first LSTM
        _, (h_n, _) = self.lstm(h)
        if self.summary is None:
            return h_n[-1]
        w = x[:, :, self.n_baseline :]
        stats = torch.cat(
            [
                x[:, :, self.post :].mean(dim=2),
                x[:, :, self.late :].amax(dim=2) - w[:, :, 0],
                w.amin(dim=2),
                w.std(dim=2),
            ],
            dim=1,
        )
        return torch.cat([h_n[-1], self.summary(stats)], dim=1)


class EegBranch(nn.Module):
    """EEG feature vector (``EEG_FEATURES``; NaN = unknown) → embedding: the values (NaN as 0)
    and which are known, through one hidden layer; with ``role_summary`` the batch-normalised
    values are passed on beside it."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * cfg.eeg_features, cfg.embed_dim), nn.ReLU())
        self.out_dim = cfg.embed_dim
        self.summary: nn.Module | None = None
        if cfg.role_summary:
            # Band powers (dB), ln ratios and a share differ in scale; a fixed /3 does not
            # standardise them, batch statistics do.
            self.summary = nn.BatchNorm1d(cfg.eeg_features)
            self.out_dim += cfg.eeg_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, eeg_features) → (B, out_dim)."""
        known = torch.isfinite(x)
        v = torch.where(known, x, torch.zeros_like(x))
        if self.summary is None:
            return self.net(torch.cat([v / 3.0, known.to(x.dtype)], dim=1))  # dB, ln: ~unit
        z = self.summary(v)
        return torch.cat([self.net(torch.cat([z, known.to(x.dtype)], dim=1)), z], dim=1)


class FaceBranch(nn.Module):
    """Action units on the grid (B, units, T) with their mask → embedding: two strided 1-D
    convolutions and a global mean; with ``role_summary`` each unit's mean change from the
    baseline (tracked samples only), batch-normalised, beside it."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(2 * cfg.face_units, 32, 7, stride=2, padding=3),
            nn.ReLU(),
            nn.Conv1d(32, 48, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(48, cfg.embed_dim),
            nn.ReLU(),
        )
        self.out_dim = cfg.embed_dim
        self.n_baseline = int(cfg.n_baseline)
        self.summary: nn.Module | None = None
        if cfg.role_summary:
            self.summary = nn.BatchNorm1d(cfg.face_units)
            self.out_dim += cfg.face_units

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, units, T) intensities and mask → (B, out_dim)."""
        m = mask.to(x.dtype)
        h = self.net(torch.cat([x * m, m], dim=1))
        if self.summary is None:
            return h
        return torch.cat([h, self.summary(au_change(x, mask, self.n_baseline))], dim=1)


def au_change(x: torch.Tensor, mask: torch.Tensor, n_baseline: int) -> torch.Tensor:
    """Each action unit's mean over the window minus its mean over the baseline, over tracked
    samples only; 0 where either part has none (an absent unit, a lost face).

    Parameters
    ----------
    x, mask
        (B, units, T) intensities on the grid (baseline first) and where they were tracked.
    n_baseline
        Grid samples before onset.

    Returns
    -------
    torch.Tensor
        (B, units).
    """
    m = mask.to(x.dtype)
    xm = x * m

    def mean(sl: slice) -> tuple[torch.Tensor, torch.Tensor]:
        n = m[:, :, sl].sum(dim=2)
        return xm[:, :, sl].sum(dim=2) / n.clamp_min(1.0), n > 0

    base, has_b = mean(slice(0, n_baseline))
    win, has_w = mean(slice(n_baseline, None))
    return torch.where(has_b & has_w, win - base, torch.zeros_like(win))


class NormInput(nn.Module):
    """The picture's norms (B, 2) [arousal, valence] on the model's 1..7 axis, NaN = unknown,
    → (B, 3): both standardised and a "known" flag (a pair with any NaN is unknown: zeros, 0).

    The standardisation (``mean``, ``std``: buffers, saved with the weights) is set from the
    training trials by :meth:`fit`."""

    out_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((2,), 4.0))
        self.register_buffer("std", torch.ones(2))

    def fit(self, norms: torch.Tensor) -> None:
        """Set mean and std from the training trials' norms (N, 2) (unknown rows skipped)."""
        known = torch.isfinite(norms).all(dim=1)
        if int(known.sum()) >= 2:
            v = norms[known].double()
            self.mean.copy_(v.mean(dim=0).float())
            self.std.copy_(v.std(dim=0).clamp_min(1e-3).float())

    def forward(self, norms: torch.Tensor) -> torch.Tensor:
        known = torch.isfinite(norms).all(dim=1, keepdim=True)
        z = (torch.where(known, norms, self.mean) - self.mean) / self.std
        return torch.cat([z * known, known.to(z.dtype)], dim=1)


class ScanpathBranch(nn.Module):
    """A small 2-D CNN over the rendered scanpath."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = _conv2d_stack(cfg.scanpath_channels, cfg.scanpath_cnn, cfg.embed_dim)
        self.out_dim = cfg.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, S, S) → (B, embed_dim)."""
        return self.net(x)


class SmallStimulusBranch(nn.Module):
    """A small CNN trained from scratch on the stimulus image (RGB 0..1)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = _conv2d_stack(3, cfg.stimulus_cnn, cfg.embed_dim)
        self.out_dim = cfg.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in 0..1 → (B, embed_dim)."""
        return self.net(x - 0.5)


class VGGStimulusBranch(nn.Module):
    """The trainable head over frozen VGG16 features: layer norm, dropout, a projection.

    The convolutions themselves (:class:`models.backbone.FrozenVGG16`) are attached, not owned:
    they are no parameters of this module and no part of its state dict.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        # VGG activations are unbounded and their scale depends on the weights file and the
        # image size; a per-picture layer norm makes the head indifferent to both.
        self.head = nn.Sequential(
            nn.LayerNorm(FEATURE_DIM),
            nn.Dropout(cfg.dropout),
            nn.Linear(FEATURE_DIM, cfg.embed_dim),
            nn.ReLU(),
        )
        self.backbone: FrozenVGG16 | None = None
        self.out_dim = cfg.embed_dim

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in 0..1 → (B, FEATURE_DIM) frozen features (cached, no grad)."""
        if self.backbone is None:
            raise RuntimeError(
                "this model's VGG16 backbone is not attached: load the checkpoint with its "
                "backbone weights file (or call EmoEyeNet.attach_backbone)"
            )
        return self.backbone.features(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in 0..1 or their frozen features (B, FEATURE_DIM) → (B, embed_dim)."""
        if x.dim() == 4:
            x = self.prepare(x)
        return self.head(x)


class EmoEyeNet(nn.Module):
    """Three branches, fused by concatenation, two heads of ``n_classes`` logits.

    Parameters
    ----------
    config
        Shapes, sizes and branch switches; defaults to :class:`ModelConfig()`.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        width = 0
        self.timeseries: TimeSeriesBranch | None = None
        self.scanpath: ScanpathBranch | None = None
        self.stimulus: nn.Module | None = None
        if cfg.use_timeseries:
            self.timeseries = TimeSeriesBranch(cfg)
            width += self.timeseries.out_dim
        if cfg.use_scanpath:
            self.scanpath = ScanpathBranch(cfg)
            width += self.scanpath.out_dim
        if cfg.use_stimulus:
            self.stimulus = (
                VGGStimulusBranch(cfg)
                if cfg.stimulus_backbone == "vgg16"
                else SmallStimulusBranch(cfg)
            )
            width += cfg.embed_dim
        self.eeg = EegBranch(cfg) if cfg.use_eeg else None
        self.face = FaceBranch(cfg) if cfg.use_face else None
        width += sum(b.out_dim for b in (self.eeg, self.face) if b is not None)
        self.norms = NormInput() if cfg.use_norms else None
        width += NormInput.out_dim if self.norms is not None else 0
        self.fusion = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(width, cfg.fusion_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
        )
        self.arousal_head = nn.Linear(cfg.fusion_hidden, cfg.n_classes)
        self.valence_head = nn.Linear(cfg.fusion_hidden, cfg.n_classes)
        # Per-head softmax temperature (arousal, valence): 1 while training, then fitted on the
        # validation set (focal loss leaves probabilities too flat). Saved with the weights.
        self.register_buffer("temperature", torch.ones(2))

    def attach_backbone(self, backbone: FrozenVGG16) -> None:
        """Give a ``stimulus_backbone="vgg16"`` network its frozen convolutions."""
        if not isinstance(self.stimulus, VGGStimulusBranch):
            raise ValueError("the model's stimulus branch is not VGG16 (stimulus_backbone='vgg16')")
        if backbone.image_size != self.config.image_size:
            raise ValueError(
                f"the backbone was set up for {backbone.image_size}px images, the model for "
                f"{self.config.image_size}px"
            )
        self.stimulus.backbone = backbone

    @property
    def backbone(self) -> FrozenVGG16 | None:
        """The attached frozen backbone, if the stimulus branch has one."""
        return getattr(self.stimulus, "backbone", None)

    def prepare_stimulus(self, images: torch.Tensor) -> torch.Tensor:
        """What the trainable part of the stimulus branch takes: the images themselves (small
        CNN) or their frozen VGG16 features, computed once per picture and cached.

        Training calls it once for all pictures, so no epoch runs (or backpropagates through)
        the frozen convolutions; :meth:`embed_stimulus` accepts either form.
        """
        if isinstance(self.stimulus, VGGStimulusBranch):
            return self.stimulus.prepare(images if images.dim() == 4 else images.unsqueeze(0))
        return images

    def embed_stimulus(self, image: torch.Tensor) -> torch.Tensor:
        """Stimulus embedding, computed once per stimulus (at onset) and reused.

        Parameters
        ----------
        image
            (3, H, W) or (B, 3, H, W) RGB in 0..1, or what :meth:`prepare_stimulus` returned.

        Returns
        -------
        torch.Tensor
            (B, embed_dim); B = 1 for a single image.
        """
        if self.stimulus is None:
            raise RuntimeError("this model has no stimulus branch (use_stimulus=False)")
        if image.dim() == 3:
            image = image.unsqueeze(0)
        return self.stimulus(image)

    def forward(
        self,
        timeseries: torch.Tensor | None = None,
        scanpath: torch.Tensor | None = None,
        stimulus: torch.Tensor | None = None,
        stimulus_embedding: torch.Tensor | None = None,
        ablate: Collection[str] = (),
        eeg: torch.Tensor | None = None,
        face: torch.Tensor | None = None,
        face_mask: torch.Tensor | None = None,
        norms: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Arousal and valence logits.

        Parameters
        ----------
        timeseries
            (B, channels, n_time), normalised by :func:`models.preprocess.normalise_signals`.
        scanpath
            (B, 2, S, S).
        stimulus
            (B, 3, H, W) images; ignored when ``stimulus_embedding`` is given.
        stimulus_embedding
            (B, embed_dim) from :meth:`embed_stimulus`, or (1, embed_dim) broadcast to the batch.
        ablate
            Branch names whose features are replaced by zeros (ablation at evaluation time).
        eeg
            (B, eeg_features) EEG feature vectors (``EegFeatures.vector``), for a model with an
            EEG branch; None masks the branch (its features are zeros).
        face, face_mask
            (B, face_units, T) action units (``FaceTrack.canonical``, as in datasets) and their
            mask, for a model with a face branch; None masks the branch.
        norms
            (B, 2) or (1, 2) picture norms [arousal, valence] on the 1..7 axis, NaN = unknown
            (:func:`models.preprocess.norm_values`), for a model with ``use_norms``; None is
            "unknown" for every trial (zeros, flag 0). Ignored by a model without norms.

        Returns
        -------
        tuple of torch.Tensor
            (arousal_logits, valence_logits), each (B, n_classes).
        """
        unknown = set(ablate) - set(BRANCHES) - set(ROLE_BRANCHES) - {"norms"}
        if unknown:
            raise ValueError(f"unknown branches to ablate {sorted(unknown)}; known: {BRANCHES}")
        feats: list[torch.Tensor] = []
        batch = None
        if self.timeseries is not None:
            if timeseries is None:
                raise ValueError("the time-series branch needs `timeseries` (B, C, T)")
            batch = timeseries.shape[0]
            feats.append(self._maybe_zero(self.timeseries(timeseries), "timeseries", ablate))
        if self.scanpath is not None:
            if scanpath is None:
                raise ValueError("the scanpath branch needs `scanpath` (B, 2, S, S)")
            batch = scanpath.shape[0]
            feats.append(self._maybe_zero(self.scanpath(scanpath), "scanpath", ablate))
        if self.stimulus is not None:
            if stimulus_embedding is None:
                if stimulus is None:
                    raise ValueError(
                        "the stimulus branch needs `stimulus` images or a `stimulus_embedding`"
                    )
                stimulus_embedding = self.embed_stimulus(stimulus)
            if batch is not None and stimulus_embedding.shape[0] != batch:
                stimulus_embedding = stimulus_embedding.expand(batch, -1)
            feats.append(self._maybe_zero(stimulus_embedding, "stimulus", ablate))
        for name, branch in (("eeg", self.eeg), ("face", self.face)):
            if branch is None:
                continue  # an input for a role the model was not trained with is ignored
            b = batch if batch is not None else 1
            if name == "eeg" and eeg is not None:
                f = branch(eeg)
            elif name == "face" and face is not None:
                f = branch(face, face_mask if face_mask is not None else torch.ones_like(face))
            else:  # the role is missing: masked, as an ablation is
                ref = feats[0] if feats else None
                f = torch.zeros(b, branch.out_dim, device=None if ref is None else ref.device)
            if batch is not None and f.shape[0] != batch:
                f = f.expand(batch, -1)
            feats.append(self._maybe_zero(f, name, ablate))
        if self.norms is not None:
            ref = feats[0] if feats else None
            b = batch if batch is not None else 1
            if norms is None:  # no norm known for any trial: zeros and flag 0, never an error
                norms = torch.full((b, 2), float("nan"), device=None if ref is None else ref.device)
            f = self.norms(norms.to(torch.float32))
            if batch is not None and f.shape[0] != batch:
                f = f.expand(batch, -1)
            feats.append(self._maybe_zero(f, "norms", ablate))
        z = self.fusion(torch.cat(feats, dim=1))
        return self.arousal_head(z) / self.temperature[0], self.valence_head(z) / self.temperature[
            1
        ]

    @staticmethod
    def _maybe_zero(f: torch.Tensor, name: str, ablate: Collection[str]) -> torch.Tensor:
        return torch.zeros_like(f) if name in ablate else f


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that train)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def role_inputs(batch: dict, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The ``eeg``, ``face``, ``face_mask`` and ``norms`` tensors of a dataset batch, on
    ``device`` (empty for a dataset without those roles; a model ignores what it does not use)."""
    return {k: batch[k].to(device) for k in ("eeg", "face", "face_mask", "norms") if k in batch}
