"""Reading the optional roles: EEG (µV per electrode) and facial action units (intensity per AU).

How they bind (docs/modalities.md):

- ``eeg``: a stream of type EEG whose channel labels include 10-20 electrode names reads those
  channels (the others, such as ``TRIGGER`` or ``AUX1``, are left out); one without such labels
  binds only by a ``[roles.eeg]`` rule naming its columns.
- ``face``: a stream whose channel labels name action units (``AU12``, ``AU12_r``; ``_c``
  presence columns are not intensities) reads them, with ``success`` and ``confidence`` when
  present; the OpenFace 2.0 and py-feat layouts are presets.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from acquisition.lsl.presets import FACE_AUS, TEN_TWENTY, RoleReading
from acquisition.streams import StreamSpec

EEG_UNITS = {"uv": 1.0, "µv": 1.0, "mv": 1e3, "v": 1e6}
"""Factors to µV of the ``unit`` parameter of an EEG reading."""

FACE_FLAGS = ("success", "confidence")
"""Face columns that are not action units: tracking success (0/1) and confidence (0..1)."""

_AU = re.compile(r"^au[\s_-]?0*(\d{1,2})(?:[\s_-]?(?:r|int|intensity))?$", re.IGNORECASE)


def au_name(label: str) -> str | None:
    """The action unit a channel label names, as ``AU01``...``AU45``; None for anything else
    (``AU12_c``, a presence column, included)."""
    m = _AU.match(label.strip())
    if m is None:
        return None
    name = f"AU{int(m.group(1)):02d}"
    return name if name in FACE_AUS else None


def is_electrode(label: str) -> bool:
    """True when ``label`` is a 10-20 / 10-10 electrode name (``Fz``, ``FC5``, ``Fp1``...)."""
    return label.strip().lower() in TEN_TWENTY


def _canonical_electrode(label: str) -> str:
    """``FP1`` -> ``Fp1``, ``FZ`` -> ``Fz``, ``fc5`` -> ``FC5``: the usual spelling."""
    low = label.strip().lower()
    head = low.rstrip("z0123456789")
    tail = low[len(head) :]
    head = "Fp" if head == "fp" else head.upper()
    return head + tail


def eeg_reading(spec: StreamSpec) -> tuple[RoleReading | None, str]:
    """The generic EEG reading of a stream of type EEG: its 10-20 labelled channels.

    Returns
    -------
    (reading, why)
        ``reading`` None when the stream has no 10-20 labels, ``why`` saying what to do.
    """
    labels = spec.channel_labels
    picked = {_canonical_electrode(lab): lab for lab in labels if is_electrode(lab)}
    if not picked:
        what = "no channel labels" if not labels else "no 10-20 electrode labels"
        return None, (
            f"EEG stream with {spec.channel_count} channels and {what}: an EEG stream without "
            "labels binds only by config; name its electrodes in a [roles.eeg] rule "
            '(kind = "eeg", columns = { F3 = 0, F4 = 1, ... })'
        )
    left = len(labels) - len(picked)
    why = f"EEG, {len(picked)} 10-20 channels" + (f" ({left} others left out)" if left else "")
    return RoleReading("eeg", "eeg", picked), why


def face_reading(spec: StreamSpec) -> tuple[RoleReading | None, str]:
    """The generic face reading: every channel whose label names an action unit, with the
    ``success`` and ``confidence`` channels when there are."""
    cols: dict[str, str | int] = {}
    for lab in spec.channel_labels:
        au = au_name(lab)
        if au is not None and au not in cols:
            cols[au] = lab
    if not cols:
        return None, "no channel label names an action unit (AU01, AU12_r...)"
    for flag in FACE_FLAGS:
        lab = next((lab for lab in spec.channel_labels if lab.strip().lower() == flag), None)
        if lab is not None:
            cols[flag] = lab
    n_au = sum(k not in FACE_FLAGS for k in cols)
    return RoleReading("face", "face", cols, {"valid_threshold": 0.5}), f"{n_au} action units"


def eeg_fields(reading: RoleReading) -> tuple[str, ...]:
    """The electrode names an EEG reading yields, in its column order."""
    return tuple(reading.columns)


@lru_cache(maxsize=64)
def _indices(reading: RoleReading, spec: StreamSpec, column_index) -> tuple[int, ...]:
    """The channel index of every column of a reading (looked up once per binding: an EEG
    reading names 32 or more labels, read at every trial cut)."""
    return tuple(column_index(spec, col) for col in reading.columns.values())


def extract_eeg(
    reading: RoleReading, spec: StreamSpec, values: np.ndarray, column_index
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n, channels) µV and the electrode names."""
    idx = list(_indices(reading, spec, column_index))
    factor = EEG_UNITS[str(reading.params.get("unit", "uV")).lower()]
    out = np.asarray(values[:, idx], np.float64)
    return (out * factor if factor != 1.0 else out), eeg_fields(reading)


def extract_face(
    reading: RoleReading, spec: StreamSpec, values: np.ndarray, column_index
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n, AUs + 1): each action unit's intensity, NaN where tracking failed, then ``valid``.

    A sample is valid where ``success`` is not 0 and ``confidence`` is at least the reading's
    ``valid_threshold`` (default 0.5), when the stream has those columns.
    """
    cols = reading.columns
    aus = tuple(k for k in cols if k not in FACE_FLAGS)
    n = len(values)
    valid = np.ones(n, bool)
    threshold = reading.params.get("valid_threshold", 0.5)
    with np.errstate(invalid="ignore"):
        if "success" in cols:
            s = np.asarray(values[:, column_index(spec, cols["success"])], np.float64)
            valid &= np.isfinite(s) & (s != 0)
        if "confidence" in cols:
            c = np.asarray(values[:, column_index(spec, cols["confidence"])], np.float64)
            valid &= np.isfinite(c) & (c >= threshold)
    idx = _indices(reading, spec, column_index)
    out = np.empty((n, len(aus) + 1), np.float64)
    out[:, :-1] = values[:, [i for k, i in zip(cols, idx, strict=True) if k not in FACE_FLAGS]]
    out[~valid, :-1] = np.nan
    out[:, -1] = valid
    return out, (*aus, "valid")
