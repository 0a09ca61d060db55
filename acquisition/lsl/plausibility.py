"""Does a bound stream carry what its role expects? A check of its first seconds.

A binding can be right by every name and label and still read the wrong thing: gaze x read as
µS, a GSR sensor reporting raw counts, intervals in ms read as seconds, a PPG channel that is
ambient light. :func:`check_stream` looks at the first seconds of samples read the way the
binding reads them and gives a verdict with a one-line reason. It is pure (numpy/scipy, no LSL):
``emoeye streams``, the live acquisition (health notes) and offline replay call it alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from acquisition.lsl.presets import RoleReading
from acquisition.lsl.reading import (
    GSR_RANGE,
    HR_RANGE,
    _band_filter,
    _col,
    _filtfilt,
    column_index,
    extract,
    regular_signal,
)
from acquisition.streams import StreamSpec, shorten

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
"""How much of the start of a stream is checked."""
RHYTHM_MIN_SECONDS = 3.0
"""Shortest ECG/PPG stretch in which a heart rhythm is looked for."""
RHYTHM_MIN_STRENGTH = 0.55
"""Periodicity (see :func:`rhythm_strength`) a heart rhythm has at least."""
VALID_MIN_FRACTION = 0.2
"""Gaze with fewer valid samples than this looks misread (validity column or threshold)."""
PIXELS_MAX = 10000.0
"""Largest coordinate taken for a screen pixel."""

OK, SUSPECT, UNKNOWN = "ok", "suspect", "unknown"


@dataclass(frozen=True)
class Plausibility:
    """The verdict on a role's first seconds.

    Attributes
    ----------
    verdict
        ``"ok"`` (looks like the role's signal), ``"suspect"`` (looks misread) or ``"unknown"``
        (too little data to tell).
    reason
        One line saying why.
    first
        The first values read, as the binding reads them (for reports).
    """

    verdict: str
    reason: str
    first: str = ""

    @property
    def looks_wrong(self) -> bool:
        """True when the binding looks wrong."""
        return self.verdict == SUSPECT

    def line(self) -> str:
        """``"ok: ..."``, ``"SUSPECT: ..."`` or ``"unknown: ..."``."""
        head = "SUSPECT" if self.looks_wrong else self.verdict
        return f"{head}: {self.reason}"


def _fmt(v: np.ndarray, n: int = 4) -> str:
    return " ".join(f"{x:.4g}" for x in v[:n]) or "none"


def _median(v: np.ndarray) -> float:
    f = v[np.isfinite(v)]
    return float(np.median(f)) if len(f) else float("nan")


def check_stream(
    reading: RoleReading,
    spec: StreamSpec,
    timestamps: np.ndarray,
    values: np.ndarray,
    seconds: float = CHECK_SECONDS,
) -> Plausibility:
    """Check the first ``seconds`` of a stream's samples against what ``reading`` expects.

    Parameters
    ----------
    reading
        How the role is read (a binding's :class:`RoleReading`).
    spec
        The stream.
    timestamps, values
        Raw samples, ``(n,)`` and ``(n, channel_count)``, in time order.
    seconds
        Length checked from the first sample.

    Returns
    -------
    Plausibility
        Gaze must lie in 0–1 screen units (or in pixels with ``params.screen`` set), GSR in
        µS range, direct HR in bpm range, intervals give bpm in range, ECG/PPG show a regular
        heart rhythm. Markers are only counted.

    Raises
    ------
    KeyError
        The reading names a channel the stream does not have.
    """
    ts = np.asarray(timestamps, np.float64)
    if len(ts):
        keep = ts < ts[0] + seconds
        ts, values = ts[keep], np.asarray(values)[keep]
    if reading.kind == "markers":
        first = _fmt_markers(values)
        if not len(ts):
            return Plausibility(UNKNOWN, "no marker yet", first)
        return Plausibility(OK, f"{len(ts)} marker(s) seen", first)
    if not len(ts):
        return Plausibility(UNKNOWN, "no sample yet")
    values = np.asarray(values, np.float64)
    check = {
        "gaze": _gaze,
        "gsr": _gsr,
        "hr_direct": _hr_direct,
        "hr_intervals": _hr_intervals,
        "eeg": _eeg,
        "face": _face,
    }.get(reading.kind, _rhythm)
    return check(reading, spec, ts, values)


def _fmt_markers(values: np.ndarray) -> str:
    texts = [shorten(str(v[0]) if np.ndim(v) else str(v), 40) for v in list(values)[:3]]
    return " | ".join(texts) or "none"


def _gaze(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    cols = reading.columns
    pairs = [("x", "y")] if "x" in cols else [("x_left", "y_left"), ("x_right", "y_right")]
    xs = [_col(spec, values, cols[a]) for a, b in pairs if a in cols and b in cols]
    ys = [_col(spec, values, cols[b]) for a, b in pairs if a in cols and b in cols]
    x, y = np.concatenate(xs), np.concatenate(ys)
    first = f"x {_fmt(xs[0])}; y {_fmt(ys[0])}"
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return Plausibility(SUSPECT, f"no finite gaze sample in {len(ts)}", first)
    if any(
        cols.get(a) is not None and _same(spec, cols[a], cols[b]) for a, b in pairs if b in cols
    ) or np.array_equal(x[ok], y[ok]):
        return Plausibility(SUSPECT, "x and y are the same values: one channel read twice?", first)
    screen = reading.params.get("screen")
    if screen:
        x, y = x / float(screen[0]), y / float(screen[1])
    lo = float(min(np.percentile(x[ok], 5), np.percentile(y[ok], 5)))
    hi = float(max(np.percentile(x[ok], 95), np.percentile(y[ok], 95)))
    unit = f"pixels of a {screen[0]}x{screen[1]} screen" if screen else "0–1 screen units"
    if not (lo >= -0.5 and hi <= 1.5):
        if not screen and lo >= -PIXELS_MAX / 10 and 2.0 < hi <= PIXELS_MAX:
            why = f"x, y up to {hi:.4g} look like pixels: set params.screen = [width, height]"
        else:
            why = f"x, y from {lo:.4g} to {hi:.4g}: neither 0–1 screen units nor pixels"
        return Plausibility(SUSPECT, why, first)
    series = extract(reading, spec, ts, values)
    valid = float(np.mean(series.column("valid"))) if len(series) else 0.0
    if valid < VALID_MIN_FRACTION:
        why = (
            f"gaze in {unit} but only {valid:.0%} of samples valid "
            "(validity column or params.valid_threshold wrong?)"
        )
        return Plausibility(SUSPECT, why, first)
    return Plausibility(OK, f"gaze in {unit}, {valid:.0%} valid", first)


def _same(spec: StreamSpec, a: str | int, b: str | int) -> bool:
    return column_index(spec, a) == column_index(spec, b)


def _gsr(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    v = _col(spec, values, reading.columns.get("gsr", 0))
    first = f"{_fmt(v)} µS"
    m = _median(v)
    if m != m:
        return Plausibility(SUSPECT, f"no finite value in {len(v)} samples", first)
    if GSR_RANGE[0] <= m <= GSR_RANGE[1]:
        return Plausibility(OK, f"median {m:.3g} µS", first)
    if m > GSR_RANGE[1]:
        why = f"median {m:.4g} is not µS (raw counts, kΩ or nS?)"
    elif m > 0:
        why = f"median {m:.3g} is too small for µS (siemens?)"
    else:
        why = f"median {m:.4g} <= 0 is no skin conductance"
    return Plausibility(SUSPECT, why, first)


def _hr_direct(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    v = _col(spec, values, reading.columns.get("hr", 0))
    first = f"{_fmt(v)} bpm"
    m = _median(v)
    if m != m:
        return Plausibility(SUSPECT, f"no finite value in {len(v)} samples", first)
    if HR_RANGE[0] <= m <= HR_RANGE[1]:
        return Plausibility(OK, f"median {m:.3g} bpm", first)
    if 0.25 <= m <= 2.0:
        why = f"median {m:.3g} looks like beat intervals in s: use kind = hr_intervals"
    elif 250 <= m <= 2000:
        why = f'median {m:.4g} looks like RR in ms: kind = hr_intervals, interval_unit = "ms"'
    else:
        why = f"median {m:.4g} is outside {HR_RANGE[0]:g}–{HR_RANGE[1]:g} bpm"
    return Plausibility(SUSPECT, why, first)


def _hr_intervals(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    v = _col(spec, values, reading.columns.get("interval", 0))
    unit = reading.params.get("interval_unit", "s")
    first = f"{_fmt(v)} {unit}"
    seconds = v / 1000.0 if unit == "ms" else v
    with np.errstate(divide="ignore", invalid="ignore"):
        hr = 60.0 / seconds
    good = np.isfinite(hr) & (hr >= HR_RANGE[0]) & (hr <= HR_RANGE[1])
    if good.mean() >= 0.5:
        return Plausibility(OK, f"median {np.median(hr[good]):.3g} bpm from intervals", first)
    m = _median(v)
    if unit == "s" and 250 <= m <= 2000:
        why = f'intervals around {m:.4g} look like ms: set params.interval_unit = "ms"'
    elif unit == "ms" and 0.25 <= m <= 2.0:
        why = f'intervals around {m:.3g} look like s: set params.interval_unit = "s"'
    else:
        why = f"only {good.mean():.0%} of intervals give {HR_RANGE[0]:g}–{HR_RANGE[1]:g} bpm"
    return Plausibility(SUSPECT, why, first)


EEG_SD_UV = (0.5, 500.0)
"""Typical standard deviation of an EEG channel in µV (a volt or mV scale is far outside)."""


def _eeg(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    series = extract(reading, spec, ts, values)
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(series.values, axis=0) if len(series) > 1 else np.full(1, np.nan)
    med = _median(sd)
    first = _fmt(series.values[0]) if len(series) else "none"
    if not np.isfinite(med):
        return Plausibility(UNKNOWN, "no finite EEG samples yet", first)
    lo, hi = EEG_SD_UV
    if not lo <= med <= hi:
        unit = reading.params.get("unit", "uV")
        return Plausibility(
            SUSPECT,
            f"median channel sd {med:.3g} read as µV (unit {unit}) is outside {lo:g}-{hi:g} µV: "
            "set [roles.eeg.params] unit",
            first,
        )
    return Plausibility(OK, f"{series.values.shape[1]} channels, median sd {med:.3g} µV", first)


def _face(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    series = extract(reading, spec, ts, values)
    valid = series.column("valid") > 0.5
    first = _fmt(series.values[0]) if len(series) else "none"
    if not valid.any():
        return Plausibility(SUSPECT, "no frame with successful tracking", first)
    aus = series.values[valid, :-1]
    top = float(np.nanmax(aus)) if aus.size else float("nan")
    if not (np.isfinite(top) and float(np.nanmin(aus)) >= -0.5 and top <= 5.5):
        return Plausibility(SUSPECT, f"action-unit intensities outside 0-5 (max {top:.3g})", first)
    return Plausibility(OK, f"{aus.shape[1]} action units, tracked {valid.mean():.0%}", first)


def _rhythm(reading: RoleReading, spec: StreamSpec, ts: np.ndarray, values: np.ndarray):
    x = _col(spec, values, reading.columns.get("signal", 0))
    name = "ECG" if reading.kind == "hr_ecg" else "PPG"
    first = _fmt(x)
    span = float(ts[-1] - ts[0]) if len(ts) > 1 else 0.0
    if span < RHYTHM_MIN_SECONDS:
        return Plausibility(
            UNKNOWN, f"only {span:.1f} s of {name}: a rhythm needs {RHYTHM_MIN_SECONDS:g} s", first
        )
    finite = x[np.isfinite(x)]
    if not len(finite) or np.ptp(finite) == 0:
        return Plausibility(SUSPECT, f"{name} is flat or empty: sensor off?", first)
    strength = rhythm_strength(ts, x, spec.nominal_srate, reading.kind)
    hr = extract(reading, spec, ts, values).column("hr")
    if strength >= RHYTHM_MIN_STRENGTH and len(hr):
        return Plausibility(
            OK, f"{name} rhythm at {np.median(hr):.0f} bpm (periodicity {strength:.2f})", first
        )
    return Plausibility(
        SUSPECT,
        f"no heart rhythm in {span:.1f} s of {name} (periodicity {strength:.2f} < "
        f"{RHYTHM_MIN_STRENGTH:g})",
        first,
    )


def rhythm_strength(ts: np.ndarray, x: np.ndarray, nominal_srate: float, kind: str) -> float:
    """How periodic a signal is at heart-rate periods: the highest autocorrelation (0..1)
    of its band-passed form (the QRS energy envelope for ECG) at lags of 60/220 to 2 s.

    A heart rhythm scores about 0.75 and more, even with beat-to-beat variation; band-passed
    noise seldom above 0.45 in 5 s. Irregular stamps are resampled first.
    """
    ts, x, rate = regular_signal(ts, x, nominal_srate)
    good = np.isfinite(x)
    lo, hi = int(60.0 / HR_RANGE[1] * rate), int(60.0 / HR_RANGE[0] * rate)
    if good.sum() < 2 or len(x) <= hi:
        return 0.0
    x = np.interp(np.arange(len(x)), np.flatnonzero(good), x[good])
    sos, zi = _band_filter(kind, round(float(rate), 6))
    f = _filtfilt(sos, zi, x - np.mean(x))
    if kind == "hr_ecg":
        width = max(int(0.1 * rate), 1)
        f = np.convolve(f**2, np.ones(width) / width, "same")
        f = f - np.mean(f)
    from scipy import signal  # imported where used (start-up)

    ac = signal.correlate(f, f, "full", method="fft")[len(f) - 1 :]
    if ac[0] <= 0:
        return 0.0
    ac = ac / ac[0] * len(f) / (len(f) - np.arange(len(f)))  # unbiased: fewer terms at long lags
    return float(np.clip(np.max(ac[lo:hi]), 0.0, 1.0))


def summarize(verdicts: dict[str, Plausibility]) -> str:
    """One line for a stream feeding several roles, e.g. ``"gaze ok; gsr SUSPECT: ..."``."""
    return "; ".join(
        f"{role} {p.line()}" if p.verdict != OK else f"{role} ok" for role, p in verdicts.items()
    )


class PlausibilityWatch:
    """Checks each bound role once, when its first :data:`CHECK_SECONDS` of data are in.

    Cheap to call on every poll: until a role is checked it looks only at its buffer's first and
    last timestamps; the check reads those first seconds once. Live, the verdicts go to the
    stream's health record (``plausibility``, and a note plus a log warning when one looks
    wrong); offline, :meth:`update` returns them.

    Parameters
    ----------
    seconds
        Length of the start checked.
    """

    def __init__(self, seconds: float = CHECK_SECONDS) -> None:
        self.seconds = seconds
        self.verdicts: dict[str, dict[str, Plausibility]] = {}
        """Stream key → role → verdict, for every role checked so far."""
        self._done: set[tuple[str, str]] = set()

    def update(self, roles: dict, health: dict | None = None) -> list[tuple[str, Plausibility]]:
        """Check the roles whose first seconds are now in.

        Parameters
        ----------
        roles
            Role → bound reader with ``spec``, ``reading`` and ``buffer``
            (:class:`acquisition.lsl.binding.BoundRole`).
        health
            Stream key → :class:`acquisition.lsl.health.StreamHealth` to annotate, if any.

        Returns
        -------
        list of (role, Plausibility)
            The roles checked by this call.
        """
        out = []
        for role, bound in list(roles.items()):
            key = bound.spec.key
            if (role, key) in self._done:
                continue
            first, last = bound.buffer.first_timestamp, bound.buffer.last_timestamp
            if not (np.isfinite(first) and last - first >= self.seconds):
                continue
            self._done.add((role, key))
            ts, values = bound.buffer.read(first, first + self.seconds)
            try:
                verdict = check_stream(bound.reading, bound.spec, ts, values, self.seconds)
            except Exception as exc:  # a reading that cannot read its stream is the finding
                verdict = Plausibility(SUSPECT, f"cannot read it: {exc}")
            self.verdicts.setdefault(key, {})[role] = verdict
            out.append((role, verdict))
            record = (health or {}).get(key)
            if record is not None:
                record.plausibility = summarize(self.verdicts[key])
            if verdict.looks_wrong:
                line = f"{role} binding looks wrong: {verdict.reason}"
                log.warning("%s: %s (first values: %s)", bound.spec.name, line, verdict.first)
                if record is not None:
                    record.note(line)
            else:
                log.info("%s: %s %s", bound.spec.name, role, verdict.line())
        return out


def check_plan(
    plan, data: dict[str, tuple[np.ndarray, np.ndarray]], seconds: float = CHECK_SECONDS
) -> dict[str, Plausibility]:
    """Verdicts for every bound role whose stream's samples are in ``data``.

    Parameters
    ----------
    plan
        A :class:`acquisition.lsl.binding.BindingPlan`.
    data
        Stream key → ``(timestamps, values)`` from the start of each stream (see
        :func:`first_seconds` for offline sources).
    seconds
        Length checked from each stream's first sample.

    Returns
    -------
    dict
        Role → :class:`Plausibility`; a reading that cannot read its stream is ``suspect``.
    """
    out = {}
    for role, cand in plan.roles.items():
        if cand.spec.key not in data:
            continue
        try:
            out[role] = check_stream(cand.reading, cand.spec, *data[cand.spec.key], seconds)
        except KeyError as exc:
            out[role] = Plausibility(SUSPECT, f"cannot read it: {exc.args[0]}")
    return out


def first_seconds(
    source, seconds: float = CHECK_SECONDS, block_seconds: float = 0.5, limit: float = 60.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The first ``seconds`` of every stream of an offline source (simulation, XDF file).

    Reads blocks until each stream that has started holds ``seconds`` of data, or ``limit``
    seconds of data time have passed (a stream that starts later is left with what it has).

    Returns
    -------
    dict
        Stream key → ``(timestamps, values)``.
    """
    parts: dict[str, tuple[list, list]] = {}
    start = None
    for block in source.iter_blocks(block_seconds):
        for chunk in block.chunks:
            if not len(chunk):
                continue
            ts, vals = parts.setdefault(chunk.stream.key, ([], []))
            ts.append(chunk.timestamps)
            vals.append(chunk.values)
            start = chunk.timestamps[0] if start is None else start
        if start is None:
            continue
        firsts = [ts[0][0] for ts, _ in parts.values()]
        if block.t_end - start >= limit or (
            block.t_end >= max(firsts) + seconds and len(parts) == len(source.streams)
        ):
            break
    return {k: (np.concatenate(ts), np.concatenate(vals)) for k, (ts, vals) in parts.items()}
