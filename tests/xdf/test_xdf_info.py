"""``emoeye info``, the offline binding report, clock sanity, zero-duration files, exit codes and
what replay and dataset build say (floods, interrupted real-time replays, atomic outputs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from acquisition.config import AcquisitionConfig
from acquisition.lsl.presets import PRESETS
from acquisition.offline_acquisition import (
    UnboundSourceError,
    bind_offline,
    collect,
    offline_acquisition,
)
from acquisition.streams import StreamSpec
from acquisition.xdf.source import XdfSource, foreign_clocks
from acquisition.xdf.writer import XdfWriter, write_streams
from emoeye.cli import main
from emoeye.commands.common import _seconds_text, atomic_write
from emoeye.commands.replay import realtime_outcome, replay_fast

GP = PRESETS["gazepoint"][0]
MARK = StreamSpec("Mk", "Markers", 1, 0.0, "string", "mk-1")


def sim_streams(sim) -> list[tuple]:
    """(spec, stamps, values) of every stream of a simulation."""
    data = collect(sim)
    return [(s, *data[s.key]) for s in sim.streams]


def gaze_only(path: Path, seconds: float = 20.0, t0: float = 100.0, uid: str = "x") -> tuple:
    n = int(seconds * 60)
    ts = t0 + np.arange(n) / 60.0
    vals = np.tile(np.array([0.5, 0.5, 1, 3, 1, 3, 1, 5, 70], np.float32), (n, 1))
    return GP.spec(f"gp-{uid}"), ts, vals


# --------------------------------------------------------------------------- emoeye info


def test_info_text_and_json_name_every_stream_and_role(sim_file, capsys):
    _, path = sim_file
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "stream 1 'GazepointEyeTracker' (Gaze): 9 ch float32 [FPOGX, FPOGY" in out
    assert "nominal 60 Hz, effective 60 Hz" in out and "LSL clock" in out
    assert "gaze     <- stream 1 ('GazepointEyeTracker') [gaze; preset gazepoint]" in out
    assert "markers  <- stream 2 ('PsychoPyMarkers') [markers; preset psychopy]" in out
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["roles"] == {"gaze": 1, "gsr": 1, "hr": 1, "markers": 2}
    keys = {"stream_id", "name", "type", "channel_count", "nominal_srate", "samples"}
    keys |= {"first_stamp", "last_stamp", "clock", "clock_offsets", "effective_srate"}
    for st in info["streams"]:
        assert keys <= set(st)
    gaze = info["streams"][0]
    src = XdfSource(path)
    g = src.xdf_streams[0]
    assert gaze["samples"] == len(g) and gaze["first_stamp"] == g.timestamps[0]
    assert gaze["last_stamp"] == g.timestamps[-1] and gaze["channel_count"] == 9
    assert gaze["clock"] == "LSL" and gaze["clock_offsets"]["count"] > 0


def test_info_equal_marker_streams_chosen_by_samples_then_file_order(tmp_path, make_sim, capsys):
    sim = make_sim()
    items = []
    for spec, ts, v in sim_streams(sim):
        if spec.type == "Markers":
            # Three copies: an empty one first, then two equal ones.
            items.append((dataclasses.replace(spec, source_id="m-empty"), ts[:0], v[:0]))
            items.append((dataclasses.replace(spec, source_id="m-a"), ts, v))
            items.append((dataclasses.replace(spec, source_id="m-b"), ts, v))
        else:
            items.append((spec, ts, v))
    path = tmp_path / "markers.xdf"
    write_streams(path, items)
    for _ in range(2):  # the same choice every time
        binding = bind_offline(XdfSource(path), AcquisitionConfig())
        assert binding.plan.roles["markers"].spec.source_id == "m-a"
    lines = "\n".join(binding.lines())
    assert "3 equal candidates: chosen by most samples, then file order" not in lines
    assert "not stream 2 ('PsychoPyMarkers'): holds no samples" in lines
    assert "not stream 4 ('PsychoPyMarkers'): as good a match, later in the file" in lines
    assert "2 equal candidates: chosen by most samples, then file order" in lines
    # replay prints the same lines before it starts.
    assert main(["replay", str(path), "--no-model", "--quiet"]) == 0
    assert main(["replay", str(path), "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "\n".join(binding.lines()) in out


def test_missing_role_says_why_a_likely_stream_was_rejected(tmp_path, capsys):
    eda = StreamSpec("Shimmer EDA", "EDA", 2, 128.0, "float32", "eda-1", ("a", "b"))
    eye = StreamSpec("Eye tracker", "Gaze", 3, 60.0, "float32", "eye-1", ("h", "v", "d"))
    t = 10 + np.arange(600) / 60
    path = tmp_path / "odd.xdf"
    marks = np.array([["onset:a"]], dtype=object)
    write_streams(
        path,
        [
            (eda, 10 + np.arange(1280) / 128, np.zeros((1280, 2))),
            (eye, t, np.zeros((600, 3))),
            (MARK, np.array([12.0]), marks),
        ],
    )
    src = XdfSource(path)
    with pytest.raises(UnboundSourceError) as exc:
        offline_acquisition(src, AcquisitionConfig(), "replay")
    line = str(exc.value)
    assert "\n" not in line
    assert (
        "gsr: stream 1 ('Shimmer EDA') was not bound: 2 channels (a, b): which one is the EDA "
        "signal?" in line
    )
    # One explanation per stream, the binder's, in the missing role's line as in the unused one.
    why_eye = "3 channels (h, v, d) match no gaze preset: which are x and y?"
    assert f"gaze: stream 2 ('Eye tracker') was not bound: {why_eye}" in line
    unused = dict(bind_offline(src, AcquisitionConfig()).unused)
    assert unused["stream 2 ('Eye tracker')"].startswith(why_eye)
    assert "[roles.<role>] rule in a --config file" in line and "trial.required_roles" in line
    assert main(["replay", str(path), "--no-model", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().startswith("emoeye: error: cannot replay")
    # With a rule the role binds, and info says the rule decided.
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[trial]\nrequired_roles = ["gsr"]\n[roles.gsr]\nname = "Shimmer EDA"\nkind = "gsr"\n'
        '[roles.gsr.columns]\ngsr = "b"\n'
    )
    assert main(["info", str(path), "--config", str(cfg), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["roles"]["gsr"] == 1 and "gaze" not in info["missing"]


# --------------------------------------------------------------------------- clocks


def test_foreign_clock_marker_stream_gives_no_trials_and_one_line(tmp_path, make_sim, capsys):
    sim = make_sim()
    items = [
        (s, ts + (440907.0 if s.type == "Markers" else 0.0), v) for s, ts, v in sim_streams(sim)
    ]
    path = tmp_path / "foreign.xdf"
    write_streams(path, items)
    src = XdfSource(path)
    assert list(src.foreign) == [2] and src.foreign[2] == pytest.approx(440907.0, abs=5)
    named = [w for w in src.warnings if "foreign clock" in w]
    assert len(named) == 1 and "stream 2 ('PsychoPyMarkers')" in named[0] and "+4409" in named[0]
    assert src.duration < 30  # the data's duration, not 440907 s
    summary = replay_fast(src, AcquisitionConfig(), use_model=False)
    assert summary["trials"] == 0 and summary["seconds"] < 30
    assert any("no trials are cut" in n for n in summary["notes"])
    assert main(["replay", str(path), "--no-model", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["seconds"] < 30 and out["trials"] == 0
    # With the marker stream on the data's clock the same file cuts its trials.
    path2 = tmp_path / "same.xdf"
    write_streams(path2, sim_streams(sim))
    assert replay_fast(XdfSource(path2), AcquisitionConfig(), use_model=False)["trials"] == 3


def test_foreign_clocks_groups_by_regular_streams():
    from acquisition.xdf.reader import XdfStream

    def stream(sid: int, t0: float, srate: float, n: int = 10) -> XdfStream:
        spec = StreamSpec(f"s{sid}", "X", 1, srate, "float32", f"s{sid}")
        return XdfStream(sid, spec, "", timestamps=t0 + np.arange(n, dtype=float))

    # Two data streams together, markers alone far away: the markers are foreign.
    assert foreign_clocks([stream(1, 0, 60), stream(2, 5, 4), stream(3, 9e5, 0)]) == {3: 9e5}
    # One regular stream against one irregular stream: the regular one sets the clock.
    assert foreign_clocks([stream(1, 9e5, 0), stream(2, 0, 60)]) == {1: 9e5}
    # Within an hour (a long pause) nothing is foreign; empty streams never are.
    assert foreign_clocks([stream(1, 0, 60), stream(2, 3000, 60), stream(3, 0, 0, n=0)]) == {}


# --------------------------------------------------------------------------- zero duration


@pytest.mark.parametrize("kind", ["empty-marker", "header-only", "one-sample"])
def test_zero_duration_files_do_not_crash(tmp_path, kind, uid, capsys):
    path = tmp_path / f"{kind}.xdf"
    if kind == "empty-marker":
        write_streams(path, [(MARK, np.zeros(0), np.zeros((0, 1), object))])
    elif kind == "header-only":
        with XdfWriter(path):
            pass
    else:
        spec, ts, vals = gaze_only(path, uid=uid)
        write_streams(path, [(spec, ts[:1], vals[:1]), (MARK, np.zeros(0), np.zeros((0, 1)))])
    expect = 0 if kind == "one-sample" else 2  # missing roles are a refused input
    # Not quiet: the progress bar runs (it crashed on a file without a duration).
    assert main(["replay", str(path), "--no-model"]) == expect
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(path), "--out", str(out)]) == 2
    assert not (out / "meta.json").exists()  # nothing claims to be a dataset
    assert main(["info", str(path)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out


def test_progress_text_without_a_total():
    class Task:
        completed, total = 3.0, None

    assert _seconds_text(Task()) == "3 s of data"
    Task.total = 10.0
    assert _seconds_text(Task()) == "3/10 s of data"


# --------------------------------------------------------------------------- outputs


def test_dataset_build_that_crashes_leaves_nothing_complete(sim_file, tmp_path, monkeypatch):
    from models.dataset import DatasetWriter

    _, path = sim_file
    calls = []
    real_add = DatasetWriter.add

    def add_then_fail(self, trial, *truth):
        calls.append(trial.trial_id)
        if len(calls) > 1:
            raise RuntimeError("disk gone")
        return real_add(self, trial, *truth)

    monkeypatch.setattr(DatasetWriter, "add", add_then_fail)
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="disk gone"):
        main(["dataset", "build", str(path), "--out", str(out), "--quiet"])
    meta = out / "meta.json"
    assert not meta.exists() or json.loads(meta.read_text())["complete"] is False


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_write(target) as fh:
        fh.write("half")
        raise ValueError("stop")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_marker_flood_is_in_the_summary(tmp_path, uid, capsys):
    spec, ts, vals = gaze_only(tmp_path, seconds=40.0, uid=uid)
    codes = StreamSpec("Presentation", "Markers", 1, 10.0, "int32", f"pr-{uid}", ("code",))
    tm = 105.0 + np.arange(100) / 10.0  # one code every 0.1 s for 10 s
    path = tmp_path / "flood.xdf"
    write_streams(path, [(spec, ts, vals), (codes, tm, np.full((100, 1), 3, np.int32))])
    assert main(["replay", str(path), "--no-model", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["aligner"]["dropped"]["onset_too_close"] > 50
    assert "onset too close" in summary["marker_problems"]
    assert main(["replay", str(path), "--no-model", "--quiet"]) == 0
    assert "markers: " in capsys.readouterr().out


def test_realtime_outcome_says_where_it_stopped():
    assert realtime_outcome(1, None, 19.0) == "replay finished after 1 complete pass(es)"
    line = realtime_outcome(0, 12.04, 19.0)
    assert line == "replay stopped after 12.0 s of 19.0 s: no complete pass"
    assert "complete pass(es) and 3.0 s of 19.0 s" in realtime_outcome(2, 3.0, 19.0)


# --------------------------------------------------------------------------- stamps as live


def test_offline_stamps_are_not_dejittered_unless_asked(tmp_path, uid):
    """A 3-s dropout in a 60 Hz stream: without --dejitter the stamps are the recorded ones;
    pyxdf's fit would move them (by up to ~1.5 s)."""
    spec, ts, vals = gaze_only(tmp_path, seconds=60.0, uid=uid)
    keep = (ts < 120.0) | (ts >= 123.0)
    ts, vals = ts[keep], vals[keep]
    path = tmp_path / "dropout.xdf"
    write_streams(path, [(spec, ts, vals), (MARK, np.array([130.0]), np.array([["x"]], object))])
    raw = XdfSource(path).xdf_streams[0].timestamps
    assert np.array_equal(raw, ts)
    smooth = XdfSource(path, dejitter=True).xdf_streams[0].timestamps
    assert np.max(np.abs(smooth - ts)) > 0.5


def test_refusals_exit_2_in_every_command(tmp_path, capsys):
    missing = tmp_path / "none.xdf"
    not_xdf = tmp_path / "bad.xdf"
    not_xdf.write_bytes(b"RIFF0000")
    for f in (missing, not_xdf):
        assert main(["info", str(f)]) == 2
        assert main(["replay", str(f)]) == 2
        assert main(["dataset", "build", str(f), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err.count(f"emoeye: error: {missing} does not exist") == 2
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    assert main(["evaluate", "--data", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"emoeye: error: {tmp_path / 'nope'} is not a dataset (no meta.json)"] * 2


@pytest.mark.lsl
@pytest.mark.timeout(90)
def test_realtime_replay_stopped_early_is_not_a_complete_pass(sim_file):
    """SIGTERM 3 s into a 22-s real-time replay: the last line says where it stopped."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _, path = sim_file
    cmd = [sys.executable, "-m", "emoeye", "replay", str(path), "--realtime"]
    proc = subprocess.Popen(
        cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith("replaying over LSL"):
                break
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    last = rest.strip().splitlines()[-1]
    assert last.startswith("replay stopped after ") and last.endswith(": no complete pass"), last
    played = float(last.split()[3])
    assert 1.0 < played < 15.0, last


def test_pyxdf_log_and_python_warnings_fold_into_the_files_warnings():
    import logging
    import warnings

    from acquisition.xdf.source import folded_warnings

    with folded_warnings() as got:
        logging.getLogger("pyxdf.pyxdf").warning("Stream %d: clock offsets odd", 3)
        logging.getLogger("pyxdf.pyxdf").info("not a warning")
        warnings.warn("divide by zero", RuntimeWarning, stacklevel=1)
        warnings.warn("divide by zero", RuntimeWarning, stacklevel=1)
    assert got == [
        "pyxdf: Stream 3: clock offsets odd",
        "while reading: RuntimeWarning: divide by zero",
    ]
    assert not logging.getLogger("pyxdf").handlers  # the handler is gone again


def test_info_names_the_clock_of_unix_epoch_streams(tmp_path, capsys):
    gaze = StreamSpec("Gaze", "Gaze", 3, 100.0, "float32", "gz-1", ("x", "y", "p"))
    gsr = StreamSpec("E4_Gsr", "GSR", 1, 4.0, "float32", "e4-1", ("gsr",))
    path = tmp_path / "e4.xdf"
    t_unix = 1.7e9 + np.arange(40) / 4
    write_streams(
        path,
        [(gaze, 1000 + np.arange(400) / 100, np.zeros((400, 3))), (gsr, t_unix, np.ones((40, 1)))],
    )
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    g, e4 = info["streams"]
    assert (g["clock"], g["mapped_to_lsl"]) == ("LSL", False)
    assert (e4["clock"], e4["mapped_to_lsl"]) == ("Unix epoch", True)
    assert e4["first_stamp"] < 1e6 and not info["foreign_clock"]  # mapped, not foreign
    assert info["roles"] == {"gsr": 2}
    assert "gaze" in info["missing"] and "preset" in info["missing"]["gaze"]


def test_info_judges_the_first_seconds_of_each_bound_stream(tmp_path, capsys):
    """A GSR channel that holds raw ADC counts binds by its type but is named as suspect."""
    gsr = StreamSpec("Lab EDA", "GSR", 1, 32.0, "float32", "gsr-raw", ("gsr",))
    t = 10 + np.arange(320) / 32
    path = tmp_path / "counts.xdf"
    write_streams(
        path,
        [(gsr, t, np.full((320, 1), 31000.0)), (MARK, np.array([12.0]), np.array([["onset:a"]]))],
    )
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.splitlines()[0])
    assert info["plausibility"]["gsr"]["verdict"] == "suspect"
    assert info["plausibility"]["markers"]["verdict"] == "ok"
    assert any("first seconds: SUSPECT" in line for line in info["binding"])
