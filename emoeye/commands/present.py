"""``emoeye present``: show a folder of pictures full screen with SAM ratings, sending the
default onset and rating markers over LSL and logging one CSV row per trial."""

from __future__ import annotations

import argparse
import math
import signal
import statistics
import sys
import uuid
from pathlib import Path

from emoeye.errors import CliError

AUTO_WAIT_S = 10.0
"""With --auto-rate, how long the start screen waits for a marker receiver (then starts anyway)."""
END_SCREEN_S = 1.5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "present",
        help="present a folder of pictures full screen with SAM ratings, sending LSL markers",
        description="Show the pictures of FOLDER full screen: a fixation cross for a jittered "
        "interval, the picture, then Self-Assessment Manikin ratings of arousal and valence "
        "(keys 1-9 or mouse). Onset and rating markers go to an LSL marker stream in the "
        "default format that `emoeye run` reads; one CSV row per trial is logged. SPACE "
        "starts (and ends breaks), ESC aborts.",
    )
    p.add_argument("folder", type=Path, help="folder of .jpg/.jpeg/.png/.bmp pictures")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per picture (default 5)")
    p.add_argument(
        "--isi", default="1-2", help="fixation seconds before each picture, or a range (1-2)"
    )
    p.add_argument("--rating", choices=("sam", "slider", "none"), default="sam")
    p.add_argument(
        "--scale",
        nargs=2,
        type=float,
        default=(1.0, 7.0),
        metavar=("MIN", "MAX"),
        help="rating scale, integer points (default 1 7, as markers.scale)",
    )
    p.add_argument("--order", choices=("random", "fixed"), default="random")
    p.add_argument("--seed", type=int, default=None, help="seed of the order and fixations")
    p.add_argument("--trials", type=int, default=None, help="trials (default: each picture once)")
    p.add_argument("--participant", default="", help="participant id written in the log")
    p.add_argument(
        "--log", type=Path, default=None, help="CSV log (default: presenter.csv in a run folder)"
    )
    p.add_argument(
        "--auto-rate",
        default=None,
        metavar="A,V",
        help="answer every rating with arousal A and valence V and pass start and break "
        "screens by themselves (tests, dry runs)",
    )
    p.add_argument(
        "--name", default="EmoEyePresenter", help="name of the LSL marker stream (type Markers)"
    )
    p.add_argument("--screen", type=int, default=0, help="monitor number (0: the primary)")
    p.add_argument(
        "--break-every", type=int, default=0, metavar="K", help="a break after every K trials"
    )
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> tuple[tuple[float, float], tuple, object]:
    from gui.presenter.plan import PresenterError, parse_isi, scale_points

    if not (math.isfinite(args.duration) and args.duration > 0):
        raise CliError(f"--duration {args.duration:g}: expected seconds > 0")
    if args.break_every < 0:
        raise CliError(f"--break-every {args.break_every}: expected 0 (none) or more")
    try:
        isi = parse_isi(args.isi)
        points = tuple(scale_points(tuple(args.scale)))
    except PresenterError as exc:
        raise CliError(str(exc)) from None
    auto = None
    if args.auto_rate is not None:
        try:
            a, v = (float(x) for x in args.auto_rate.split(","))
        except ValueError:
            raise CliError(f"--auto-rate {args.auto_rate!r}: expected A,V such as 4,5") from None
        if not all(points[0] <= x <= points[-1] for x in (a, v)):
            raise CliError(f"--auto-rate {args.auto_rate}: outside the scale {args.scale}")
        auto = (a, v)
    return isi, points, auto


def decodable(path: Path) -> bool:
    """True when ``path`` holds an image PIL can decode (checked before the session starts)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception:  # PIL raises many types for a broken file
        return False
    return True


def run(args: argparse.Namespace) -> int:
    isi, points, auto = _check_args(args)
    import pylsl

    from gui.presenter import PresenterConfig, PresenterError, PresenterWindow, TrialLog
    from gui.presenter.plan import list_pictures, plan_trials
    from gui.qt import QtCore, QtWidgets

    try:  # before Qt starts, so that a refusal is the only line printed
        pictures = list_pictures(args.folder, decodable)
        trials = plan_trials(pictures, args.trials, args.order, isi, args.seed)
    except PresenterError as exc:
        raise CliError(str(exc)) from None
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    screens = app.screens()
    if not 0 <= args.screen < len(screens):
        raise CliError(f"--screen {args.screen}: this computer has screens 0..{len(screens) - 1}")
    if args.log is not None:
        log_path = args.log
    else:
        from emoeye.commands.run import default_run_dir

        log_path = default_run_dir() / "presenter.csv"
    try:
        trial_log = TrialLog(log_path)
    except OSError as exc:
        raise CliError(f"log {log_path}: {exc.strerror or exc}") from None

    info = pylsl.StreamInfo(
        args.name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
        f"emoeye-present-{args.name}-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    outlet = pylsl.StreamOutlet(info)
    if auto is not None:
        outlet.wait_for_consumers(AUTO_WAIT_S)

    def status() -> str:
        if outlet.have_consumers():
            return f"Marker stream '{args.name}': a receiver is listening."
        return f"Marker stream '{args.name}': no receiver yet (start `emoeye run`); the log keeps every trial."

    def send(text: str, stamp: float) -> None:
        outlet.push_sample([text], stamp)

    config = PresenterConfig(
        trials=trials,
        duration=args.duration,
        rating=args.rating,
        points=points,
        break_every=args.break_every,
        auto_rate=auto,
        participant=args.participant,
    )
    window = PresenterWindow(config, trial_log, send, status)
    window.finished.connect(
        lambda _ok: QtCore.QTimer.singleShot(0 if auto else int(END_SCREEN_S * 1000), app.quit)
    )
    refresh = QtCore.QTimer(window)  # the start screen's receiver line; also lets Ctrl-C in
    refresh.timeout.connect(lambda: window.update() if window.state == "start" else None)
    refresh.start(500)
    previous = signal.signal(signal.SIGINT, lambda *_: window.abort())
    try:
        window.create()  # a native window, to put on the chosen monitor before it is shown
        window.windowHandle().setScreen(screens[args.screen])
        window.setGeometry(screens[args.screen].geometry())
        window.showFullScreen()
        window.activateWindow()
        app.exec_()
    finally:
        signal.signal(signal.SIGINT, previous)
        window.abort()  # no-op unless the loop ended early; sends the abort marker otherwise
        trial_log.flush()
    rows = trial_log.rows
    shown = [r for r in rows if not math.isnan(r.onset)]
    rated = [r for r in rows if r.status.startswith("done")]
    lags = [r.paint_to_stamp_ms for r in shown if not math.isnan(r.paint_to_stamp_ms)]
    lag = f"; paint→stamp median {statistics.median(lags):.2f} ms" if lags else ""
    word = "finished" if window.done else "aborted"
    print(
        f"{word}: {len(shown)} of {len(trials)} pictures shown, {len(rated)} rated{lag}; log: {log_path}"
    )
    return 0 if window.done else 130
