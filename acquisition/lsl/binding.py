"""Binding roles to visible streams: built-in presets first, user rules over them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from acquisition.config import RoleRule
from acquisition.lsl.modalities import eeg_reading, face_reading
from acquisition.lsl.presets import (
    ALL_ROLES,
    COLUMN_KEYS,
    EXTRA_ROLES,
    HR_KINDS,
    ROLES,
    PresetStream,
    RoleReading,
    preset_streams,
)
from acquisition.lsl.reading import (
    PADDING_S,
    RoleSeries,
    column_index,
    describe_column,
    extract,
)
from acquisition.ringbuffer import RingBuffer
from acquisition.streams import StreamSpec, shorten

EXCLUDED_NAMES = re.compile(r"^EmoEye-", re.IGNORECASE)
"""Our own outlets (predictions) are never bound as inputs."""

NO_ROLE_FITS = "no role fits"
""":attr:`BindingPlan.unbound`'s reason for a stream no role has a candidate in (the offline
binding says what the stream lacks instead)."""

TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "gaze": ("gaze", "eyetracker", "eyetracking", "eyegaze"),
    "gsr": ("gsr", "eda", "electrodermalactivity", "skinconductance", "galvanicskinresponse"),
    "hr": ("hr", "heartrate", "bpm"),
    "ecg": ("ecg", "ekg"),
    "ppg": ("ppg", "bvp"),
    "rr": ("rr", "rri", "rrinterval", "rrintervals"),
    "ibi": ("ibi", "interbeatinterval"),
    "markers": ("markers", "marker", "stimulus", "stimuli"),
    "eeg": ("eeg", "electroencephalogram", "electroencephalography"),
    "face": ("facialau", "au", "aus", "actionunits", "face", "facs", "facialexpression"),
}
"""Stream types EmoEye reads without a preset (compared lower-case, without punctuation), by
the signal they carry. A channel label that is one of these names marks that signal's channel."""

_GENERIC: dict[str, RoleReading] = {
    "gsr": RoleReading("gsr", "gsr", {"gsr": 0}),
    "hr": RoleReading("hr", "hr_direct", {"hr": 0}),
    "ecg": RoleReading("hr", "hr_ecg", {"signal": 0}),
    "ppg": RoleReading("hr", "hr_ppg", {"signal": 0}),
    "rr": RoleReading("hr", "hr_intervals", {"interval": 0}, {"interval_unit": "ms"}),
    "ibi": RoleReading("hr", "hr_intervals", {"interval": 0}, {"interval_unit": "s"}),
    "markers": RoleReading("markers", "markers", {}),
}
"""Generic readings by signal: single-channel ones read channel 0 by index (any label)."""


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def signal_of(stream_type: str) -> str | None:
    """The signal a stream type names (a key of :data:`TYPE_ALIASES`), or None."""
    t = _norm(stream_type)
    return next((sig for sig, names in TYPE_ALIASES.items() if t in names), None)


@dataclass
class Candidate:
    """A way a stream could play a role, with how well it matched."""

    spec: StreamSpec
    reading: RoleReading
    score: float
    why: str


@dataclass
class BindingPlan:
    """Which stream plays each role, and what else was considered.

    Attributes
    ----------
    roles
        Role → the chosen candidate.
    candidates
        Role → every stream that could play it.
    visible
        The streams considered (our own outlets left out).
    unbound
        :attr:`StreamSpec.key` → why the stream plays no role (its layout fits none, a rule could
        not read it, or another stream was preferred).
    """

    roles: dict[str, Candidate] = field(default_factory=dict)
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    visible: list[StreamSpec] = field(default_factory=list)
    unbound: dict[str, str] = field(default_factory=dict)

    def missing(self, required: tuple[str, ...] | list[str] = ROLES) -> list[str]:
        """Required roles with no stream."""
        return [r for r in required if r not in self.roles]

    def explain(self, required: tuple[str, ...] | list[str] = ROLES) -> str:
        """A human report: bound roles, missing ones, and why the other streams are not bound."""
        lines = []
        shown = [r for r in ALL_ROLES if r in ROLES or r in self.roles or r in required]
        for role in shown:
            c = self.roles.get(role)
            if c is not None:
                lines.append(f"  {role:8s} -> {c.spec.describe()} [{c.reading.kind}; {c.why}]")
            else:
                need = "MISSING (required)" if role in required else "not bound (optional)"
                lines.append(f"  {role:8s} -> {need}")
        unbound = [s for s in self.visible if s.key in self.unbound]
        if unbound:
            lines.append("Not bound:")
            lines += [f"  {s.describe()}: {self.unbound[s.key]}" for s in unbound]
        missing = self.missing(required)
        if missing:
            lines.append(
                f"Missing role(s): {', '.join(missing)}. Visible streams: "
                + ("; ".join(s.describe() for s in self.visible) or "none")
            )
        return "\n".join(lines)


_DERIVATION = {
    "gaze": "gaze x, y in 0–1 screen units",
    "gsr": "µS as sent",
    "hr_direct": "bpm as sent",
    "hr_intervals": "bpm = 60 / interval",
    "hr_ecg": "bpm from ECG R-peaks",
    "hr_ppg": "bpm from PPG peaks",
    "markers": "onsets and ratings parsed from marker text",
    "eeg": "µV per electrode",
    "face": "action-unit intensities; samples without tracking invalid",
}


def describe_reading(reading: RoleReading, spec: StreamSpec) -> str:
    """What a reading reads and how it derives the role, for reports: e.g.
    ``"signal = channel 0 ('bvp'); bpm from PPG peaks, resampled by its timestamps"``."""
    cols = ", ".join(f"{k} = {describe_column(spec, c)}" for k, c in reading.columns.items())
    if reading.kind in EXTRA_ROLES and len(reading.columns) > 4:
        cols = f"{len(reading.columns)} channels ({shorten(', '.join(reading.columns), 60)})"
    how = _DERIVATION.get(reading.kind, reading.kind)
    p = reading.params
    if reading.kind == "hr_intervals":
        how += f" ({p.get('interval_unit', 's')})"
    if reading.kind in ("hr_ecg", "hr_ppg") and spec.irregular:
        how += ", resampled by its timestamps"
    if p.get("screen"):
        how += f", from pixels of a {p['screen'][0]}x{p['screen'][1]} screen"
    if p.get("flip_y"):
        how += ", y flipped"
    if "valid_threshold" in p or "valid_when" in p:
        when = "0" if p.get("valid_when") == "zero" else f">= {p.get('valid_threshold', 0.5)}"
        how += f", valid when {when}"
    return f"{cols}; {how}" if cols else how


def _matches_labels(spec: StreamSpec, reading: RoleReading) -> bool:
    """A preset reading fits a stream when every column it reads is one of its labels."""
    labels = {lab.lower() for lab in spec.channel_labels}
    needed = set(reading.columns.values())
    if not all(isinstance(v, str) for v in needed):
        return all(_readable(spec, v) for v in needed)
    return bool(labels) and {v.lower() for v in needed} <= labels


def _readable(spec: StreamSpec, column: str | int) -> bool:
    try:
        column_index(spec, column)
    except KeyError:
        return False
    return True


def _preset_candidates(spec: StreamSpec, presets: list[PresetStream]) -> list[Candidate]:
    out = []
    for ps in presets:
        if ps.type.lower() != spec.type.lower():
            continue
        for reading in ps.readings:
            if not _matches_labels(spec, reading):
                continue
            score = 2.0 + (1.0 if ps.name.lower() == spec.name.lower() else 0.0)
            score += 0.5 if ps.manufacturer and ps.manufacturer == spec.manufacturer else 0.0
            out.append(Candidate(spec, reading, score, f"preset {ps.preset}"))
    return out


def _xy_labels(spec: StreamSpec) -> tuple[str, str] | None:
    """The x and y channels of a labelled two-channel gaze stream, when the labels say so."""
    ends = {_norm(lab)[-1:]: lab for lab in spec.channel_labels}
    if len(ends) == 2 and set(ends) == {"x", "y"}:
        return ends["x"], ends["y"]
    return None


def _generic(spec: StreamSpec) -> tuple[RoleReading | None, str]:
    """How a stream of a known type is read without a preset, or why it cannot be."""
    sig = signal_of(spec.type)
    if sig == "eeg" and not spec.is_string:
        return eeg_reading(spec)
    if sig in ("face", None) and not spec.is_string:
        face, why = face_reading(spec)
        if face is not None or sig == "face":
            return face, (f"{spec.type} stream, {why}" if face is not None else why)
    if sig == "markers":
        return _GENERIC["markers"], f"generic {spec.type} stream"
    if spec.is_string and sig is None:
        return _GENERIC["markers"], f"string stream of type {spec.type!r}"
    if sig is None:
        known = ", ".join(names[0].upper() for names in TYPE_ALIASES.values())
        return None, (
            f"no preset matches it and type {spec.type!r} is not one EmoEye reads by type "
            f"({known}); bind it with a [roles.<role>] rule in a --config file"
        )
    if spec.is_string:
        return None, f"a string stream of type {spec.type!r}: {spec.type} is read as numbers"
    n = spec.channel_count
    labels = spec.channel_labels
    listed = shorten(", ".join(labels), 80)
    if sig == "gaze":
        if n != 2:
            what = "unlabelled channels" if not labels else f"channels ({listed})"
            return None, (
                f"{n} {what} match no gaze preset: which are x and y? name them in a "
                "[roles.gaze] rule (columns x, y by label or 0-based index)"
            )
        if not labels:
            return RoleReading("gaze", "gaze", {"x": 0, "y": 1}), "2 unlabelled gaze channels"
        xy = _xy_labels(spec)
        if xy is None:
            return None, (
                f"labels ({listed}) do not say which channel is x and which is y; "
                "name them in a [roles.gaze] rule"
            )
        return RoleReading("gaze", "gaze", {"x": xy[0], "y": xy[1]}), "gaze x/y by label"
    reading = _GENERIC[sig]
    if n == 1:
        return reading, f"generic {spec.type} stream"
    field_name = next(iter(reading.columns))
    if labels:
        named = [lab for lab in labels if _norm(lab) in TYPE_ALIASES[sig]]
        if len(named) == 1:
            cols = {field_name: named[0]}
            why = f"generic {spec.type} stream, channel {named[0]!r}"
            return RoleReading(reading.role, reading.kind, cols, dict(reading.params)), why
        what = f"{n} channels ({listed})"
    else:
        what = f"{n} unlabelled channels"
    return None, (
        f"{what}: which one is the {spec.type} signal? name it in a [roles.{reading.role}] rule "
        f'(kind = "{reading.kind}", columns.{field_name} = label or index 0..{n - 1})'
    )


def generic_reading(spec: StreamSpec) -> tuple[RoleReading | None, str]:
    """How a stream is read by its type alone, with why; ``(None, reason)`` when it cannot be."""
    return _generic(spec)


def _generic_candidates(spec: StreamSpec) -> tuple[list[Candidate], str]:
    reading, why = _generic(spec)
    if reading is None:
        return [], why
    return [Candidate(spec, reading, 1.0, why)], ""


def _rule_matches(rule: RoleRule, spec: StreamSpec) -> bool:
    for attr in ("name", "type", "source_id"):
        pattern = getattr(rule, attr)
        if pattern is not None and not re.fullmatch(pattern, getattr(spec, attr), re.IGNORECASE):
            return False
    return True


def _rule_reading(
    rule: RoleRule, spec: StreamSpec, presets: list[PresetStream]
) -> tuple[RoleReading | None, str]:
    """How a rule reads a stream it matched, or why it cannot."""
    where = f"config rule [roles.{rule.role}]"
    if rule.kind is not None:
        cols = dict(rule.columns)
        keys = COLUMN_KEYS[rule.kind]
        if not cols and len(keys) == 1:
            if spec.channel_count != 1:
                return None, (
                    f"{where} names no column and the stream has {spec.channel_count} "
                    f"channels: set columns.{keys[0]} (label or index)"
                )
            cols = {keys[0]: 0}
        if not cols and rule.kind in EXTRA_ROLES:
            generic = (eeg_reading if rule.kind == "eeg" else face_reading)(spec)[0]
            if generic is None:
                return None, (
                    f"{where} names no columns and the stream has no "
                    + ("10-20 labels" if rule.kind == "eeg" else "action-unit labels")
                    + ": name them in columns (electrode or AU = label or 0-based index)"
                )
            cols = dict(generic.columns)
            params = {**generic.params, **rule.params}
            return RoleReading(rule.role, rule.kind, cols, params), ""
        if not cols and rule.kind == "gaze":
            generic, why = _generic(spec)
            if generic is None or generic.role != "gaze":
                return None, f"{where} names no columns: {why}"
            cols = dict(generic.columns)
        for key, col in cols.items():
            if not _readable(spec, col):
                channels = ", ".join(spec.channel_labels) or f"{spec.channel_count} unlabelled"
                return None, (
                    f"{where}: columns.{key} = {col!r} is not a channel of the stream "
                    f"(channels: {channels}; give a label or a 0-based index)"
                )
        return RoleReading(rule.role, rule.kind, cols, dict(rule.params)), ""
    pool = [ps for ps in presets if rule.preset is None or ps.preset == rule.preset]
    for ps in pool:
        for reading in ps.readings:
            if reading.role == rule.role and _matches_labels(spec, reading):
                return reading, ""
    if rule.preset is not None and spec.channel_count == 1:
        # The user says which device this is: its single-signal reading (of the outlet with
        # this stream's type, or its only one) applies to channel 0.
        single = [
            (ps, r)
            for ps in pool
            for r in ps.readings
            if r.role == rule.role and len(r.columns) == 1
        ]
        same_type = [(ps, r) for ps, r in single if signal_of(ps.type) == signal_of(spec.type)]
        if len(same_type) == 1 or len(single) == 1:
            _, reading = (same_type or single)[0]
            cols = {next(iter(reading.columns)): 0}
            return RoleReading(reading.role, reading.kind, cols, dict(reading.params)), ""
    generic, why = _generic(spec)
    if generic is not None and generic.role == rule.role:
        return generic, ""
    if rule.preset is not None:
        return None, f"{where}: preset {rule.preset} has no {rule.role} reading for its channels"
    return None, f"{where} matches it but {why}"


def bind_roles(streams: list[StreamSpec], rules: list[RoleRule] | None = None) -> BindingPlan:
    """Choose a stream for each role.

    User rules decide a role outright when one matches; otherwise presets (whose channel labels
    must all be present), then generic stream types: a single-channel GSR/EDA, HR, ECG, PPG/BVP,
    RR or IBI stream is read from its one channel, whatever its label; a multi-channel one only
    when exactly one label names the signal; a Gaze stream with two channels as x and y.
    Unlabelled multi-channel streams are never bound on their type alone. For heart rate a
    direct HR channel beats intervals, then ECG, then PPG. Every stream that plays no role gets
    a reason in :attr:`BindingPlan.unbound`.
    """
    presets = preset_streams()
    plan = BindingPlan(visible=[s for s in streams if not EXCLUDED_NAMES.match(s.name)])
    rules = rules or []
    reasons: dict[str, str] = {}
    for spec in plan.visible:
        cands = _preset_candidates(spec, presets)
        if not cands:
            cands, reasons[spec.key] = _generic_candidates(spec)
        for c in cands:
            plan.candidates.setdefault(c.reading.role, []).append(c)
    automatic = {role: list(cands) for role, cands in plan.candidates.items()}
    for rule in rules:
        chosen = []
        for spec in plan.visible:
            if _rule_matches(rule, spec):
                reading, why = _rule_reading(rule, spec, presets)
                if reading is not None:
                    chosen.append(Candidate(spec, reading, 10.0, "config rule"))
                else:
                    reasons[spec.key] = why
        plan.candidates[rule.role] = chosen  # a rule replaces the automatic choice
    for role, cands in plan.candidates.items():
        if not cands:
            continue
        if role == "hr":
            best = sorted(cands, key=lambda c: (HR_KINDS.index(c.reading.kind), -c.score))[0]
        else:
            best = max(cands, key=lambda c: c.score)
        plan.roles[role] = best
    bound = {c.spec.key for c in plan.roles.values()}
    for spec in plan.visible:
        if spec.key in bound:
            continue
        could = [
            f"{role} ({c.reading.kind}; {c.why}), but {role} reads {plan.roles[role].spec.name!r}"
            for role, cands in plan.candidates.items()
            for c in cands
            if c.spec.key == spec.key and role in plan.roles
        ]
        overruled = sorted(
            {
                role
                for role, cands in automatic.items()
                for c in cands
                if c.spec.key == spec.key and role in {r.role for r in rules}
            }
        )
        if could:
            plan.unbound[spec.key] = "could play " + "; ".join(could)
        elif spec.key in reasons:
            plan.unbound[spec.key] = reasons[spec.key]
        elif overruled:
            plan.unbound[spec.key] = f"a config rule decides {', '.join(overruled)}"
        else:
            plan.unbound[spec.key] = NO_ROLE_FITS
    return plan


@dataclass
class BoundRole:
    """A role read from a stream's ring buffer (implements the trial cutter's RoleReader)."""

    role: str
    spec: StreamSpec
    reading: RoleReading
    buffer: RingBuffer

    @property
    def max_gap(self) -> float:
        """Seconds between samples beyond which data counts as missing."""
        if self.reading.kind in ("hr_intervals", "hr_ecg", "hr_ppg"):
            return 2.5  # one value per heart beat
        if self.spec.irregular:
            return 0.25
        return max(3.0 / self.spec.nominal_srate, 0.1)

    def read(self, t0: float, t1: float) -> RoleSeries:
        """Standard series for [t0, t1), with context around it where the reading needs it."""
        pad = PADDING_S.get(self.reading.kind, self.max_gap)
        ts, values = self.buffer.read(t0 - pad, t1 + pad)
        return extract(self.reading, self.spec, ts, values)

    def latest(self, seconds: float) -> RoleSeries:
        """The newest ``seconds`` of the role (for displays)."""
        end = self.buffer.last_timestamp
        if not np.isfinite(end):
            return extract(self.reading, self.spec, *self.buffer.read(0, 0))
        return self.read(end - seconds, end + 1e-9)
