"""Ratings from a behavioural CSV (a PsychoPy data file) matched to a recording's onsets.

A data file has a row per trial with the stimulus shown, its ratings and optionally its onset
time and trial order. Rows without a stimulus (instructions, breaks) are no trials. Trial rows
(sorted by the order column when there is one) are matched one to one, in order, with the
recording's accepted onset markers: the k-th row must name the k-th onset's stimulus, and with an
onset column the time from the first onset must agree within :data:`ONSET_TOLERANCE`. Anything
else (a row too many, an onset too many, another stimulus at position k, a rating outside the
declared scale) raises :class:`BehaviourError` with one line naming the row and trial: nothing is
dropped silently. A row with an empty rating cell leaves its trial unrated (counted).

In-stream rating markers keep working. When a trial has both, they must agree (same values, same
scale), else the build is refused (:func:`merge_ratings`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from acquisition.trials.scale import in_scale
from acquisition.trials.types import Ratings

if TYPE_CHECKING:
    from acquisition.onsets import OnsetRecord

ONSET_TOLERANCE = 0.5
"""Seconds two onsets (each from its file's first onset) may differ and still be one trial."""

COLUMNS = ("stimulus", "arousal", "valence", "onset", "order")
"""Roles of behavioural-file columns; ``onset`` and ``order`` are optional."""

DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "stimulus": ("stimulus", "stimulus_id", "stim", "image", "image_file", "picture", "stim_file"),
    "arousal": (
        "arousal", "arousal_rating", "arousal.response", "arousal_slider.response",
        "sam_arousal.response", "arousal_rating.response", "rating_arousal.response",
    ),
    "valence": (
        "valence", "valence_rating", "valence.response", "valence_slider.response",
        "sam_valence.response", "valence_rating.response", "rating_valence.response",
    ),
    "onset": (
        "onset", "stimulus_onset", "onset_time", "stimulus.started", "image.started",
        "stim.started", "picture.started",
    ),
    "order": ("order", "trial", "trial_number", "trials.thisn", "trials.thistrialn"),
}  # fmt: skip
"""Column names tried for each role, first present wins (case-insensitive; PsychoPy writes
``<routine component>.response`` and ``<component>.started``)."""


class BehaviourError(ValueError):
    """A behavioural file that cannot be read or does not match its recording (one line)."""


@dataclass
class BehaviourRow:
    """One trial row: its line in the file (header = line 1) and trial position (1-based)."""

    line: int
    trial: int
    stimulus: str
    arousal: float | None
    valence: float | None
    onset: float | None = None

    def where(self, path: Path | str) -> str:
        return f"{path} line {self.line} (trial {self.trial}, stimulus {self.stimulus!r})"


@dataclass
class Behaviour:
    """A behavioural file read: its trial rows in order and the columns used."""

    path: Path
    rows: list[BehaviourRow]
    columns: dict[str, str]
    non_trial_rows: int = 0
    unrated: int = 0
    scale: tuple[float, float] = (1.0, 7.0)


@dataclass
class Merged:
    """Ratings per onset after merging a behavioural file with in-stream markers."""

    ratings: list[Ratings | None]
    from_file: int = 0
    from_markers: int = 0
    agreeing: int = 0
    notes: list[str] = field(default_factory=list)


def parse_columns(text: str | None) -> dict[str, str]:
    """``"stimulus=image_file,arousal=sam_a.response"`` → role → column name."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, col = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in COLUMNS or not col.strip():
            raise BehaviourError(
                f"--behaviour-columns: expected ROLE=COLUMN with ROLE one of {', '.join(COLUMNS)}, "
                f"got {item.strip()!r}"
            )
        out[key] = col.strip()
    return out


def stimulus_key(value: str) -> str:
    """A stimulus name as compared across files: the file name's stem, lower case
    (``stimuli/Beach_01.PNG`` and ``beach_01`` are one picture)."""
    name = str(value).strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if re.search(r"\.[A-Za-z]{2,5}$", name) else name
    return stem.lower()


def _sniff(path: Path, text: str) -> csv.Dialect | type[csv.Dialect]:
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def read_table(path: Path | str, what: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV/TSV file's header and (line number, row) pairs; :class:`BehaviourError` when it
    cannot be read. Shared by the behavioural, participant and norms readers."""
    path = Path(path)
    if not path.is_file():
        raise BehaviourError(f"{what}: {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BehaviourError(f"{what}: {path} is unreadable ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""), _sniff(path, text))
    records = []  # (first line of the record, cells): a quoted cell may span lines
    start = 1
    try:
        for cells in reader:
            records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise BehaviourError(f"{what}: {path} line {start}: {exc}") from None
    if not records or not any(c.strip() for c in records[0][1]):
        raise BehaviourError(f"{what}: {path} is empty (expected a header row)")
    header = [c.strip() for c in records[0][1]]
    rows = []
    for n, cells in records[1:]:
        if not any(c.strip() for c in cells):
            continue
        rows.append((n, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}))  # fmt: skip
    return header, rows


def resolve_columns(
    header: Sequence[str], given: dict[str, str], defaults: dict[str, tuple[str, ...]],
    required: Sequence[str], path: Path | str, what: str,
) -> dict[str, str]:  # fmt: skip
    """Role → header column: the one given (must exist) or the first default present."""
    lower = {h.lower(): h for h in header}
    out: dict[str, str] = {}
    for role, names in defaults.items():
        if role in given:
            col = lower.get(given[role].lower())
            if col is None:
                raise BehaviourError(
                    f"{what}: {path} has no column {given[role]!r} (given for {role}); "
                    f"columns: {', '.join(header)}"
                )
            out[role] = col
            continue
        col = next((lower[n] for n in names if n in lower), None)
        if col is not None:
            out[role] = col
        elif role in required:
            raise BehaviourError(
                f"{what}: {path} has no {role} column (tried {', '.join(names)}; name it with "
                f"--behaviour-columns {role}=COLUMN); columns: {', '.join(header)}"
            )
    return out


def _number(text: str, where: str, name: str) -> float | None:
    if text == "" or text.lower() in ("none", "nan", "na", "n/a"):
        return None
    try:
        value = float(text.strip("[]"))  # PsychoPy may write a one-element list
    except ValueError:
        raise BehaviourError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        return None
    return value


def read_behaviour(
    path: Path | str,
    columns: dict[str, str] | None = None,
    scale: tuple[float, float] = (1.0, 7.0),
) -> Behaviour:
    """Read a behavioural CSV (comma, semicolon or tab separated; a BOM is fine).

    Parameters
    ----------
    path
        The data file.
    columns
        Role → column name overrides (roles in :data:`COLUMNS`); else :data:`DEFAULT_COLUMNS`.
    scale
        The declared rating scale; a rating outside it is refused.

    Raises
    ------
    BehaviourError
        Missing columns, a non-numeric or out-of-scale rating, duplicate trial order numbers.
    """
    path = Path(path)
    header, table = read_table(path, "ratings")
    cols = resolve_columns(
        header, columns or {}, DEFAULT_COLUMNS, ("stimulus", "arousal", "valence"), path, "ratings"
    )
    rows: list[BehaviourRow] = []
    non_trial = 0
    orders: list[float] = []
    for line, cells in table:
        stim = cells.get(cols["stimulus"], "")
        if not stim:
            non_trial += 1  # instructions, breaks: no picture, no trial
            continue
        row = BehaviourRow(line, 0, stim, None, None)
        at = f"{path} line {line} (stimulus {stim!r})"
        row.arousal = _number(cells.get(cols["arousal"], ""), at, "arousal")
        row.valence = _number(cells.get(cols["valence"], ""), at, "valence")
        if "onset" in cols:
            row.onset = _number(cells.get(cols["onset"], ""), at, "onset")
        if "order" in cols:
            order = _number(cells.get(cols["order"], ""), at, f"order ({cols['order']})")
            if order is None:
                raise BehaviourError(f"{at}: no trial order in column {cols['order']!r}")
            orders.append(order)
        rows.append(row)
    if orders:
        seen: dict[float, int] = {}
        for row, order in zip(rows, orders, strict=True):
            if order in seen:
                raise BehaviourError(
                    f"{path} line {row.line}: trial order {order:g} ({cols['order']}) repeats "
                    f"line {seen[order]}"
                )
            seen[order] = row.line
        rows = [r for _, r in sorted(zip(orders, rows, strict=True), key=lambda p: p[0])]
    unrated = 0
    for k, row in enumerate(rows, start=1):
        row.trial = k
        for name in ("arousal", "valence"):
            v = getattr(row, name)
            if v is not None and not in_scale(v, *scale):
                raise BehaviourError(
                    f"{row.where(path)}: {name} {v:g} is outside the declared scale "
                    f"{scale[0]:g}..{scale[1]:g} (--scale LOW HIGH)"
                )
        unrated += row.arousal is None or row.valence is None
    if not rows:
        raise BehaviourError(
            f"ratings: {path} has no trial rows (no row names a stimulus in {cols['stimulus']!r})"
        )
    return Behaviour(path, rows, cols, non_trial, unrated, scale)


def match_rows(
    behaviour: Behaviour, onsets: Sequence[OnsetRecord], recording: str
) -> list[BehaviourRow]:
    """The behavioural row of each onset, in onset order.

    Raises
    ------
    BehaviourError
        Another stimulus at a position, a row without onset, an onset without row, or an onset
        time that disagrees (one line naming the row and trial).
    """
    rows, path = behaviour.rows, behaviour.path
    for k, (row, on) in enumerate(zip(rows, onsets, strict=False), start=1):
        if stimulus_key(row.stimulus) != stimulus_key(on.stimulus):
            raise BehaviourError(
                f"{row.where(path)} does not match {recording}: its onset {k} shows "
                f"{on.stimulus!r} (rows and onsets are matched in order)"
            )
    if len(rows) > len(onsets):
        row = rows[len(onsets)]
        raise BehaviourError(
            f"{row.where(path)} has no onset in {recording} ({len(rows)} trial rows, "
            f"{len(onsets)} onsets)"
        )
    if len(onsets) > len(rows):
        k = len(rows)
        raise BehaviourError(
            f"{recording} onset {k + 1} (stimulus {onsets[k].stimulus!r}, t={onsets[k].onset:.3f})"
            f" has no row in {path} ({len(rows)} trial rows, {len(onsets)} onsets)"
        )
    timed = [(r, o) for r, o in zip(rows, onsets, strict=True) if r.onset is not None]
    if timed:
        r0, o0 = timed[0]
        for row, on in timed[1:]:
            file_dt, rec_dt = row.onset - r0.onset, on.onset - o0.onset
            if abs(file_dt - rec_dt) > ONSET_TOLERANCE:
                raise BehaviourError(
                    f"{row.where(path)}: onset {file_dt:.2f} s after line {r0.line}'s, but in "
                    f"{recording} onset {row.trial} comes {rec_dt:.2f} s after onset {r0.trial} "
                    f"(tolerance {ONSET_TOLERANCE:g} s)"
                )
    return list(rows)


def merge_ratings(
    onsets: Sequence[OnsetRecord],
    behaviour: Behaviour | None,
    recording: str,
    scale: tuple[float, float],
    strict_scale: bool,
) -> Merged:
    """Ratings per onset from the behavioural file and the in-stream markers.

    A trial rated in both must get the same values from both, else :class:`BehaviourError`.
    With ``strict_scale`` (a declared ``--scale``) an in-stream rating outside it is refused
    too (without, the aligner drops and counts it, as live).
    """
    rows = match_rows(behaviour, onsets, recording) if behaviour is not None else None
    merged = Merged([None] * len(onsets))
    for k, on in enumerate(onsets):
        where = f"{recording} onset {k + 1} (stimulus {on.stimulus!r}, t={on.onset:.3f})"
        marker = on.rating
        if marker is not None and not strict_scale and not all(in_scale(v, *scale) for v in marker):
            marker = None  # dropped and counted by the aligner, as live
        if marker is not None and strict_scale:
            for name, v in zip(("arousal", "valence"), marker, strict=True):
                if not in_scale(v, *scale):
                    raise BehaviourError(
                        f"{where}: rating marker {name} {v:g} is outside the declared scale "
                        f"{scale[0]:g}..{scale[1]:g} (--scale LOW HIGH)"
                    )
        row = rows[k] if rows is not None else None
        from_file = (
            (row.arousal, row.valence)
            if row is not None and row.arousal is not None and row.valence is not None
            else None
        )
        if from_file is not None and marker is not None:
            if any(abs(a - b) > 1e-9 for a, b in zip(from_file, marker, strict=True)):
                raise BehaviourError(
                    f"{where}: its rating marker says arousal {marker[0]:g}, valence "
                    f"{marker[1]:g} but {row.where(behaviour.path)} says arousal "
                    f"{from_file[0]:g}, valence {from_file[1]:g}; drop one source or make them "
                    "agree"
                )
            merged.agreeing += 1
        if from_file is not None:
            merged.ratings[k] = Ratings(*from_file, *scale)
            merged.from_file += 1
        elif marker is not None:
            merged.from_markers += 1
    return merged
