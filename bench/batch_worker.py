"""One batch task's cost in a process-pool worker and in a Dask worker, side by side.

Runs the same files' ``emoeye batch`` tasks (:func:`emoeye.batch.run_one`) one at a time in a
single worker of each kind, each kind in a fresh process, and reports per task (medians; the
first task of a worker pays the imports and is reported apart): wall time, the process's CPU
seconds, the CPU seconds of the task's own thread (their difference is what else the worker
process ran beside the task: Dask's event loop), minor page faults and involuntary context
switches. Prints one JSON object as its last line.

    python bench/batch_worker.py --files 5               # pool, dask (defaults), dask (local:N)
    python bench/batch_worker.py --command features --kinds pool,dask-local

Uses the recordings ``bench/batch.py`` caches (10-minute ones by default).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KINDS = ("pool", "dask-defaults", "dask-local")


def timed(task) -> dict:
    """Run one task in this worker with its CPU, thread CPU and fault counts."""
    from emoeye.batch import run_one

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0, p0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
    outcome = run_one(task)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "status": outcome.status,
        "reason": outcome.reason,
        "wall_s": time.perf_counter() - w0,
        "process_cpu_s": time.process_time() - p0,
        "thread_cpu_s": time.thread_time() - t0,
        "minor_faults": r1.ru_minflt - r0.ru_minflt,
        "involuntary_switches": r1.ru_nivcsw - r0.ru_nivcsw,
        "threads": threading.active_count(),
        "malloc_trim_threshold": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
    }


def run_kind(kind: str, tasks: list) -> list[dict]:
    if kind == "pool":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            return [pool.submit(timed, t).result() for t in tasks]
    import dask.config
    from distributed import Client, LocalCluster

    from emoeye.batch import LOCAL_CLUSTER_CONFIG

    config = LOCAL_CLUSTER_CONFIG if kind == "dask-local" else {}
    with dask.config.set(config):
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        return [client.submit(timed, t, pure=False).result() for t in tasks]
    finally:
        client.close()
        cluster.close()


def one_kind(args: argparse.Namespace) -> dict:
    from emoeye.batch import make_tasks

    files = sorted(Path(args.folder).glob("rec*.xdf"))[: args.files]
    out = Path(tempfile.mkdtemp(prefix="emoeye-bench-worker-"))
    tasks = make_tasks(args.command, files, out, [])
    rows = run_kind(args.kind, [tasks[0], *tasks])  # the first one again: it pays the imports
    bad = [r["reason"] for r in rows if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"{args.kind}: a task failed: {bad[0]}")
    rest = rows[1:]
    summary = {
        k: round(statistics.median(r[k] for r in rest), 3)
        for k in ("wall_s", "process_cpu_s", "thread_cpu_s", "minor_faults", "involuntary_switches")
    }
    return {
        "kind": args.kind,
        "first_task_wall_s": round(rows[0]["wall_s"], 2),
        **summary,
        "threads": rest[-1]["threads"],
        "malloc_trim_threshold": rest[-1]["malloc_trim_threshold"],
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--command", default="replay", choices=("replay", "features"))
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated of {KINDS}")
    ap.add_argument("--kind", help=argparse.SUPPRESS)  # one kind, in a child process
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.kind:
        print(json.dumps(one_kind(args)))
        return 0
    from bench.batch import recordings

    folder = recordings(args.files, args.minutes, "gazepoint", 8.0)
    results = []
    for kind in args.kinds.split(","):
        if kind not in KINDS:
            raise SystemExit(f"--kinds: unknown {kind!r}; known: {', '.join(KINDS)}")
        argv = [sys.executable, __file__, "--kind", kind, "--folder", str(folder),
                "--files", str(args.files), "--command", args.command]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(proc.stderr.strip().splitlines()[-1])
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"command": args.command, "files": args.files, "kinds": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
