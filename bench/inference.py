"""Inference benchmark: trial cut → prediction published, through the real worker thread.

Trials come from the simulator's offline mode (``Acquisition.run_offline(Simulation(...))``), so
they are cut by the same aligner code as live; each is handed to the threaded
:class:`~inference.worker.InferenceWorker` the moment it is cut (its onset having queued the
stimulus embedding earlier, as live), and the next block is fed only once the prediction is
published — trials are seconds apart in a real session, so this measures one trial's latency,
not a backlog. Sinks are the live ones: the ``EmoEye-Predictions`` LSL outlet (machine scope),
the store and a JSONL log. Then the same trials are submitted all at once to measure throughput,
and every bundled stimulus is embedded once to time the stimulus branch.

Prints JSON as its last line. Target (DESIGN, 2 CPU cores): p99 < 15 ms.

Usage::

    python bench/inference.py [--device auto|cpu|cuda] [--trials 200] [--checkpoint DIR]
    python bench/inference.py --all-roles     # + EEG and face: their branches and inputs

``--all-roles`` simulates Gazepoint + a 32-channel EEG + OpenFace and, unless ``--checkpoint``
names one, uses an untrained network with both optional-role branches (docs/modalities.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_P99_MS = 15.0


def _checkpoint(path: str | None, tmp: Path, all_roles: bool = False) -> tuple[Path | None, str]:
    """The checkpoint to use and how to describe it (an untrained stand-in if none is bundled)."""
    from models.checkpoint import default_checkpoint_dir

    if path:
        return Path(path), str(path)
    if all_roles:
        import torch

        from models.checkpoint import save_checkpoint
        from models.network import EmoEyeNet, ModelConfig
        from models.preprocess import NormStats

        torch.manual_seed(0)
        net = EmoEyeNet(ModelConfig(use_eeg=True, use_face=True)).eval()
        out = save_checkpoint(tmp / "untrained-roles", net, NormStats.identity())
        return out, "untrained default architecture + EEG and face branches"
    bundled = default_checkpoint_dir()
    if (bundled / "config.json").is_file():
        return None, f"bundled ({bundled})"
    import torch

    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet
    from models.preprocess import NormStats

    torch.manual_seed(0)
    out = save_checkpoint(tmp / "untrained", EmoEyeNet().eval(), NormStats.identity())
    return out, "untrained default architecture (no bundled model found)"


def _pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--trials", type=int, default=200, help="trials to predict (default 200)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint dir (default: bundled)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--no-outlet", action="store_true", help="skip the LSL outlet sink")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--all-roles",
        action="store_true",
        help="simulate EEG 32 ch and OpenFace AUs too, with a model that has their branches",
    )
    parser.add_argument(
        "--eager", action="store_true", help="run the model eagerly (no traced fast path)"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.001,
        help="sys.setswitchinterval, s (default 0.001 as in a live session; CPython's is 0.005)",
    )
    parser.add_argument(
        "--busy-thread",
        action="store_true",
        help="run a pure-Python busy thread beside the worker (a stand-in for the dashboard's "
        "GIL use: eager PyTorch waits for the GIL around every op)",
    )
    args = parser.parse_args(argv)

    from acquisition.lsl.config import use_lsl_config

    # Our own machine-scope LSL config (never liblsl's defaults), unless the caller set one.
    use_lsl_config(f"bench-inference-{uuid.uuid4().hex[:8]}", "machine")

    from acquisition.aligner import TrialEvent
    from acquisition.config import AcquisitionConfig
    from acquisition.core import Acquisition
    from acquisition.lsl.binding import bind_roles
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from inference.prediction import PredictionStore
    from inference.sinks import JsonlSink, LslPredictionSink, Publisher, StoreSink
    from inference.worker import InferenceWorker, WorkerConfig

    tmp = Path(tempfile.mkdtemp(prefix="emoeye-bench-inference-"))
    ckpt, ckpt_desc = _checkpoint(args.checkpoint, tmp, args.all_roles)
    store = PredictionStore()
    publisher = Publisher([StoreSink(store), JsonlSink(tmp / "predictions.jsonl")])
    worker = InferenceWorker(
        checkpoint=ckpt,
        config=WorkerConfig(
            device=args.device,
            num_threads=args.threads,
            queue_size=4096,
            trace=not args.eager,
        ),
        sinks=publisher,
    )
    if not args.no_outlet:
        publisher.add(LslPredictionSink(worker.n_classes, f"bench-{uuid.uuid4().hex[:8]}"))
    published = threading.Event()
    publisher.add(_EventSink(published))

    presets = ("gazepoint", "eeg-32", "openface", "psychopy") if args.all_roles else None
    sim = Simulation(
        SimulationConfig(n_trials=args.trials, isi=8.0, seed=args.seed, presets=presets)
    )
    config = AcquisitionConfig()
    acq = Acquisition(bind_roles(sim.streams, config.rules), config, catalogue=worker.catalogue)
    acq.aligner.onset_listeners.append(worker.on_onset)

    sys.setswitchinterval(args.switch_interval)
    worker.start()
    worker.ready.wait(60)
    halt_busy = threading.Event()
    if args.busy_thread:
        threading.Thread(target=_busy, args=(halt_busy,), daemon=True).start()
    trials = []
    started = time.perf_counter()
    for event in acq.run_offline(sim, block_seconds=0.5):
        if not isinstance(event, TrialEvent):
            continue
        published.clear()
        worker.submit(event.trial)  # cut_time was stamped by the aligner at the cut
        if not published.wait(30):
            raise RuntimeError(f"no prediction for trial {event.trial.trial_id} in 30 s")
        trials.append(event.trial)
    feed_s = time.perf_counter() - started
    preds = store.latest(len(trials))
    lat = [p.latency_ms for p in preds]

    # Throughput: every trial at once, queue → model → sinks, until drained.
    for t in trials:
        t.cut_time = float("nan")
    n_before = store.count
    t0 = time.perf_counter()
    for t in trials:
        worker.submit(t)
    while store.count - n_before < len(trials):
        time.sleep(0.001)
    throughput = len(trials) / (time.perf_counter() - t0)
    worker.stop()
    halt_busy.set()

    # Stimulus branch: each bundled picture embedded once, cold cache.
    worker._cache.clear()
    embed_ms = []
    for sid in worker.catalogue.ids:
        t0 = time.perf_counter()
        worker.embed(sid)
        embed_ms.append((time.perf_counter() - t0) * 1e3)
    publisher.close()

    latency = _pct([x["total"] for x in lat])
    result = {
        "benchmark": "inference",
        "device": worker.device,
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "checkpoint": ckpt_desc,
        "traced": worker._traced is not None,
        "fast_path": worker.fast_path,
        "busy_thread": args.busy_thread,
        "switch_interval_s": args.switch_interval,
        "trials": len(preds),
        "latency_ms": latency,
        "breakdown_ms_p50": {
            k: round(float(np.median([x[k] for x in lat])), 3)
            for k in ("queue", "embed", "model", "publish")
        },
        "embeds_at_onset": worker.stats.embeds_at_onset,
        "throughput_trials_per_s": round(throughput, 1),
        "stimulus_branch_ms": _pct(embed_ms),
        "feed_wall_s": round(feed_s, 2),
        "errors": worker.stats.errors,
        "overflowed": worker.stats.overflowed,
        "sink_errors": publisher.errors,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": latency["p99"] < TARGET_P99_MS,
    }
    print(json.dumps(result))
    return 0


def _busy(halt: threading.Event) -> None:
    """Pure-Python work that holds the GIL between switch intervals, like a GUI thread."""
    x = 0
    while not halt.is_set():
        for i in range(2000):
            x += i * i


class _EventSink:
    """Sets an event after the logs have the prediction (the last stage)."""

    name = "bench-event"
    stage = "log"
    errors = 0

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def write(self, prediction) -> None:
        self.event.set()

    def write_record(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
