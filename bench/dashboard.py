"""Dashboard benchmark: the Qt dashboard, offscreen, over a simulated session at full rates.

The 'lab' devices (gaze 1200 Hz, GSR 128 Hz, ECG 130 Hz, markers every 8 s) are played over
real LSL by a child process; this process runs the live acquisition (inlet threads, buffers,
trial cutting), a stand-in predictor — or, with ``--real-session``, a real
:class:`~emoeye.session.LiveSession` (bundled model, inference worker, JSONL log, LSL outlet and
an XDF recording) — and the dashboard's frame timer. Prints one JSON object as its last line:
fps_mean, fps_p5, frame_ms_p99, rss_growth_mb (after warm-up). Targets: fps_p5 >= 30 and, with
``--real-session`` over 600 s, rss_growth_mb < 10.

``faulthandler`` writes any native crash's stacks (every thread) to ``--crash-log`` (default
``bench-dashboard-crash.log`` in a temporary folder, named in the JSON); teardown goes in a fixed
order: frame timer, window deleted by Qt, session/acquisition threads joined, inlets deleted
before the player's outlets, the QApplication last.

    python bench/dashboard.py --seconds 60 [--real-session]
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acquisition.lsl.config import write_lsl_config  # noqa: E402


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; psutil is not a dependency)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def ensure_lsl_config(tag: str) -> None:
    """Point liblsl at a machine-scope config with a fresh session id (unless one is set)."""
    if not os.environ.get("LSLAPICFG"):
        cfg = Path(tempfile.mkdtemp(prefix=f"{tag}-")) / "lsl_api.cfg"
        os.environ["LSLAPICFG"] = str(write_lsl_config(cfg, f"{tag}-{uuid.uuid4()}", "machine"))


def make_simulation(device_set: str, seconds: float, isi: float, seed: int, **extra):
    """A one-participant simulation long enough for ``seconds``."""
    from acquisition.sim.simulator import Simulation, SimulationConfig

    n_trials = max(1, math.ceil((seconds - 3.0) / isi) + 1)
    return Simulation(
        SimulationConfig(device_set=device_set, n_trials=n_trials, isi=isi, seed=seed, **extra)
    )


def player_main(device_set: str, seconds: float, isi: float, seed: int) -> None:
    """Child: play the simulation in real time (outlets exist until the parent says stop)."""
    from acquisition.xdf.player import LslPlayer

    sim = make_simulation(device_set, seconds, isi, seed)
    player = LslPlayer(sim, speed=1.0)
    print(json.dumps({"ready": [s.source_id for s in sim.streams]}), flush=True)
    sys.stdin.readline()
    player.start()
    sys.stdin.readline()  # stop
    player.close()


_APP = None
"""The QApplication, held until the process ends (destroyed with main()'s locals it went first)."""

FLAG_BELOW = 0.7
"""The stand-in predictor flags trials whose quality score is below this."""


class StandInSession:
    """A session without a model: LiveAcquisition + a thread that turns each cut trial into a
    made-up but plausible :class:`~inference.prediction.Prediction` (class probabilities peaked
    near the simulation's latent ratings), flagged when the trial's quality score < 0.7.

    Used when ``emoeye.session.LiveSession`` is not available; it exposes what the dashboard
    reads (``live``, ``store``, ``catalogue``).
    """

    def __init__(self, live, ground_truth: list[dict] | None = None, seed: int = 0) -> None:
        from acquisition.stimulus_catalogue import default_catalogue
        from inference.prediction import PredictionStore

        self.live = live
        self.store = PredictionStore()
        self.catalogue = default_catalogue()
        self._truth = {}
        for row in ground_truth or []:
            self._truth.setdefault(
                row["stimulus_id"], (row["latent_arousal"], row["latent_valence"])
            )
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in-predictor", daemon=True)

    def start(self) -> None:
        """Start polling the acquisition for trials."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (the caller stops ``live``)."""
        self._stop.set()
        self._thread.join(5.0)

    def _probs(self, centre: float) -> np.ndarray:
        centre = centre + self._rng.normal(0, 0.7)
        logits = -0.5 * ((np.arange(1, 8) - centre) / 1.1) ** 2
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def _run(self) -> None:
        from acquisition.aligner import TrialEvent
        from inference.prediction import Prediction

        def on_event(event) -> None:
            if not isinstance(event, TrialEvent):
                return
            trial = event.trial
            a, v = self._truth.get(trial.stimulus_id, (4.0, 4.0))
            score = trial.quality.score
            self.store.add(
                Prediction(
                    trial_id=trial.trial_id,
                    onset=trial.onset,
                    stimulus_id=trial.stimulus_id,
                    arousal_probs=self._probs(a),
                    valence_probs=self._probs(v),
                    participant=trial.participant,
                    quality=trial.quality.to_dict(),
                    flagged=score < FLAG_BELOW,
                    flag_reason=f"quality {score:.2f} < {FLAG_BELOW:.2f}"
                    if score < FLAG_BELOW
                    else "",
                )
            )

        self.live.run(on_event, self._stop)


def open_live(source_ids: list[str], config=None):
    """Discover the given streams and start a LiveAcquisition on them."""
    from acquisition.config import AcquisitionConfig
    from acquisition.lsl.live import LiveAcquisition, discover

    visible = discover(10.0, source_ids)
    live = LiveAcquisition(config or AcquisitionConfig(), streams=visible)
    live.start()
    live.wait_connected(10.0)
    return live


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--device-set", default="lab")
    parser.add_argument("--isi", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fps", type=float, default=50.0, help="frame timer rate")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="also attribute Python memory growth after warm-up to the dashboard (gui/, "
        "pyqtgraph) or the rest (acquisition keeps recent trials, the store keeps predictions); "
        "slows every allocation, so frame figures of such a run are not comparable",
    )
    parser.add_argument(
        "--real-session",
        action="store_true",
        help="a real LiveSession: bundled model, worker, log, outlet and an XDF recording",
    )
    parser.add_argument("--crash-log", type=Path, default=None, help="faulthandler output file")
    parser.add_argument("--player", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    total = args.seconds + args.warmup + 5.0
    if args.player:
        player_main(args.device_set, total, args.isi, args.seed)
        return
    ensure_lsl_config("bench-dashboard")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    crash_log = args.crash_log or work / "bench-dashboard-crash.log"
    crash_fh = open(crash_log, "w")  # noqa: SIM115 - must outlive every thread
    faulthandler.enable(crash_fh, all_threads=True)

    from gui.qt import QtCore, QtWidgets
    from gui.window import DashboardWindow

    child = subprocess.Popen(
        [sys.executable, __file__, "--player", "--seconds", str(args.seconds)]
        + ["--warmup", str(args.warmup), "--device-set", args.device_set]
        + ["--isi", str(args.isi), "--seed", str(args.seed)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(child.stdout.readline())["ready"]
    if args.real_session:
        from acquisition.config import AcquisitionConfig
        from emoeye.session import LiveSession, SessionConfig

        session = LiveSession(
            AcquisitionConfig(), SessionConfig(log_path=work / "predictions.jsonl", wait=10.0)
        )
        session.start()
        session.start_recording(work / "session.xdf")
        live = session.live
    else:
        live = open_live(ready)
        truth = make_simulation(args.device_set, total, args.isi, args.seed).ground_truth()
        session = StandInSession(live, truth)
        session.start()
    child.stdin.write("go\n")
    child.stdin.flush()

    global _APP
    app = _APP = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = DashboardWindow(session, fps=args.fps)
    window.show()
    marks: dict[str, tuple[float, int, int]] = {}

    snapshots = []

    gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_start = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        # Every collection stops every Python thread, the frame timer's included.
        if phase == "start":
            gc_start[0] = time.perf_counter()
        elif "warm" in marks:
            gc_pauses[info["generation"]].append((time.perf_counter() - gc_start[0]) * 1e3)

    gc.callbacks.append(on_gc)

    def warm() -> None:
        window.clock.reset()
        if args.trace_memory:
            import tracemalloc

            tracemalloc.start(1)
            snapshots.append(tracemalloc.take_snapshot())
        marks["warm"] = (time.perf_counter(), window.frames, rss_bytes())

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(args.warmup * 1000), warm)
    QtCore.QTimer.singleShot(int((args.warmup + args.seconds) * 1000), loop.quit)
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(loop.exec_)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        loop.exec_()
    loop.deleteLater()
    gc.callbacks.remove(on_gc)
    rss_end = rss_bytes()
    stats = window.frame_stats()
    late = float(np.mean(window.clock.intervals() > 1.5 / args.fps))  # ticks missed or late
    traced = {}
    if snapshots:
        import tracemalloc

        growth = {"dashboard": 0, "other": 0}
        by_line = tracemalloc.take_snapshot().compare_to(snapshots[0], "lineno")
        for stat in by_line[:15]:  # where it grew, for whoever chases it
            print(f"memory growth: {stat}", file=sys.stderr)
        for stat in tracemalloc.take_snapshot().compare_to(snapshots[0], "filename"):
            name = stat.traceback[0].filename
            part = "dashboard" if "/gui/" in name or "pyqtgraph" in name else "other"
            growth[part] += stat.size_diff
        traced = {f"py_growth_mb_{k}": round(v / 2**20, 2) for k, v in growth.items()}
    if os.environ.get("BENCH_DEBUG"):
        iv = window.clock.intervals() * 1000
        print(
            "interval ms percentiles 50/90/95/99/max:",
            np.percentile(iv, [50, 90, 95, 99, 100]).round(1),
            file=sys.stderr,
        )
    samples = {h.name: h.samples for h in live.health.values()}
    predictions = session.store.count
    points = window.points_drawn
    # Teardown order (a SIGSEGV in 1 of 9 runs came from leaving it to the interpreter's exit,
    # which destroys the QApplication, the window's C++ items and the inlets in any order):
    # window deleted by Qt while the app lives; then the threads that feed it joined; then
    # inlets before the outlets; the QApplication last.
    window.close()
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    app.processEvents()
    window = None  # noqa: F841 - drop the last Python reference before the app
    summary = session.stop()
    if not args.real_session:
        live.stop()
    del live, session
    child.stdin.write("stop\n")
    child.stdin.flush()
    child.wait(timeout=30)
    app.processEvents()
    out = {
        "device_set": args.device_set,
        "seconds": args.seconds,
        **{k: stats.get(k) for k in ("fps_mean", "fps_p5", "frame_ms_p50", "frame_ms_p99")},
        "frames": stats.get("frames", 0) - marks["warm"][1],
        "rss_growth_mb": round((rss_end - marks["warm"][2]) / 2**20, 2),
        **traced,
        "late_frames": round(late, 4),
        "gc_pause_ms": {
            f"gen{g}": {"n": len(v), "p50": _pct(v, 50), "max": _pct(v, 100)}
            for g, v in gc_pauses.items()
        },
        "points_per_frame": points,
        "samples_received": samples,
        "predictions": predictions,
        "session": "real" if args.real_session else "stand-in",
        "worker_latency_ms": ((summary or {}).get("worker") or {}).get("latency_ms"),
        "crash_log": str(crash_log),
        "qt_platform": QtWidgets.QApplication.platformName(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
