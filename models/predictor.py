"""Inference wrapper around a loaded checkpoint, for the inference worker and offline replay."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acquisition.trials.types import Trial
from models.checkpoint import load_checkpoint
from models.preprocess import arrays_to_inputs, prepare_inputs


@dataclass
class TrialPrediction:
    """Both heads' class probabilities and expected values on the 1..n scale for one trial."""

    arousal_probs: np.ndarray
    valence_probs: np.ndarray
    arousal: float
    valence: float


def expected_value(probs: np.ndarray) -> np.ndarray:
    """Expected rating 1..n of (B, n) or (n,) class probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return p @ np.arange(1, p.shape[-1] + 1, dtype=np.float64)


class Predictor:
    """A checkpoint ready for inference.

    Parameters
    ----------
    checkpoint
        Checkpoint directory or weights file; ``None`` = the bundled default model.
    device
        ``"cpu"`` (default), ``"cuda"``...
    num_threads
        Sets ``torch.set_num_threads`` — process-wide, so it also affects any other torch user in
        the process. Default 1: one trial is too small to gain from more, and the other core of
        a 2-core box stays free for acquisition and the dashboard. ``None`` leaves torch's setting.
    catalogue
        Stimulus images by id (``image(id, size)``) for :meth:`embedding_for`; bundled by default.
    backbone
        A VGG16 checkpoint's backbone weights file (see :func:`models.checkpoint.load_checkpoint`;
        default ``$EMOEYE_BACKBONE_WEIGHTS`` or the file recorded at training).
    norms
        For a checkpoint trained with norms (``--norms-input``): a norms table
        (:class:`models.norms.Norms`, the config's ``[stimuli] norms``) or a mapping id →
        (arousal, valence) on the model axis, consulted before the catalogue's own norms (see
        :meth:`set_norms`). A checkpoint trained without norms ignores them.

    Examples
    --------
    >>> p = Predictor()                                   # doctest: +SKIP
    >>> emb = p.embedding_for(trial.stimulus_id)          # at onset
    >>> pa, pv = p.predict([trial], emb)                  # when the trial is cut
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str | torch.device = "cpu",
        num_threads: int | None = 1,
        catalogue: Any = None,
        backbone: str | Path | None = None,
        norms: Any = None,
    ) -> None:
        if num_threads is not None:
            torch.set_num_threads(max(1, int(num_threads)))
        self.device = torch.device(device)
        self.model, self.meta = load_checkpoint(checkpoint, self.device, backbone=backbone)
        self.config = self.model.config
        self.stats = self.meta["stats"]
        self.catalogue = catalogue
        self._embeddings: dict[str, torch.Tensor] = {}
        self.norm_table: Any = norms
        self._norm_catalogue: Any = None  # set_norms' catalogue; else self.catalogue

    @property
    def uses_norms(self) -> bool:
        """Whether the model takes the pictures' norms (trained with ``--norms-input``)."""
        return bool(getattr(self.config, "use_norms", False))

    def set_norms(self, table: Any = None, catalogue: Any = None) -> None:
        """Where pictures' norms come from: ``table`` (a :class:`models.norms.Norms` or mapping)
        first, then ``catalogue``'s norms (default: this predictor's catalogue, else the
        bundled photos and generated pictures)."""
        self.norm_table = table
        if catalogue is not None:
            self._norm_catalogue = catalogue

    @property
    def norm_source(self) -> Any:
        """The :class:`models.norms.NormSource` the trials' norms are looked up in."""
        from models.norms import NormSource

        cat = self._norm_catalogue or self.catalogue
        if cat is None:
            from acquisition.sim.stimuli import sim_catalogue

            cat = sim_catalogue()
        return NormSource(self.norm_table, cat)

    @property
    def uses_stimulus(self) -> bool:
        """Whether the model has a stimulus branch (needs an embedding per trial)."""
        return self.config.use_stimulus

    @torch.inference_mode()
    def embed_stimulus(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Stimulus embedding (1, D) of an RGB image (3, H, W) in 0..1 (H = W = image_size)."""
        img = torch.as_tensor(np.array(image, dtype=np.float32)).to(self.device)
        if img.shape[-1] != self.config.image_size or img.shape[-2] != self.config.image_size:
            raise ValueError(
                f"the checkpoint was trained with {self.config.image_size}px stimulus images, "
                f"got {tuple(img.shape)}"
            )
        return self.model.embed_stimulus(img)

    def embedding_for(self, stimulus_id: str) -> torch.Tensor:
        """Cached embedding of a catalogue stimulus (computed on first use)."""
        emb = self._embeddings.get(stimulus_id)
        if emb is None:
            cat = self.catalogue
            if cat is None:
                from acquisition.sim.stimuli import sim_catalogue

                cat = self.catalogue = sim_catalogue()  # bundled and generated pictures
            emb = self.embed_stimulus(cat.image(stimulus_id, size=self.config.image_size))
            self._embeddings[stimulus_id] = emb
        return emb

    @torch.inference_mode()
    def predict(
        self,
        trials: Trial | Iterable[Trial] | tuple[np.ndarray, np.ndarray, np.ndarray],
        stimulus_embeddings: torch.Tensor | Sequence[torch.Tensor] | None = None,
        norms: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities of both heads.

        Parameters
        ----------
        trials
            A trial, trials, or raw arrays ``(signals (B, C, T), baseline (B, C),
            scanpath (B, 2, S, S))`` exactly as in :class:`~acquisition.trials.types.Trial`.
        stimulus_embeddings
            (B, D) or (1, D) tensor, or a list of (1, D)/(D,) tensors, from
            :meth:`embed_stimulus`. When omitted and the model has a stimulus branch, the trials'
            stimulus ids are looked up in the catalogue (arrays need explicit embeddings).
        norms
            (B, 2) picture norms (NaN unknown) for a model trained with norms; by default the
            trials' pictures are looked up in :attr:`norm_source` (raw arrays: unknown).

        Returns
        -------
        tuple of np.ndarray
            (arousal_probs (B, n), valence_probs (B, n)), float32; class i is rating i + 1.
        """
        if isinstance(trials, tuple) and len(trials) == 3 and isinstance(trials[0], np.ndarray):
            signals, baseline, scanpath = trials
            signals, baseline, scanpath = (
                np.asarray(signals),
                np.asarray(baseline),
                np.asarray(scanpath),
            )
            if signals.ndim == 2:
                signals, baseline, scanpath = signals[None], baseline[None], scanpath[None]
            ids = None
            items = None
            inputs = arrays_to_inputs(
                signals,
                baseline,
                scanpath,
                self.stats,
                self.config.n_time,
                self.config.scanpath_size,
            )
            ts, sp, nv = inputs.timeseries, inputs.scanpath, None
        else:
            items = [trials] if isinstance(trials, Trial) else list(trials)
            if not items:
                raise ValueError("no trials to predict")
            inputs = prepare_inputs(
                items,
                self.stats,
                self.config.n_time,
                self.config.scanpath_size,
                norms=self.norm_source if self.uses_norms and norms is None else None,
            )
            ts, sp, ids, nv = inputs.timeseries, inputs.scanpath, inputs.stimulus_ids, inputs.norms
        ts, sp = ts.to(self.device), sp.to(self.device)
        if norms is not None:
            nv = torch.as_tensor(np.asarray(norms, dtype=np.float32)).reshape(-1, 2)
        nv = nv.to(self.device) if nv is not None and self.uses_norms else None
        emb = None
        if self.uses_stimulus:
            if stimulus_embeddings is None:
                if ids is None:
                    raise ValueError("raw arrays need stimulus_embeddings for this model")
                stimulus_embeddings = [self.embedding_for(i) for i in ids]
            if isinstance(stimulus_embeddings, torch.Tensor):
                emb = stimulus_embeddings
            else:
                emb = torch.cat([e.reshape(1, -1) for e in stimulus_embeddings])
            emb = emb.reshape(-1, emb.shape[-1]).to(self.device)
        la, lv = self.model(ts, sp, stimulus_embedding=emb, norms=nv, **self.role_tensors(items))
        return (
            torch.softmax(la.float(), 1).cpu().numpy(),
            torch.softmax(lv.float(), 1).cpu().numpy(),
        )

    def role_tensors(self, trials: list[Trial] | None) -> dict[str, torch.Tensor]:
        """EEG / face inputs of the model's optional-role branches for these trials; a role no
        trial carries is left out (the model masks it, see :meth:`role_notes`). A batch mixing
        trials with and without the role gives the ones without NaN features / an empty mask."""
        cfg = self.config
        out: dict[str, torch.Tensor] = {}
        if not trials:
            return out
        if getattr(cfg, "use_eeg", False) and any(t.eeg is not None for t in trials):
            rows = [
                t.eeg.vector() if t.eeg is not None else np.full(cfg.eeg_features, np.nan)
                for t in trials
            ]
            out["eeg"] = torch.from_numpy(np.stack(rows).astype(np.float32)).to(self.device)
        if getattr(cfg, "use_face", False) and any(t.face is not None for t in trials):
            n = trials[0].signals.shape[-1]
            faces, masks = [], []
            for t in trials:
                if t.face is None:
                    faces.append(np.zeros((cfg.face_units, n), np.float32))
                    masks.append(np.zeros((cfg.face_units, n), bool))
                else:
                    f, m = t.face.canonical()
                    faces.append(f)
                    masks.append(m)
            out["face"] = torch.from_numpy(np.stack(faces)).to(self.device)
            out["face_mask"] = torch.from_numpy(np.stack(masks)).to(self.device)
        return out

    def role_notes(self, trial: Trial) -> tuple[list[str], list[str]]:
        """``(flags, notes)`` about the optional roles: a role the model was trained with that
        the trial lacks is masked and flagged (``"eeg missing: masked"``); one the trial carries
        but the model was not trained with is ignored and noted. Likewise the picture's norms
        for a model trained with them: a picture without norms is predicted with the norms
        masked (flag 0) and flagged."""
        cfg = self.config
        flags, notes = [], []
        if self.uses_norms and self.norm_source.get(trial.stimulus_id) is None:
            flags.append(
                f"no norms for stimulus {trial.stimulus_id!r}: masked (the model was trained "
                "with norms; give them in [stimuli] norms)"
            )
        for role in ("eeg", "face"):
            has = getattr(trial, role, None) is not None
            uses = bool(getattr(cfg, f"use_{role}", False))
            if uses and not has:
                flags.append(f"{role} missing: masked (the model was trained with it)")
            elif has and not uses:
                notes.append(f"{role} ignored: the model was not trained with it")
        return flags, notes

    def predict_trial(self, trial: Trial, embedding: torch.Tensor | None = None) -> TrialPrediction:
        """One trial → :class:`TrialPrediction` (probabilities and expected values)."""
        pa, pv = self.predict([trial], None if embedding is None else [embedding])
        return TrialPrediction(
            pa[0], pv[0], float(expected_value(pa[0])), float(expected_value(pv[0]))
        )

    def warm_up(self, n: int = 3) -> float:
        """Run ``n`` dummy predictions so first real trials do not pay for lazy initialisation.

        Returns the last call's time in milliseconds.
        """
        cfg = self.config
        signals = np.zeros((1, cfg.channels, cfg.n_time), np.float32)
        baseline = np.zeros((1, cfg.channels), np.float32)
        scanpath = np.zeros(
            (1, cfg.scanpath_channels, cfg.scanpath_size, cfg.scanpath_size), np.float32
        )
        emb = None
        if self.uses_stimulus:
            emb = self.embed_stimulus(np.zeros((3, cfg.image_size, cfg.image_size), np.float32))
        ms = 0.0
        for _ in range(max(1, n)):
            t0 = time.perf_counter()
            self.predict((signals, baseline, scanpath), emb)
            ms = (time.perf_counter() - t0) * 1e3
        return ms
