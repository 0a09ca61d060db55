"""Normative picture ratings (OASIS, IAPS, NAPS or a plain id/valence/arousal table).

Each table gives a picture id and its mean valence and arousal on the set's native scale. The
columns are recognised by name (case-insensitive):

=========  =====================  ===============  ===============  ==============
format     id column              valence mean     arousal mean     native scale
=========  =====================  ===============  ===============  ==============
OASIS      ``Theme``              ``Valence_mean``  ``Arousal_mean``  1..7
IAPS       ``IAPS`` (or ``id``)   ``valmn``        ``aromn``        1..9
NAPS       ``ID``                 ``Valence_M``    ``Arousal_M``    1..9
plain      ``id``/``stimulus``    ``valence``      ``arousal``      declare it
=========  =====================  ===============  ===============  ==============

Means are mapped onto the model's 1..7 axis with the scale mapping of
:mod:`acquisition.trials.scale` (:func:`~acquisition.trials.scale.model_axis`), so a mean falls
in the class a rating of that value would. Ids match stimulus ids as file stems, case-insensitive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.trials.scale import check_scale, in_scale, model_axis
from models.behaviour import BehaviourError, read_table, stimulus_key

FORMATS: tuple[tuple[str, tuple[str, ...], str, str, tuple[float, float] | None], ...] = (
    # name, id columns, valence mean, arousal mean, native scale
    ("OASIS", ("theme", "id", "stimulus", "image"), "valence_mean", "arousal_mean", (1.0, 7.0)),
    ("IAPS", ("iaps", "id", "slide", "stimulus", "image"), "valmn", "aromn", (1.0, 9.0)),
    ("NAPS", ("id", "stimulus", "image"), "valence_m", "arousal_m", (1.0, 9.0)),
    ("plain", ("id", "stimulus_id", "stimulus", "image", "picture", "file"), "valence",
     "arousal", None),
)  # fmt: skip
"""Recognised tables, tried in order."""


class NormsError(BehaviourError):
    """A norms table that cannot be read or used (one line)."""


@dataclass
class Norms:
    """Normative ratings by stimulus key (:func:`models.behaviour.stimulus_key`).

    Attributes
    ----------
    values
        Key → (arousal, valence) on the model's 1..7 axis.
    raw
        Key → (arousal, valence) as the table gives them.
    names
        Key → the id as the table spells it.
    """

    path: Path
    format: str
    scale: tuple[float, float]
    values: dict[str, tuple[float, float]] = field(default_factory=dict)
    raw: dict[str, tuple[float, float]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def get(self, stimulus_id: str) -> tuple[float, float] | None:
        """(arousal, valence) on the model axis of a stimulus, None when the table lacks it."""
        return self.values.get(stimulus_key(stimulus_id))

    def for_stimuli(self, stimulus_ids: Iterable[str], where: str = "") -> dict[str, tuple[float, float]]:  # fmt: skip
        """Stimulus id → norms for each id; :class:`NormsError` naming the first id the table
        lacks (every shown picture needs its norms)."""
        out: dict[str, tuple[float, float]] = {}
        ids = list(dict.fromkeys(str(s) for s in stimulus_ids))
        missing = [s for s in ids if self.get(s) is None]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise NormsError(
                f"norms: {self.path} has no norms for stimulus {missing[0]!r}{more}"
                f"{' shown in ' + where if where else ''}; every shown picture needs a row"
            )
        for s in ids:
            out[s] = self.get(s)  # type: ignore[assignment]
        return out


def read_norms(path: Path | str, scale: tuple[float, float] | None = None) -> Norms:
    """Read a norms table; ``scale`` overrides the format's native scale (needed for a plain
    table).

    Raises
    ------
    NormsError
        Unknown columns, no declared scale for a plain table, a mean that is no number or lies
        outside the scale, an id given twice.
    """
    path = Path(path)
    try:
        header, table = read_table(path, "norms")
    except BehaviourError as exc:
        raise NormsError(str(exc)) from None
    lower = {h.lower().replace(" ", "_"): h for h in header}
    found = next(
        (
            (name, id_col, val, aro, native)
            for name, ids, val, aro, native in FORMATS
            if (id_col := next((lower[c] for c in ids if c in lower), None)) is not None
            and val in lower
            and aro in lower
        ),
        None,
    )
    if found is None:
        raise NormsError(
            f"norms: {path} is no OASIS, IAPS, NAPS or plain id,valence,arousal table "
            f"(columns: {', '.join(header)})"
        )
    name, id_col, val, aro, native = found
    if scale is None and native is None:
        raise NormsError(
            f"norms: {path} does not say its rating scale (a plain id,valence,arousal table); "
            "declare it (--norms-scale LOW HIGH or [stimuli] norms_scale = [LOW, HIGH])"
        )
    lo, hi = check_scale(*(scale or native), what="norms scale")  # type: ignore[misc]
    norms = Norms(path, name, (lo, hi))
    lines: dict[str, int] = {}
    for line, cells in table:
        sid = cells.get(id_col, "")
        if not sid:
            raise NormsError(f"norms: {path} line {line}: no id in column {id_col!r}")
        pair = []
        for col in (aro, val):
            text = cells.get(lower[col], "")
            try:
                v = float(text)
            except ValueError:
                raise NormsError(
                    f"norms: {path} line {line} ({sid!r}): {lower[col]} {text!r} is not a number"
                ) from None
            if not in_scale(v, lo, hi):
                raise NormsError(
                    f"norms: {path} line {line} ({sid!r}): {lower[col]} {v:g} is outside the "
                    f"{name} scale {lo:g}..{hi:g}"
                )
            pair.append(v)
        key = stimulus_key(sid)
        if key in lines:
            raise NormsError(f"norms: {path} line {line}: id {sid!r} repeats line {lines[key]}")
        lines[key] = line
        norms.raw[key] = (pair[0], pair[1])
        norms.values[key] = (model_axis(pair[0], lo, hi), model_axis(pair[1], lo, hi))
        norms.names[key] = sid
    if not norms.values:
        raise NormsError(f"norms: {path} has no rows")
    return norms


class NormSource:
    """Where a picture's norms come from at run time (live, replay, ``Predictor``).

    A norms table (``[stimuli] norms``, :func:`read_norms`) first; else the catalogue's own norms
    (the bundled photos' ``stimuli.json`` and the simulator's generated pictures carry them on the
    model's 1..7 axis; a user folder's pictures do not).

    Parameters
    ----------
    table
        A :class:`Norms` table, or a mapping stimulus id → (arousal, valence) on the model axis.
    catalogue
        A stimulus catalogue (``get(id)`` → a stimulus with ``arousal``/``valence``, NaN when
        unknown).
    """

    def __init__(self, table: Norms | Mapping[str, Any] | None = None, catalogue: Any = None) -> None:  # fmt: skip
        self.table = table
        self.catalogue = catalogue

    def get(self, stimulus_id: str) -> tuple[float, float] | None:
        """(arousal, valence) on the model axis, or None when neither source knows the picture."""
        if not stimulus_id:
            return None
        if self.table is not None:
            hit = self.table.get(stimulus_id)
            if hit is not None:
                return float(hit[0]), float(hit[1])
        if self.catalogue is None:
            return None
        try:
            stim = self.catalogue.get(stimulus_id)
        except KeyError:  # UnknownStimulusError
            return None
        a, v = float(getattr(stim, "arousal", math.nan)), float(getattr(stim, "valence", math.nan))
        return (a, v) if math.isfinite(a) and math.isfinite(v) else None

    def describe(self) -> str:
        """Where the norms come from, for logs and notes."""
        parts = []
        if isinstance(self.table, Norms):
            parts.append(f"{self.table.path} ({self.table.format})")
        elif self.table is not None:
            parts.append("a norms mapping")
        if self.catalogue is not None:
            parts.append("the stimulus catalogue")
        return ", then ".join(parts) or "nowhere"
