"""``emoeye replay``: an XDF recording, at full speed into predictions or in real time over LSL.

``--fast`` feeds the file straight into the acquisition buffers in stream-time order (the same
code that cuts live trials) and, when the inference package is there, through the model; it
prints a summary and can write a per-trial table and a predictions log. ``--realtime``
republishes every stream of the file as an LSL outlet with its original metadata and timing, so
``emoeye run``, ``emoeye trials`` or the dashboard can watch it as if it were live.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from emoeye.commands.common import (
    add_config_arg,
    add_dejitter_arg,
    atomic_write,
    data_progress,
    load_acq_config,
    open_recording,
    print_binding,
    quiet_reader_log,
)
from emoeye.errors import CliError, as_cli_error

TABLE_COLUMNS = (
    "trial_id",
    "participant",
    "stimulus_id",
    "onset",
    "complete",
    "quality",
    "rated_arousal",
    "rated_valence",
    "pred_arousal",
    "pred_valence",
    "flagged",
    "status",
    "reason",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay an XDF recording: fast into predictions, or in real time over LSL",
        description="Replay a recorded session. --fast (default) cuts every trial of the file as "
        "fast as the CPU allows and predicts each one with the model; --realtime republishes the "
        "file's streams as LSL outlets (same names, types, channels, rates, timing) so a second "
        "program (emoeye run, emoeye trials, the dashboard) can watch. Damaged files (cut off, "
        "no footer, clock resets) are read up to the damage and what was wrong is reported.",
    )
    p.add_argument("file", type=Path, metavar="FILE.xdf", help="the recording")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--fast", action="store_true", help="full speed into predictions (default)")
    mode.add_argument(
        "--realtime", action="store_true", help="republish the streams over LSL in real time"
    )
    p.add_argument("--speed", type=float, default=1.0, help="--realtime: speed factor (default 1)")
    p.add_argument("--loop", action="store_true", help="--realtime: start over at the end")
    p.add_argument(
        "--wait-consumers",
        type=float,
        default=0.0,
        metavar="S",
        help="--realtime: start the clock once every stream has a listener (wait up to S s)",
    )
    add_config_arg(p)
    add_dejitter_arg(p)
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="model checkpoint (default: bundled model)"
    )
    from models.cli import add_backbone_flag

    add_backbone_flag(p)
    p.add_argument("--no-model", action="store_true", help="--fast: cut trials only, no model")
    p.add_argument("--out", type=Path, default=None, help="--fast: per-trial CSV table")
    p.add_argument("--log", type=Path, default=None, help="--fast: predictions log (.jsonl/.csv)")
    p.add_argument("--participant", default=None, help="participant id (default: file metadata)")
    p.add_argument("--block-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-trial lines")
    from emoeye.commands.run import add_continuous_args

    add_continuous_args(p, "--fast: ")
    p.set_defaults(func=run)


def _open(path: Path, participant: str | None = None, dejitter: bool = False):
    return open_recording(path, participant, dejitter)


def _load_predict_offline() -> Callable | None:
    try:
        from emoeye.session import predict_offline
    except ImportError:
        return None
    return predict_offline


_NO_MODEL_ERRORS = ("CheckpointError", "FileNotFoundError", "ModuleNotFoundError", "ImportError")
"""Failures to *load* the default model: replay then cuts trials without predictions."""


def replay_fast(
    source,
    config,
    checkpoint: Path | None = None,
    log_path: Path | None = None,
    out_csv: Path | None = None,
    use_model: bool = True,
    block_seconds: float = 1.0,
    progress: Callable[[float], None] | None = None,
    on_trial: Callable[[object], None] | None = None,
    on_row: Callable[[dict, object | None], None] | None = None,
    continuous_step: float | None = None,
    continuous_checkpoint: Path | None = None,
) -> dict:
    """Cut (and predict) every trial of an offline source as fast as possible.

    Trials are not kept: each becomes a small summary row (``Trial.summary()``, its ratings
    filled in when they attach), so memory stays flat over hours of data.

    Parameters
    ----------
    source
        An :class:`~acquisition.xdf.source.XdfSource` (or any offline source).
    config
        The :class:`~acquisition.config.AcquisitionConfig` (its participant, if unset, becomes
        the source's).
    checkpoint, log_path
        Model checkpoint (None: bundled) and predictions log, passed to the inference session.
    out_csv
        Per-trial table to write.
    use_model
        Predict with the model when the inference package is available.
    block_seconds
        Data seconds fed per step.
    progress
        Called with the data seconds done after each block.
    on_trial
        Called with each :class:`~acquisition.trials.types.Trial` as it is cut (before prediction).
    on_row
        Called at the end with each trial's summary row and its prediction (or None).
    continuous_step
        Continuous mode: also predict the last window every this many seconds (needs the
        model; the windows go to the predictions log, not to the per-trial rows).
    continuous_checkpoint
        A model trained for continuous use, to predict the windows.

    Returns
    -------
    dict
        ``trials``, ``predictions``, ``rated``, ``incomplete``, ``aligner`` stats, ``model``
        (whether predictions were made), ``seconds`` of data and ``wall_s``.
    """
    from collections import deque

    from acquisition.aligner import AlignerStats, TrialEvent
    from acquisition.offline_acquisition import (
        UnboundSourceError,
        bind_offline,
        offline_acquisition,
    )
    from acquisition.xdf.source import ProgressSource

    started = time.perf_counter()
    if config.participant is None and getattr(source, "participant", None):
        config.participant = source.participant
    t0 = getattr(source, "t_start", None)
    if t0 is None:
        t0 = getattr(source, "start_time", 0.0)
    feed = ProgressSource(source, float(t0), progress) if progress is not None else source
    rows: list[dict] = []
    recent: deque = deque()  # (row, trial) until the trial's rating can no longer come
    predictions: dict[str, object] = {}
    records: dict[str, object] = {}  # every record, failed and no-data ones too
    stats: dict = {}
    result = None
    schedule = _schedule_of(source)

    def settle(row: dict, trial) -> None:
        r = trial.ratings
        if r is not None:
            row["ratings"] = {"arousal": r.arousal, "valence": r.valence}

    def take(trial) -> None:
        if trial.participant is None and schedule is not None:
            trial.participant = schedule(trial.onset)  # before it is predicted and logged
        if on_trial is not None:
            on_trial(trial)
        row = trial.summary()
        rows.append(row)
        recent.append((row, trial))
        while len(recent) > 64 or (recent and trial.onset - recent[0][1].onset > 120.0):
            settle(*recent.popleft())

    binding = bind_offline(source, config)
    markers = continuous_step is None  # continuous mode runs without markers too
    with as_cli_error(UnboundSourceError):  # refuse before the model loads
        offline_acquisition(source, config, "replay", binding, require_markers=markers)
    # Only now: importing torch and loading the model cost seconds and ~200 MB.
    predict_offline = _load_predict_offline() if use_model else None
    if predict_offline is not None:
        try:
            result = predict_offline(
                feed,
                config,
                checkpoint,
                log_path,
                block_seconds=block_seconds,
                on_trial=take,
                continuous_step=continuous_step,
                continuous_checkpoint=continuous_checkpoint,
            )
        except Exception as exc:
            # No model to load (none bundled yet, torch missing): cut trials only, say why.
            named = checkpoint is not None or continuous_checkpoint is not None
            if named or rows or type(exc).__name__ not in _NO_MODEL_ERRORS:
                raise
            stats["model_error"] = f"{type(exc).__name__}: {exc}"
            predict_offline = None
    windows = 0
    if result is not None:
        for pred in result.get("predictions", []):
            if pred.mode == "continuous":  # in the log; the rows are one per onset
                windows += 1
                continue
            records[pred.trial_id] = pred
            if pred.status == "predicted":  # error / no-data records hold no values
                predictions[pred.trial_id] = pred
        seen = {row["trial_id"] for row in rows}
        for pred in records.values():  # an onset whose cut failed has a record, not a trial
            if pred.trial_id not in seen:
                rows.append(_row_of_record(pred))
        rows.sort(key=lambda row: row["onset"])
        stats.update({k: v for k, v in result.items() if k != "predictions"})
    else:
        if continuous_step is not None:
            raise CliError("--continuous needs the model (no model could be loaded)")
        with as_cli_error(UnboundSourceError):
            acq = offline_acquisition(source, config, "replay", binding)
        for event in acq.run_offline(feed, block_seconds):
            if isinstance(event, TrialEvent) and event.trial is not None:
                take(event.trial)
        stats["aligner"] = acq.aligner.stats.to_dict()
    while recent:
        settle(*recent.popleft())
    if on_row is not None:
        for row in rows:
            on_row(row, predictions.get(row["trial_id"]))
    if out_csv is not None:
        write_table(out_csv, rows, predictions, records)
    duration = float(getattr(source, "duration", 0.0) or 0.0)
    aligner = stats.get("aligner") or {}
    marker_problems = AlignerStats(**aligner).marker_problems() if aligner else ""
    return {
        "trials": len(rows),
        "predictions": len(predictions),
        "rated": sum("ratings" in r for r in rows),
        "incomplete": sum(not r["quality"]["complete"] for r in rows),
        "model": predict_offline is not None,
        "seconds": round(duration, 3),
        "wall_s": round(time.perf_counter() - started, 3),
        "marker_problems": marker_problems,
        "notes": list(binding.notes),
        **({"windows": windows} if continuous_step is not None else {}),
        **stats,
    }


def _schedule_of(source) -> Callable[[float], str] | None:
    """Participant by onset from a recording's ``participant_schedule`` header, if any."""
    file = getattr(source, "file", None)
    if file is None:
        return None
    from emoeye.commands.dataset import _participant_schedule, _schedule_lookup

    schedule = _participant_schedule(file.header_value("participant_schedule"))
    return _schedule_lookup(schedule, "") if schedule else None


def _row_of_record(pred) -> dict:
    """A table row for a record without a trial (its cut failed)."""
    return {
        "trial_id": pred.trial_id,
        "participant": pred.participant,
        "stimulus_id": pred.stimulus_id,
        "onset": pred.onset,
        "quality": {"complete": False, "score": 0.0},
        "error": getattr(pred, "error", None),
    }


def write_table(
    path: Path, rows: list[dict], predictions: dict, records: dict | None = None
) -> None:
    """One CSV row per onset (summary rows of :func:`replay_fast`): identity, quality, ratings,
    predictions, and the record's ``status`` (``predicted``, ``no_data``, ``failed``; empty
    without a model) with its ``reason``."""
    records = records or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS)
        for row in rows:
            p = predictions.get(row["trial_id"])
            r = row.get("ratings")
            w.writerow(
                [
                    row["trial_id"],
                    row["participant"] or "",
                    row["stimulus_id"],
                    f"{row['onset']:.6f}",
                    int(row["quality"]["complete"]),
                    f"{row['quality']['score']:.3f}",
                    "" if r is None else f"{r['arousal']:g}",
                    "" if r is None else f"{r['valence']:g}",
                    "" if p is None else f"{p.arousal:.3f}",
                    "" if p is None else f"{p.valence:.3f}",
                    "" if p is None else int(p.flagged),
                    getattr(records.get(row["trial_id"]), "status", ""),
                    getattr(records.get(row["trial_id"]), "error", None) or "",
                ]
            )


def run(args: argparse.Namespace) -> int:
    quiet_reader_log(args)
    if args.realtime and args.continuous:
        raise CliError(
            "--continuous works with --fast; with --realtime run `emoeye run --continuous`"
        )
    if args.realtime:
        return _run_realtime(args)
    return _run_fast(args)


def _print_file(source) -> None:
    from acquisition.streams import shorten

    s = source.summary()
    print(f"{s['path']}: {s['duration_s']:.1f} s, participant {s['participant'] or 'unknown'}")
    for st in s["streams"]:
        rate = "irregular" if not st["srate"] else f"{st['srate']:g} Hz"
        print(
            f"  {shorten(st['name'])!r} ({shorten(st['type'])}, {st['channels']} ch "
            f"{shorten(st['format'])}, {rate}): "
            f"{st['samples']} samples"
        )


def _print_roles(source, config) -> None:
    from acquisition.offline_acquisition import bind_offline

    print_binding(bind_offline(source, config))


def _print_warnings(source) -> None:
    for w in source.warnings:
        print(f"  file warning: {w}")


def _run_fast(args: argparse.Namespace) -> int:
    from emoeye.commands.run import continuous_step
    from emoeye.commands.trials import format_trial

    config = load_acq_config(args.config)
    if args.participant:
        config.participant = args.participant
    step = continuous_step(args, config)
    if step is not None and args.no_model:
        raise CliError("--continuous predicts windows: it cannot run with --no-model")
    source = _open(args.file, args.participant, args.dejitter)
    quiet = args.quiet or args.json
    if not quiet:
        _print_file(source)
        _print_roles(source, config)

    def on_row(row: dict, pred) -> None:
        if quiet:
            return
        line = format_trial(row)
        if pred is not None:
            line += f"  -> arousal {pred.arousal:.2f}, valence {pred.valence:.2f}"
        print(line)

    with data_progress(quiet) as bar:
        progress = None
        if bar is not None:
            task = bar.add_task("replay", total=source.duration or None)

            def progress(done: float) -> None:
                bar.update(task, completed=done)

        summary = replay_fast(
            source,
            config,
            args.checkpoint,
            args.log,
            args.out,
            not args.no_model,
            args.block_seconds,
            progress=progress,
            on_row=on_row,
            continuous_step=step,
            continuous_checkpoint=args.continuous_checkpoint,
        )
    summary["file"] = str(args.file)
    summary["warnings"] = list(source.warnings)
    summary["realtime_factor"] = round(summary["seconds"] / max(summary["wall_s"], 1e-9), 1)
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    model = "" if summary["model"] else " (no model: trials only)"
    if summary.get("model_error"):
        print(f"no model could be loaded ({summary['model_error']}): trials only")
    print(
        f"replayed {summary['seconds']:.1f} s in {summary['wall_s']:.2f} s "
        f"({summary['realtime_factor']:g}x real time): {summary['trials']} trial(s), "
        f"{summary['rated']} rated, {summary['incomplete']} incomplete, "
        f"{summary['predictions']} prediction(s){model}"
        + (f"; {summary['windows']} continuous window(s)" if "windows" in summary else "")
    )
    if summary.get("marker_problems"):
        print(summary["marker_problems"])
    for note in summary.get("notes", []):
        print(note)
    if source.warnings:
        print(f"{len(source.warnings)} problem(s) with the file:")
        _print_warnings(source)
    if args.out:
        print(f"trial table written to {args.out}")
    if args.log and summary["model"]:
        print(f"predictions logged to {args.log}")
    return 0


def _run_realtime(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise CliError("--speed must be > 0")
    import numpy as np
    import pylsl

    from acquisition.xdf.player import LslPlayer

    source = _open(args.file, args.participant, args.dejitter)
    _print_file(source)
    if source.warnings:
        _print_warnings(source)
    _print_roles(source, load_acq_config(args.config))
    if not source.n_samples:
        raise CliError(f"{args.file} holds no samples to replay")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        f"replaying over LSL at {args.speed:g}x: {source.duration / args.speed:.0f} s "
        "(Ctrl-C to stop)",
        flush=True,
    )
    rounds = 0
    stopped_at: float | None = None  # data seconds into the pass that was stopped
    try:
        while not stop.is_set():
            player = LslPlayer(source, speed=args.speed, wait_consumers=args.wait_consumers)
            player.start()
            try:
                while player.running and not stop.is_set():
                    time.sleep(0.2)
            except KeyboardInterrupt:
                stop.set()
            finally:
                finished = not player.running and not stop.is_set()
                if not finished:  # the player's clock: data seconds pushed so far
                    since = pylsl.local_clock() - player.t0_local
                    stopped_at = since * args.speed if np.isfinite(since) else 0.0
                player.close()
            if player.error is not None:
                raise CliError(f"LSL playback failed: {player.error}")
            if not finished:
                break
            rounds += 1
            if not args.loop:
                break
    except KeyboardInterrupt:
        pass
    print(realtime_outcome(rounds, stopped_at, source.duration))
    return 0


def realtime_outcome(rounds: int, stopped_at: float | None, duration: float) -> str:
    """The last line of a real-time replay.

    Parameters
    ----------
    rounds
        Passes played to the end.
    stopped_at
        Data seconds into the pass that was stopped (Ctrl-C, SIGTERM); None when the replay
        ended by itself.
    duration
        Data seconds in one pass.
    """
    if stopped_at is None:
        return f"replay finished after {rounds} complete pass(es)"
    where = f"{min(stopped_at, duration):.1f} s of {duration:.1f} s"
    if rounds:
        return f"replay stopped after {rounds} complete pass(es) and {where} of the next"
    return f"replay stopped after {where}: no complete pass"
