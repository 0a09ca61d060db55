"""Acquisition configuration from TOML, with errors that name the offending key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from acquisition.lsl.modalities import EEG_UNITS, FACE_FLAGS, au_name
from acquisition.lsl.presets import ALL_ROLES, COLUMN_KEYS, KIND_ROLE, PARAM_KEYS, PRESETS
from acquisition.markers import DEFAULT_ONSET, DEFAULT_RATING, MarkerParser
from acquisition.trials.types import TrialSpec

READING_KINDS = (
    "gaze", "gsr", "markers", "hr_direct", "hr_intervals", "hr_ecg", "hr_ppg", "eeg", "face",
)  # fmt: skip


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


@dataclass
class RoleRule:
    """A user's rule binding a role: which stream (regexes, all given ones must match) and how to
    read it (a preset's reading, or an explicit kind with channel labels)."""

    role: str
    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    preset: str | None = None
    kind: str | None = None
    columns: dict[str, str | int] = field(default_factory=dict)
    """Field → channel label or 0-based channel index."""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class AcquisitionConfig:
    """Everything acquisition needs to know beyond what streams announce."""

    trial: TrialSpec = field(default_factory=TrialSpec)
    markers: MarkerParser = field(default_factory=MarkerParser)
    rules: list[RoleRule] = field(default_factory=list)
    buffer_seconds: float = 30.0
    participant: str | None = None
    stimulus_folder: Path | None = None
    stimulus_norms: Path | None = None
    """Normative ratings table (``[stimuli] norms``; see :mod:`models.norms`)."""
    norms_scale: tuple[float, float] | None = None
    """The norms' scale when the table does not say it (``[stimuli] norms_scale``)."""


def _expect(cond: bool, key: str, msg: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"config key '{key}': {msg}, got {value!r}")


def _number(table: dict, key: str, prefix: str, positive: bool = True) -> float | None:
    if key not in table:
        return None
    v = table[key]
    _expect(
        isinstance(v, int | float) and not isinstance(v, bool),
        f"{prefix}.{key}",
        "expected a number",
        v,
    )
    if positive:
        _expect(v > 0, f"{prefix}.{key}", "expected a number > 0", v)
    return float(v)


def _columns(table: Any, where: str) -> dict[str, str | int]:
    """A rule's columns: field = channel label (string) or 0-based channel index (integer); for
    EEG also a list of channel labels (each read under its own name)."""
    if isinstance(table, list) and where.startswith("roles.eeg"):
        _expect(
            bool(table) and all(isinstance(v, str) and v for v in table),
            where,
            "expected a list of channel labels, or a table electrode = label or index",
            table,
        )
        return {v: v for v in table}
    _expect(isinstance(table, dict), where, "expected a table field = label or index", table)
    for field_name, col in table.items():
        _expect(
            (isinstance(col, str) and col != "")
            or (isinstance(col, int) and not isinstance(col, bool) and col >= 0),
            f"{where}.{field_name}",
            "expected a channel label (string) or a 0-based channel index (integer >= 0)",
            col,
        )
    return dict(table)


def _params(table: Any, where: str) -> dict[str, Any]:
    """A rule's reading parameters, each checked."""
    _expect(isinstance(table, dict), where, "expected a table", table)
    for key, v in table.items():
        at = f"{where}.{key}"
        _expect(key in PARAM_KEYS, at, f"unknown parameter (known: {', '.join(PARAM_KEYS)})", key)
        if key == "flip_y":
            _expect(isinstance(v, bool), at, "expected true or false", v)
        elif key == "screen":
            _expect(
                isinstance(v, list)
                and len(v) == 2
                and all(
                    isinstance(p, int | float) and not isinstance(p, bool) and p > 0 for p in v
                ),
                at,
                "expected [width, height] in pixels",
                v,
            )
        elif key == "interval_unit":
            _expect(v in ("s", "ms"), at, "expected 's' or 'ms'", v)
        elif key == "valid_threshold":
            _expect(
                isinstance(v, int | float) and not isinstance(v, bool), at, "expected a number", v
            )
        elif key == "valid_when":
            _expect(v in ("nonzero", "zero"), at, "expected 'nonzero' or 'zero'", v)
        elif key == "unit":
            _expect(
                isinstance(v, str) and v.lower() in EEG_UNITS, at, "expected 'uV', 'mV' or 'V'", v
            )
    return {k: tuple(v) if k == "screen" else v for k, v in table.items()}


def _check_rule(rule: RoleRule) -> None:
    """A rule's kind fits its role and its columns are ones that kind reads."""
    where = f"roles.{rule.role}"
    if rule.kind is None and rule.role in ("eeg", "face"):
        rule.kind = rule.role  # one way to read each
    if rule.kind is None and rule.columns:
        if rule.role not in ("gaze", "gsr"):
            raise ConfigError(
                f"config key '{where}.kind': columns need a kind saying how to read them "
                f"({', '.join(k for k, r in KIND_ROLE.items() if r == rule.role)})"
            )
        rule.kind = rule.role
    if rule.kind is None:
        return
    _expect(
        KIND_ROLE[rule.kind] == rule.role,
        f"{where}.kind",
        f"kind {rule.kind} reads role {KIND_ROLE[rule.kind]}, not {rule.role}",
        rule.kind,
    )
    if rule.kind == "face":
        renamed = {}
        for key, col in rule.columns.items():
            name = key.lower() if key.lower() in FACE_FLAGS else au_name(key)
            _expect(
                name is not None,
                f"{where}.columns.{key}",
                "not an action unit (AU01..AU45) nor success/confidence",
                key,
            )
            renamed[name] = col
        rule.columns = renamed
        return
    if rule.kind == "eeg":
        return  # any electrode name
    known = COLUMN_KEYS[rule.kind]
    for key in rule.columns:
        _expect(
            key in known,
            f"{where}.columns.{key}",
            f"not a column of kind {rule.kind} (known: {', '.join(known) or 'none'})",
            key,
        )
    if rule.kind == "gaze" and rule.columns:
        cols = rule.columns
        _expect(
            ("x" in cols and "y" in cols)
            or ("x_left" in cols and "y_left" in cols)
            or ("x_right" in cols and "y_right" in cols),
            f"{where}.columns",
            "gaze needs x and y (or x_left/y_left, x_right/y_right)",
            sorted(cols),
        )


def parse_config(data: dict) -> AcquisitionConfig:
    """Validate a parsed TOML document into an :class:`AcquisitionConfig`."""
    known = {
        "trial",
        "markers",
        "roles",
        "buffer_seconds",
        "participant",
        "stimuli",
        "model",
        "run",
    }
    for key in data:
        _expect(key in known, key, f"unknown section (known: {', '.join(sorted(known))})", key)
    cfg = AcquisitionConfig()
    trial = data.get("trial", {})
    _expect(isinstance(trial, dict), "trial", "expected a table", trial)
    spec_fields = {f.name for f in fields(TrialSpec)}
    kwargs: dict[str, Any] = {}
    for key, value in trial.items():
        _expect(
            key in spec_fields,
            f"trial.{key}",
            f"unknown key (known: {', '.join(sorted(spec_fields))})",
            key,
        )
        if key == "required_roles":
            _expect(
                isinstance(value, list) and all(v in ALL_ROLES for v in value),
                "trial.required_roles",
                f"expected a list of roles from {ALL_ROLES}",
                value,
            )
            kwargs[key] = tuple(value)
        elif key == "scanpath_size":
            _expect(
                isinstance(value, int) and 8 <= value <= 512,
                "trial.scanpath_size",
                "expected an integer 8..512",
                value,
            )
            kwargs[key] = value
        elif key == "min_coverage":
            v = _number(trial, key, "trial", positive=False)
            _expect(0.0 <= v <= 1.0, "trial.min_coverage", "expected a fraction 0..1", value)
            kwargs[key] = v
        else:
            kwargs[key] = _number(trial, key, "trial", positive=key != "baseline")
    cfg.trial = TrialSpec(**kwargs)
    markers = data.get("markers", {})
    _expect(isinstance(markers, dict), "markers", "expected a table", markers)
    mk: dict[str, Any] = {}
    for key, value in markers.items():
        if key in ("onset", "rating", "ignore"):
            _expect(isinstance(value, str), f"markers.{key}", "expected a regex string", value)
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(f"config key 'markers.{key}': bad regex ({exc})") from None
            mk[key] = value
        elif key == "scale":
            _expect(
                isinstance(value, list) and len(value) == 2 and value[0] < value[1],
                "markers.scale",
                "expected [min, max]",
                value,
            )
            mk[key] = (float(value[0]), float(value[1]))
        elif key == "min_onset_interval":
            _expect(
                isinstance(value, int | float) and not isinstance(value, bool) and value >= 0,
                "markers.min_onset_interval",
                "expected seconds >= 0",
                value,
            )
            mk[key] = float(value)
        elif key == "codes":
            _expect(
                isinstance(value, dict),
                "markers.codes",
                "expected a table code = stimulus id",
                value,
            )
            try:
                mk["int_codes"] = {int(k): str(v) for k, v in value.items()}
            except ValueError:
                raise ConfigError("config key 'markers.codes': keys must be integers") from None
        else:
            raise ConfigError(
                f"config key 'markers.{key}': unknown key (known: onset, rating, ignore, scale, codes, min_onset_interval)"
            )
    try:
        cfg.markers = MarkerParser(**{"onset": DEFAULT_ONSET, "rating": DEFAULT_RATING, **mk})
    except ValueError as exc:
        raise ConfigError(f"config section 'markers': {exc}") from None
    roles = data.get("roles", {})
    _expect(isinstance(roles, dict), "roles", "expected a table of roles", roles)
    for role, table in roles.items():
        _expect(
            role in ALL_ROLES,
            f"roles.{role}",
            f"unknown role (known: {', '.join(ALL_ROLES)})",
            role,
        )
        _expect(isinstance(table, dict), f"roles.{role}", "expected a table", table)
        rule = RoleRule(role)
        for key, value in table.items():
            where = f"roles.{role}.{key}"
            if key in ("name", "type", "source_id"):
                _expect(isinstance(value, str), where, "expected a regex string", value)
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ConfigError(f"config key '{where}': bad regex ({exc})") from None
                setattr(rule, key, value)
            elif key == "preset":
                _expect(
                    value in PRESETS, where, f"unknown preset (known: {', '.join(PRESETS)})", value
                )
                rule.preset = value
            elif key == "kind":
                _expect(value in READING_KINDS, where, f"expected one of {READING_KINDS}", value)
                rule.kind = value
            elif key == "columns":
                rule.columns = _columns(value, where)
            elif key == "params":
                rule.params = _params(value, where)
            else:
                raise ConfigError(
                    f"config key '{where}': unknown key (known: name, type, source_id, preset, kind, columns, params)"
                )
        _check_rule(rule)
        cfg.rules.append(rule)
    if "buffer_seconds" in data:
        cfg.buffer_seconds = _number(data, "buffer_seconds", "")  # type: ignore[assignment]
        _expect(
            cfg.buffer_seconds >= cfg.trial.duration + cfg.trial.baseline + 5,
            "buffer_seconds",
            "must hold a trial plus 5 s",
            cfg.buffer_seconds,
        )
    if "participant" in data:
        cfg.participant = str(data["participant"])
    if "stimuli" in data:
        st = data["stimuli"]
        _expect(isinstance(st, dict), "stimuli", "expected a table", st)
        for key, value in st.items():
            if key in ("folder", "norms"):
                _expect(isinstance(value, str), f"stimuli.{key}", "expected a path string", value)
            elif key == "norms_scale":
                _expect(
                    isinstance(value, list)
                    and len(value) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                    and value[0] < value[1],
                    "stimuli.norms_scale",
                    "expected [low, high]",
                    value,
                )
            else:
                raise ConfigError(
                    f"config key 'stimuli.{key}': unknown key (known: folder, norms, norms_scale)"
                )
        if "folder" in st:
            cfg.stimulus_folder = Path(st["folder"]).expanduser()
        if "norms" in st:
            cfg.stimulus_norms = Path(st["norms"]).expanduser()
        if "norms_scale" in st:
            cfg.norms_scale = (float(st["norms_scale"][0]), float(st["norms_scale"][1]))
    return cfg


def load_config(path: Path | str | None) -> AcquisitionConfig:
    """Read a TOML config (defaults when ``path`` is None)."""
    if path is None:
        return AcquisitionConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse_config(data)
