"""Screenshots of the dashboard over a simulated session, for docs/dashboard.md.

Plays the simulated devices over real LSL (in this process), runs the live acquisition and a
session (``emoeye.session.LiveSession`` with the real model when it is available and
``--stand-in`` is not given; otherwise the benchmark's stand-in predictor), shows the dashboard
on an X display at 1366×768 and saves the window:

- ``docs/img/dashboard.png``: the Gazepoint set (one 60 Hz stream with gaze, pupil, GSR, HR), a
  few trials in, one of them flagged for a gaze dropout;
- ``docs/img/dashboard-missing-role.png``: the lab set with no heart-rate stream visible;
- ``docs/img/dashboard_continuous.png``: continuous mode (a window every 0.5 s beside the
  trials): arousal and valence time courses with their probabilities;
- ``docs/img/dashboard-modalities.png``: the full set (lab + 32-channel EEG + OpenFace action
  units): the EEG and face panels and their health rows.

Without a DISPLAY it re-runs itself under ``xvfb-run`` (Debian package ``xvfb``); ``--offscreen``
renders with Qt's offscreen platform instead.

    python scripts/screenshot_dashboard.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCREEN = "1366x768x24"


def _bench_module():
    spec = importlib.util.spec_from_file_location(
        "bench_dashboard", ROOT / "bench" / "dashboard.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shrink(path: Path, limit: int = 300_000) -> None:
    """Re-save with fewer colours if a PNG is over ``limit`` bytes (needs ImageMagick)."""
    if path.stat().st_size <= limit or not shutil.which("convert"):
        return
    subprocess.run(["convert", str(path), "-colors", "128", str(path)], check=True)


def capture(
    name: str,
    device_set: str,
    seconds: float,
    out: Path,
    stand_in: bool,
    exclude_types: tuple[str, ...] = (),
    required: tuple[str, ...] | None = None,
    dropouts: list | None = None,
    continuous_step: float | None = None,
) -> Path:
    """Run one simulated session for ``seconds`` of wall time and save the window."""
    bench = _bench_module()
    from acquisition.config import AcquisitionConfig
    from acquisition.lsl.live import LiveAcquisition, discover
    from acquisition.trials.types import TrialSpec
    from acquisition.xdf.player import LslPlayer
    from gui.qt import QtCore, QtWidgets
    from gui.window import DashboardWindow

    sim = bench.make_simulation(device_set, seconds + 20, isi=6.0, seed=4, dropouts=dropouts or [])
    player = LslPlayer(sim, speed=1.0)  # outlets now; playing starts once the inlets listen
    ids = [s.source_id for s in sim.streams if s.type not in exclude_types]
    visible = discover(5.0, ids)
    trial = TrialSpec(grace=1.0, required_roles=required) if required else TrialSpec(grace=1.0)
    config = AcquisitionConfig(trial=trial)
    session = None
    if not stand_in:
        session = _live_session(visible, config, continuous_step)
    if session is None:
        if continuous_step is not None:
            sys.exit("continuous mode needs the real model (LiveSession); none could be made")
        live = LiveAcquisition(config, streams=visible)
        live.start()
        live.wait_connected(10.0)
        session = bench.StandInSession(live, sim.ground_truth())
    session.start()
    time.sleep(0.5)
    player.start()
    print(f"{name}: {type(session).__name__}", file=sys.stderr)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = DashboardWindow(session)
    window.move(0, 0)
    window.show()
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec_()
    path = out / name
    window.grab().save(str(path))
    for p in [q for q in session.store.latest(200) if q.mode == "trial"]:
        score = p.quality.get("score", float("nan"))
        flag = f" flagged ({p.flag_reason})" if p.flagged else ""
        print(f"  trial {p.trial_id} {p.stimulus_id}: quality {score:.2f}{flag}", file=sys.stderr)
    _shrink(path)
    window.close()
    session.stop()
    getattr(session, "live", None) and session.live.stop()
    player.close()
    del app
    return path


def _live_session(visible, config, continuous_step: float | None = None):
    """``emoeye.session.LiveSession`` (the real model) over the given streams, or None when it
    cannot be made here (no model yet, no torch)."""
    try:
        from acquisition.lsl.live import LiveAcquisition
        from emoeye.session import LiveSession, SessionConfig

        live = LiveAcquisition(config, streams=visible)
        # Flag below 0.7 (default 0.5) so the trial with the gaze dropout shows as flagged.
        return LiveSession(
            config,
            SessionConfig(outlet=False, quality_threshold=0.7, continuous_step=continuous_step),
            live=live,
            say=lambda _: None,
        )
    except Exception as exc:  # say why, and go on with the stand-in predictor
        print(f"LiveSession unavailable ({exc}); using the stand-in predictor", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--seconds", type=float, default=31.0, help="wall seconds per screenshot")
    parser.add_argument("--offscreen", action="store_true", help="Qt offscreen, no X display")
    parser.add_argument("--stand-in", action="store_true", help="never use the real model")
    parser.add_argument(
        "--only", choices=("main", "missing", "continuous", "modalities"), default=None
    )
    args = parser.parse_args()
    if args.offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif not os.environ.get("DISPLAY") and not os.environ.get("UNDER_XVFB"):
        if not shutil.which("xvfb-run"):
            sys.exit("no DISPLAY and no xvfb-run: install xvfb or pass --offscreen")
        env = dict(os.environ, UNDER_XVFB="1")
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", sys.executable, *sys.argv]
        sys.exit(subprocess.call(cmd, env=env))
    bench = _bench_module()
    bench.ensure_lsl_config("screenshot")
    args.out.mkdir(parents=True, exist_ok=True)
    shots = []
    if args.only in (None, "main"):
        shots.append(
            capture(
                "dashboard.png",
                "gazepoint",
                args.seconds,
                args.out,
                args.stand_in,
                dropouts=[("gaze", 15.5, 4.0)],  # trial 3 (onset 15 s) loses 4 s: flagged
            )
        )
    if args.only in (None, "missing"):
        shots.append(
            capture(
                "dashboard-missing-role.png",
                "lab",
                min(args.seconds, 26.0),
                args.out,
                args.stand_in,
                exclude_types=("ECG", "RR", "PPG"),
                required=("gaze", "gsr"),
            )
        )
    if args.only in (None, "continuous"):
        shots.append(
            capture(
                "dashboard_continuous.png",
                "gazepoint",
                max(args.seconds, 40.0),
                args.out,
                args.stand_in,
                continuous_step=0.5,
            )
        )
    if args.only in (None, "modalities"):
        shots.append(
            capture(
                "dashboard-modalities.png",
                "full",  # the lab set plus a 32-channel EEG and an OpenFace AU stream
                args.seconds,
                args.out,
                args.stand_in,
            )
        )
    for path in shots:
        print(f"{path} ({path.stat().st_size / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
