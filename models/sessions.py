"""The participant map: which person (and session) each recording is, never guessed.

A CSV with columns ``file`` and ``participant`` and optionally ``session`` and ``behaviour``
(alias ``ratings``: the recording's behavioural data file, relative to the map's folder)::

    file,participant,session,behaviour
    rec/s01_a.xdf,P01,1,beh/P01_1.csv
    rec/s01_b.xdf,P01,2,beh/P01_2.csv
    rec/s02.xdf,P02,1,beh/P02_1.csv

Files match by the path as written or by file name. Two sessions of one person carry one
participant id, so every participant-grouped split keeps them on one side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.behaviour import BehaviourError, read_table


class SessionMapError(BehaviourError):
    """A participant map that cannot be read, or a recording it does not name (one line)."""


@dataclass(frozen=True)
class Session:
    """One recording's entry in the map."""

    participant: str
    session: str | None = None
    behaviour: Path | None = None
    line: int = 0


@dataclass
class SessionMap:
    """File (as written and by name) → :class:`Session`."""

    path: Path | None
    entries: dict[str, Session]

    def lookup(self, recording: Path | str) -> Session | None:
        """The recording's entry: by the path as given, its resolved path, or its name."""
        p = Path(recording)
        for key in (str(recording), str(p.resolve()), p.name):
            if key in self.entries:
                return self.entries[key]
        return None

    def require(self, recording: Path | str) -> Session:
        """The recording's entry, or :class:`SessionMapError` naming it."""
        found = self.lookup(recording)
        if found is None:
            where = f"in {self.path}" if self.path else "in the participant map"
            raise SessionMapError(
                f"{recording} is not {where} (file,participant[,session]); participant ids "
                "of real recordings are never guessed from file names"
            )
        return found


def read_session_map(text: str) -> SessionMap:
    """A map from a CSV path, or from inline ``rec1.xdf=P01,rec2.xdf=P02``."""
    path = Path(text)
    entries: dict[str, Session] = {}
    if path.suffix.lower() in (".csv", ".tsv") or (path.is_file() and "=" not in text):
        header, rows = read_table(path, "participant map")
        lower = {h.lower(): h for h in header}
        if not {"file", "participant"} <= set(lower):
            raise SessionMapError(
                f"participant map: {path} needs columns 'file' and 'participant' (optional: "
                f"session, behaviour); columns: {', '.join(header)}"
            )
        beh_col = lower.get("behaviour") or lower.get("behavior") or lower.get("ratings")
        pairs = []
        for line, cells in rows:
            f, pid = cells[lower["file"]], cells[lower["participant"]]
            if not f or not pid:
                raise SessionMapError(f"participant map: {path} line {line}: empty file or participant")  # fmt: skip
            beh = cells.get(beh_col, "") if beh_col else ""
            session = cells.get(lower["session"], "") if "session" in lower else ""
            pairs.append((f, Session(pid, session or None, path.parent / beh if beh else None, line)))  # fmt: skip
        base: Path | None = path
    else:
        pairs = []
        for item in text.split(","):
            f, sep, pid = item.partition("=")
            if not sep or not f.strip() or not pid.strip():
                raise SessionMapError(
                    f"participant map: expected FILE=PARTICIPANT, got {item.strip()!r} "
                    "(or give a .csv with columns file,participant[,session])"
                )
            pairs.append((f.strip(), Session(pid.strip())))
        base = None
    seen: dict[tuple[str, str | None], str] = {}
    by_name: dict[str, set[Session]] = {}
    for f, s in pairs:
        key = (s.participant, s.session)
        if s.session is not None and key in seen and seen[key] != f:
            raise SessionMapError(
                f"participant map: {f} and {seen[key]} are both {s.participant} session "
                f"{s.session}; give each recording its own session"
            )
        seen[key] = f
        entries[f] = s
        if base is not None:  # a path relative to the map's folder
            entries.setdefault(str((base.parent / f).resolve()), s)
        by_name.setdefault(Path(f).name, set()).add(s)
    for name, sessions in by_name.items():
        if len(sessions) == 1:  # a file name two folders share matches by full path only
            entries.setdefault(name, next(iter(sessions)))
    return SessionMap(base, entries)
