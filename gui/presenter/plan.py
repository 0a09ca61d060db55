"""What the presenter shows and what it writes, without Qt: the picture list, the trial plan,
the marker texts and the CSV log."""

from __future__ import annotations

import csv
import io
import math
import os
import random
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from acquisition.stimulus_catalogue import IMAGE_SUFFIXES

_BAD_ID = re.compile(r"[\s;,]")
"""Characters a stimulus id cannot carry in the default onset marker (``onset:<id>``)."""


class PresenterError(ValueError):
    """A refused presenter input (folder, option), shown as one line."""


@dataclass(frozen=True)
class Picture:
    """A picture of the folder: its stimulus id (the file stem) and file."""

    id: str
    path: Path


def onset_marker(stimulus_id: str) -> str:
    """The default onset marker (``docs/configuration.md``, "Default marker format")."""
    return f"onset:{stimulus_id}"


def rating_marker(arousal: float, valence: float) -> str:
    """The default rating marker, values on the rating scale."""
    return f"rating:arousal={arousal:g};valence={valence:g}"


ABORT_MARKER = "presenter:abort"
"""Sent when the session is aborted (Escape, Ctrl-C); ``emoeye run`` counts it as unknown unless
``markers.ignore`` covers it."""


def list_pictures(folder: Path | str, readable=None) -> list[Picture]:
    """The pictures of ``folder`` (image suffixes, sorted by file name).

    Parameters
    ----------
    folder
        A folder of ``.jpg``/``.jpeg``/``.png``/``.bmp`` files; their stems are the stimulus ids.
    readable
        ``path -> bool``: whether a picture can be decoded (the presenter passes Qt's reader);
        None skips the check.

    Raises
    ------
    PresenterError
        No such folder, unreadable, no pictures, an undecodable picture, a stem a marker cannot
        carry, or two files with the same stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PresenterError(f"picture folder {folder} does not exist or is not a folder")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise PresenterError(f"picture folder {folder} cannot be read ({exc.strerror})") from None
    paths = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not paths:
        raise PresenterError(
            f"picture folder {folder} has no pictures ({', '.join(IMAGE_SUFFIXES)})"
        )
    seen: dict[str, Path] = {}
    out = []
    for path in paths:
        if _BAD_ID.search(path.stem):
            raise PresenterError(
                f"picture {path.name!r}: spaces, ';' or ',' cannot travel in an onset marker; "
                "rename the file"
            )
        if path.stem.lower() in seen:
            raise PresenterError(
                f"pictures {seen[path.stem.lower()].name!r} and {path.name!r} have the same "
                "stimulus id; rename one"
            )
        if not os.access(path, os.R_OK) or (readable is not None and not readable(path)):
            raise PresenterError(f"picture {path} cannot be read as an image")
        seen[path.stem.lower()] = path
        out.append(Picture(path.stem, path))
    return out


def parse_isi(text: str) -> tuple[float, float]:
    """``"1-2"`` → (1.0, 2.0), ``"1.5"`` → (1.5, 1.5): the fixation interval's range in s."""
    try:
        lo, _, hi = text.partition("-")
        low, high = float(lo), float(hi) if hi else float(lo)
    except ValueError:
        raise PresenterError(f"--isi {text!r}: expected seconds or a range like 1-2") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise PresenterError(f"--isi {text!r}: expected 0 <= low <= high")
    return low, high


@dataclass(frozen=True)
class PlannedTrial:
    """One trial: the picture and the fixation before it (s)."""

    index: int
    picture: Picture
    fixation: float


def plan_trials(
    pictures: list[Picture],
    n_trials: int | None = None,
    order: str = "random",
    isi: tuple[float, float] = (1.0, 2.0),
    seed: int | None = None,
) -> list[PlannedTrial]:
    """The trial sequence: every picture once per pass (shuffled per pass for ``random``),
    passes repeated until ``n_trials`` (default: one pass); fixation drawn uniformly in ``isi``."""
    if order not in ("random", "fixed"):
        raise PresenterError(f"--order {order!r}: expected random or fixed")
    n = len(pictures) if n_trials is None else n_trials
    if n < 1:
        raise PresenterError(f"--trials {n}: expected at least 1")
    rng = random.Random(seed)
    seq: list[Picture] = []
    while len(seq) < n:
        block = list(pictures)
        if order == "random":
            rng.shuffle(block)
        seq.extend(block)
    return [PlannedTrial(i + 1, pic, rng.uniform(*isi)) for i, pic in enumerate(seq[:n])]


def scale_points(scale: tuple[float, float]) -> list[float]:
    """The rating values offered: integers from min to max (at most 9, keys 1-9)."""
    lo, hi = scale
    if lo != int(lo) or hi != int(hi) or not lo < hi or hi - lo + 1 > 9:
        raise PresenterError(
            f"--scale {lo:g} {hi:g}: expected integers min < max with at most 9 points"
        )
    return [float(v) for v in range(int(lo), int(hi) + 1)]


@dataclass
class TrialRecord:
    """One row of the presenter's CSV log (times on the LSL clock, seconds)."""

    participant: str
    trial: int
    stimulus: str
    file: str
    fixation_s: float
    onset: float = math.nan
    paint_to_stamp_ms: float = math.nan
    shown_s: float = math.nan
    arousal: float = math.nan
    valence: float = math.nan
    rt_arousal_s: float = math.nan
    rt_valence_s: float = math.nan
    status: str = "planned"


COLUMNS = tuple(f.name for f in fields(TrialRecord))


@dataclass
class TrialLog:
    """The CSV log, rewritten whole through a temporary file after every trial: a crash or a
    power cut leaves the previous complete log, never a partial row."""

    path: Path
    rows: list[TrialRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush()

    def add(self, row: TrialRecord) -> None:
        """Append ``row`` and write the file."""
        self.rows.append(row)
        self.flush()

    def flush(self) -> None:
        """Write every row (the last row's later changes included)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _cell(v) for k, v in asdict(row).items()})
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", newline="") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


def _cell(v: object) -> object:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6f}".rstrip("0").rstrip(".")
    return v
