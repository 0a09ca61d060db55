"""Offline acquisition: the source contract and the acquisition core built over a source.

An offline source (the simulator, an XDF file) yields every stream's samples in data time, block
by block; consumers never wait on a wall clock. :func:`offline_acquisition` binds a source's
streams to roles and builds the same :class:`~acquisition.core.Acquisition` the live inlets feed,
for replay, offline prediction and dataset building.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from acquisition.config import AcquisitionConfig
from acquisition.lsl.binding import (
    EXCLUDED_NAMES,
    NO_ROLE_FITS,
    BindingPlan,
    Candidate,
    bind_roles,
    generic_reading,
)
from acquisition.lsl.plausibility import Plausibility, check_plan, first_seconds
from acquisition.lsl.presets import ALL_ROLES, HR_KINDS, ROLES, preset_streams
from acquisition.streams import Chunk, StreamSpec, shorten

if TYPE_CHECKING:
    from acquisition.core import Acquisition

log = logging.getLogger(__name__)


@dataclass
class Block:
    """Every stream's samples up to a point in data time.

    Attributes
    ----------
    t_end
        Data time up to which every stream is complete (exclusive): no later block carries a
        sample stamped before it.
    chunks
        Chunks with timestamps ``< t_end``, streams in any order, each chunk in time order.
    """

    t_end: float
    chunks: list[Chunk] = field(default_factory=list)


@runtime_checkable
class OfflineSource(Protocol):
    """A source of complete streams in data time."""

    streams: list[StreamSpec]

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """Blocks of about ``block_seconds`` of data time each, in order."""
        ...


def collect(
    source: OfflineSource, block_seconds: float = 0.5
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every stream's whole recording, concatenated over all blocks (for tests and small data).

    Returns
    -------
    dict
        Stream key → (timestamps (n,), values (n, channel_count)); empty arrays for streams
        without samples.
    """
    parts: dict[str, tuple[list, list]] = {s.key: ([], []) for s in source.streams}
    for block in source.iter_blocks(block_seconds):
        for chunk in block.chunks:
            ts, vals = parts.setdefault(chunk.stream.key, ([], []))
            ts.append(chunk.timestamps)
            vals.append(chunk.values)
    out = {}
    for spec in source.streams:
        ts, vals = parts[spec.key]
        dtype = object if spec.is_string else np.float64
        out[spec.key] = (
            np.concatenate(ts) if ts else np.empty(0),
            np.concatenate(vals) if vals else np.empty((0, spec.channel_count), dtype),
        )
    return out


class UnboundSourceError(ValueError):
    """A source whose streams cannot fill the required roles; the message is one line."""


ROLE_HINTS: dict[str, tuple[str, ...]] = {
    "gaze": ("gaze", "eye", "pupil", "tobii", "eyelink"),
    "gsr": ("gsr", "eda", "electrodermal", "skin", "conductance"),
    "hr": ("hr", "heart", "ecg", "ekg", "ppg", "bvp", "pulse", "rr", "ibi"),
    "markers": ("marker", "stim", "event", "trigger"),
    "eeg": ("eeg", "brain", "electroencephalogram"),
    "face": ("face", "facial", "openface", "au", "aus"),
}
"""Words in a stream's type or name that make it a likely stream for a role (for messages)."""

RULE_HINT = (
    "bind a stream to {roles} with a [roles.<role>] rule in a --config file, or leave the role "
    "out of trial.required_roles (docs/configuration.md)"
)


@dataclass
class StreamInfo:
    """What the binding report says about one stream of a source."""

    spec: StreamSpec
    label: str
    samples: int | None = None
    foreign_offset: float | None = None
    order: int = 0


@dataclass
class OfflineBinding:
    """Which stream plays each role in an offline source, and why every other one does not.

    Attributes
    ----------
    plan
        The binding the acquisition core is built from.
    required
        Roles a trial needs (markers included).
    infos
        Stream key → its label, sample count, foreign-clock offset and file position.
    chosen_because
        Role → extra reason of the choice (a tie broken, a foreign or empty stream passed over).
    rejected
        Role → [(stream label, why it was not chosen)].
    unused
        [(stream label, why it plays no role)].
    missing
        Required roles → why no stream plays it (the likely streams and what was wrong).
    notes
        Lines about the choice as a whole (markers on a foreign clock).
    plausibility
        Role → verdict on the bound stream's first seconds (see
        :mod:`acquisition.lsl.plausibility`); empty when the source was not sampled.
    """

    plan: BindingPlan
    required: tuple[str, ...]
    infos: dict[str, StreamInfo]
    chosen_because: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    unused: list[tuple[str, str]] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plausibility: dict[str, Plausibility] = field(default_factory=dict)

    @property
    def roles(self) -> dict[str, str]:
        """Role → key of the stream that plays it."""
        return {role: c.spec.key for role, c in self.plan.roles.items()}

    def label(self, spec: StreamSpec) -> str:
        """``stream 3 ('Name')`` (or ``'Name'`` for sources without stream ids)."""
        info = self.infos.get(spec.key)
        return info.label if info is not None else repr(shorten(spec.name))

    def lines(self) -> list[str]:
        """The binding, one role a line, each passed-over candidate indented below it."""
        out = ["roles:"]
        shown = [r for r in ALL_ROLES if r in ROLES or r in self.plan.roles or r in self.required]
        for role in shown:
            c = self.plan.roles.get(role)
            if c is None:
                need = "MISSING (required)" if role in self.required else "not bound (optional)"
                why = self.missing.get(role)
                out.append(f"  {role:8s} <- {need}" + (f": {why}" if why else ""))
            else:
                extra = self.chosen_because.get(role)
                out.append(
                    f"  {role:8s} <- {self.label(c.spec)} [{c.reading.kind}; {c.why}]"
                    + (f"; {extra}" if extra else "")
                )
                verdict = self.plausibility.get(role)
                if verdict is not None:
                    out.append(f"      first seconds: {verdict.line()}")
            for label, why in self.rejected.get(role, []):
                out.append(f"      not {label}: {why}")
        for label, why in self.unused:
            out.append(f"  unused   {label}: {why}")
        missing = self.plan.missing(self.required)
        if missing:
            out.append(f"  to fix: {RULE_HINT.format(roles=', '.join(missing))}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out

    def missing_hint(self) -> str:
        """Why each missing role has no stream, for the one-line error ('' when none)."""
        missing = self.plan.missing(self.required)
        if not missing:
            return ""
        parts = [
            f"{role}: {self.missing.get(role) or 'no stream looks like one'}" for role in missing
        ]
        return "; ".join(parts) + f"; {RULE_HINT.format(roles=', '.join(missing))}"


def _stream_infos(source) -> dict[str, StreamInfo]:
    """Labels, sample counts and foreign-clock offsets of a source's streams."""
    file = getattr(source, "file", None)
    foreign = getattr(source, "foreign", {}) or {}
    out: dict[str, StreamInfo] = {}
    if file is not None and hasattr(file, "streams"):
        for i, s in enumerate(file.streams):
            out[s.spec.key] = StreamInfo(
                s.spec,
                f"stream {s.stream_id} ({shorten(s.spec.name)!r})",
                len(s),
                foreign.get(s.stream_id),
                i,
            )
    for i, spec in enumerate(source.streams):
        out.setdefault(spec.key, StreamInfo(spec, repr(shorten(spec.name)), None, None, i))
    return out


def _rank(role: str, c: Candidate) -> tuple:
    """How good a candidate is (higher is better), as :func:`bind_roles` judges it."""
    if role == "hr":
        kind = HR_KINDS.index(c.reading.kind) if c.reading.kind in HR_KINDS else len(HR_KINDS)
        return (-kind, c.score)
    return (c.score,)


def _usable(info: StreamInfo) -> tuple[bool, bool]:
    """(on the common clock, holds samples) — unknown counts as yes."""
    return info.foreign_offset is None, info.samples is None or info.samples > 0


def _why_not(role: str, c: Candidate, best: Candidate, infos: dict[str, StreamInfo]) -> str:
    """Why candidate ``c`` was passed over for ``best``."""
    mine, theirs = infos[c.spec.key], infos[best.spec.key]
    if mine.foreign_offset is not None:
        return f"on a foreign clock ({mine.foreign_offset:+.1f} s from the others)"
    if mine.samples == 0:
        return "holds no samples"
    if _rank(role, c) < _rank(role, best):
        if role == "hr" and c.reading.kind != best.reading.kind:
            return (
                f"read as {c.reading.kind}, which ranks below {best.reading.kind} (heart rate "
                "prefers a direct HR channel, then RR/IBI intervals, then ECG, then PPG)"
            )
        return f"a weaker match ({c.why}, score {c.score:g} < {best.score:g})"
    if (mine.samples or 0) < (theirs.samples or 0):
        return f"as good a match, fewer samples ({mine.samples} < {theirs.samples})"
    return "as good a match, later in the file"


def _hinted(role: str, spec: StreamSpec) -> bool:
    text = f"{spec.type} {spec.name}".lower()
    words = set(re.findall(r"[a-z]+", text))
    hints = ROLE_HINTS[role]
    if role == "markers" and spec.is_string:
        return True
    return any(h in words or (len(h) > 3 and h in text) for h in hints)


def _why_not_bound(plan: BindingPlan, spec: StreamSpec, role: str | None = None) -> str:
    """The binder's reason ``spec`` is not bound, or what it lacks where the binder only says no
    role fits: one explanation per stream, in the missing role's line and the unused one
    (the missing line gave a second, less useful one)."""
    why = plan.unbound.get(spec.key)
    return why if why and why != NO_ROLE_FITS else _why_unbindable(spec, role)


def _why_unbindable(spec: StreamSpec, role: str | None = None) -> str:
    """Why a stream yields no candidate (for ``role``, or for any role)."""
    presets = [p for p in preset_streams() if p.type.lower() == spec.type.lower()]
    if role is not None:
        presets = [p for p in presets if any(r.role == role for r in p.readings)]
    if presets:
        have = {lab.lower() for lab in spec.channel_labels}
        options = [
            (p, [v for v in r.columns.values() if v.lower() not in have])
            for p in presets
            # For no role in particular: what each preset mainly reads from this type.
            for r in (p.readings if role is not None else p.readings[:1])
            if role in (None, r.role)
        ]
        p, lacking = min(options, key=lambda o: len(o[1]))
        if not spec.channel_labels:
            return (
                f"its type {shorten(spec.type)!r} is preset {p.preset}'s but it has no channel "
                f"labels to find {', '.join(lacking)} by"
            )
        return (
            f"its type {shorten(spec.type)!r} is preset {p.preset}'s but its channel labels lack "
            f"{', '.join(lacking)}"
        )
    reading, why = generic_reading(spec)
    if reading is None:
        return why
    if role is not None and reading.role != role:
        return f"its type {shorten(spec.type)!r} is read as {reading.role}"
    return f"no preset or generic reading knows its type {shorten(spec.type)!r}"


def _first_seconds_verdicts(source, plan: BindingPlan) -> dict[str, Plausibility]:
    """Plausibility of each bound role from the source's first seconds; {} when it cannot be
    read (a damaged file says so in its own warnings, the check must not stop the command)."""
    try:
        return check_plan(plan, first_seconds(source))
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        log.debug("plausibility check skipped: %s: %s", type(exc).__name__, exc)
        return {}


def bind_offline(source, config: AcquisitionConfig, check: bool = True) -> OfflineBinding:
    """Bind an offline source's streams to roles and say why about every stream.

    :func:`~acquisition.lsl.binding.bind_roles` decides, as for live streams, with three
    refinements that only a recording allows: a stream on a foreign clock or without samples
    is passed over when another candidate is usable, and equal candidates (four identical
    marker streams) are decided by the most samples, then the file order, never by chance.

    Parameters
    ----------
    source
        An offline source (``streams``; an :class:`~acquisition.xdf.source.XdfSource` also gives
        stream ids, sample counts and foreign clocks).
    config
        Binding rules and required roles.
    check
        Read the first seconds of every bound stream and judge whether they look like the
        role's signal (:attr:`OfflineBinding.plausibility`).

    Returns
    -------
    OfflineBinding
        The plan and its reasons.
    """
    plan = bind_roles(source.streams, config.rules)
    automatic = bind_roles(source.streams, None) if config.rules else plan
    infos = _stream_infos(source)
    required = tuple(dict.fromkeys((*config.trial.required_roles, "markers")))
    binding = OfflineBinding(plan, required, infos)
    ruled = {rule.role for rule in config.rules}
    for role, all_cands in plan.candidates.items():
        if not all_cands:
            continue

        def key(c: Candidate, role: str = role) -> tuple:
            info = infos[c.spec.key]
            return (*_usable(info), *_rank(role, c), info.samples or 0, -info.order)

        # One candidate per stream: its best reading (the first of equals, as bind_roles).
        per_stream: dict[str, Candidate] = {}
        for c in all_cands:
            held = per_stream.get(c.spec.key)
            if held is None or _rank(role, c) > _rank(role, held):
                per_stream[c.spec.key] = c
        cands = list(per_stream.values())
        best = max(cands, key=key)
        old = plan.roles.get(role)
        plan.roles[role] = best
        reasons = []
        if old is not None and old.spec.key != best.spec.key and old.spec.key in per_stream:
            reasons.append(f"{binding.label(old.spec)} {_why_not(role, old, best, infos)}")
        ties = [
            c
            for c in cands
            if c is not best
            and _usable(infos[c.spec.key]) == _usable(infos[best.spec.key])
            and _rank(role, c) == _rank(role, best)
        ]
        if ties:
            reasons.append(
                f"{len(ties) + 1} equal candidates: chosen by most samples, then file order"
            )
        if reasons:
            binding.chosen_because[role] = "; ".join(reasons)
        binding.rejected[role] = [
            (binding.label(c.spec), _why_not(role, c, best, infos)) for c in cands if c is not best
        ]
        if role in ruled:
            others = {c.spec.key for c in automatic.candidates.get(role, [])} - {
                c.spec.key for c in cands
            }
            binding.rejected[role] += [
                (infos[k].label, f"the config's [roles.{role}] rule does not match it")
                for k in sorted(others, key=lambda k: infos[k].order)
            ]
    for role in required:
        if role in plan.roles:
            continue
        binding.missing[role] = _missing_reason(role, source.streams, automatic, infos, ruled)
    used = {k for cands in plan.candidates.values() for k in (c.spec.key for c in cands)}
    for spec in source.streams:
        if spec.key in used:
            continue
        if EXCLUDED_NAMES.match(spec.name):
            why = "EmoEye's own output stream"
        else:
            why = _why_not_bound(plan, spec)
        binding.unused.append((infos[spec.key].label, why))
    marker = plan.roles.get("markers")
    if marker is not None and infos[marker.spec.key].foreign_offset is not None:
        off = infos[marker.spec.key].foreign_offset
        binding.notes.append(
            f"markers come from {binding.label(marker.spec)}, which is on a foreign clock "
            f"({off:+.1f} s from the data streams): its markers cannot be placed in the data, so "
            "no trials are cut (record the marker stream with clock offsets, or on the data's "
            "host)"
        )
    if check:
        binding.plausibility = _first_seconds_verdicts(source, plan)
    return binding


def _missing_reason(
    role: str,
    streams: list[StreamSpec],
    automatic: BindingPlan,
    infos: dict[str, StreamInfo],
    ruled: set[str],
) -> str:
    """Why ``role`` has no stream: the likely streams and what stopped each, and what to do."""
    if role in ruled:
        would = [c.spec for c in automatic.candidates.get(role, [])]
        if would:
            names = ", ".join(infos[s.key].label for s in would)
            return f"the config's [roles.{role}] rule matches no stream ({names} would bind without it)"
        return f"the config's [roles.{role}] rule matches no stream"
    likely = [s for s in streams if _hinted(role, s) and not EXCLUDED_NAMES.match(s.name)]
    if not likely:
        return "no stream looks like one"
    return "; ".join(
        f"{infos[s.key].label} was not bound: {_why_not_bound(automatic, s, role)}" for s in likely
    )


def missing_roles_message(summary: str, source: object, what: str = "", hint: str = "") -> str:
    """One line for a source whose streams cannot fill the roles.

    A file cut off inside its marker stream's header has no marker stream: the role is missing
    because of the damage, and the command stops before it prints the file's warnings, so the
    first of them goes on the same line.

    Parameters
    ----------
    summary
        :attr:`acquisition.core.MissingRoleError.summary` (missing roles, streams present).
    source
        The source; its ``warnings`` (an XDF file's problems), if any, are cited.
    what
        What failed, e.g. ``"cannot replay session.xdf"`` (put first when given).
    hint
        Why the likely streams were rejected and what to do (:meth:`OfflineBinding.missing_hint`).

    Returns
    -------
    str
        ``"<what>: <summary>"``, then ``"; why: <hint>"`` and ``"; the file reports: <first
        warning>"`` when there are.
    """
    message = f"{what}: {summary}" if what else summary
    if hint:
        message += f"; why: {hint}"
    warnings = list(getattr(source, "warnings", None) or [])
    if not warnings:
        return message
    more = f" (and {len(warnings) - 1} more problem(s))" if len(warnings) > 1 else ""
    return f"{message}; the file reports: {warnings[0]}{more}"


def offline_acquisition(
    source,
    config: AcquisitionConfig,
    verb: str,
    binding: OfflineBinding | None = None,
    require_markers: bool = True,
) -> Acquisition:
    """Bind ``source``'s streams by ``config``'s rules and build the acquisition core.

    Parameters
    ----------
    source
        An offline source (``streams``; ``path`` and ``warnings`` when it is a file).
    config
        Trial spec, marker formats, binding rules.
    verb
        What the caller does, for the error line (``"replay"``, ``"predict"``); empty: the
        line starts with the missing roles (the caller names the source).
    binding
        The binding already made (:func:`bind_offline`); made here when None.
    require_markers
        False in continuous mode: a source without a marker stream is cut all the same.

    Raises
    ------
    UnboundSourceError
        A required role has no stream: one line naming it, the streams present, why the likely
        streams were rejected, where to bind them, and, for a damaged file, its first problem.
    """
    from acquisition.core import Acquisition, MissingRoleError  # not needed to bind (`info`)

    binding = binding or bind_offline(source, config)
    try:
        # A simulation knows its generated pictures (genN-K ids); files use the config's folder.
        catalogue = getattr(source, "catalogue", None)
        return Acquisition(
            binding.plan,
            config,
            strict=True,
            catalogue=catalogue,
            require_markers=require_markers,
        )
    except MissingRoleError as exc:
        # One line (the full binding report is what `emoeye info` prints).
        what = f"cannot {verb} {getattr(source, 'path', 'the source')}" if verb else ""
        raise UnboundSourceError(
            missing_roles_message(exc.summary, source, what, binding.missing_hint())
        ) from None
