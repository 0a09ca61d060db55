"""Acquisition benchmark: simulated lab devices over real LSL into the acquisition core.

Gaze 1200 Hz + GSR 128 Hz + ECG 130 Hz + markers (one onset every 8 s) are played by a child
process (so its CPU is not counted) while this process runs the live acquisition: inlet threads,
ring buffers, the aligner and trial cutting. ``--device-set full`` adds a 32-channel 250 Hz EEG
and an OpenFace action-unit stream at 30 Hz (EEG features and the AU track are cut with every
trial); ``--continuous-step S`` also cuts a continuous-mode window every S seconds
(docs/continuous.md). Prints one JSON object as its last line.

    python bench/acquisition.py --seconds 600
    python bench/acquisition.py --seconds 60 --device-set full
    python bench/acquisition.py --seconds 600 --continuous-step 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acquisition.lsl.config import write_lsl_config  # noqa: E402


def player_main(seconds: float, isi: float, device_set: str = "lab") -> None:
    """Child: play the device set in real time, then print what was pushed."""
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.xdf.player import LslPlayer

    n_trials = max(1, math.ceil((seconds - 3.0) / isi))
    sim = Simulation(SimulationConfig(device_set=device_set, n_trials=n_trials, isi=isi, seed=1))
    player = LslPlayer(sim, speed=1.0)
    print(json.dumps({"ready": [s.source_id for s in sim.streams]}), flush=True)
    sys.stdin.readline()  # the parent's inlets are open: go
    player.start()
    player.join()
    pushed = {s.key: int(player.samples_pushed.get(s.key, 0)) for s in sim.streams}
    print(json.dumps({"pushed": pushed}), flush=True)
    time.sleep(3.0)  # keep outlets alive while the parent drains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--isi", type=float, default=8.0)
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before RSS/CPU baseline"
    )
    parser.add_argument(
        "--continuous-step",
        type=float,
        default=None,
        metavar="S",
        help="continuous mode: also cut the last window every S seconds",
    )
    parser.add_argument(
        "--device-set",
        choices=("lab", "full"),
        default="lab",
        help="lab: gaze, GSR, ECG, markers; full: lab + EEG 32 ch x 250 Hz + AU 30 Hz",
    )
    parser.add_argument("--player", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.player:
        player_main(args.seconds, args.isi, args.device_set)
        return
    if not os.environ.get("LSLAPICFG"):
        cfg = Path(tempfile.mkdtemp()) / "lsl_api.cfg"
        os.environ["LSLAPICFG"] = str(write_lsl_config(cfg, f"bench-{uuid.uuid4()}", "machine"))

    import psutil
    import pylsl

    from acquisition.aligner import TrialEvent
    from acquisition.config import AcquisitionConfig, RoleRule
    from acquisition.lsl.live import LiveAcquisition, discover

    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--player",
            "--seconds",
            str(args.seconds),
            "--isi",
            str(args.isi),
            "--device-set",
            args.device_set,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(child.stdout.readline())["ready"]
    visible = discover(10.0, ready)
    # Heart rate from the 130 Hz ECG (R-peak detection), the heaviest HR path.
    config = AcquisitionConfig(rules=[RoleRule("hr", type="ECG")])
    live = LiveAcquisition(config, streams=visible)
    if args.continuous_step is not None:
        live.core.enable_continuous(args.continuous_step, max_backlog=4)  # as emoeye run
    # (newest stamp, arrival time) of recent chunks per stream, for the cut latency: bounded,
    # so the benchmark's own bookkeeping does not show up as RSS growth.
    arrivals: dict[str, deque[tuple[float, float]]] = {
        k: deque(maxlen=4000) for k in live.core.streams
    }
    write = live.core.write

    def timed_write(chunk):  # when each chunk's newest sample arrived
        write(chunk)
        arrivals[chunk.stream.key].append((float(chunk.timestamps[-1]), time.perf_counter()))

    live.core.write = timed_write
    live.start()
    live.wait_connected(10.0)
    child.stdin.write("go\n")
    child.stdin.flush()
    proc = psutil.Process()
    required = [
        live.core.roles[r].spec.key
        for r in live.core.config.trial.required_roles
        if not live.core.roles[r].spec.irregular
    ]
    # A regular stream is complete one period past its newest sample (acquisition/lsl/live.py),
    # so the chunk that completes a window is the one holding its last sample.
    period = {k: 1.0 / live.core.streams[k].nominal_srate for k in required}
    trials: list[bool] = []
    latencies: list[float] = []
    windows: list[bool] = []
    window_latencies: list[float] = []
    extras: list[str] = []

    def on_trial(trial) -> None:
        # From the arrival of the chunk that completed the last required stream's window (the
        # one holding its last sample) to the cut (regular streams: irregular ones complete by
        # the clock, not by data).
        if trial is None:  # a cut that failed: counted by the aligner / the cutter
            return
        done, lat = (
            (windows, window_latencies) if trial.mode == "continuous" else (trials, latencies)
        )
        done.append(trial.quality.complete)
        extras.extend(r for r in ("eeg", "face") if getattr(trial, r, None) is not None)
        if not trial.quality.complete:
            return
        end_t = trial.onset + trial.spec.duration
        ready = [
            next((a for t, a in arrivals[k] if t + 1.01 * period[k] >= end_t), None)
            for k in required
        ]
        if None not in ready:
            lat.append((trial.cut_time - max(ready)) * 1000)

    started = time.perf_counter()
    warm = None
    result_line: list[str] = []
    reader = threading.Thread(
        target=lambda: result_line.append(child.stdout.readline()), daemon=True
    )
    reader.start()
    while reader.is_alive() or time.perf_counter() - started < 1.0:
        for event in live.poll(wait=0.01):
            if isinstance(event, TrialEvent):
                on_trial(event.trial)
        if warm is None and time.perf_counter() - started > args.warmup:
            warm = (time.perf_counter(), sum(proc.cpu_times()[:2]), proc.memory_info().rss)
    drain_end = time.perf_counter() + 1.5  # in-flight samples
    while time.perf_counter() < drain_end:
        for event in live.poll(wait=0.01):
            if isinstance(event, TrialEvent):
                on_trial(event.trial)
    end = (time.perf_counter(), sum(proc.cpu_times()[:2]), proc.memory_info().rss)
    live.stop()
    child.wait(timeout=30)
    report = json.loads(result_line[0])
    pushed = report["pushed"]
    role_keys = {role: cand.spec.key for role, cand in live.plan.roles.items()}
    sent = {role: pushed[key] for role, key in role_keys.items()}
    received = {role: live.health[key].samples for role, key in role_keys.items()}
    warm = warm or (started, 0.0, end[2])
    seconds = end[0] - warm[0]
    lat = np.array(latencies) if latencies else np.array([np.nan])
    out = {
        "seconds": round(end[0] - started, 1),
        "samples_sent": sent,
        "samples_received": received,
        "lost_total": int(sum(sent[r] - received[r] for r in sent)),
        "streams": {role: live.plan.roles[role].spec.describe() for role in role_keys},
        "cpu_percent_one_core": round(100 * (end[1] - warm[1]) / max(seconds, 1e-9), 2),
        "rss_growth_mb": round((end[2] - warm[2]) / 2**20, 2),
        "trial_cut_latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 3),
            "p99": round(float(np.percentile(lat, 99)), 3),
        },
        "trials": len(trials),
        "device_set": args.device_set,
        "trials_with": {r: extras.count(r) for r in ("eeg", "face") if r in role_keys},
        "pylsl": pylsl.__version__,
    }
    if live.core.continuous is not None:
        wl = np.array(window_latencies) if window_latencies else np.array([np.nan])
        out["continuous"] = {
            **live.core.continuous.stats(),
            "windows_complete": int(sum(windows)),
            "window_cut_latency_ms": {
                "p50": round(float(np.percentile(wl, 50)), 3),
                "p99": round(float(np.percentile(wl, 99)), 3),
                "max": round(float(np.max(wl)), 3),
                "over_20ms": int((wl > 20).sum()),
            },
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
