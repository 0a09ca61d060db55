"""Areas of interest (AOIs): rectangles on a picture, and the fixations' dwell time in them.

An AOI file is CSV or JSON, rectangles in normalised screen coordinates (0..1, origin top-left,
y down: the gaze's own units):

CSV, one AOI a row::

    stimulus_id,name,x0,y0,x1,y1
    IAPS-1050,face,0.30,0.20,0.70,0.60
    *,left_half,0,0,0.5,1

JSON::

    {"IAPS-1050": [{"name": "face", "rect": [0.30, 0.20, 0.70, 0.60]}],
     "*": [{"name": "left_half", "rect": [0, 0, 0.5, 1]}]}

``*`` applies to every picture (a picture's own AOI of the same name wins). Names are letters,
digits, ``_`` and ``-``; each becomes three columns: ``aoi_<name>_dwell`` (s of fixation whose
centroid lies in the rectangle, edges included), ``aoi_<name>_fixations`` and
``aoi_<name>_first`` (s from the onset to the first such fixation). A picture without that AOI
gets NaN; a picture with it but never looked at gets 0 dwell, 0 fixations and NaN first.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = re.compile(r"^[A-Za-z0-9_-]+$")
ANY = "*"


class AoiError(ValueError):
    """An AOI file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Aoi:
    """One rectangle: ``(x0, y0, x1, y1)`` with x0 < x1 and y0 < y1."""

    name: str
    x0: float
    y0: float
    x1: float
    y1: float

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


class AoiSet:
    """The AOIs of every picture, read from a file (:func:`load_aois`)."""

    def __init__(self, by_stimulus: dict[str, list[Aoi]]) -> None:
        self.by_stimulus = by_stimulus
        self.names = sorted({a.name for aois in by_stimulus.values() for a in aois})

    def columns(self) -> list[str]:
        """The table columns of every AOI name, in name order."""
        return [f"aoi_{n}_{k}" for n in self.names for k in ("dwell", "fixations", "first")]

    def of(self, stimulus_id: str) -> dict[str, Aoi]:
        """The AOIs of a picture by name (``*`` ones, then its own)."""
        out = {a.name: a for a in self.by_stimulus.get(ANY, [])}
        out.update({a.name: a for a in self.by_stimulus.get(str(stimulus_id), [])})
        return out

    def features(self, stimulus_id: str, fixations) -> dict[str, float]:
        """The AOI columns of one trial from its fixations (:class:`features.gaze.Fixation`)."""
        out = dict.fromkeys(self.columns(), np.nan)
        for name, aoi in self.of(stimulus_id).items():
            inside = [f for f in fixations if aoi.contains(f.x, f.y)]
            out[f"aoi_{name}_dwell"] = float(sum(f.duration for f in inside))
            out[f"aoi_{name}_fixations"] = float(len(inside))
            out[f"aoi_{name}_first"] = inside[0].start if inside else np.nan
        return out


def _aoi(path: Path, where: str, name, rect) -> Aoi:
    name = str(name).strip()
    if not NAME.match(name):
        raise AoiError(f"{path}: {where}: AOI name {name!r} must be letters, digits, _ or -")
    try:
        x0, y0, x1, y1 = (float(v) for v in rect)
    except (TypeError, ValueError):
        raise AoiError(f"{path}: {where}: AOI {name!r} needs four numbers x0,y0,x1,y1") from None
    if not (x0 < x1 and y0 < y1) or not all(np.isfinite([x0, y0, x1, y1])):
        raise AoiError(f"{path}: {where}: AOI {name!r} needs x0 < x1 and y0 < y1, got {rect}")
    return Aoi(name, x0, y0, x1, y1)


def load_aois(path: Path) -> AoiSet:
    """Read an AOI file (CSV or JSON, see the module's text).

    Raises
    ------
    AoiError
        Unreadable file, missing columns, a bad name or rectangle, a name given twice for one
        picture; the message names the file and the row.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AoiError(f"cannot read AOI file {path}: {exc.strerror or exc}") from None
    items: list[tuple[str, str, Aoi]] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AoiError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise AoiError(f"{path}: expected an object of stimulus id -> list of AOIs")
        for sid, aois in data.items():
            if not isinstance(aois, list):
                raise AoiError(f"{path}: {sid!r}: expected a list of AOIs")
            for i, a in enumerate(aois):
                where = f"{sid!r} AOI {i + 1}"
                if not isinstance(a, dict) or "name" not in a or "rect" not in a:
                    raise AoiError(f"{path}: {where}: needs 'name' and 'rect'")
                items.append((str(sid), where, _aoi(path, where, a["name"], a["rect"])))
    else:
        rows = list(csv.DictReader(text.splitlines()))
        need = {"stimulus_id", "name", "x0", "y0", "x1", "y1"}
        if not rows or not need <= set(rows[0]):
            raise AoiError(f"{path}: an AOI CSV needs the columns {','.join(sorted(need))}")
        for i, r in enumerate(rows, start=2):
            where = f"line {i}"
            rect = [r["x0"], r["y0"], r["x1"], r["y1"]]
            items.append((r["stimulus_id"].strip(), where, _aoi(path, where, r["name"], rect)))
    by: dict[str, list[Aoi]] = {}
    for sid, where, aoi in items:
        if any(a.name == aoi.name for a in by.get(sid, [])):
            raise AoiError(f"{path}: {where}: AOI {aoi.name!r} given twice for {sid!r}")
        by.setdefault(sid, []).append(aoi)
    return AoiSet(by)
