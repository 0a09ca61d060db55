"""Trials → model inputs: the one preprocessing path for training, evaluation and inference.

* pupil, GSR and HR become change from the trial's pre-onset baseline (``trial.baseline``);
  gaze x, y stay absolute (where the eyes are matters, not how far they moved);
* every channel is then standardised with per-channel mean/std computed on the training set
  (:func:`compute_stats`) and stored in the checkpoint (:class:`NormStats`);
* nothing non-finite leaves: a NaN baseline counts as zero change, stray NaN/inf become 0;
* a picture's norms (for a model trained with ``--norms-input``) are looked up by stimulus id
  (:func:`norm_values`); unknown norms stay NaN and the network masks and flags them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from acquisition.trials.types import CHANNELS, PHYSIO_CHANNELS, Trial


@dataclass(eq=False)
class NormStats:
    """Per-channel normalisation statistics (of the baseline-relative signals).

    Attributes
    ----------
    mean, std
        float (channels,).
    channels
        Channel names, in order.
    relative
        Channels taken as change from baseline.
    """

    mean: np.ndarray
    std: np.ndarray
    channels: tuple[str, ...] = CHANNELS
    relative: tuple[str, ...] = PHYSIO_CHANNELS
    n_values: int = 0
    _mean32: np.ndarray = field(init=False, repr=False)
    _inv32: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.asarray(self.std, dtype=np.float64)
        self.channels = tuple(self.channels)
        self.relative = tuple(self.relative)
        if self.mean.shape != (len(self.channels),) or self.std.shape != self.mean.shape:
            raise ValueError(
                f"stats for {len(self.channels)} channels need mean/std of that length, got "
                f"{self.mean.shape} and {self.std.shape}"
            )
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std))):
            raise ValueError("normalisation stats must be finite")
        # A flat channel (std 0) must not blow up to inf.
        safe = np.where(self.std > 1e-6, self.std, 1.0)
        self._mean32 = self.mean.astype(np.float32)[:, None]
        self._inv32 = (1.0 / safe).astype(np.float32)[:, None]

    @classmethod
    def identity(cls, channels: Sequence[str] = CHANNELS) -> NormStats:
        """Mean 0, std 1: no scaling (for tests and untrained models)."""
        n = len(channels)
        return cls(np.zeros(n), np.ones(n), tuple(channels))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "channels": list(self.channels),
            "relative_to_baseline": list(self.relative),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "n_values": int(self.n_values),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(data["mean"]),
            np.asarray(data["std"]),
            tuple(data["channels"]),
            tuple(data.get("relative_to_baseline", PHYSIO_CHANNELS)),
            int(data.get("n_values", 0)),
        )


def _relative_mask(channels: Sequence[str], relative: Sequence[str]) -> np.ndarray:
    return np.array([c in relative for c in channels], dtype=bool)


def baseline_relative(
    signals: np.ndarray,
    baseline: np.ndarray,
    channels: Sequence[str] = CHANNELS,
    relative: Sequence[str] = PHYSIO_CHANNELS,
) -> np.ndarray:
    """Signals with the ``relative`` channels as change from baseline (float32, finite).

    Parameters
    ----------
    signals
        (C, T) or (B, C, T).
    baseline
        (C,) or (B, C); a NaN baseline means "no baseline": that channel's change is 0.

    Returns
    -------
    np.ndarray
        float32 of the shape of ``signals``.
    """
    sig = np.asarray(signals, dtype=np.float32)
    base = np.asarray(baseline, dtype=np.float32)
    single = sig.ndim == 2
    if single:
        sig, base = sig[None], base[None]
    if sig.ndim != 3 or base.shape != sig.shape[:2]:
        raise ValueError(
            f"signals (B, C, T) and baseline (B, C) expected, got {sig.shape} and {base.shape}"
        )
    if sig.shape[1] != len(channels):
        raise ValueError(f"signals have {sig.shape[1]} channels, expected {len(channels)}")
    out = sig.copy()
    rel = _relative_mask(channels, relative)
    b = base[:, rel][:, :, None]
    missing = ~np.isfinite(b)
    out[:, rel] = np.where(missing, 0.0, out[:, rel] - np.where(missing, 0.0, b))
    out[~np.isfinite(out)] = 0.0
    return out[0] if single else out


def normalise_signals(signals: np.ndarray, baseline: np.ndarray, stats: NormStats) -> np.ndarray:
    """Baseline-relative, standardised signals, float32 (B, C, T) (or (C, T)); never NaN.

    This is the one function training, evaluation and the inference worker use.
    """
    rel = baseline_relative(signals, baseline, stats.channels, stats.relative)
    out = (rel - stats._mean32) * stats._inv32
    # Inputs are finite already; this guards against absurd values overflowing float32.
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def clean_scanpath(scanpath: np.ndarray) -> np.ndarray:
    """Scanpath image(s) as finite float32."""
    sp = np.asarray(scanpath, dtype=np.float32)
    if not np.all(np.isfinite(sp)):
        sp = np.nan_to_num(sp, nan=0.0, posinf=0.0, neginf=0.0)
    return sp


class StatsAccumulator:
    """Streaming per-channel mean/std of baseline-relative signals (chunk by chunk, float64)."""

    def __init__(
        self, channels: Sequence[str] = CHANNELS, relative: Sequence[str] = PHYSIO_CHANNELS
    ) -> None:
        self.channels = tuple(channels)
        self.relative = tuple(relative)
        n = len(self.channels)
        self._n = 0
        self._sum = np.zeros(n)
        self._sq = np.zeros(n)

    def update(self, signals: np.ndarray, baseline: np.ndarray) -> None:
        """Add (B, C, T) signals and their (B, C) baselines."""
        rel = baseline_relative(signals, baseline, self.channels, self.relative).astype(np.float64)
        if rel.ndim == 2:
            rel = rel[None]
        self._n += rel.shape[0] * rel.shape[2]
        self._sum += rel.sum(axis=(0, 2))
        self._sq += (rel**2).sum(axis=(0, 2))

    def result(self) -> NormStats:
        """The statistics (identity when nothing was added)."""
        if self._n == 0:
            return NormStats.identity(self.channels)
        mean = self._sum / self._n
        var = np.maximum(self._sq / self._n - mean**2, 0.0)
        return NormStats(mean, np.sqrt(var), self.channels, self.relative, self._n)


def compute_stats(signals: np.ndarray, baseline: np.ndarray) -> NormStats:
    """Per-channel statistics of (B, C, T) training signals with (B, C) baselines."""
    acc = StatsAccumulator()
    acc.update(signals, baseline)
    return acc.result()


@dataclass
class ModelInputs:
    """Tensors ready for :meth:`models.network.EmoEyeNet.forward`.

    Attributes
    ----------
    timeseries
        (B, C, T) float32.
    scanpath
        (B, 2, S, S) float32.
    stimulus_ids
        The trials' stimulus ids (the stimulus images/embeddings are looked up by id).
    norms
        (B, 2) float32 picture norms [arousal, valence] on the model's 1..7 axis, NaN where
        unknown (all NaN when no norm source was given).
    """

    timeseries: torch.Tensor
    scanpath: torch.Tensor
    stimulus_ids: list[str]
    norms: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.norms is None:
            self.norms = torch.full((len(self.stimulus_ids), 2), float("nan"))

    @property
    def norms_known(self) -> np.ndarray:
        """(B,) bool: whether each trial's picture has norms."""
        return torch.isfinite(self.norms).all(dim=1).numpy()

    def to(self, device: torch.device | str) -> ModelInputs:
        """Copy onto ``device``."""
        return ModelInputs(
            self.timeseries.to(device),
            self.scanpath.to(device),
            list(self.stimulus_ids),
            self.norms.to(device),
        )


def norm_values(stimulus_ids: Sequence[str], source: Any = None) -> np.ndarray:
    """Picture norms of each stimulus id: float32 (B, 2) [arousal, valence], NaN where unknown.

    Parameters
    ----------
    stimulus_ids
        One id per trial.
    source
        Anything with ``get(id)`` → (arousal, valence) on the model's 1..7 axis or None: a
        :class:`models.norms.NormSource` (run time), a dict (a dataset's ``stimulus_norms``), a
        :class:`models.norms.Norms` table. None: every norm unknown.
    """
    out = np.full((len(stimulus_ids), 2), np.nan, dtype=np.float32)
    if source is None:
        return out
    cache: dict[str, Any] = {}
    for i, sid in enumerate(stimulus_ids):
        sid = str(sid)
        if sid not in cache:
            cache[sid] = source.get(sid) if sid else None
        hit = cache[sid]
        if hit is not None:
            out[i] = (hit[0], hit[1])
    return out


def prepare_inputs(
    trials: Trial | Iterable[Trial],
    stats: NormStats,
    n_time: int | None = None,
    scanpath_size: int | None = None,
    norms: Any = None,
) -> ModelInputs:
    """Turn one or more :class:`~acquisition.trials.types.Trial` objects into model input tensors.

    Parameters
    ----------
    trials
        A trial or an iterable of trials (all cut with the same spec).
    stats
        Normalisation statistics from the checkpoint.
    n_time, scanpath_size
        When given, the shapes the model expects; a mismatch raises a ``ValueError`` that says
        how the checkpoint was trained instead of failing deep inside the network.
    norms
        Where the pictures' norms come from (see :func:`norm_values`); None leaves them unknown.
    """
    items = [trials] if isinstance(trials, Trial) else list(trials)
    if not items:
        raise ValueError("no trials to prepare")
    return arrays_to_inputs(
        np.stack([t.signals for t in items]),
        np.stack([t.baseline for t in items]),
        np.stack([t.scanpath for t in items]),
        stats,
        n_time,
        scanpath_size,
        [t.stimulus_id for t in items],
        norms,
    )


def arrays_to_inputs(
    signals: np.ndarray,
    baseline: np.ndarray,
    scanpath: np.ndarray,
    stats: NormStats,
    n_time: int | None = None,
    scanpath_size: int | None = None,
    stimulus_ids: Sequence[str] | None = None,
    norms: Any = None,
) -> ModelInputs:
    """:func:`prepare_inputs` on stacked arrays: signals (B, C, T), baseline (B, C) and scanpath
    (B, 2, S, S), as in :class:`~acquisition.trials.types.Trial`.

    ``stimulus_ids`` None gives empty ids (no picture, norms unknown); the other parameters are
    :func:`prepare_inputs`'.
    """
    check_shapes(signals.shape[-1], scanpath.shape[-1], n_time, scanpath_size)
    ts = normalise_signals(signals, baseline, stats)
    sp = clean_scanpath(scanpath)
    ids = list(stimulus_ids) if stimulus_ids is not None else [""] * len(signals)
    return ModelInputs(
        torch.from_numpy(ts), torch.from_numpy(sp), ids, torch.from_numpy(norm_values(ids, norms))
    )


def check_shapes(
    n_time: int, scanpath_size: int, expect_time: int | None, expect_scanpath: int | None
) -> None:
    """Raise a clear ``ValueError`` when trial shapes differ from what the model was built for."""
    if expect_time is not None and n_time != expect_time:
        raise ValueError(
            f"the checkpoint was trained with {expect_time} grid samples per trial (baseline + "
            f"window) but the trials have {n_time}: cut trials with the same spec "
            "(grid rate, baseline, duration) or retrain"
        )
    if expect_scanpath is not None and scanpath_size != expect_scanpath:
        raise ValueError(
            f"the checkpoint was trained with {expect_scanpath}x{expect_scanpath} scanpaths but "
            f"the trials have {scanpath_size}x{scanpath_size}"
        )


class Augment:
    """Training-time augmentation of raw trial arrays, for robustness across participants.

    * physiological responses (change from baseline of pupil, GSR, HR) scaled by a per-trial,
      per-channel log-normal gain: people differ in how strongly they respond;
    * a constant gaze offset per trial (eye-tracker calibration error), applied to x, y.

    Parameters
    ----------
    gain_sd
        Standard deviation of the log gain (0 = off).
    gaze_offset_sd
        Standard deviation of the gaze offset, screen units (0 = off).
    seed
        Seeds the augmentation's own generator.
    """

    def __init__(
        self,
        gain_sd: float = 0.25,
        gaze_offset_sd: float = 0.02,
        seed: int = 0,
        channels: Sequence[str] = CHANNELS,
        relative: Sequence[str] = PHYSIO_CHANNELS,
    ) -> None:
        self.gain_sd = gain_sd
        self.gaze_offset_sd = gaze_offset_sd
        self.rng = np.random.default_rng(seed)
        self._rel = _relative_mask(channels, relative)
        self._gaze = np.array([c in ("x", "y") for c in channels], dtype=bool)

    def __call__(self, arrays: dict[str, np.ndarray]) -> None:
        """Modify ``signals`` (B, C, T) and ``scanpath`` in place (``baseline`` unchanged)."""
        sig, base = arrays["signals"], arrays["baseline"]
        b = sig.shape[0]
        if self.gain_sd > 0:
            rel = np.flatnonzero(self._rel)
            g = np.exp(self.rng.normal(0.0, self.gain_sd, (b, len(rel), 1))).astype(np.float32)
            bl = base[:, rel][:, :, None]
            ok = np.isfinite(bl)
            bl = np.where(ok, bl, 0.0)
            sig[:, rel] = np.where(ok, bl + (sig[:, rel] - bl) * g, sig[:, rel])
        if self.gaze_offset_sd > 0 and self._gaze.sum() == 2:
            gz = np.flatnonzero(self._gaze)
            off = self.rng.normal(0.0, self.gaze_offset_sd, (b, 2)).astype(np.float32)
            sig[:, gz] += off[:, :, None]
            sp = arrays.get("scanpath")
            if sp is not None:
                # Move the rendered scanpath by the same offset (x → columns, y → rows).
                px = np.rint(off * sp.shape[-1]).astype(int)
                for i in np.flatnonzero(px.any(axis=1)):
                    sp[i] = np.roll(sp[i], (px[i, 1], px[i, 0]), axis=(-2, -1))
