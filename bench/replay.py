"""Replay benchmark: fast replay of an H-hour XDF recording against pyxdf's bare ``load_xdf``.

The recording is the simulated 'lab' device set (gaze 1200 Hz, GSR 128 Hz, PPG 128 Hz, ECG 130 Hz,
RR intervals, markers; one trial every 8 s), written once by our XDF writer into a cache folder
outside the repository and reused. Generation runs in a child process, so the peak RSS reported
is the replay's own. The replay is ``emoeye replay --fast``'s code path: read the file, feed it
through the acquisition core in stream-time order, cut every trial and (when the inference
package and a model are there) predict each one; module imports are done before the clock starts
(as for pyxdf), loading the model is timed. Then pyxdf loads the same file. Prints one JSON object
as its last line.

``--writer labrecorder-style`` transcodes that recording into the layout LabRecorder writes
(regular streams in first-stamped runs: each chunk's first sample stamped, the following ones
deduced, a sample after a gap stamped again; clock offsets and a boundary chunk every 10 s) with
the corpus writer of tests/data/xdf/make_corpus.py, and replays that file.

``peak_rss_mb`` is the process's peak resident memory up to the end of the replay (before pyxdf
runs); ``baseline_rss_mb`` the peak after the imports (torch alone is ~180 MB), before the file
is opened.

    python bench/replay.py --hours 1 [--writer labrecorder-style] [--no-model]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cache_dir() -> Path:
    """Where benchmark recordings are kept (never inside the repository)."""
    try:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("emoeye"))
    except ImportError:  # pragma: no cover
        base = Path("/tmp/emoeye-cache")
    path = base / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def generate(path: Path, hours: float, seed: int, isi: float) -> dict:
    """Write the simulated recording (runs in the child process)."""
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.xdf.writer import record_simulation

    lead_in = 3.0
    n_trials = max(1, math.floor((hours * 3600 - lead_in) / isi))
    sim = Simulation(
        SimulationConfig(device_set="lab", n_trials=n_trials, isi=isi, lead_in=lead_in, seed=seed)
    )
    tmp = path.with_suffix(".part")
    info = record_simulation(sim, tmp, progress=sys.stderr.isatty())
    os.replace(tmp, path)
    return info


def transcode_labrecorder_style(src: Path, dst: Path) -> None:
    """The corpus writer's transcoder (tests/data/xdf/make_corpus.py), run in the child process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_corpus", ROOT / "tests" / "data" / "xdf" / "make_corpus.py"
    )
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    corpus.transcode_labrecorder_style(src, dst)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="recording length (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--isi", type=float, default=8.0)
    parser.add_argument("--no-model", action="store_true", help="cut trials only")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--skip-pyxdf", action="store_true", help="do not time pyxdf")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the cached file")
    parser.add_argument(
        "--writer",
        choices=["emoeye", "labrecorder-style"],
        default="emoeye",
        help="file layout: our writer's (every sample stamped) or LabRecorder's first-stamped runs",
    )
    parser.add_argument("--generate", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--transcode", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate is not None:
        print(json.dumps(generate(args.generate, args.hours, args.seed, args.isi)))
        return
    if args.transcode is not None:
        tmp = args.transcode.with_suffix(".part")
        transcode_labrecorder_style(Path(str(args.transcode).replace("-labrecorder", "")), tmp)
        os.replace(tmp, args.transcode)
        return

    path = cache_dir() / f"lab-{args.hours:g}h-isi{args.isi:g}-seed{args.seed}.xdf"
    generated = None
    if args.regenerate or not path.is_file():
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--generate", str(path), "--hours", str(args.hours)]
        cmd += ["--seed", str(args.seed), "--isi", str(args.isi)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        generated = round(time.perf_counter() - t, 2)
        print(f"generated {path} in {generated} s", file=sys.stderr)
    if args.writer == "labrecorder-style":
        lr = path.with_name(path.stem + "-labrecorder.xdf")
        if args.regenerate or not lr.is_file() or lr.stat().st_mtime < path.stat().st_mtime:
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--transcode", str(lr)], check=True)
            print(f"transcoded {lr} in {time.perf_counter() - t:.2f} s", file=sys.stderr)
        path = lr

    import logging

    logging.getLogger("acquisition.xdf.reader").setLevel(logging.ERROR)
    from acquisition.config import AcquisitionConfig
    from acquisition.xdf.source import XdfSource
    from emoeye.commands.replay import replay_fast

    if not args.no_model:  # imports are not timed (neither is pyxdf's); model loading is
        try:
            import emoeye.session  # noqa: F401
            import models.predictor  # noqa: F401
        except ImportError:
            pass
    baseline = peak_rss_mb()
    t = time.perf_counter()
    source = XdfSource(path)
    load_s = time.perf_counter() - t
    summary = replay_fast(
        source, AcquisitionConfig(), checkpoint=args.checkpoint, use_model=not args.no_model
    )
    replay_s = time.perf_counter() - t
    rss = peak_rss_mb()
    file_seconds = source.duration
    warnings = list(source.warnings)
    del source

    pyxdf_s = None
    if not args.skip_pyxdf:
        import pyxdf

        t = time.perf_counter()
        # Like for like: replay syncs clocks and leaves jitter removal off (as the live inlets).
        streams, _ = pyxdf.load_xdf(str(path), dejitter_timeseries=False)
        pyxdf_s = time.perf_counter() - t
        del streams

    result = {
        "file": str(path),
        "writer": args.writer,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "file_seconds": round(file_seconds, 1),
        "generated_s": generated,
        "pyxdf_load_s": None if pyxdf_s is None else round(pyxdf_s, 3),
        "read_s": round(load_s, 3),
        "replay_fast_s": round(replay_s, 3),
        "realtime_factor": round(file_seconds / replay_s, 1),
        "ratio_to_pyxdf": None if pyxdf_s is None else round(replay_s / pyxdf_s, 3),
        "trials": summary["trials"],
        "predictions": summary["predictions"],
        "model": summary["model"],
        "model_error": summary.get("model_error"),
        "checkpoint": summary.get("checkpoint"),
        "peak_rss_mb": round(rss, 1),
        "baseline_rss_mb": round(baseline, 1),
        "warnings": warnings,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
