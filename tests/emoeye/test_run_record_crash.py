"""``emoeye run --record`` survives ``kill -9`` (issue 14), and a native crash leaves a stack trace
in the run folder (issue 13).

A real ``python -m emoeye run`` subprocess over real LSL (this test run's LSL session), against
simulated Gazepoint devices played in real time by :class:`~acquisition.xdf.player.LslPlayer`.
The player starts as soon as the session's recorder connects, so the first onset comes while the
session is still starting: the recording must start before the session's inlets and hold it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest
from process_lines import Lines

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.player import LslPlayer
from acquisition.xdf.source import XdfSource

pytestmark = pytest.mark.lsl

DURATION = 5.0
"""Trial window, s."""


def wait_until(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def pinned_config(path: Path, sim: Simulation) -> Path:
    """Every role bound to this test's streams by source id (other tests' streams never bind)."""
    sid = {s.type: s.source_id for s in sim.streams}
    text = []
    for role in ("gaze", "gsr", "hr"):
        text += [f"[roles.{role}]", f'source_id = "{sid["Gaze"]}"', 'preset = "gazepoint"', ""]
    text += ["[roles.markers]", f'source_id = "{sid["Markers"]}"', 'preset = "psychopy"', ""]
    path.write_text("\n".join(text))
    return path


def child_env() -> dict[str, str]:
    env = dict(os.environ)  # LSLAPICFG: this test run's LSL session
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(key, None)
    return env


def start_run(checkpoint: Path, tmp_path: Path, sim: Simulation, *extra: str):
    log = tmp_path / "run" / "predictions.jsonl"
    config = pinned_config(tmp_path / "pinned.toml", sim)
    cmd = [sys.executable, "-m", "emoeye", "run", "--headless", "--no-outlet", "--wait", "30"]
    cmd += ["--checkpoint", str(checkpoint), "--config", str(config), "--log", str(log), *extra]
    proc = subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    out.start()
    err.start()
    return proc, out, err, log


def file_trials(path: Path) -> list:
    """Trials cut from a recording, as ``emoeye replay`` cuts them (same config, no dejitter)."""
    source = XdfSource(path)
    cfg = AcquisitionConfig()
    acq = Acquisition(bind_roles(source.streams, cfg.rules), cfg, strict=False)
    return [e.trial for e in acq.run_offline(source, 0.5) if isinstance(e, TrialEvent)]


@pytest.mark.timeout(150)
def test_kill_9_keeps_every_trial_in_the_recording(checkpoint, tmp_path, uid):
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=8, isi=5.0, lead_in=1.0, source_tag=uid)
    )
    markers = next(s for s in sim.streams if s.type == "Markers")
    player = LslPlayer(sim, speed=1.0, wait_consumers=40.0)
    xdf = tmp_path / "session.xdf"
    proc, out, err, log = start_run(checkpoint, tmp_path, sim, "--record", str(xdf))
    try:
        player.start()  # plays once the first inlets (the recorder's) are connected
        assert player.wait_started(45.0), (out.lines, err.lines)
        assert wait_until(lambda: out.count("prediction trial") >= 3, 40.0), (out.lines, err.lines)
        time.sleep(2.5)  # trial 3's window ended > 2 s ago; trial 4's is open
        killed_at = pylsl.local_clock()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        player.close()
    assert proc.returncode == -signal.SIGKILL
    assert any(x.startswith(f"recording to {xdf} (emoeye)") for x in out.lines), out.lines
    # Every onset whose window ended more than 2 s before the kill ...
    truth = sim.ground_truth()
    sent = [
        (player.to_local(g["onset"], markers.key), g["stimulus_id"])
        for g in truth
        if player.to_local(g["onset"], markers.key) + DURATION < killed_at - 2.0
    ]
    assert len(sent) >= 3
    # ... was cut by the session (its prediction is in the log) ...
    logged = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    predicted = [r for r in logged if r.get("event") == "prediction"]
    for onset, _ in sent:
        assert any(abs(r["onset"] - onset) < 5e-3 for r in predicted), (onset, predicted)
    # ... and comes back from the file, with its data.
    trials = file_trials(xdf)
    for onset, stimulus in sent:
        (match,) = [t for t in trials if abs(t.onset - onset) < 5e-3]
        assert match.stimulus_id == stimulus
        assert match.quality.coverage["gaze"] > 0.95, match.quality
        assert match.quality.coverage["gsr"] > 0.95, match.quality
    # The first trial was not lost to a late start of the recording.
    assert abs(min(t.onset for t in trials) - sent[0][0]) < 5e-3
    assert np.isfinite([t.onset for t in trials]).all()


@pytest.mark.timeout(120)
def test_native_crash_leaves_a_stack_trace_in_the_run_folder(checkpoint, tmp_path, uid):
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=3, isi=5.0, lead_in=1.0, source_tag=uid)
    )
    player = LslPlayer(sim, speed=1.0, wait_consumers=40.0)
    proc, out, err, log = start_run(checkpoint, tmp_path, sim)
    try:
        player.start()
        assert wait_until(lambda: out.count("Waiting for onsets") > 0, 60.0), (out.lines, err.lines)
        proc.send_signal(signal.SIGSEGV)  # what a crash in Qt, liblsl or torch raises
        proc.wait(20.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        player.close()
    assert proc.returncode == -signal.SIGSEGV
    trace = (log.parent / "crash-traceback.txt").read_text()
    assert "Fatal Python error: Segmentation fault" in trace
    assert "session-poll" in trace or "Thread 0x" in trace  # every thread's stack
    assert 'File "' in trace
