"""Run the fault suite (tests/faults) and print its figures as JSON on the last line.

Each fault test appends its accounting (samples and trials lost without being counted) to a
ledger file named by ``EMOEYE_FAULT_LEDGER``; pytest's ``-rA`` summary gives pass/fail/xfail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run the suite in a subprocess; print the summary JSON."""
    ledger = Path(tempfile.mkdtemp(prefix="emoeye-faults-")) / "ledger.jsonl"
    env = dict(os.environ, EMOEYE_FAULT_LEDGER=str(ledger))
    cmd = [sys.executable, "-m", "pytest", "tests/faults", "-q", "-rA", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    print(proc.stdout[-4000:])
    outcome: dict[str, str] = {}
    for m in re.finditer(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\S* (\S+)", proc.stdout, re.M):
        outcome[m.group(2)] = m.group(1)
    records = [json.loads(x) for x in ledger.read_text().splitlines()] if ledger.exists() else []
    tried = {k: v for k, v in outcome.items() if v != "SKIPPED"}
    result = {
        "faults_tried": len(tried),
        "faults_survived": sum(v in ("PASSED", "XFAIL") for v in tried.values()),
        "known_bugs_xfail": sum(v == "XFAIL" for v in tried.values()),
        "samples_lost_uncounted": sum(r.get("samples_lost_uncounted", 0) for r in records),
        "trials_lost_uncounted": sum(r.get("trials_lost_uncounted", 0) for r in records),
        "crashes": sum(v in ("FAILED", "ERROR") for v in tried.values())
        + (proc.returncode not in (0, 1)),
    }
    print(json.dumps(result))
    return 0 if result["crashes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
