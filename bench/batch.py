"""Batch benchmark: N simulated recordings through ``emoeye batch replay`` serially, on local
processes (``--jobs J``) and on a Dask ``LocalCluster`` (``--scheduler local:J``).

Reports files/s, the speed-up over serial and the peak RSS of each worker (from the batch
manifest), the median time of one file's task in a worker, the CPU seconds of the batch process
and of its workers, checks that every mode wrote identical outputs, and records the load average
before and after (on a shared machine the speed-up is only as good as the idle cores).

Every mode is timed the same way: the whole ``emoeye batch`` command, from its launch to its
exit. That includes Python's start, the imports, starting the process pool or the
``LocalCluster``, each worker's first imports, the tasks, shutting the pool or cluster down and
writing the manifest.

The recordings are written once into a cache folder outside the repository and reused.
``batch features`` is run too when the ``features`` command exists. Prints one JSON object as
its last line.

    python bench/batch.py                       # the issue's run: 20 x 10 min, 2 workers
    python bench/batch.py --files 4 --minutes 1 # a short check
    python bench/batch.py --repeat 3            # each mode three times, medians
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def recordings(n: int, minutes: float, device_set: str, isi: float) -> Path:
    """The cached folder of ``n`` simulated recordings of ``minutes`` each."""
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.xdf.writer import record_simulation

    try:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("emoeye"))
    except ImportError:  # pragma: no cover
        base = Path("/tmp/emoeye-cache")
    folder = base / "bench" / f"batch-{device_set}-{minutes:g}min"
    folder.mkdir(parents=True, exist_ok=True)
    n_trials = max(1, int((minutes * 60 - 3.0) // isi))
    for k in range(n):
        path = folder / f"rec{k:03d}.xdf"
        if path.exists():
            continue
        sim = Simulation(
            SimulationConfig(device_set=device_set, n_trials=n_trials, isi=isi, lead_in=3.0,
                             seed=k, participants=1, source_tag=f"bench{k}")
        )  # fmt: skip
        tmp = path.with_suffix(".part")
        record_simulation(sim, tmp, progress=False)
        os.replace(tmp, path)
    return folder


def run_mode(command: list[str], files: list[Path], out: Path, mode: list[str]) -> dict:
    """One batch run in a child process; its wall time and the manifest's figures."""
    if out.exists():
        shutil.rmtree(out)
    argv = [sys.executable, "-m", "emoeye", "batch", *command, *map(str, files),
            "--out", str(out), "--quiet", "--force", *mode]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    manifest = next(out.rglob("batch-manifest.json"))
    data = json.loads(manifest.read_text())
    rows = data["files"]
    failed = [r for r in rows if r["status"] != "ok"]
    rss: dict[int, float] = {}
    for r in rows:
        rss[r["pid"]] = max(rss.get(r["pid"], 0.0), r["max_rss_mb"])
    task_s = sorted(r["wall_s"] for r in rows if r["status"] == "ok")
    ran = [r for r in rows if r["status"] == "ok" and r.get("started")]
    span = (
        max(r["started"] + r["wall_s"] for r in ran) - min(r["started"] for r in ran) if ran else 0
    )
    return {
        "mode": " ".join(mode) or "serial",
        "wall_s": round(wall, 2),
        "files_per_s": round(len(files) / wall, 4),
        "data_s": round(sum(r["seconds"] for r in rows), 1),
        "failed": len(failed),
        "workers": len(rss),
        "peak_rss_mb_per_worker": sorted(rss.values(), reverse=True),
        # one file's task in its worker (the first of each worker also pays the imports)
        "task_s_median": round(task_s[len(task_s) // 2], 3) if task_s else None,
        "task_s_max": round(task_s[-1], 3) if task_s else None,
        # first task's start to last task's end: the run without the pool's or cluster's start
        # and shutdown (the same rule for every mode)
        "tasks_span_s": round(span, 2),
        "coordinator_cpu_s": data.get("coordinator_cpu_s"),
        "workers_cpu_s": data.get("workers_cpu_s"),
        "exit": proc.returncode,
        "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else [],
    }


def outputs(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "batch-manifest" not in p.name
    }


def bench(command: list[str], files: list[Path], jobs: int, extra: list[str], repeat: int) -> dict:
    """Every mode ``repeat`` times, the modes taking turns and each round starting with the
    next one (serial, pool, cluster; pool, cluster, serial; ...), so that a slow spell on a
    shared machine touches every mode alike. A mode's figures are those of its median run;
    ``wall_s_runs`` and ``speedup_runs`` (each run against the serial run of its own round)
    show the spread."""
    modes = [["--jobs", "1"], ["--jobs", str(jobs)], ["--scheduler", f"local:{jobs}"]]
    runs: list[list[dict]] = [[] for _ in modes]
    seen = []
    work = Path(tempfile.mkdtemp(prefix="emoeye-bench-batch-"))
    try:
        for i in range(repeat):
            # each round starts with the next mode: none always runs first or last
            for k in [(i + j) % len(modes) for j in range(len(modes))]:
                mode = modes[k]
                out = work / mode[-1].replace(":", "")
                runs[k].append(run_mode(command, files, out, [*mode, *extra]))
                seen.append(outputs(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = [sorted(rs, key=lambda r: r["wall_s"])[len(rs) // 2] for rs in runs]
    serial = results[0]["wall_s"]
    serial_span = results[0]["tasks_span_s"]
    for r, rs in zip(results, runs, strict=True):
        r["speedup"] = round(serial / r["wall_s"], 2)
        r["speedup_tasks_span"] = (
            round(serial_span / r["tasks_span_s"], 2) if r["tasks_span_s"] else None
        )
        r["wall_s_runs"] = [x["wall_s"] for x in rs]
        r["tasks_span_s_runs"] = [x["tasks_span_s"] for x in rs]
        r["speedup_runs"] = [
            round(s["wall_s"] / x["wall_s"], 2) for s, x in zip(runs[0], rs, strict=True)
        ]
    return {
        "command": " ".join(command),
        "repeat": repeat,
        "identical_outputs": all(s == seen[0] for s in seen[1:]),
        "modes": results,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--device-set", default="gazepoint")
    ap.add_argument("--isi", type=float, default=8.0)
    ap.add_argument("--no-model", action="store_true", help="replay without the model")
    ap.add_argument("--only", choices=("replay", "features"), help="run one command only")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each mode, taking turns (median reported)"
    )
    args = ap.parse_args()

    folder = recordings(args.files, args.minutes, args.device_set, args.isi)
    files = sorted(folder.glob("rec*.xdf"))[: args.files]
    load_before = os.getloadavg()
    extra = ["--no-model"] if args.no_model else []
    report = {
        "files": len(files),
        "minutes_each": args.minutes,
        "device_set": args.device_set,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "timed": "wall_s/speedup: the whole emoeye batch command, launch to exit (pool or "
        "cluster start and shutdown included, the same rule for --jobs and --scheduler); "
        "tasks_span_s/speedup_tasks_span: first task's start to last task's end in the workers "
        "(no start or shutdown, also the same rule for every mode)",
        "runs": []
        if args.only == "features"
        else [bench(["replay"], files, args.jobs, extra, args.repeat)],
    }
    from emoeye.cli import COMMANDS

    try:
        import emoeye.commands.features  # noqa: F401

        has_features = "features" in COMMANDS
    except ImportError:
        has_features = False
    if args.only == "replay":
        pass
    elif has_features:
        report["runs"].append(bench(["features"], files, args.jobs, [], args.repeat))
    else:
        report["features"] = "not run: no 'emoeye features' command in this tree"
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    for run in report["runs"]:
        for r in run["modes"]:
            print(
                f"{run['command']:8s} {r['mode']:18s} {r['wall_s']:8.1f} s "
                f"{r['files_per_s']:.3f} files/s  x{r['speedup']:.2f} "
                f"(tasks span {r['tasks_span_s']} s x{r['speedup_tasks_span']})  "
                f"task {r['task_s_median']} s  CPU {r['coordinator_cpu_s']} + "
                f"{r['workers_cpu_s']} s  RSS/worker {r['peak_rss_mb_per_worker']} MB"
                + (f"  runs x{r['speedup_runs']}" if len(r["speedup_runs"]) > 1 else ""),
                file=sys.stderr,
            )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
