"""``emoeye run``: the live session — streams in, a prediction per trial out, on screen and logged."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from emoeye.commands.common import add_config_arg, load_acq_config, warm_trial_path
from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a live session: predict arousal and valence for every trial as it closes",
        description="Bind the live LSL streams to roles, cut a 5-s trial at every stimulus onset "
        "and predict the participant's arousal and valence (1-7) with the model as each trial "
        "closes. Predictions go to the dashboard (or the terminal with --headless), to the "
        "EmoEye-Predictions LSL outlet (LabRecorder records it beside the raw streams) and to a "
        "JSONL log in a per-run folder. Ctrl-C stops: pending trials are cut and predicted, "
        "the log is closed.",
    )
    add_config_arg(p)
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="model checkpoint directory (default: the bundled model)",
    )
    from models.cli import add_backbone_flag

    add_backbone_flag(p)
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the model runs (auto: CUDA when available, else CPU)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_view_args(p)
    p.add_argument(
        "--log",
        type=Path,
        default=None,
        help="predictions log, JSONL (default: <user data dir>/runs/<time>/predictions.jsonl)",
    )
    p.add_argument("--csv", type=Path, default=None, help="also log predictions to this CSV")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: never)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the streams")
    p.add_argument(
        "--quality-threshold",
        type=float,
        default=0.5,
        help="flag trials whose quality score (0-1) is below this (they are still predicted)",
    )
    p.add_argument(
        "--record",
        type=Path,
        default=None,
        help="record every stream (and the predictions) to this XDF file, from before the first "
        "inlet opens; crash-safe: flushed every second",
    )
    p.add_argument(
        "--record-backend",
        choices=("emoeye", "labrecorder"),
        default="emoeye",
        help="emoeye (default): our crash-safe writer; labrecorder: LabRecorder's engine "
        "(pip install 'emoeye[record]'; writes nothing to disk until stopped)",
    )
    p.add_argument("--no-outlet", action="store_true", help="do not publish predictions over LSL")
    add_continuous_args(p)
    p.set_defaults(func=run)


def add_continuous_args(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--continuous`` and ``--step`` (``emoeye run``, ``emoeye replay --fast``)."""
    p.add_argument(
        "--continuous",
        action="store_true",
        help=f"{what}continuous mode: also predict the last 5-s window every --step seconds, with "
        "or without markers (records marked mode=continuous; docs/continuous.md)",
    )
    p.add_argument(
        "--step",
        type=float,
        default=1.0,
        help="--continuous: seconds between windows (default 1; at least the grid period)",
    )
    p.add_argument(
        "--continuous-checkpoint",
        type=Path,
        default=None,
        metavar="DIR",
        help="--continuous: a model trained for continuous use, to predict the windows "
        "(default: the trial model predicts them too)",
    )


def continuous_step(args: argparse.Namespace, config) -> float | None:
    """The continuous step the options ask for (None: trial mode only); a step below the grid
    period is a one-line :class:`CliError`."""
    if not getattr(args, "continuous", False):
        return None
    from acquisition.trials.continuous import StepTooSmallError, check_step

    try:
        return check_step(args.step, config.trial)
    except StepTooSmallError as exc:
        raise CliError(f"--step: {exc}") from None


def add_view_args(p: argparse.ArgumentParser) -> None:
    """``--headless`` / ``--gui`` (``emoeye run`` and ``emoeye demo``)."""
    view = p.add_mutually_exclusive_group()
    view.add_argument("--headless", action="store_true", help="terminal view, no dashboard")
    view.add_argument(
        "--gui",
        action="store_true",
        help="the dashboard or an error (exit 2) when Qt cannot start; without it a failed Qt "
        "start prints one line and the terminal view is shown",
    )


def choose_view(args: argparse.Namespace):
    """The dashboard's ``run_dashboard``, or None for the terminal view.

    Qt is started once in a child process first (:func:`gui.probe.probe_qt`): a platform plugin
    that cannot load makes Qt abort its process, which must not be the session's. Without
    ``--gui`` a failure is one line and the terminal view; with it, an error.
    """
    if args.headless or not (args.gui or has_display()):
        return None
    if not has_display():
        raise CliError(
            "--gui: no display (DISPLAY and WAYLAND_DISPLAY are unset); run without --gui "
            "for the terminal view"
        )
    run_dashboard = _dashboard()
    if run_dashboard is None:
        if args.gui:
            raise CliError("--gui: the dashboard cannot be imported (see the line above)")
        return None
    from gui.probe import probe_qt

    probe = probe_qt()
    if probe.ok:
        return run_dashboard
    if args.gui:
        raise CliError(f"--gui: the dashboard cannot start: {probe.reason}")
    print(f"dashboard unavailable: {probe.reason}; showing the terminal view", flush=True)
    return None


@contextlib.contextmanager
def crash_traceback_to(folder: Path) -> Iterator[Path]:
    """While inside, a native crash (segfault, abort) writes every thread's Python stack to
    ``folder/crash-traceback.txt`` (:mod:`faulthandler`); the file is removed if nothing was
    written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "crash-traceback.txt"
    was_enabled = faulthandler.is_enabled()
    with open(path, "w") as f:
        faulthandler.enable(file=f, all_threads=True)
        try:
            yield path
        finally:
            faulthandler.disable()
            if was_enabled:
                faulthandler.enable(file=sys.__stderr__, all_threads=True)
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()


def default_run_dir() -> Path:
    """A fresh per-run folder: ``<user data dir>/runs/<YYYYmmdd-HHMMSS>`` (created by the log
    sink once the model has loaded, so a failed start leaves nothing behind)."""
    from platformdirs import user_data_dir

    base = Path(user_data_dir("emoeye")) / "runs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return path


def has_display() -> bool:
    """True when a dashboard window can be shown (X11/Wayland, or Qt's offscreen platform)."""
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM") == "offscreen"
    )


def _dashboard():
    if importlib.util.find_spec("gui") is None or importlib.util.find_spec("gui.app") is None:
        return None
    try:
        from gui.app import run_dashboard
    except ImportError as exc:
        print(f"dashboard unavailable ({exc}); showing the terminal view")
        return None
    return run_dashboard


STILL_STOPPING = (
    "still stopping: finishing predictions, the log and the recording (a few seconds); "
    "Ctrl-C once more quits at once, leaving them unfinished"
)
"""Printed on a second Ctrl-C while the session stops."""


def _write_now(text: str) -> None:
    """Write a line straight to stdout's file descriptor, unbuffered.

    Safe inside a signal handler: ``print`` (or a flush) there can fail with a reentrant-call
    error when the handler interrupts another write to the same buffered stream. A stdout
    without a descriptor (captured in tests) gets nothing.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(sys.stdout.fileno(), (text + "\n").encode())


@contextlib.contextmanager
def _patient_ctrl_c() -> Iterator[None]:
    """While the session stops, a second Ctrl-C says so instead of interrupting; a third quits.

    Stopping takes seconds (the cut trial is predicted, the log closed, LabRecorder's engine
    writes its footers), long enough for an experimenter to press Ctrl-C again. Interrupting
    there left the log without its ``session_end`` record and could leave the recording
    unclosed, so the second press only prints :data:`STILL_STOPPING`; the third raises
    ``KeyboardInterrupt`` as usual, for a stop that hangs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt
        _write_now(STILL_STOPPING)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _open_session(args: argparse.Namespace, config, log_path: Path, step: float | None = None):
    from emoeye.session import LiveSession, SessionConfig
    from inference.worker import DeviceUnavailableError
    from models.checkpoint import CheckpointError, default_checkpoint_dir

    if args.threads is not None and args.threads < 1:
        raise CliError("--threads must be >= 1")
    if not 0.0 <= args.quality_threshold <= 1.0:
        raise CliError("--quality-threshold must be between 0 and 1")
    session_config = SessionConfig(
        checkpoint=args.checkpoint,
        device=args.device,
        num_threads=args.threads,
        quality_threshold=args.quality_threshold,
        log_path=log_path,
        csv_path=args.csv,
        outlet=not args.no_outlet,
        wait=args.wait,
        record_path=args.record,
        record_backend=args.record_backend,
        continuous_step=step,
        continuous_checkpoint=args.continuous_checkpoint if step is not None else None,
    )
    try:
        return LiveSession(config, session_config)
    except DeviceUnavailableError as exc:
        raise CliError(str(exc)) from None
    except CheckpointError as exc:
        hint = ""
        if args.checkpoint is None:
            hint = (
                f"\nThe bundled model ({default_checkpoint_dir()}) is missing or damaged: "
                "reinstall emoeye, train one with `emoeye train`, or pass --checkpoint DIR."
            )
        raise CliError(f"cannot load the model: {exc}{hint}") from None


def run(args: argparse.Namespace) -> int:
    config = load_acq_config(args.config)
    step = continuous_step(args, config)  # a bad step is refused before anything starts
    log_path = args.log if args.log is not None else default_run_dir() / "predictions.jsonl"
    run_dashboard = choose_view(args)  # before the model loads: a --gui error comes first
    if args.record is not None and args.record_backend == "labrecorder":
        from acquisition.xdf.recorder import labrecorder_available

        if not labrecorder_available():
            raise CliError(
                "--record-backend labrecorder needs the 'labrecorder' package: "
                "pip install 'emoeye[record]', or record with the default backend (emoeye)"
            )
    from emoeye.live import StreamPrefetch

    prefetch = StreamPrefetch()  # looks for streams while the model loads
    session = _open_session(args, config, log_path, step)
    if step is not None:
        print(f"continuous mode: a prediction every {step:g} s", flush=True)
    print(
        f"model: {session.checkpoint_name} on {session.worker.device}; predictions log: {log_path}",
        flush=True,
    )
    with crash_traceback_to(log_path.parent):
        return _run_session(args, config, session, log_path, run_dashboard, prefetch.result())


def _run_session(
    args, config, session, log_path: Path, run_dashboard, prefetched: list | None = None
) -> int:
    from acquisition.xdf.recorder import RecordingError

    session.install_signal_handlers()
    try:
        session.start(prefetched)
        # scipy's signal and image modules (~1.7 s) load while the first onset's window fills
        # (>= 5 s), not before the session is ready: the first cut waits for them if needed.
        threading.Thread(target=warm_trial_path, name="warm-trial-path", daemon=True).start()
    except (RecordingError, OSError) as exc:
        session.stop()
        if args.record is None:
            raise
        raise CliError(f"cannot record to {args.record}: {exc}") from None
    except BaseException:
        session.stop()
        raise
    print("Bound roles:")
    print(session.live.plan.explain(config.trial.required_roles))
    if session.outlet is not None:
        print(f"publishing predictions on LSL outlet {session.outlet.stream_name}")
    view = None
    try:
        if run_dashboard is not None:
            # It closes on Ctrl-C, on SIGTERM (session.stop_requested) or after --seconds.
            run_dashboard(session, seconds=args.seconds or None)
        else:
            from emoeye.headless import HeadlessView

            view = HeadlessView(session)
            if not view.rich_view:
                print("Waiting for onsets... (Ctrl-C to stop)", flush=True)
            view.run(args.seconds or None)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping: cutting pending trials and finishing predictions...", flush=True)
        with _patient_ctrl_c():  # through the summary: the stop may be quick (our recorder)
            summary = session.stop()
            if view is not None:
                view.finish()
            _print_summary(args, summary, log_path)
    return 0


def _print_summary(args: argparse.Namespace, summary: dict, log_path: Path) -> None:
    from emoeye.session import summary_line

    print(summary_line(summary))
    print(f"predictions log: {log_path}")
    rec = summary.get("recording")
    if rec:
        print(
            f"recorded {rec['seconds']:.0f} s of {len(rec['streams'])} stream(s) to {rec['path']}"
        )
    if args.csv:
        print(f"CSV log: {args.csv}")
