"""No native crash: a dashboard session opened and closed 50 times on live LSL streams.

The cycles run in a child process (tests/gui/dashboard_stress.py) with ``faulthandler`` on, so a
SIGSEGV in the Qt / pyqtgraph / liblsl teardown fails this test with the child's stacks instead
of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(600)]

CYCLES = 50
SCRIPT = Path(__file__).with_name("dashboard_stress.py")


def test_dashboard_opens_and_closes_50_times_without_a_crash(tmp_path: Path):
    crash_log = tmp_path / "faulthandler.log"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("LSLAPICFG", None)  # the child makes its own LSL session
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(CYCLES), str(crash_log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    stacks = crash_log.read_text() if crash_log.exists() else ""
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}\n{stacks}"
    )
    assert f"{CYCLES} cycles without a crash" in proc.stdout
    assert "Fatal Python error" not in stacks
