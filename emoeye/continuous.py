"""Evaluating continuous-mode predictions against a continuous rating (annotation) stream.

The figures are those of continuous affect annotation work (AVEC challenges, CASE): Lin's
concordance correlation coefficient (CCC: agreement, not just correlation: a constant offset or
a wrong scale lowers it), the root-mean-square error on the rating scale, and the lag at which
the two series correlate best within ``±max_lag`` seconds (annotators trail what they feel by a
few seconds, and a 5-s window trails its end point by half its length).

Predictions are placed at their window's *end* (``onset + duration``: the newest sample the
model saw); the annotation is averaged over the same window shifted by the lag, so both
describe the same 5 s. A positive lag means the annotation trails the prediction.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

ANNOTATION_TYPES = ("annotation", "rating", "continuousrating", "joystick")
"""Stream types (lower case) read as a continuous rating stream."""

HEADS = ("arousal", "valence")


class ContinuousEvalError(ValueError):
    """Bad input to the evaluation (no annotation stream, no continuous predictions): one line."""


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two equally long series (NaN when either
    is constant and they differ, or fewer than 2 points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2:
        return float("nan")
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    denom = vx + vy + (mx - my) ** 2
    if denom == 0:
        return 1.0  # two identical constants agree perfectly
    return float(2 * cov / denom)


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square difference."""
    d = np.asarray(x, float) - np.asarray(y, float)
    return float(np.sqrt(np.mean(d**2))) if len(d) else float("nan")


def window_means(
    t: np.ndarray, values: np.ndarray, ends: np.ndarray, length: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (n,) over each window ``[end - length, end)``; windows holding no
    sample get NaN (the boolean mask says which have data).

    ``length`` 0 samples the series at ``ends`` (linear interpolation) instead.
    """
    t = np.asarray(t, float)
    v = np.asarray(values, float)
    good = np.isfinite(v)
    t, v = t[good], v[good]
    if length <= 0:
        inside = (ends >= t[0]) & (ends <= t[-1]) if len(t) else np.zeros(len(ends), bool)
        out = np.where(inside, np.interp(ends, t, v) if len(t) else np.nan, np.nan)
        return out, inside
    csum = np.concatenate([[0.0], np.cumsum(v)])
    lo = np.searchsorted(t, ends - length, side="left")
    hi = np.searchsorted(t, ends, side="left")
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[hi] - csum[lo]) / n
    return np.where(n > 0, out, np.nan), n > 0


@dataclass
class HeadResult:
    """One head's agreement figures."""

    ccc: float
    rmse: float
    pearson: float
    n: int
    best_lag: float
    ccc_at_best_lag: float
    rmse_at_best_lag: float
    r_at_best_lag: float

    def to_dict(self) -> dict:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in self.__dict__.items()
        }


def compare(
    ends: np.ndarray,
    predicted: np.ndarray,
    ann_t: np.ndarray,
    ann_v: np.ndarray,
    window: float = 5.0,
    max_lag: float = 10.0,
    lag_step: float | None = None,
) -> HeadResult:
    """Agreement of predictions at window ends with an annotation stream.

    Parameters
    ----------
    ends
        Window end times of the predictions (sorted).
    predicted
        Predicted values (expected ratings), one per window.
    ann_t, ann_v
        The annotation's timestamps and values (same clock and scale).
    window
        Seconds averaged of the annotation per prediction (the prediction's window length;
        0: the annotation at the window's end).
    max_lag
        Lags searched, ± seconds.
    lag_step
        Lag resolution (default: the median spacing of ``ends``).

    Returns
    -------
    HeadResult
        CCC, RMSE, Pearson r at lag 0; the best lag (highest Pearson r; ties: smallest
        |lag|) and the figures there.
    """
    ends = np.asarray(ends, float)
    predicted = np.asarray(predicted, float)
    if lag_step is None:
        lag_step = float(np.median(np.diff(ends))) if len(ends) > 1 else 1.0
    n_lags = int(math.floor(max_lag / lag_step + 1e-9))
    lags = np.arange(-n_lags, n_lags + 1) * lag_step

    def at(lag: float) -> tuple[float, float, float, int]:
        ref, ok = window_means(ann_t, ann_v, ends + lag, window)
        ok &= np.isfinite(predicted)
        p, r = predicted[ok], ref[ok]
        if len(p) < 3:
            return float("nan"), float("nan"), float("nan"), int(len(p))
        pr = float(stats.pearsonr(p, r)[0]) if np.ptp(p) > 0 and np.ptp(r) > 0 else float("nan")
        return ccc(p, r), rmse(p, r), pr, int(len(p))

    c0, e0, r0, n0 = at(0.0)
    best = (float("nan"), 0.0, c0, e0, r0)
    for lag in lags:
        c, e, r, _ = at(float(lag))
        if math.isnan(r):
            continue
        key = (r, -abs(lag))
        if math.isnan(best[0]) or key > (best[0], -abs(best[1])):
            best = (r, float(lag), c, e, r)
    return HeadResult(
        ccc=c0,
        rmse=e0,
        pearson=r0,
        n=n0,
        best_lag=round(best[1], 6),
        ccc_at_best_lag=best[2],
        rmse_at_best_lag=best[3],
        r_at_best_lag=best[4],
    )


# ---------------------------------------------------------------- reading inputs


def find_annotation(source, name: str | None = None):
    """The annotation stream of an XDF source: the one named ``name``, else the one whose type
    is in :data:`ANNOTATION_TYPES` and that has ``arousal`` and ``valence`` channels.

    Returns ``(timestamps, values (n, 2) as arousal, valence)``.
    """
    found = []
    for s in source.xdf_streams:
        spec = s.spec
        if name is not None:
            if spec.name == name:
                found.append(s)
            continue
        if spec.type.lower().replace(" ", "") in ANNOTATION_TYPES:
            found.append(s)
    if not found:
        what = f"named {name!r}" if name else f"of type {'/'.join(ANNOTATION_TYPES)}"
        there = ", ".join(f"{s.spec.name!r} ({s.spec.type})" for s in source.xdf_streams)
        raise ContinuousEvalError(f"no annotation stream {what} in {source.path}; streams: {there}")
    s = found[0]
    labels = [lab.lower() for lab in (s.spec.channel_labels or ())]
    cols = []
    for head in HEADS:
        if head in labels:
            cols.append(labels.index(head))
    if len(cols) != 2:
        if s.spec.channel_count < 2:
            raise ContinuousEvalError(
                f"annotation stream {s.spec.name!r} has {s.spec.channel_count} channel(s); "
                "need arousal and valence"
            )
        cols = [0, 1]  # unlabelled: arousal first, as CASE and CEAP-360VR store them
    values = np.asarray(s.values(), float)[:, cols]
    return np.asarray(s.timestamps, float), values


def read_predictions(path: Path, duration: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-mode predictions of a log (JSONL or CSV): window ends (``onset +
    duration``) and (n, 2) expected arousal, valence, for ``status == predicted`` records
    only, sorted by time."""
    path = Path(path)
    rows: list[tuple[float, float, float]] = []
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    if row.get("mode") == "continuous" and row.get("event") == "prediction":
                        rows.append(
                            (float(row["onset"]), float(row["arousal"]), float(row["valence"]))
                        )
        else:
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: the rest is still read
                    if rec.get("mode") == "continuous" and rec.get("event") == "prediction":
                        rows.append((float(rec["onset"]), rec["arousal"], rec["valence"]))
    except OSError as exc:
        raise ContinuousEvalError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (KeyError, ValueError) as exc:
        raise ContinuousEvalError(f"{path}: not a predictions log ({exc})") from None
    if not rows:
        raise ContinuousEvalError(
            f"{path} holds no continuous-mode predictions (run `emoeye replay --fast "
            "--continuous --log FILE` or `emoeye run --continuous`)"
        )
    arr = np.array(sorted(rows), float)
    return arr[:, 0] + duration, arr[:, 1:]


def evaluate(
    ends: np.ndarray,
    predicted: np.ndarray,
    ann_t: np.ndarray,
    ann_v: np.ndarray,
    window: float = 5.0,
    max_lag: float = 10.0,
) -> dict:
    """Both heads' figures (:func:`compare`) as a JSON-ready dict."""
    return {
        head: compare(ends, predicted[:, i], ann_t, ann_v[:, i], window, max_lag).to_dict()
        for i, head in enumerate(HEADS)
    } | {"windows": int(len(ends))}


__all__ = [
    "ContinuousEvalError",
    "HeadResult",
    "ccc",
    "compare",
    "evaluate",
    "find_annotation",
    "read_predictions",
    "rmse",
    "window_means",
]
