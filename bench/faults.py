"""Run the fault suite and print its figures as JSON on the last line.

The ten faults of the suite are tested where the part they hit is tested: most in
``tests/faults`` (over real LSL and real files), checkpoints in ``tests/models``, the inference
worker in ``tests/inference``, damaged files also in ``tests/xdf``. :data:`FAULTS` maps each
fault to its tests; a fault is survived when every one of its tests passed.

Fault tests that measure losses append them to a ledger file named by ``EMOEYE_FAULT_LEDGER``
(``samples_lost_uncounted``, ``trials_lost_uncounted``); the others assert zero losses.
``crashes`` counts failed or erroring tests and a pytest run that died.

Usage: ``python bench/faults.py [--fast]`` (``--fast`` leaves out the hypothesis fuzz tests).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAULTS: dict[str, list[str]] = {
    "1 stream dies mid-trial (returns / never returns)": ["tests/faults/test_f01_stream_dies.py"],
    "2 device restarts as a new stream": ["tests/faults/test_f02_rebind.py"],
    "3 clock reset, Unix-epoch stamps": ["tests/faults/test_f03_clocks.py"],
    "4 NaN runs, blinks, flat GSR, out-of-range": ["tests/faults/test_f04_bad_signals.py"],
    "5 irregular streams, bursts and silences": ["tests/faults/test_f05_irregular.py"],
    "6 marker problems and a 1,000/s flood": [
        "tests/faults/test_f06_markers.py",
        "tests/faults/test_fuzz.py::test_marker_parser_never_raises",
        "tests/faults/test_fuzz.py::test_aligner_accounts_for_every_marker",
    ],
    "7 damaged XDF files": [
        "tests/faults/test_f07_xdf_files.py",
        "tests/xdf/test_xdf_damage.py",
        "tests/faults/test_fuzz.py::test_xdf_reader_on_random_bytes",
        "tests/faults/test_fuzz.py::test_xdf_reader_on_mutated_files",
        "tests/faults/test_fuzz.py::test_xdf_source_blocks_on_mutated_files",
    ],
    "8 bad checkpoints (pickle, truncated, other architecture)": [
        "tests/models/test_checkpoint.py",
    ],
    "9 inference slower than trials, model error on one trial": [
        "tests/inference/test_worker.py::test_f09_inference_slower_than_trials_arrive_and_one_model_error",
        "tests/inference/test_worker.py::test_queue_is_bounded_and_overflow_is_reported",
        "tests/inference/test_worker.py::test_model_error_on_one_trial_gives_error_prediction_and_worker_goes_on",
    ],
    "10 Ctrl-C / SIGTERM during a trial and a recording": [
        "tests/faults/test_f10_signals.py",
        "tests/inference/test_session.py::test_emoeye_run_headless_cli_sigterm_flushes_pending_trial",
    ],
    "11 a trial's cut, quality, scanpath, prediction or sink raises": [
        "tests/faults/test_f11_trial_errors.py",
        "tests/acquisition/test_aligner.py::test_onset_leaves_pending_only_once_its_record_exists",
    ],
}
"""Fault → its tests (files or node ids)."""

_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\S* (\S+)", re.M)


def _fault_of(node: str) -> str | None:
    """The fault a test node id belongs to (the most specific target that matches)."""
    best: tuple[int, str] | None = None
    for fault, targets in FAULTS.items():
        for target in targets:
            matches = node == target or node.startswith((target + "::", target + "["))
            if matches and (best is None or len(target) > best[0]):
                best = (len(target), fault)
    return best[1] if best else None


def run_suite(fast: bool) -> tuple[dict[str, str], list[dict], int, float]:
    """Run every fault's tests in one pytest process: (outcome per node id, ledger records,
    pytest's exit code, seconds)."""
    ledger = Path(tempfile.mkdtemp(prefix="emoeye-faults-")) / "ledger.jsonl"
    env = dict(os.environ, EMOEYE_FAULT_LEDGER=str(ledger), QT_QPA_PLATFORM="offscreen")
    targets = sorted({t for ts in FAULTS.values() for t in ts})
    if fast:
        targets = [t for t in targets if "test_fuzz.py" not in t]
    cmd = [sys.executable, "-m", "pytest", *targets, "-q", "-rA", "-p", "no:cacheprovider"]
    cmd += ["-W", "ignore"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    print(proc.stdout[-3000:], file=sys.stderr)
    outcome = {m.group(2): m.group(1) for m in _OUTCOME.finditer(proc.stdout)}
    records = [json.loads(x) for x in ledger.read_text().splitlines()] if ledger.exists() else []
    return outcome, records, proc.returncode, seconds


def summarise(outcome: dict[str, str], records: list[dict], returncode: int) -> dict:
    """The report: faults tried/survived, losses not counted, crashes, per-fault tests."""
    per_fault: dict[str, dict[str, int]] = {f: {} for f in FAULTS}
    for node, result in outcome.items():
        fault = _fault_of(node)
        if fault is not None:
            per_fault[fault][result] = per_fault[fault].get(result, 0) + 1
    tried = {f: r for f, r in per_fault.items() if sum(v for k, v in r.items() if k != "SKIPPED")}
    bad = ("FAILED", "ERROR", "XFAIL", "XPASS")
    return {
        "faults_tried": len(tried),
        "faults_survived": sum(not any(r.get(k) for k in bad) for r in tried.values()),
        "samples_lost_uncounted": sum(r.get("samples_lost_uncounted", 0) for r in records),
        "trials_lost_uncounted": sum(r.get("trials_lost_uncounted", 0) for r in records),
        "crashes": sum(v in ("FAILED", "ERROR") for v in outcome.values())
        + (returncode not in (0, 1)),
        "known_bugs_xfail": sum(v == "XFAIL" for v in outcome.values()),
        "tests": len(outcome),
        "faults": {f: dict(sorted(r.items())) for f, r in per_fault.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the suite in a subprocess; print the summary JSON on the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="leave out the hypothesis fuzz tests")
    args = parser.parse_args(argv)
    outcome, records, rc, seconds = run_suite(args.fast)
    result = summarise(outcome, records, rc)
    result["seconds"] = round(seconds, 1)
    print(json.dumps(result))
    ok = result["crashes"] == 0 and result["faults_survived"] == result["faults_tried"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
