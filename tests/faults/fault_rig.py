"""Helpers of the fault suite: real-time feeders for raw LSL devices, live input set-up, loss
accounting and the ledger that ``bench/faults.py`` reads."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pylsl

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.lsl.live import LiveAcquisition, discover
from acquisition.lsl.presets import PRESETS
from acquisition.sim.faults import RawDevice
from acquisition.streams import StreamSpec
from acquisition.trials.types import TrialSpec

LEDGER_ENV = "EMOEYE_FAULT_LEDGER"
"""JSONL file each fault test appends its accounting to (set by bench/faults.py)."""


def record(fault: str, **figures) -> None:
    """Append one fault's accounting (``samples_lost_uncounted``, ``trials_lost_uncounted``...)."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"fault": fault, **figures}) + "\n")


def gazepoint_spec(uid: str, tag: str = "gp") -> StreamSpec:
    """A Gazepoint stream (gaze, pupil, GSR and HR in one 60 Hz outlet) with uuid ids."""
    return PRESETS["gazepoint"][0].spec(f"{tag}-{uid}", name=f"GazepointEyeTracker-{uid}")


def markers_spec(uid: str) -> StreamSpec:
    """A PsychoPy string marker stream with uuid ids."""
    return PRESETS["psychopy"][0].spec(f"mk-{uid}", name=f"Markers-{uid}")


def gazepoint_rows(i: np.ndarray) -> np.ndarray:
    """Plausible, valid Gazepoint samples for sample counters ``i``."""
    rows = np.zeros((len(i), 9), np.float32)
    rows[:, 0] = 0.5 + 0.2 * np.sin(i / 30)
    rows[:, 1] = 0.5 + 0.1 * np.cos(i / 45)
    rows[:, 2] = rows[:, 4] = rows[:, 6] = 1
    rows[:, 3] = 4.0 + 0.1 * np.sin(i / 50)
    rows[:, 5] = 4.1
    rows[:, 7] = 5.0 + 0.01 * np.sin(i / 70)
    rows[:, 8] = 70.0
    return rows


class Feeder(threading.Thread):
    """Pushes a regular device's samples in real time, stamped on the LSL clock.

    ``alive`` cleared: the device is dead and pushes nothing (those instants get no sample).
    ``offset`` is added to every timestamp pushed (a device clock; Unix-epoch stamping).
    Every timestamp pushed is kept in :attr:`pushed_ts`.
    """

    def __init__(self, device: RawDevice, rate: float, period: float = 0.05) -> None:
        super().__init__(name=f"feeder-{device.spec.name}", daemon=True)
        self.device, self.rate, self.period = device, rate, period
        self.alive = threading.Event()
        self.alive.set()
        self.offset = 0.0
        self.pushed_ts: list[float] = []
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def run(self) -> None:
        k = 0
        t0 = pylsl.local_clock()
        try:
            while not self._halt.wait(self.period):
                now = pylsl.local_clock()
                k1 = int((now - t0) * self.rate)
                ts = t0 + np.arange(k, k1) / self.rate
                k = k1
                with self._lock:
                    if not len(ts) or not self.alive.is_set() or self.device.outlet is None:
                        continue
                    self.device.push(ts + self.offset)
                    self.pushed_ts.extend(ts.tolist())
        except BaseException as exc:
            self.error = exc

    def kill_device(self) -> None:
        """Switch the device off: no more pushes and its outlet destroyed."""
        with self._lock:
            self.alive.clear()
            self.device.kill()

    def restart_device(self, spec: StreamSpec | None = None) -> None:
        """Switch it on again, as the same stream or (``spec``) as a new one."""
        with self._lock:
            self.device.open(spec)
            self.alive.set()

    def stop(self) -> None:
        self._halt.set()
        self.join(5.0)


def open_live(specs: list[StreamSpec], config: AcquisitionConfig | None = None, **kw):
    """A started :class:`LiveAcquisition` over the streams with these source ids."""
    visible = discover(5.0, [s.source_id for s in specs])
    assert {s.source_id for s, _ in visible} == {s.source_id for s in specs}, visible
    cfg = config or AcquisitionConfig(trial=TrialSpec(grace=1.0))
    live = LiveAcquisition(cfg, streams=visible, **kw)
    live.start()
    assert live.wait_connected(10.0)
    return live


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``cond`` until true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def collect_trials(live: LiveAcquisition, n: int, timeout: float) -> list:
    """Poll the live input until ``n`` trials are cut (or the timeout); returns all events."""
    events: list = []
    end = time.monotonic() + timeout
    while sum(isinstance(e, TrialEvent) for e in events) < n and time.monotonic() < end:
        events += live.poll(wait=0.05)
    return events


def uncounted_losses(
    pushed: np.ndarray, received: np.ndarray, max_gap: float, gaps_counted: int
) -> int:
    """Pushed samples that never arrived and lie in no *reported* gap.

    A sample missing inside a hole of the received timestamps longer than ``max_gap`` is
    accounted for when the stream reported at least as many gaps as there are such holes.
    Returns the number of missing samples not accounted for.
    """
    pushed = np.asarray(pushed, np.float64)
    received = np.sort(np.asarray(received, np.float64))
    if len(received):  # clock sync may move stamps by microseconds: match within 1 ms
        j = np.clip(np.searchsorted(received, pushed), 1, len(received) - 1)
        near = np.minimum(np.abs(received[j] - pushed), np.abs(received[j - 1] - pushed))
        got = near < 1e-3
    else:
        got = np.zeros(len(pushed), bool)
    missing = pushed[~got]
    if not len(missing):
        return 0
    if not len(received):
        return len(missing) if gaps_counted < 1 else 0
    edges = np.concatenate([[-np.inf], received, [np.inf]])
    holes = np.flatnonzero(np.diff(edges) > max_gap)
    where = np.searchsorted(edges, missing) - 1
    in_hole = np.isin(where, holes)
    used_holes = np.unique(where[in_hole])
    uncounted = int((~in_hole).sum())
    if len(used_holes) > gaps_counted:
        uncounted += int(in_hole.sum())
    return uncounted


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL log."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
