"""On-disk trial datasets: shards of plain numpy arrays plus a JSON index, never pickle.

Layout of a dataset directory::

    meta.json            format, spec, source, per-trial ids/participants/stimulus ids, shards,
                         counts of trials left out (``skipped_unrated``, ``skipped_no_data``,
                         ``skipped_failed``) and a record of each no-data or failed one
    skipped.csv          those records as a table (kind, trial_id, participant, stimulus_id,
                         onset, reason); written only when a trial was left out for them
    shard-00000.npz      arrays of up to ``shard_size`` trials (uncompressed .npz)
    shard-00001.npz      ...

A trial without usable data for a required role (``Trial.predictable`` is False, see
``TrialSpec.min_coverage``) and an onset whose cut failed never enter the arrays.

Arrays in a shard (N trials):

==================  ===========================  ==============================================
name                dtype, shape                 meaning
==================  ===========================  ==============================================
signals             float32 (N, 5, T)            x, y, pupil, gsr, hr on the grid (baseline 1st)
mask                bool (N, 5, T)               where the grid had real data
baseline            float32 (N, 5)               pre-onset means (NaN = none)
scanpath            float16 (N, 2, S, S)         density and time-of-visit images
arousal_class       int8 (N,)                    0-based class (-1 = no rating)
valence_class       int8 (N,)                    0-based class (-1 = no rating)
arousal, valence    float32 (N,)                 raw ratings (NaN = none)
scale               float32 (N, 2)               rating scale min, max
onset               float64 (N,)                 onset on the LSL clock
quality             float32 (N,)                 ``TrialQuality.score``
oracle_arousal      int8 (N,)                    ground-truth best class if known (simulator), -1
oracle_valence      int8 (N,)                    likewise
felt_arousal        float32 (N,)                 simulator's felt state (NaN unknown; optional)
felt_valence        float32 (N,)                 likewise
norm_arousal        float32 (N,)                 the picture's normative rating (NaN unknown)
norm_valence        float32 (N,)                 likewise
response_pupil      float32 (N,)                 simulator's response amplitudes before sensor
response_scr        float32 (N,)                 noise (pupil dilation, SCR, HR change; NaN
response_hr         float32 (N,)                 unknown; optional)
==================  ===========================  ==============================================

The last seven arrays are optional (datasets written before them read as NaN). When the first
trial carries the optional roles (docs/modalities.md), the shards also hold:

==================  ===========================  ==============================================
eeg                 float32 (N, 12)              EEG features (``EEG_FEATURES`` in meta.json)
face                float16 (N, A, T)            action units on the grid (``FACE_AUS``)
face_mask           bool (N, A, T)               where each unit was tracked (False: absent)
==================  ===========================  ==============================================

and ``meta.json`` lists them in ``roles`` (with ``eeg_features`` and ``face_aus``). ``meta.json`` may
also carry ``stimulus_norms`` (stimulus id -> [arousal, valence] norms) and ``fingerprint`` (a
hash of the trial ids, participants, stimuli and labels that identifies the dataset).

Stimulus images are not stored per trial: they come from the stimulus id through a
:class:`~acquisition.stimulus_catalogue.StimulusCatalogue`. Shards are written uncompressed, so
:class:`TrialDataset` memory-maps each array straight out of the zip file: 30,000 trials need not
fit in memory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from acquisition.lsl.presets import FACE_AUS
from acquisition.trials.modalities import EEG_FEATURES
from acquisition.trials.types import CHANNELS, Trial, TrialError, TrialSpec
from models.preprocess import NormStats, clean_scanpath, norm_values, normalise_signals

FORMAT = "emoeye-dataset"
VERSION = 1
SHARD_PATTERN = "shard-{:05d}.npz"
SKIPPED_CSV = "skipped.csv"
SKIPPED_COLUMNS = ("kind", "trial_id", "participant", "stimulus_id", "onset", "reason")

_FIELDS: dict[str, Any] = {
    # name: (dtype, per-trial shape function of (C, T, S), fill value)
    "signals": (np.float32, lambda c, t, s: (c, t), np.nan),
    "mask": (np.bool_, lambda c, t, s: (c, t), False),
    "baseline": (np.float32, lambda c, t, s: (c,), np.nan),
    "scanpath": (np.float16, lambda c, t, s: (2, s, s), 0),
    "arousal_class": (np.int8, lambda c, t, s: (), -1),
    "valence_class": (np.int8, lambda c, t, s: (), -1),
    "arousal": (np.float32, lambda c, t, s: (), np.nan),
    "valence": (np.float32, lambda c, t, s: (), np.nan),
    "scale": (np.float32, lambda c, t, s: (2,), np.nan),
    "onset": (np.float64, lambda c, t, s: (), np.nan),
    "quality": (np.float32, lambda c, t, s: (), np.nan),
    "oracle_arousal": (np.int8, lambda c, t, s: (), -1),
    "oracle_valence": (np.int8, lambda c, t, s: (), -1),
    "felt_arousal": (np.float32, lambda c, t, s: (), np.nan),
    "felt_valence": (np.float32, lambda c, t, s: (), np.nan),
    "norm_arousal": (np.float32, lambda c, t, s: (), np.nan),
    "norm_valence": (np.float32, lambda c, t, s: (), np.nan),
    "response_pupil": (np.float32, lambda c, t, s: (), np.nan),
    "response_scr": (np.float32, lambda c, t, s: (), np.nan),
    "response_hr": (np.float32, lambda c, t, s: (), np.nan),
}
RESPONSE_FIELDS = ("response_pupil", "response_scr", "response_hr")
"""The simulator's per-trial response amplitudes before sensor noise (the ceiling baseline's
inputs, :mod:`models.baselines`)."""
_OPTIONAL = {"felt_arousal", "felt_valence", "norm_arousal", "norm_valence", *RESPONSE_FIELDS}
_ROLE_FIELDS: dict[str, dict[str, Any]] = {
    # optional role -> its arrays: (dtype, per-trial shape function of T, fill value)
    "eeg": {"eeg": (np.float32, lambda t: (len(EEG_FEATURES),), np.nan)},
    "face": {
        "face": (np.float16, lambda t: (len(FACE_AUS), t), 0),
        "face_mask": (np.bool_, lambda t: (len(FACE_AUS), t), False),
    },
}
TRUTH_FIELDS = ("felt_arousal", "felt_valence", "norm_arousal", "norm_valence", *RESPONSE_FIELDS)
"""Per-trial ground truth a simulated dataset carries (see :meth:`DatasetWriter.add`)."""


class DatasetError(ValueError):
    """A dataset directory that is missing, incomplete or not in our format."""


class DatasetWriter:
    """Append trials to a dataset directory, flushing a shard every ``shard_size`` trials.

    Only one shard's worth of arrays is held in memory (preallocated), so building a dataset of
    tens of thousands of trials never holds them all.

    Parameters
    ----------
    directory
        Created if missing; must be empty unless ``overwrite``.
    shard_size
        Trials per shard file.
    source
        Free-form description stored in ``meta.json`` (e.g. simulator settings, XDF files).
    n_classes
        Rating classes (7 for a 1..7 scale).
    keep_unrated
        Store trials without ratings (class -1) instead of skipping them.
    overwrite
        Replace an existing dataset in ``directory``.

    Examples
    --------
    >>> with DatasetWriter("data/sim") as w:   # doctest: +SKIP
    ...     for trial in trials:
    ...         w.add(trial)
    """

    def __init__(
        self,
        directory: str | Path,
        shard_size: int = 1024,
        source: dict[str, Any] | str | None = None,
        n_classes: int = 7,
        keep_unrated: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.directory = Path(directory)
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        if self.directory.exists() and any(self.directory.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"{self.directory} is not empty; choose another directory or overwrite"
                )
            for old in self.directory.glob("shard-*.npz"):
                old.unlink()
            (self.directory / "meta.json").unlink(missing_ok=True)
            (self.directory / SKIPPED_CSV).unlink(missing_ok=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_size = int(shard_size)
        self.source = source
        self.stimulus_norms: dict[str, tuple[float, float]] = {}
        self.n_classes = n_classes
        self.keep_unrated = keep_unrated
        self.spec: TrialSpec | None = None
        self.trial_ids: list[str] = []
        self.participants: list[str | None] = []
        self.stimulus_ids: list[str] = []
        self.shards: list[dict[str, Any]] = []
        self.skipped_unrated = 0
        self.skipped: list[dict[str, Any]] = []
        """A record per trial left out for no usable data or a failed cut (``kind``,
        ``trial_id``, ``participant``, ``stimulus_id``, ``onset``, ``reason``)."""
        self._buf: dict[str, np.ndarray] | None = None
        self._fill = 0
        self._shape: tuple[int, int, int] | None = None
        self.roles: list[str] = []
        """Optional roles stored (decided by the first trial: docs/modalities.md)."""
        self._closed = False

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Trials written or buffered so far."""
        return len(self.trial_ids)

    def add(
        self,
        trial: Trial,
        oracle: tuple[int, int] | None = None,
        truth: dict[str, float] | None = None,
    ) -> bool:
        """Append a trial.

        Parameters
        ----------
        trial
            A cut trial. Without usable data for a required role it is left out (a record in
            :attr:`skipped`, counted as ``skipped_no_data``); without ratings it is skipped
            (counted in ``skipped_unrated``) unless the writer keeps unrated trials.
        oracle
            Ground-truth best (arousal, valence) classes, 0-based, when known (simulator).
        truth
            Known per-trial truth: any of :data:`TRUTH_FIELDS` (felt state, picture norms).

        Returns
        -------
        bool
            Whether the trial was stored.
        """
        if self._closed:
            raise RuntimeError("the writer is closed")
        if not trial.predictable:  # an all-missing trial would teach the model nothing true
            self.skip(trial, "no_data", "no usable data: " + "; ".join(trial.quality.unusable))
            return False
        if trial.ratings is None and not self.keep_unrated:
            self.skipped_unrated += 1
            return False
        c, t = trial.signals.shape
        s = trial.scanpath.shape[-1]
        if self._shape is None:
            self._shape = (c, t, s)
            self.spec = trial.spec
            self.roles = [r for r in _ROLE_FIELDS if getattr(trial, r, None) is not None]
            self._allocate()
        elif (c, t, s) != self._shape:
            raise ValueError(
                f"trial {trial.trial_id} has signals {(c, t)} and scanpath {s}x{s} but the "
                f"dataset holds {self._shape[:2]} and {self._shape[2]}x{self._shape[2]}: one "
                "dataset, one trial spec"
            )
        assert self._buf is not None
        i = self._fill
        b = self._buf
        b["signals"][i] = trial.signals
        b["mask"][i] = trial.mask
        b["baseline"][i] = trial.baseline
        b["scanpath"][i] = trial.scanpath
        b["onset"][i] = trial.onset
        b["quality"][i] = trial.quality.score
        if trial.ratings is not None:
            r = trial.ratings
            b["arousal_class"][i], b["valence_class"][i] = r.classes(self.n_classes)
            b["arousal"][i], b["valence"][i] = r.arousal, r.valence
            b["scale"][i] = (r.scale_min, r.scale_max)
        if oracle is not None:
            b["oracle_arousal"][i], b["oracle_valence"][i] = oracle
        if "eeg" in self.roles and trial.eeg is not None:
            b["eeg"][i] = trial.eeg.vector()
        if "face" in self.roles and trial.face is not None:
            b["face"][i], b["face_mask"][i] = trial.face.canonical()
        for key, value in (truth or {}).items():
            if key in TRUTH_FIELDS:
                b[key][i] = value
        self.trial_ids.append(str(trial.trial_id))
        self.participants.append(trial.participant)
        self.stimulus_ids.append(str(trial.stimulus_id))
        self._fill += 1
        if self._fill == self.shard_size:
            self._flush()
        return True

    def skip(self, item: Trial | TrialError, kind: str, reason: str | None = None) -> None:
        """Record a trial left out of the arrays: ``kind`` ``"no_data"`` (a trial without
        usable data) or ``"failed"`` (an onset whose cut failed: a
        :class:`~acquisition.trials.types.TrialError`, whose reason is used by default)."""
        if reason is None:
            reason = getattr(item, "reason", "")
        self.skipped.append(
            {
                "kind": kind,
                "trial_id": str(item.trial_id),
                "participant": item.participant,
                "stimulus_id": str(item.stimulus_id),
                "onset": round(float(item.onset), 6),
                "reason": reason,
            }
        )

    def skipped_count(self, kind: str) -> int:
        """Trials left out as ``kind`` (``"no_data"`` or ``"failed"``)."""
        return sum(r["kind"] == kind for r in self.skipped)

    def close(self) -> Path:
        """Flush the last shard and write the final ``meta.json`` (and ``skipped.csv`` when
        trials were left out); returns the directory."""
        if not self._closed:
            self._flush()
            self._closed = True
            if self.skipped:
                buf = io.StringIO()
                w = csv.DictWriter(buf, SKIPPED_COLUMNS, lineterminator="\n")
                w.writeheader()
                w.writerows(self.skipped)
                tmp = self.directory / (SKIPPED_CSV + ".tmp")
                tmp.write_text(buf.getvalue(), encoding="utf-8")
                os.replace(tmp, self.directory / SKIPPED_CSV)
            self._write_meta(complete=True)
            self._buf = None
        return self.directory

    def _allocate(self) -> None:
        assert self._shape is not None
        c, t, s = self._shape
        self._buf = {
            name: np.full((self.shard_size, *shape(c, t, s)), fill, dtype=dtype)
            for name, (dtype, shape, fill) in _FIELDS.items()
        }
        for role in self.roles:
            for name, (dtype, shape, fill) in _ROLE_FIELDS[role].items():
                self._buf[name] = np.full((self.shard_size, *shape(t)), fill, dtype=dtype)

    def _flush(self) -> None:
        if not self._fill or self._buf is None:
            return
        name = SHARD_PATTERN.format(len(self.shards))
        tmp = self.directory / (name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **{k: v[: self._fill] for k, v in self._buf.items()})
        os.replace(tmp, self.directory / name)
        self.shards.append({"file": name, "n": self._fill})
        self._fill = 0
        fills = {k: v[2] for k, v in _FIELDS.items()}
        fills.update({k: v[2] for r in self.roles for k, v in _ROLE_FIELDS[r].items()})
        for name_, fill in fills.items():
            self._buf[name_][...] = fill
        self._write_meta(complete=False)

    def _write_meta(self, complete: bool) -> None:
        n_stored = sum(s["n"] for s in self.shards)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "complete": complete,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_trials": n_stored,
            "n_classes": self.n_classes,
            "channels": list(CHANNELS),
            "roles": list(self.roles),
            **({"eeg_features": list(EEG_FEATURES)} if "eeg" in self.roles else {}),
            **({"face_aus": list(FACE_AUS)} if "face" in self.roles else {}),
            "spec": asdict(self.spec) if self.spec is not None else None,
            "source": self.source,
            "skipped_unrated": self.skipped_unrated,
            "skipped_no_data": self.skipped_count("no_data"),
            "skipped_failed": self.skipped_count("failed"),
            "skipped": self.skipped,
            "shards": self.shards,
            "trial_ids": self.trial_ids[:n_stored],
            "participants": self.participants[:n_stored],
            "stimulus_ids": self.stimulus_ids[:n_stored],
            "stimulus_norms": {
                k: [float(a), float(v)] for k, (a, v) in self.stimulus_norms.items()
            },
        }
        tmp = self.directory / "meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.directory / "meta.json")


def _npz_members(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an uncompressed .npz memory-mapped in place (compressed members are read).

    Never unpickles: object arrays are refused.
    """
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            if info.compress_type != zipfile.ZIP_STORED:
                with np.load(path, allow_pickle=False) as npz:
                    out[key] = npz[key]
                continue
            # Skip the zip local header to reach the .npy bytes.
            fh.seek(info.header_offset)
            header = fh.read(30)
            if header[:4] != b"PK\x03\x04":
                raise DatasetError(f"{path}: corrupt zip entry {info.filename}")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            if dtype.hasobject:
                raise DatasetError(f"{path}: {key} holds Python objects; refusing to unpickle")
            if int(np.prod(shape)) == 0:
                out[key] = np.zeros(shape, dtype=dtype)
                continue
            out[key] = np.memmap(
                path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape,
                order="F" if fortran else "C",
            )  # fmt: skip
    return out


class TrialDataset(Dataset):
    """A dataset directory written by :class:`DatasetWriter`, read lazily (memory-mapped).

    Parameters
    ----------
    directory
        The dataset directory.
    stats
        Normalisation statistics; when set, :meth:`__getitem__` and :meth:`batch` return model
        inputs (baseline-relative, standardised), otherwise raw signals.
    catalogue
        Stimulus images by id (anything with ``image(id, size)``); the bundled catalogue by
        default. Only needed for stimulus images.
    image_size
        Side of the stimulus images returned.
    """

    def __init__(
        self,
        directory: str | Path,
        stats: NormStats | None = None,
        catalogue: Any = None,
        image_size: int = 64,
    ) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{self.directory} is not a dataset (no meta.json)")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{meta_path} is not valid JSON: {exc}") from exc
        if self.meta.get("format") != FORMAT:
            raise DatasetError(f"{meta_path} is not an {FORMAT} index")
        if self.meta.get("version", 0) > VERSION:
            raise DatasetError(
                f"{self.directory} has dataset format version {self.meta['version']}; this "
                f"version of emoeye reads up to {VERSION}"
            )
        self.stats = stats
        self.catalogue = catalogue
        self.image_size = image_size
        self._shards: list[dict[str, np.ndarray]] = []
        starts = [0]
        for entry in self.meta["shards"]:
            path = self.directory / entry["file"]
            if not path.is_file():
                raise DatasetError(f"{path} is missing (listed in meta.json)")
            try:
                arrays = _npz_members(path)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise DatasetError(f"{path} is unreadable: {exc}") from exc
            missing = set(_FIELDS) - _OPTIONAL - set(arrays)
            if missing:
                raise DatasetError(f"{path} lacks arrays {sorted(missing)}")
            if len(arrays["signals"]) != entry["n"]:
                raise DatasetError(
                    f"{path} holds {len(arrays['signals'])} trials, meta says {entry['n']}"
                )
            self._shards.append(arrays)
            starts.append(starts[-1] + entry["n"])
        self._starts = np.asarray(starts, dtype=np.int64)
        n = int(self._starts[-1])
        self.trial_ids: list[str] = list(self.meta["trial_ids"])[:n]
        self.participants = np.asarray(
            [p if p is not None else "" for p in self.meta["participants"][:n]], dtype=object
        ).astype(str)
        self.stimulus_ids = np.asarray(self.meta["stimulus_ids"][:n]).astype(str)
        self.arousal_class = self._column("arousal_class").astype(np.int64)
        self.valence_class = self._column("valence_class").astype(np.int64)
        self.oracle_arousal = self._column("oracle_arousal").astype(np.int64)
        self.oracle_valence = self._column("oracle_valence").astype(np.int64)
        for name in TRUTH_FIELDS:
            setattr(self, name, self._column(name).astype(np.float64))
        self.stimulus_norms: dict[str, tuple[float, float]] = {
            str(k): (float(v[0]), float(v[1]))
            for k, v in (self.meta.get("stimulus_norms") or {}).items()
        }
        self.roles: list[str] = list(self.meta.get("roles", []))
        """Optional roles the dataset holds (``eeg``, ``face``)."""
        self.stimulus_names, self.stimulus_index = (
            np.unique(self.stimulus_ids, return_inverse=True)
            if n
            else (np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64))
        )
        self._images: np.ndarray | None = None

    # -- sizes and metadata ------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def spec(self) -> TrialSpec | None:
        """The trial spec the trials were cut with."""
        spec = self.meta.get("spec")
        if spec is None:
            return None
        spec = dict(spec)
        spec["required_roles"] = tuple(spec.get("required_roles", ()))
        return TrialSpec(**spec)

    @property
    def n_time(self) -> int:
        """Grid samples per trial."""
        return int(self._shards[0]["signals"].shape[-1]) if self._shards else 0

    @property
    def scanpath_size(self) -> int:
        """Side of the scanpath images."""
        return int(self._shards[0]["scanpath"].shape[-1]) if self._shards else 0

    def labelled(self) -> np.ndarray:
        """Indices of trials with both ratings."""
        return np.flatnonzero((self.arousal_class >= 0) & (self.valence_class >= 0))

    def _column(self, name: str) -> np.ndarray:
        if not self._shards:
            return np.zeros(0)
        if name in _OPTIONAL and any(name not in s for s in self._shards):
            return np.full(len(self), np.nan, np.float32)
        return np.concatenate([np.asarray(s[name]) for s in self._shards])

    @property
    def fingerprint(self) -> str:
        """A hash identifying this dataset: trial ids, participants, stimuli, onsets and labels
        (two builds of the same data give the same fingerprint; any other data another)."""
        import hashlib

        h = hashlib.sha256()
        for item in (self.trial_ids, self.participants.tolist(), self.stimulus_ids.tolist()):
            h.update(json.dumps(item).encode())
        for name in ("arousal_class", "valence_class", "onset"):
            h.update(np.ascontiguousarray(self._column(name)).tobytes())
        return h.hexdigest()[:16]

    # -- array access ------------------------------------------------------------------------
    def arrays(
        self, indices: Sequence[int] | np.ndarray, names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Raw arrays of the given trials (in the order given), read shard by shard."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"trial index out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out: dict[str, np.ndarray] = {}
        for name in names:
            ref = self._shards[0][name]
            out[name] = np.empty((idx.size, *ref.shape[1:]), dtype=ref.dtype)
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            local = idx[sel] - self._starts[s]
            order = np.argsort(local)  # ascending reads are kinder to the page cache
            for name in names:
                out[name][sel[order]] = self._shards[s][name][local[order]]
        return out

    def stimulus_images(self) -> np.ndarray:
        """(U, 3, size, size) float32 images of :attr:`stimulus_names` (cached)."""
        if self._images is None:
            cat = self.catalogue
            if cat is None:
                from acquisition.sim.stimuli import sim_catalogue

                cat = sim_catalogue()  # the bundled photos and generated (genN-K) pictures
            self._images = np.stack(
                [cat.image(str(sid), size=self.image_size) for sid in self.stimulus_names]
            ) if len(self.stimulus_names) else np.zeros((0, 3, self.image_size, self.image_size), np.float32)  # fmt: skip
        return self._images

    def trial_norms(self) -> np.ndarray:
        """float32 (N, 2) picture norms [arousal, valence] per trial on the model axis, NaN
        where unknown: :attr:`stimulus_norms` (``meta.json``, or what ``evaluate --norms``
        put there) looked up by :func:`models.preprocess.norm_values`, else the per-trial
        ``norm_arousal``/``norm_valence`` columns."""
        key = tuple(sorted(self.stimulus_norms.items()))
        if getattr(self, "_norms_key", None) != key:
            per_stim = norm_values(self.stimulus_names.tolist(), self.stimulus_norms)
            out = per_stim[self.stimulus_index] if len(self) else np.zeros((0, 2), np.float32)
            cols = np.stack([self.norm_arousal, self.norm_valence], axis=1).astype(np.float32)
            gap = ~np.isfinite(out).all(axis=1)
            out[gap] = cols[gap]
            out[~np.isfinite(out).all(axis=1)] = np.nan
            self._norms_key, self._norms = key, out
        return self._norms

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        with_images: bool = True,
        augment: Any = None,
    ) -> dict[str, torch.Tensor]:
        """Model inputs and labels for the given trials.

        ``augment``, when given, is called as ``augment(arrays)`` on the raw arrays (``signals``,
        ``baseline``, ``scanpath``; modify in place) before preprocessing (training only).

        Returns
        -------
        dict
            ``timeseries`` (B, C, T), ``scanpath`` (B, 2, S, S), ``stimulus_index`` (B,) into
            :meth:`stimulus_images`, ``stimulus`` (B, 3, H, W) when ``with_images``,
            ``arousal``/``valence`` 0-based classes (B,), ``norms`` (B, 2) the pictures' norms
            (:meth:`trial_norms`, NaN unknown). ``timeseries`` is normalised when the
            dataset has ``stats``, raw otherwise.
        """
        idx = np.asarray(indices, dtype=np.int64)
        a = self.arrays(idx, ("signals", "baseline", "scanpath"))
        if augment is not None:
            augment(a)
        if self.stats is not None:
            ts = normalise_signals(a["signals"], a["baseline"], self.stats)
        else:
            ts = a["signals"]
        out = {
            "timeseries": torch.from_numpy(np.ascontiguousarray(ts)),
            "scanpath": torch.from_numpy(clean_scanpath(a["scanpath"])),
            "stimulus_index": torch.from_numpy(self.stimulus_index[idx]),
            "arousal": torch.from_numpy(self.arousal_class[idx]),
            "valence": torch.from_numpy(self.valence_class[idx]),
            "norms": torch.from_numpy(self.trial_norms()[idx]),
        }
        if with_images:
            out["stimulus"] = torch.from_numpy(self.stimulus_images()[self.stimulus_index[idx]])
        if self.roles:  # optional roles (docs/modalities.md)
            names = [n for r in self.roles for n in _ROLE_FIELDS[r]]
            extra = self.arrays(idx, names)
            if "eeg" in extra:
                out["eeg"] = torch.from_numpy(extra["eeg"].astype(np.float32))
            if "face" in extra:
                out["face"] = torch.from_numpy(extra["face"].astype(np.float32))
                out["face_mask"] = torch.from_numpy(extra["face_mask"])
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        b = self.batch([int(i)])
        return {k: v[0] for k, v in b.items()}


def split_by_participant(
    participants: Sequence[str] | np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split trial indices so that no participant is on both sides.

    Parameters
    ----------
    participants
        Participant id per trial.
    test_fraction
        Share of *participants* (rounded, at least one when there are two or more) put in test.
    seed
        Which participants go to test.

    Returns
    -------
    tuple of np.ndarray
        (train_indices, test_indices), sorted.
    """
    parts = np.asarray(participants).astype(str)
    unique = np.unique(parts)
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), not {test_fraction}")
    if len(unique) < 2 and test_fraction > 0:
        raise ValueError(
            f"a participant split needs at least 2 participants; the data has {len(unique)}"
        )
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * len(unique)))
    if test_fraction > 0:
        n_test = min(max(n_test, 1), len(unique) - 1)
    test_parts = set(rng.permutation(unique)[:n_test].tolist())
    is_test = np.array([p in test_parts for p in parts], dtype=bool)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
