"""No onset lost at start-up: the marker inlet opens as soon as its stream is visible, and a role
whose device appears later is bound then (issue 13). Real LSL outlets, the real ``open_live``."""

from __future__ import annotations

import threading
import time

import numpy as np
import pylsl
import pytest
from test_live_lsl import gaze_rows, outlet_for

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.lsl.presets import PRESETS
from acquisition.trials.types import TrialSpec
from emoeye.errors import CliError
from emoeye.live import open_live

pytestmark = pytest.mark.lsl


class GazeDevice(threading.Thread):
    """A 60 Hz Gazepoint stream that appears ``after`` seconds from now and pushes live."""

    def __init__(self, spec, after: float) -> None:
        super().__init__(daemon=True)
        self.spec, self.after = spec, after
        self.outlet: pylsl.StreamOutlet | None = None
        self.first_stamp = np.nan
        self.halt = threading.Event()

    def run(self) -> None:
        if self.halt.wait(self.after):
            return
        self.outlet = outlet_for(self.spec)
        k, t0 = 0, pylsl.local_clock()
        self.first_stamp = t0
        while not self.halt.wait(0.05):
            n = int((pylsl.local_clock() - t0) * 60) - k
            if n > 0:
                stamps = (t0 + (k + np.arange(n)) / 60).tolist()
                self.outlet.push_chunk(gaze_rows(n, k), stamps)
                k += n

    def stop(self) -> None:
        self.halt.set()
        self.join(5.0)


def pinned(gp, mk, required=("gaze", "gsr", "hr")) -> AcquisitionConfig:
    """Roles bound to this test's streams only (others of this LSL session never bind)."""
    from acquisition.config import RoleRule

    rules = [RoleRule(role=r, source_id=gp.source_id, preset="gazepoint") for r in ("gaze",)]
    rules += [RoleRule(role="markers", source_id=mk.source_id, preset="psychopy")]
    return AcquisitionConfig(
        trial=TrialSpec(grace=1.0, required_roles=tuple(required)), rules=rules
    )


@pytest.mark.timeout(90)
def test_onset_before_the_devices_appear_becomes_a_trial(uid):
    gp = PRESETS["gazepoint"][0].spec(f"gp-{uid}", name=f"GazepointEyeTracker-{uid}")
    mk = PRESETS["psychopy"][0].spec(f"mk-{uid}", name=f"Markers-{uid}")
    lines: list[str] = []
    opened: dict = {}

    def opener() -> None:
        try:
            opened["live"] = open_live(pinned(gp, mk, ("gaze",)), wait=20.0, log=lines.append)
        except BaseException as exc:  # reported by the assertion below
            opened["error"] = exc

    # The session starts first, with no stream there; then the marker stream appears, and the
    # eye tracker only after the first trial's window has closed.
    t = threading.Thread(target=opener, daemon=True)
    t.start()
    # Once it is looking (liblsl's first resolve in a process can take seconds here).
    deadline = time.monotonic() + 20
    while (
        not any(x.startswith("waiting for streams") for x in lines) and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    time.sleep(0.3)
    markers = outlet_for(mk)
    appeared = pylsl.local_clock()
    device = GazeDevice(gp, after=7.5)
    device.start()
    live = None
    try:
        # One second after the marker stream appeared: the first onset.
        time.sleep(max(0.0, appeared + 1.0 - pylsl.local_clock()))
        first = pylsl.local_clock()
        markers.push_sample(["onset:coffee"], first)
        t.join(25.0)
        assert "live" in opened, (opened, lines)
        live = opened["live"]
        assert any("marker stream open; waiting for streams for: gaze" in x for x in lines), lines
        assert "gaze" in live.plan.roles and "markers" in live.plan.roles, lines
        assert live.late_bindings[0].startswith("gaze bound late"), live.late_bindings
        assert any("gaze bound late" in n for h in live.health.values() for n in h.events)
        # A second onset once the device runs: a normal, complete trial.
        time.sleep(1.0)
        second = pylsl.local_clock()
        markers.push_sample(["onset:clock"], second)
        events: list = []
        deadline = time.monotonic() + 15
        while len(events) < 2 and time.monotonic() < deadline:
            events += [e for e in live.poll(wait=0.05) if isinstance(e, TrialEvent)]
        trials = [e.trial for e in events]
        assert [t.stimulus_id for t in trials] == ["coffee", "clock"]
        assert abs(trials[0].onset - first) < 5e-3 and abs(trials[1].onset - second) < 5e-3
        # Cut with the role missing (its device was not there), not lost.
        assert "gaze" in trials[0].quality.missing and trials[0].quality.coverage["gaze"] == 0
        assert "gaze" not in trials[1].quality.missing
        assert trials[1].quality.coverage["gaze"] > 0.95
    finally:
        device.stop()
        if live is not None:
            live.stop()
        live = None
        opened.clear()
        del markers
        device.outlet = None


@pytest.mark.timeout(60)
def test_no_marker_stream_is_still_an_error(uid):
    gp = PRESETS["gazepoint"][0].spec(f"gp-{uid}", name=f"GazepointEyeTracker-{uid}")
    mk = PRESETS["psychopy"][0].spec(f"mk-{uid}", name=f"Markers-{uid}")
    out = outlet_for(gp)
    try:
        with pytest.raises(CliError, match="cannot start: no stream for role.*markers"):
            open_live(pinned(gp, mk), wait=1.5, log=lambda _: None)
    finally:
        del out


@pytest.mark.timeout(60)
def test_streams_found_while_the_model_loads_are_bound_without_another_look(uid):
    """``emoeye run`` looks for streams in a background thread (StreamPrefetch) while the model
    loads; open_live binds what that look found at once, and still waits for what it missed."""
    from emoeye.live import StreamPrefetch

    gp = PRESETS["gazepoint"][0].spec(f"gp-{uid}", name=f"GazepointEyeTracker-{uid}")
    mk = PRESETS["psychopy"][0].spec(f"mk-{uid}", name=f"Markers-{uid}")
    marker_out = outlet_for(mk)
    live = gaze_out = None
    try:
        found = StreamPrefetch().result(10.0)
        assert mk.source_id in {spec.source_id for spec, _ in found}
        assert gp.source_id not in {spec.source_id for spec, _ in found}
        gaze_out = outlet_for(gp)  # appears after the look: bound late, as it appears
        lines: list[str] = []
        live = open_live(pinned(gp, mk, ("gaze",)), wait=20.0, log=lines.append, prefetched=found)
        assert live.plan.roles["markers"].spec.source_id == mk.source_id
        assert live.plan.roles["gaze"].spec.source_id == gp.source_id
        # The markers came from the prefetched look: no "waiting for ... markers" line.
        assert not any("waiting for streams for: markers" in line for line in lines)
    finally:
        if live is not None:
            live.stop()
        del marker_out, gaze_out


@pytest.mark.timeout(120)
def test_session_records_and_logs_the_trial_cut_before_its_device_appeared(uid, tmp_path):
    """Through ``LiveSession``: the early onset becomes a logged prediction with gaze missing,
    and the device that appeared late joins the ``record_path`` recording."""
    import json

    from acquisition.xdf.source import XdfSource
    from emoeye.session import LiveSession, SessionConfig

    gp = PRESETS["gazepoint"][0].spec(f"gp-{uid}", name=f"GazepointEyeTracker-{uid}")
    mk = PRESETS["psychopy"][0].spec(f"mk-{uid}", name=f"Markers-{uid}")
    log, xdf = tmp_path / "p.jsonl", tmp_path / "s.xdf"
    said: list[str] = []
    session = LiveSession(
        pinned(gp, mk, ("gaze",)),
        SessionConfig(log_path=log, outlet=False, wait=20.0, record_path=xdf),
        say=said.append,
    )
    markers = outlet_for(mk)
    device = GazeDevice(gp, after=6.5)  # after the first trial's window
    starter = threading.Thread(target=session.start, daemon=True)
    starter.start()
    try:
        deadline = time.monotonic() + 20
        while not any("marker stream open" in x for x in said) and time.monotonic() < deadline:
            time.sleep(0.01)
        first = pylsl.local_clock()
        markers.push_sample(["onset:coffee"], first)
        device.start()
        starter.join(30.0)
        assert session.live is not None and "gaze" in session.live.plan.roles
        time.sleep(1.0)
        second = pylsl.local_clock()
        markers.push_sample(["onset:clock"], second)
        deadline = time.monotonic() + 20
        while session.store.count < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        summary = session.stop()
        device.stop()
        device.outlet = None
        del markers
    records = [json.loads(x) for x in log.read_text().splitlines()]
    # One record per trial: a prediction, or (a required role missing) a record saying why.
    trials = {r["stimulus_id"]: r for r in records if r.get("stimulus_id") and "onset" in r}
    assert summary["trials_cut"] == 2 and set(trials) == {"coffee", "clock"}
    early, late = trials["coffee"], trials["clock"]
    assert abs(early["onset"] - first) < 5e-3 and abs(late["onset"] - second) < 5e-3
    if "quality" in early:
        assert "gaze" in early["quality"]["missing"]
    else:
        assert "gaze" in json.dumps(early), early
    assert late["event"] == "prediction" and late["quality"]["coverage"]["gaze"] > 0.95
    # The recording began before the first inlet and took the late device in.
    streams = {s.spec.source_id: s for s in XdfSource(xdf).xdf_streams}
    assert streams[mk.source_id].values()[:, 0].tolist() == ["onset:coffee", "onset:clock"]
    assert len(streams[gp.source_id]) > 60 * 5
    assert summary["recording"]["streams"] == [mk.name, gp.name]
