"""``emoeye simulate``: simulated devices as real LSL outlets (or written to XDF)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path

from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from acquisition.lsl.presets import DEVICE_SETS

    p = sub.add_parser(
        "simulate",
        help="run simulated devices (eye tracker, GSR, HR, markers) as real LSL outlets",
        description="Simulate an experiment (participants x stimuli) with known ground truth: "
        "devices that look like real ones over LSL (names, types, channel labels, rates), onset "
        "and rating markers. Pupil and GSR responses grow with each picture's arousal, heart rate "
        "slows with negative valence, fixations fall on salient regions of the picture.",
    )
    p.add_argument(
        "--device-set",
        choices=sorted(DEVICE_SETS),
        default="gazepoint",
        help="which devices: " + "; ".join(f"{k} = {'+'.join(v)}" for k, v in DEVICE_SETS.items()),
    )
    p.add_argument(
        "--participants", type=int, default=1, help="participants, run one after another"
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials per participant (default: one per stimulus)",
    )
    p.add_argument("--isi", type=float, default=8.0, help="onset-to-onset interval, s (default 8)")
    p.add_argument(
        "--condition",
        choices=("pictures", "video"),
        default="pictures",
        help="pictures (default): 5-s pictures with onset and rating markers; video: clips with "
        "a slowly varying felt state and a continuous 2-axis rating stream (type Annotation, "
        "20 Hz), no onsets (docs/continuous.md)",
    )
    p.add_argument(
        "--clip-seconds",
        type=float,
        default=60.0,
        help="--condition video: seconds per clip (default 60); --trials is clips per "
        "participant (default 2)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_stimulus_args(p)
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1)")
    p.add_argument("--loop", action="store_true", help="start over when the experiment ends")
    p.add_argument(
        "--wait-consumers",
        type=float,
        default=0.0,
        metavar="S",
        help="before the first run, wait up to S seconds until every outlet has a consumer (an "
        "onset sent before a receiver's inlet connects never reaches it)",
    )
    p.add_argument(
        "--record",
        type=Path,
        default=None,
        help="write the session to this XDF file instead of streaming it",
    )
    p.add_argument(
        "--ground-truth",
        type=Path,
        default=None,
        help="write the latent arousal/valence per trial to this JSON file",
    )
    p.set_defaults(func=run)


def add_stimulus_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--stimulus-seed`` and ``--stimuli-count``: a fresh generated picture set."""
    p.add_argument(
        "--stimulus-seed",
        type=int,
        default=None,
        metavar="N",
        help=f"{prefix}draw a fresh generated picture set from seed N (ids genN-00...) instead "
        "of the 16 bundled photos; its colour, layout and texture carry part of each norm",
    )
    p.add_argument(
        "--stimuli-count",
        type=int,
        default=40,
        metavar="K",
        help=f"{prefix}pictures in the generated set (default 40)",
    )


def make_simulation(args: argparse.Namespace, seed: int | None = None):
    """The Simulation the options describe (a bad option is a one-line :class:`CliError`)."""
    from acquisition.sim.simulator import Simulation, SimulationConfig

    try:
        if getattr(args, "condition", "pictures") == "video":
            from acquisition.sim.video import VideoModel, VideoSimulation

            return VideoSimulation(
                SimulationConfig(
                    device_set=args.device_set,
                    participants=args.participants,
                    n_trials=args.trials,
                    seed=args.seed if seed is None else seed,
                ),
                VideoModel(clip_seconds=args.clip_seconds),
            )
        return Simulation(
            SimulationConfig(
                device_set=args.device_set,
                participants=args.participants,
                n_trials=args.trials,
                isi=args.isi,
                seed=args.seed if seed is None else seed,
                stimulus_seed=getattr(args, "stimulus_seed", None),
                n_stimuli=getattr(args, "stimuli_count", 40),
            )
        )
    except (KeyError, ValueError) as exc:
        raise CliError(f"simulation: {exc}") from None


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise CliError("--speed must be > 0")
    sim = make_simulation(args)
    if args.ground_truth:
        args.ground_truth.write_text(json.dumps(sim.ground_truth(), indent=1, default=float))
        print(f"ground truth of {len(sim.ground_truth())} trials written to {args.ground_truth}")
    if args.record is not None:
        try:
            from acquisition.xdf.writer import record_simulation
        except ImportError as exc:
            raise CliError(f"XDF writing is unavailable: {exc}") from None
        record_simulation(sim, args.record)
        print(f"wrote {sim.duration:.0f} s of simulated session to {args.record}")
        return 0
    from acquisition.xdf.player import LslPlayer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seed = args.seed
    print(
        f"simulating {args.device_set}: {len(sim.streams)} LSL outlet(s), {sim.duration:.0f} s per run"
    )
    for spec in sim.streams:
        print(f"  {spec.describe()}")
    print("Ctrl-C to stop.", flush=True)
    wait = max(0.0, args.wait_consumers)
    try:
        while not stop.is_set():
            player = LslPlayer(sim, speed=args.speed, wait_consumers=wait)
            wait = 0.0  # later loops start at once
            player.start()
            while player.is_alive() and not stop.is_set():
                time.sleep(0.2)
            player.stop()
            player.close()
            if not args.loop:
                break
            seed += 1
            sim = make_simulation(args, seed)
    except KeyboardInterrupt:
        pass
    print("simulation stopped")
    return 0
