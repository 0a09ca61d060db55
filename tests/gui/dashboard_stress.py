"""Open and close a dashboard session on live LSL streams N times in a row (run as a script).

Run by tests/gui/test_dashboard_stress.py in a subprocess with ``faulthandler`` writing to a
file, so a native crash (SIGSEGV in Qt, pyqtgraph or liblsl teardown) shows as the child's exit
status with every thread's stack, instead of killing the test runner.

Each cycle goes through the application's own path: a LiveAcquisition with its inlet threads
and a polling thread on the simulator's outlets, :func:`gui.app.run_dashboard` showing the
window until its ``seconds`` run out, then the teardown ``emoeye run`` does (window deleted by
Qt, polling and inlet threads stopped, inlets deleted) while the outlets keep streaming.

    python tests/gui/dashboard_stress.py CYCLES CRASH_LOG
"""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(cycles: int, crash_log: Path) -> int:
    crash = open(crash_log, "w")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(crash, all_threads=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from acquisition.lsl.config import use_lsl_config

    use_lsl_config(f"stress-{uuid.uuid4().hex[:8]}", "machine")
    from gui_sessions import fake_prediction

    from acquisition.aligner import TrialEvent
    from acquisition.config import AcquisitionConfig
    from acquisition.lsl.live import LiveAcquisition, discover
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.trials.types import TrialSpec
    from acquisition.xdf.player import LslPlayer
    from gui.app import run_dashboard
    from gui.qt import QtWidgets
    from inference.prediction import PredictionStore

    sim = Simulation(SimulationConfig(device_set="lab", n_trials=60, isi=2.0, lead_in=0.5, seed=5))
    player = LslPlayer(sim, speed=1.0, block_seconds=0.05)
    player.start()
    visible = discover(10.0, [s.source_id for s in sim.streams])
    config = AcquisitionConfig(trial=TrialSpec(duration=1.0, grace=0.5))
    frames = 0
    try:
        for i in range(cycles):
            live = LiveAcquisition(config, streams=visible)
            live.start()
            store = PredictionStore()
            stop = threading.Event()

            def on_event(event, store=store) -> None:
                if isinstance(event, TrialEvent):
                    store.add(fake_prediction(event.trial, flagged=len(store) % 3 == 2))

            poller = threading.Thread(target=live.run, args=(on_event, stop), daemon=True)
            poller.start()
            session = SimpleNamespace(live=live, store=store, catalogue=None)
            # Some cycles close at once (before the first frame), most after a few frames.
            run_dashboard(session, seconds=0.0 if i % 10 == 3 else 0.25)
            # The app must outlive the call: destroyed on return, it went before the call's own
            # timers and while pyqtgraph objects were still alive.
            assert QtWidgets.QApplication.instance() is not None, "QApplication destroyed"
            stop.set()
            poller.join(5.0)
            live.stop()
            del live, session, poller
            gc.collect()
            frames += 1
            print(f"cycle {i + 1}/{cycles} ok", flush=True)
    finally:
        player.close()
    print(f"{frames} cycles without a crash", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), Path(sys.argv[2])))
