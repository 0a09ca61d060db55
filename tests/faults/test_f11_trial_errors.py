"""Fault 11: a stage of a trial's life raises. Every onset still ends as exactly one record (a
prediction, an error record or a no-data record) in the log, the CSV, the store and the
outlet, counted in the session summary; nothing is lost silently.

The faults are injected into the real pipeline (simulated devices, the real aligner, cutter,
worker and sinks) by making one function raise.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
import time

import pylsl
import pytest
from fault_rig import read_jsonl, record

from acquisition.config import AcquisitionConfig
from acquisition.lsl.live import LiveAcquisition, discover
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.trials.types import TrialSpec
from acquisition.xdf.player import LslPlayer
from emoeye.headless import HeadlessView
from emoeye.session import LiveSession, SessionConfig, predict_offline
from inference.sinks import Sink, outlet_labels

TRIAL_RECORDS = ("prediction", "error", "no_data", "skipped")
N_TRIALS = 5


def fail_on_call(fn, calls: set[int] | None, exc: BaseException):
    """``fn`` raising ``exc`` on the given 1-based calls (every call when None)."""
    count = [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if calls is None or count[0] in calls:
            raise exc
        return fn(*args, **kwargs)

    return wrapped


class BrokenSink(Sink):
    """A sink that fails on everything it is given (a full disk, a dead outlet)."""

    name = "broken"
    stage = "publish"

    def write(self, prediction) -> None:
        raise OSError("disk full")

    def write_record(self, record: dict) -> None:
        raise OSError("disk full")


# stage -> (function to patch, calls that fail (None = all), exception, expected reason start)
CUT_FAULTS = {
    "cut": ("acquisition.aligner.cut_trial", None, KeyError("stream 'E4_Hr' has no channel ''")),
    "grid": ("acquisition.trials.cut.to_grid", {11}, ValueError("bad grid")),  # 3rd trial
    "quality": ("acquisition.trials.cut._gaze_quality", {3}, ZeroDivisionError("no samples")),
    "scanpath": ("acquisition.trials.cut.render_scanpath", {3}, IndexError("pixel off screen")),
}


def simulation(**kw) -> Simulation:
    return Simulation(SimulationConfig(device_set="gazepoint", n_trials=N_TRIALS, isi=6, **kw))


@pytest.mark.parametrize(
    "stage", ["cut", "grid", "quality", "scanpath", "predict", "sink", "no_data", "none"]
)
def test_f11_every_onset_one_record_with_a_fault_at_each_stage(
    stage, checkpoint, tmp_path, monkeypatch
):
    sim = simulation()
    onsets = [g["onset"] for g in sim.ground_truth()]
    sinks = []
    expect = {"failed": 0, "no_data": 0}
    if stage in CUT_FAULTS:
        target, calls, exc = CUT_FAULTS[stage]
        module, name = target.rsplit(".", 1)
        mod = importlib.import_module(module)
        monkeypatch.setattr(mod, name, fail_on_call(getattr(mod, name), calls, exc))
        expect["failed"] = N_TRIALS if calls is None else 1
        reason = f"cut failed: {type(exc).__name__}: "
    elif stage == "predict":
        from inference.worker import InferenceWorker

        original = InferenceWorker._predict

        def predict(self, trial, emb):
            if trial.trial_id == "3":
                raise RuntimeError("CUDA out of memory")
            return original(self, trial, emb)

        monkeypatch.setattr(InferenceWorker, "_predict", predict)
        expect["failed"] = 1
        reason = "predict failed: RuntimeError: CUDA out of memory"
    elif stage == "sink":
        sinks = [BrokenSink()]
    elif stage == "no_data":  # the device is off for the whole of the 3rd trial's window
        sim = simulation(dropouts=[("gazepoint", onsets[2] - 1.5, 7.0)])
        expect["no_data"] = 1
    log, table = tmp_path / "p.jsonl", tmp_path / "p.csv"
    result = predict_offline(sim, AcquisitionConfig(), checkpoint, log, csv_path=table, sinks=sinks)
    records = read_jsonl(log)
    trial_records = [r for r in records if r["event"] in TRIAL_RECORDS]
    assert sorted(r["trial_id"] for r in trial_records) == [str(i) for i in range(1, 6)]
    assert [r["onset"] for r in trial_records] == pytest.approx(onsets, abs=1e-6)
    with table.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["event"] in TRIAL_RECORDS]
    assert [r["trial_id"] for r in rows] == [r["trial_id"] for r in trial_records]
    failed = [r for r in trial_records if r["event"] == "error"]
    no_data = [r for r in trial_records if r["event"] == "no_data"]
    assert (len(failed), len(no_data)) == (expect["failed"], expect["no_data"])
    for r in failed:
        assert r["error"].startswith(reason) and r["status"] == "failed" and r["flagged"]
    for r in no_data:
        assert r["error"].startswith("no usable data: gaze: usable data 0.00 < min_coverage")
    for row in rows:
        assert (row["event"] == "prediction") == (row["error"] == "" and row["reason"] == "")
    end = records[-1]
    assert end["event"] == "session_end" and end["onsets"] == N_TRIALS
    assert end["trials_failed"] == expect["failed"] and end["trials_no_data"] == expect["no_data"]
    assert end["trials_predicted"] + end["trials_failed"] + end["trials_no_data"] == N_TRIALS
    assert result["trials_failed"] == expect["failed"]
    # Ratings attach to their trial whether or not it was cut: none orphaned.
    assert sum(r["event"] == "rating" for r in records) == N_TRIALS
    assert result["aligner"]["ratings_orphaned"] == 0
    if stage == "sink":
        assert sinks[0].errors >= N_TRIALS  # counted, and the other sinks got every record
    record(f"f11_{stage}", trials_lost_uncounted=N_TRIALS - len(trial_records))


def test_f11_session_handoff_failure_still_gives_a_record(checkpoint, tmp_path):
    """The polling thread cannot hand a trial to the worker: the error record is published
    from the polling thread instead."""
    from acquisition.aligner import TrialEvent
    from acquisition.core import Acquisition
    from acquisition.lsl.binding import bind_roles
    from acquisition.reporting import FailureLog
    from emoeye.session import hand_on
    from inference.sinks import JsonlSink
    from inference.worker import InferenceWorker

    sim = simulation()
    acq = Acquisition(bind_roles(sim.streams), AcquisitionConfig())
    events = [e for e in acq.run_offline(sim, 1.0) if isinstance(e, TrialEvent)]
    worker = InferenceWorker(checkpoint=checkpoint, sinks=[JsonlSink(tmp_path / "p.jsonl")])

    def refuse(item):
        raise MemoryError("queue")

    worker.submit = refuse
    failures = FailureLog(logging.getLogger("test"))
    for event in events:
        hand_on(event, worker, failures)
    worker.publisher.close()
    records = read_jsonl(tmp_path / "p.jsonl")
    assert [r["trial_id"] for r in records] == [e.trial_id for e in events]
    assert all(r["error"] == "session failed: MemoryError: queue" for r in records)
    assert worker.stats.failed == N_TRIALS
    # A continuous-mode window that cannot be handed on stays a window's record.
    window = events[0].trial
    window.mode = "continuous"
    hand_on(TrialEvent(window), worker, failures)
    assert worker.stats.failed == N_TRIALS  # windows are counted apart from trials
    assert worker.stats.continuous == {"failed": 1}


@pytest.mark.lsl
@pytest.mark.timeout(120)
def test_f11_live_session_every_cut_failing(checkpoint, tmp_path, uid, monkeypatch, caplog):
    """The reported session: every cut raised (a binding bug), so before this 0 of the trials
    were written and the ratings became orphans. Now each onset is an error record in the log,
    the CSV, the store, the headless view and on the predictions outlet, counted in the
    summary and ``session_end``; the traceback is logged once."""
    import acquisition.aligner as aligner_module

    caplog.set_level(logging.ERROR)
    broken = KeyError("stream 'E4_Hr' has no channel '' (channels: hr)")
    monkeypatch.setattr(aligner_module, "cut_trial", fail_on_call(None, None, broken))
    n = 3
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=n, isi=6, lead_in=1.5, source_tag=uid)
    )
    player = LslPlayer(sim, speed=1.0, wait_consumers=15.0)
    config = AcquisitionConfig(trial=TrialSpec(grace=1.0))
    live = LiveAcquisition(config, streams=discover(5.0, [s.source_id for s in sim.streams]))
    session = LiveSession(
        config,
        SessionConfig(
            checkpoint=checkpoint,
            log_path=tmp_path / "p.jsonl",
            csv_path=tmp_path / "p.csv",
            outlet_source_id=f"pred-{uid}",
        ),
        live=live,
        say=lambda *_: None,
    )
    inlet = ids = None
    samples, id_samples = [], []
    try:
        session.start()
        found = {i.source_id(): i for i in pylsl.resolve_byprop("source_id", f"pred-{uid}", 1, 5.0)}
        found.update(
            {i.source_id(): i for i in pylsl.resolve_byprop("source_id", f"pred-{uid}-ids", 1, 5.0)}
        )
        inlet = pylsl.StreamInlet(found[f"pred-{uid}"])
        ids = pylsl.StreamInlet(found[f"pred-{uid}-ids"])
        inlet.open_stream(timeout=5.0)
        ids.open_stream(timeout=5.0)
        player.start()
        deadline = time.monotonic() + sim.duration + 20
        while (len(samples) < n or len(id_samples) < n) and time.monotonic() < deadline:
            samples += inlet.pull_chunk(timeout=0.2)[0]
            id_samples += ids.pull_chunk(timeout=0.2)[0]
        text = io.StringIO()
        HeadlessView(session, out=text, rich_view=False).print_new()
        panel = HeadlessView(session, out=io.StringIO(), rich_view=True).render()
    finally:
        del inlet, ids  # inlets before outlets
        summary = session.stop()
        player.close()
    # The outlet: one sample per onset, each an error prediction.
    assert len(samples) == n and len(id_samples) == n
    error_channel = outlet_labels().index("error")
    assert [s[error_channel] for s in samples] == [1.0] * n
    for (payload,) in id_samples:
        meta = json.loads(payload)
        assert meta["status"] == "failed" and meta["error"].startswith("cut failed: KeyError")
    # The store and the headless view.
    assert [p.status for p in session.store.latest(10)] == ["failed"] * n
    lines = text.getvalue().splitlines()
    assert len(lines) == n and all(x.startswith("ERROR trial ") for x in lines)
    assert all("cut failed: KeyError" in x for x in lines)
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(panel)
    shown = console.file.getvalue()
    assert shown.count("error cut failed: KeyError") == n and f"failed {n}" in shown
    # The log and the CSV.
    records = read_jsonl(tmp_path / "p.jsonl")
    errors = [r for r in records if r["event"] == "error"]
    assert [r["trial_id"] for r in errors] == [str(i) for i in range(1, n + 1)]
    assert sum(r["event"] == "rating" for r in records) == n  # attached, not orphaned
    with (tmp_path / "p.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["event"] for r in rows if r["event"] != "rating"] == ["error"] * n
    # The summary and session_end count them.
    assert summary["onsets"] == n and summary["trials_failed"] == n
    assert summary["trials_cut"] == 0 and summary["aligner"]["ratings_orphaned"] == 0
    assert summary["poll_errors"] == 0
    end = records[-1]
    assert end["event"] == "session_end" and end["trials_failed"] == n
    # The traceback once, not per trial.
    logged = [r for r in caplog.records if "cut failed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info
    record("f11_live_cut", trials_lost_uncounted=n - len(errors))


@pytest.mark.lsl
@pytest.mark.timeout(120)
def test_f11_a_role_that_cannot_be_read_puts_its_stream_in_error(uid, monkeypatch):
    """A binding that fails at run time: the onsets become error records naming the role, the
    stream feeding that role shows state ``error`` with the reason in its health, and goes back
    to ``ok`` once a trial is cut again."""
    import acquisition.lsl.binding as binding_module
    from acquisition.aligner import TrialEvent

    real = binding_module.extract
    failing = {"on": True}

    def extract(reading, spec, ts, values):
        if failing["on"] and reading.role == "hr":
            raise KeyError(f"stream {spec.name!r} has no channel ''")
        return real(reading, spec, ts, values)

    monkeypatch.setattr(binding_module, "extract", extract)
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=2, isi=6, lead_in=1.5, source_tag=uid)
    )
    player = LslPlayer(sim, speed=1.0, wait_consumers=15.0)
    config = AcquisitionConfig(trial=TrialSpec(grace=1.0))
    live = LiveAcquisition(config, streams=discover(5.0, [s.source_id for s in sim.streams]))
    events: list = []
    try:
        live.start()
        player.start()
        deadline = time.monotonic() + sim.duration + 20
        while not events and time.monotonic() < deadline:
            events += [e for e in live.poll(wait=0.05) if isinstance(e, TrialEvent)]
        hr_key = live.core.roles["hr"].spec.key
        failed = live.health[hr_key].to_dict()
        failing["on"] = False
        while len(events) < 2 and time.monotonic() < deadline:
            events += [e for e in live.poll(wait=0.05) if isinstance(e, TrialEvent)]
        healed = live.health[hr_key].to_dict()
    finally:
        live.stop()
        del live
        player.close()
    first = events[0].error
    assert first is not None and first.role == "hr" and "reading role hr" in first.reason
    assert failed["state"] == "error" and failed["read_error"].startswith("hr: cut failed")
    assert failed["errors"] >= 1
    assert len(events) == 2 and events[1].ok
    assert healed["state"] == "ok" and healed["read_error"] == ""
