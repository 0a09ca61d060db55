"""Binding roles to visible streams: built-in presets first, user rules over them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from acquisition.config import RoleRule
from acquisition.lsl.presets import HR_KINDS, ROLES, PresetStream, RoleReading, preset_streams
from acquisition.lsl.reading import PADDING_S, RoleSeries, extract
from acquisition.ringbuffer import RingBuffer
from acquisition.streams import StreamSpec

EXCLUDED_NAMES = re.compile(r"^EmoEye-", re.IGNORECASE)
"""Our own outlets (predictions) are never bound as inputs."""

_GENERIC_BY_TYPE: dict[str, RoleReading] = {
    "gsr": RoleReading("gsr", "gsr", {}),
    "eda": RoleReading("gsr", "gsr", {}),
    "hr": RoleReading("hr", "hr_direct", {}),
    "heartrate": RoleReading("hr", "hr_direct", {}),
    "ecg": RoleReading("hr", "hr_ecg", {}),
    "ppg": RoleReading("hr", "hr_ppg", {}),
    "bvp": RoleReading("hr", "hr_ppg", {}),
    "rr": RoleReading("hr", "hr_intervals", {}, {"interval_unit": "ms"}),
    "ibi": RoleReading("hr", "hr_intervals", {}, {"interval_unit": "s"}),
    "markers": RoleReading("markers", "markers", {}),
    "marker": RoleReading("markers", "markers", {}),
    "stimulus": RoleReading("markers", "markers", {}),
}


@dataclass
class Candidate:
    """A way a stream could play a role, with how well it matched."""

    spec: StreamSpec
    reading: RoleReading
    score: float
    why: str


@dataclass
class BindingPlan:
    """Which stream plays each role, and what else was considered."""

    roles: dict[str, Candidate] = field(default_factory=dict)
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    visible: list[StreamSpec] = field(default_factory=list)

    def missing(self, required: tuple[str, ...] | list[str] = ROLES) -> list[str]:
        """Required roles with no stream."""
        return [r for r in required if r not in self.roles]

    def explain(self, required: tuple[str, ...] | list[str] = ROLES) -> str:
        """A human report: bound roles, missing ones and what is visible."""
        lines = []
        for role in ROLES:
            c = self.roles.get(role)
            if c is not None:
                lines.append(f"  {role:8s} -> {c.spec.describe()} [{c.reading.kind}; {c.why}]")
            else:
                need = "MISSING (required)" if role in required else "not bound (optional)"
                lines.append(f"  {role:8s} -> {need}")
        missing = self.missing(required)
        if missing:
            lines.append(
                f"Missing role(s): {', '.join(missing)}. Visible streams: "
                + ("; ".join(s.describe() for s in self.visible) or "none")
            )
        return "\n".join(lines)


def _matches_labels(spec: StreamSpec, reading: RoleReading) -> bool:
    labels = {lab.lower() for lab in spec.channel_labels}
    needed = {v.lower() for v in reading.columns.values()}
    if not spec.channel_labels:
        # Unlabelled single-signal streams can still be read from channel 0.
        return len(needed) <= 1 and reading.role != "gaze"
    return needed <= labels


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


def _generic_candidates(spec: StreamSpec) -> list[Candidate]:
    reading = _GENERIC_BY_TYPE.get(spec.type.lower())
    if reading is None and spec.is_string:
        reading = _GENERIC_BY_TYPE["markers"]
    if reading is None:
        return []
    if reading.role != "markers" and spec.channel_count != 1:
        return []
    return [Candidate(spec, reading, 1.0, f"generic {spec.type} stream")]


def _rule_matches(rule: RoleRule, spec: StreamSpec) -> bool:
    for attr in ("name", "type", "source_id"):
        pattern = getattr(rule, attr)
        if pattern is not None and not re.fullmatch(pattern, getattr(spec, attr), re.IGNORECASE):
            return False
    return True


def _rule_reading(
    rule: RoleRule, spec: StreamSpec, presets: list[PresetStream]
) -> RoleReading | None:
    if rule.kind is not None:
        return RoleReading(rule.role, rule.kind, dict(rule.columns), dict(rule.params))
    pool = [ps for ps in presets if rule.preset is None or ps.preset == rule.preset]
    for ps in pool:
        for reading in ps.readings:
            if reading.role == rule.role and _matches_labels(spec, reading):
                return reading
    generic = [c.reading for c in _generic_candidates(spec) if c.reading.role == rule.role]
    return generic[0] if generic else None


def _hr_rank(c: Candidate) -> tuple:
    kind_rank = HR_KINDS.index(c.reading.kind) if c.reading.kind in HR_KINDS else len(HR_KINDS)
    return (-c.score, kind_rank)


def bind_roles(streams: list[StreamSpec], rules: list[RoleRule] | None = None) -> BindingPlan:
    """Choose a stream for each role.

    User rules decide a role outright when one matches; otherwise presets, then generic
    stream types. For heart rate a direct HR channel beats intervals, then ECG, then PPG.
    """
    presets = preset_streams()
    plan = BindingPlan(visible=[s for s in streams if not EXCLUDED_NAMES.match(s.name)])
    rules = rules or []
    for spec in plan.visible:
        for c in _preset_candidates(spec, presets) or _generic_candidates(spec):
            plan.candidates.setdefault(c.reading.role, []).append(c)
    for rule in rules:
        chosen = []
        for spec in plan.visible:
            if _rule_matches(rule, spec):
                reading = _rule_reading(rule, spec, presets)
                if reading is not None:
                    chosen.append(Candidate(spec, reading, 10.0, "config rule"))
        plan.candidates[rule.role] = chosen  # a rule replaces the automatic choice
    for role, cands in plan.candidates.items():
        if not cands:
            continue
        if role == "hr":
            best = sorted(cands, key=lambda c: (HR_KINDS.index(c.reading.kind), -c.score))[0]
        else:
            best = max(cands, key=lambda c: c.score)
        plan.roles[role] = best
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
