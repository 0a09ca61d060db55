"""Start-up benchmark: the short commands an experimenter or analyst waits for, as whole processes.

Each command runs ``--runs`` times after one warm-up run (which also writes the bytecode cache, as
the first run after an install does) in a fresh interpreter, and the median, minimum and maximum
wall time and the median CPU time (user + system of the child) are reported:

* ``emoeye --version`` (target < 0.3 s);
* ``emoeye info FILE`` on a small XDF file written here (target < 0.5 s): two streams of 2 s with
  clock offsets, so the clock fit runs;
* ``emoeye streams --timeout 0.5`` (target < 1.5 s), in a private LSL session (no streams:
  it exits 1 after listing the missing roles, which is the case timed).

Time to the first prediction after ``emoeye run`` is measured by ``bench/e2e.py``
(``startup_to_model_s``, ``startup_to_bound_s``). Prints one JSON object as its last line.

    python bench/startup.py [--runs 7]
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
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS_S = {"version": 0.3, "info": 0.5, "streams": 1.5}


def small_recording(path: Path) -> Path:
    """Two streams (gaze 60 Hz, markers) of 2 s with clock offsets, by the project's writer."""
    from acquisition.streams import StreamSpec
    from acquisition.xdf.writer import XdfWriter

    with XdfWriter(path) as w:
        gaze = w.add_stream(
            StreamSpec("Gaze", "Gaze", 3, 60.0, "float32", "bench-gz", ("x", "y", "pupil"))
        )
        marks = w.add_stream(StreamSpec("Markers", "Markers", 1, 0.0, "string", "bench-mk"))
        t = 100.0 + np.arange(120) / 60.0
        w.write_samples(gaze, t, np.full((120, 3), 0.5))
        w.write_samples(marks, np.array([100.5]), [["onset:img_001"]])
        for sid in (gaze, marks):
            for k in range(3):
                w.write_clock_offset(sid, 100.0 + k, -0.01)
    return path


def time_command(
    cmd: list[str], runs: int, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> dict:
    """Median/min/max wall seconds and median CPU seconds of ``runs`` runs after a warm-up."""
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-400:]}")
        if i == 0:
            continue  # warm-up: bytecode cache, page cache
        walls.append(wall)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {
        "wall_s": {
            "median": round(statistics.median(walls), 3),
            "min": round(min(walls), 3),
            "max": round(max(walls), 3),
        },
        "cpu_s_median": round(statistics.median(cpus), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs per command")
    args = parser.parse_args()

    from acquisition.lsl.config import write_lsl_config

    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode is cached
    env["LSLAPICFG"] = str(write_lsl_config(work / "lsl_api.cfg", f"bench-{uuid.uuid4()}"))
    exe = [sys.executable, "-m", "emoeye"]
    recording = small_recording(work / "small.xdf")
    commands = {
        "version": [*exe, "--version"],
        "info": [*exe, "info", str(recording)],
        "streams": [*exe, "streams", "--timeout", "0.5"],
    }
    out: dict = {"benchmark": "startup", "runs": args.runs}
    for name, cmd in commands.items():
        figures = time_command(cmd, args.runs, env, ok=(0, 1) if name == "streams" else (0,))
        figures["target_s"] = TARGETS_S[name]
        figures["target_met"] = figures["wall_s"]["median"] < TARGETS_S[name]
        out[name] = figures
    out.update(cpus=os.cpu_count(), load_avg_1min=round(os.getloadavg()[0], 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
