"""A recording's feature table: one row per stimulus onset.

Trials come from the project's one trial path: the recording is fed through the acquisition
core (:func:`acquisition.offline_acquisition.offline_acquisition`, as ``emoeye replay --fast``
does; through :func:`emoeye.commands.replay.replay_fast` itself when predictions are asked
for), and each :class:`~acquisition.trials.types.Trial` becomes a row as it is cut. Only the raw
ECG/PPG waveform, which a trial does not carry, is read from the file for the trial's span.

Every onset gives exactly one row: a trial without usable data (``status`` ``no_data``) keeps
what could be computed; an onset whose cut failed (``failed``) has identity, quality 0 and the
reason, its features empty. A role the recording lacks leaves its columns empty and says so in
the notes; trials are then cut on the roles there are.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features import cardiac, eda, gaze, pupil

ROLES = ("gaze", "gsr", "hr")

ID_COLUMNS = ("file", "trial_id", "participant", "stimulus_id", "onset", "status", "note")
QUALITY_COLUMNS = (
    "quality",
    "complete",
    "gaze_valid",
    *(f"coverage_{r}" for r in ROLES),
    *(f"usable_{r}" for r in ROLES),
    *(f"gaps_{r}" for r in ROLES),
)
RATING_COLUMNS = ("rated_arousal", "rated_valence")
PREDICTION_COLUMNS = ("pred_arousal", "pred_valence", "pred_flagged", "pred_status")
FEATURE_COLUMNS = (
    *eda.COLUMNS,
    *pupil.COLUMNS,
    *gaze.COLUMNS,
    *cardiac.HR_COLUMNS,
    "hr_source",
    *cardiac.WAVE_COLUMNS,
)
COLUMNS = (*ID_COLUMNS, *QUALITY_COLUMNS, *RATING_COLUMNS, *PREDICTION_COLUMNS, *FEATURE_COLUMNS)
"""Every table's columns in order; AOI columns (:meth:`features.aoi.AoiSet.columns`) follow."""

TEXT_COLUMNS = frozenset(
    {"file", "trial_id", "participant", "stimulus_id", "status", "note", "pred_status",
     "hr_source", "wave_kind", "hrv_note"}
)  # fmt: skip


@dataclass
class Options:
    """How a recording's features are computed.

    Attributes
    ----------
    config
        Acquisition config (binding rules, trial window); None: defaults.
    predict
        Run the model and fill the prediction columns.
    checkpoint
        Model checkpoint (None: the bundled model).
    aois
        An :class:`features.aoi.AoiSet`, or None.
    threshold
        I-VT velocity threshold, screen units/s.
    dejitter
        Read regular streams with pyxdf's dejitter fit.
    """

    config: object = None
    predict: bool = False
    checkpoint: Path | None = None
    aois: object = None
    threshold: float = gaze.VELOCITY_THRESHOLD
    dejitter: bool = False


@dataclass
class Recording:
    """A recording's rows and what was said about it."""

    path: Path
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    predicted: bool = False


class Waveform:
    """The raw ECG or PPG stream of a recording, read over a trial's span."""

    def __init__(self, stream, reading, kind: str) -> None:
        from acquisition.lsl.reading import column_index

        self.stream, self.kind = stream, kind
        self.col = column_index(stream.spec, reading.columns.get("signal", 0))

    def span(self, trial) -> tuple[np.ndarray, np.ndarray, float, str] | None:
        """``(t from onset, signal, rate, kind)`` over the trial's span, as
        :func:`acquisition.trials.cut.cut_trial` cuts it (baseline before the onset, window
        after); None without samples there."""
        from acquisition.lsl.reading import regular_signal

        spec = trial.spec
        t0, t1 = trial.onset - spec.baseline, trial.onset + spec.duration
        i0, i1 = (int(i) for i in np.searchsorted(self.stream.timestamps, [t0, t1]))
        if i1 - i0 < 2:
            return None
        x = self.stream.values(i0, i1, np.float64)[:, self.col]
        ts, x, rate = regular_signal(
            self.stream.timestamps[i0:i1], x, self.stream.spec.nominal_srate
        )
        ok = np.isfinite(x)
        if ok.sum() < 2:
            return None
        if not ok.all():  # neurokit2 needs a finite signal: bridge the holes
            x = np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])
        return ts - trial.onset, x, rate, self.kind


def _waveform(source, binding) -> Waveform | None:
    """The ECG (else PPG) stream among the heart role's candidates, or None."""
    plan = binding.plan
    cands = ([plan.roles["hr"]] if "hr" in plan.roles else []) + plan.candidates.get("hr", [])
    streams = {s.spec.key: s for s in source.xdf_streams if s.stream_id not in source.foreign}
    for kind in ("hr_ecg", "hr_ppg"):
        for c in cands:
            stream = streams.get(c.spec.key)
            if c.reading.kind == kind and stream is not None and len(stream):
                return Waveform(stream, c.reading, kind[3:])
    return None


def _quality_cells(q) -> dict:
    out = {
        "quality": q.score,
        "complete": float(q.complete),
        "gaze_valid": q.gaze_valid if "gaze" not in q.unbound else math.nan,
    }
    for r in ROLES:
        bound = r not in q.unbound
        out[f"coverage_{r}"] = q.coverage.get(r, math.nan) if bound else math.nan
        out[f"usable_{r}"] = q.usable.get(r, math.nan) if bound else math.nan
        out[f"gaps_{r}"] = float(q.gaps[r]) if bound and r in q.gaps else math.nan
    return out


def recording_features(
    path: Path, options: Options, progress: Callable[[float], None] | None = None
) -> Recording:
    """Every onset of one recording as a feature row.

    Parameters
    ----------
    path
        The XDF recording.
    options
        Config, model, AOIs, threshold.
    progress
        Called with the data seconds done.

    Returns
    -------
    Recording
        Rows in onset order (keys :data:`COLUMNS` plus the AOI columns), notes, file warnings.

    Raises
    ------
    emoeye.errors.CliError
        A file that cannot be read, or one without a marker stream (no onsets at all).
    """
    from acquisition.config import AcquisitionConfig
    from acquisition.offline_acquisition import bind_offline
    from emoeye.commands.common import open_recording
    from emoeye.errors import CliError

    path = Path(path)
    config = options.config or AcquisitionConfig()
    source = open_recording(path, None, options.dejitter)
    if config.participant is None and source.participant:
        config.participant = source.participant  # trial ids as replay's ("P01-3")
    rec = Recording(path, warnings=list(source.warnings))
    rec.seconds = float(getattr(source, "duration", 0.0) or 0.0)
    binding = bind_offline(source, config, check=False)
    roles = binding.plan.roles
    if "markers" not in roles:
        raise CliError(f"{path}: no marker stream, so no onsets to cut trials at")
    missing = [r for r in ROLES if r not in roles]
    rec.notes += [
        f"role {r} has no stream in the recording: its columns are empty" for r in missing
    ]
    required = tuple(r for r in config.trial.required_roles if r in roles)
    if required != tuple(config.trial.required_roles):
        config = dataclasses.replace(
            config, trial=dataclasses.replace(config.trial, required_roles=required)
        )
    wave = _waveform(source, binding)
    hr_source = roles["hr"].reading.kind if "hr" in roles else ""
    cells: dict[str, dict] = {}  # trial id -> feature and quality cells
    ratings: dict[str, tuple[float, float]] = {}
    errors: dict[str, dict] = {}
    schedule = _schedule(source)

    def take(trial) -> None:
        if trial.participant is None and schedule is not None:
            trial.participant = schedule(trial.onset)
        values, notes = _features(trial, wave, options)
        values["hr_source"] = hr_source if "hr" in roles else ""
        if trial.quality.unusable:
            notes = [*trial.quality.unusable, *notes]
        values.update(_quality_cells(trial.quality))
        values.update(
            file=path.name,
            trial_id=trial.trial_id,
            participant=trial.participant or "",
            stimulus_id=trial.stimulus_id,
            onset=trial.onset,
            status="no_data" if trial.quality.unusable else "ok",
            note="; ".join(notes),
        )
        cells[trial.trial_id] = values
        if trial.ratings is not None:
            ratings[trial.trial_id] = (trial.ratings.arousal, trial.ratings.valence)

    feed = source
    if progress is not None:
        from acquisition.xdf.source import ProgressSource

        t0 = source.t_start if np.isfinite(source.t_start) else 0.0
        feed = ProgressSource(source, float(t0), progress)
    predictions: dict[str, object] = {}
    if options.predict:
        from emoeye.commands.replay import replay_fast

        def on_row(row: dict, pred) -> None:
            r = row.get("ratings")
            if r:
                ratings[row["trial_id"]] = (r["arousal"], r["valence"])
            if pred is not None:
                predictions[row["trial_id"]] = pred
            if row["trial_id"] not in cells:
                errors[row["trial_id"]] = {
                    "trial_id": row["trial_id"],
                    "participant": row.get("participant") or "",
                    "stimulus_id": row["stimulus_id"],
                    "onset": row["onset"],
                    "reason": row.get("error") or "cut failed",
                }

        summary = replay_fast(feed, config, options.checkpoint, use_model=True,
                              on_trial=take, on_row=on_row)  # fmt: skip
        rec.predicted = bool(summary.get("model"))
        if summary.get("model_error"):
            rec.notes.append(f"no model could be loaded ({summary['model_error']})")
    else:
        _run_trials(feed, config, binding, take, ratings, errors, schedule)
    rows = [_row(c, ratings, predictions, rec.predicted, options) for c in cells.values()]
    rows += [_error_row(path, e, ratings, rec.predicted, options) for e in errors.values()]
    rows.sort(key=lambda r: (r["onset"], r["trial_id"]))
    rec.rows = rows
    return rec


def _features(trial, wave: Waveform | None, options: Options) -> tuple[dict, list[str]]:
    from features.trial import trial_features

    span = wave.span(trial) if wave is not None else None
    values, notes = trial_features(trial, span, options.aois, options.threshold)
    if wave is not None and span is None:
        notes.append(f"{wave.kind}: no waveform samples in the trial")
    return values, notes


def _run_trials(feed, config, binding, take, ratings, errors, schedule) -> None:
    """Cut every trial of the source (``replay --fast`` without a model), errors included."""
    from acquisition.aligner import RatingEvent, TrialEvent
    from acquisition.offline_acquisition import UnboundSourceError, offline_acquisition
    from emoeye.errors import as_cli_error

    with as_cli_error(UnboundSourceError):
        acq = offline_acquisition(feed, config, "read features of", binding)
    for event in acq.run_offline(feed, 1.0):
        if isinstance(event, RatingEvent):
            ratings[event.trial_id] = (event.ratings.arousal, event.ratings.valence)
        elif isinstance(event, TrialEvent) and event.trial is not None:
            take(event.trial)
        elif isinstance(event, TrialEvent):
            e = event.error
            errors[e.trial_id] = {
                "trial_id": e.trial_id,
                "participant": e.participant or (schedule(e.onset) if schedule else "") or "",
                "stimulus_id": e.stimulus_id,
                "onset": e.onset,
                "reason": e.reason,
            }


def _schedule(source):
    from emoeye.commands.replay import _schedule_of

    return _schedule_of(source)


def _row(values: dict, ratings: dict, predictions: dict, predicted: bool, options: Options) -> dict:
    row = dict.fromkeys(columns_of(options), math.nan)
    row.update(values)
    a, v = ratings.get(values["trial_id"], (math.nan, math.nan))
    row.update(rated_arousal=a, rated_valence=v, pred_status="")
    p = predictions.get(values["trial_id"])
    if p is not None:
        row.update(pred_arousal=p.arousal, pred_valence=p.valence,
                   pred_flagged=float(bool(p.flagged)), pred_status="predicted")  # fmt: skip
    elif predicted:
        row["pred_status"] = "not_predicted"
    return row


def _error_row(path: Path, e: dict, ratings: dict, predicted: bool, options: Options) -> dict:
    a, v = ratings.get(e["trial_id"], (math.nan, math.nan))
    row = dict.fromkeys(columns_of(options), math.nan)
    row.update(
        file=path.name,
        trial_id=e["trial_id"],
        participant=e["participant"],
        stimulus_id=e["stimulus_id"],
        onset=e["onset"],
        status="failed",
        note=e["reason"],
        quality=0.0,
        complete=0.0,
        pred_status="not_predicted" if predicted else "",
        rated_arousal=a,
        rated_valence=v,
    )
    return row


def columns_of(options: Options) -> tuple[str, ...]:
    """:data:`COLUMNS`, then the AOI columns when there are AOIs."""
    extra = tuple(options.aois.columns()) if options.aois is not None else ()
    return (*COLUMNS, *extra)


# ---------------------------------------------------------------- writing


def _cell(column: str, v) -> str:
    if column in TEXT_COLUMNS:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    if v is None or not np.isfinite(v):
        return ""
    if column == "onset":
        return f"{float(v):.6f}"
    return f"{float(v):.6g}"


def write_table(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """Write the rows as CSV (``.csv``; empty cells for missing values) or Parquet
    (``.parquet``, needs pyarrow; NaN / empty strings), through a temporary file.

    Raises
    ------
    emoeye.errors.CliError
        Another suffix, or Parquet without pyarrow.
    """
    from emoeye.commands.common import atomic_write
    from emoeye.errors import CliError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CliError(f"--out {path}: the table is written as .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([_cell(c, row.get(c)) for c in columns])
        with atomic_write(path, newline="") as fh:
            fh.write(text.getvalue())
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CliError(
            f"--out {path}: Parquet needs pyarrow: pip install 'emoeye[parquet]', or write .csv"
        ) from None
    data = {}
    for c in columns:
        if c in TEXT_COLUMNS:
            data[c] = pa.array([_cell(c, r.get(c)) for r in rows], pa.string())
        else:
            data[c] = pa.array([float(r.get(c, math.nan)) for r in rows], pa.float64())
    with atomic_write(path, "wb") as fh:
        pq.write_table(pa.table(data), fh)


__all__ = ["COLUMNS", "Options", "Recording", "recording_features", "write_table"]
