"""``emoeye export bids``: simulated sessions exported and checked by the official validator."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import record_simulation
from emoeye.bids import uniform, validate, validator_available
from emoeye.cli import main

needs_validator = pytest.mark.skipif(
    validator_available() is None,
    reason="the official BIDS validator is not installed (pip install bids-validator-deno)",
)


def _record(path: Path, uid: str, **kw) -> Path:
    base = dict(n_trials=3, isi=7.0, lead_in=1.5, seed=3, participants=1, source_tag=uid)
    record_simulation(Simulation(SimulationConfig(**{**base, **kw})), path, progress=False)
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> dict[str, Path]:
    """Three recordings: the Gazepoint set, the lab set (1200 Hz gaze, GSR, PPG, ECG, RR) and
    one with eye tracking and markers only."""
    d = tmp_path_factory.mktemp("xdf")
    return {
        "gazepoint": _record(d / "gp.xdf", "gp"),
        "lab": _record(d / "lab.xdf", "lab", device_set="lab"),
        "eyes_only": _record(d / "eyes.xdf", "eyes", presets=("tobii", "psychopy")),
    }


def _read_tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.timeout(300)
@needs_validator
def test_simulated_sessions_pass_the_official_validator(sessions, tmp_path, capsys):
    out = tmp_path / "ds"
    files = [sessions["gazepoint"], sessions["lab"], sessions["eyes_only"]]
    code = main(["export", "bids", *map(str, files), "--out", str(out), "--task", "emotion",
                 "--sessions", "1", "2", "3", "--validate"])  # fmt: skip
    text = capsys.readouterr().out
    assert "0 error(s)" in text, text
    assert code == 0
    # An independent run of the validator agrees.
    report = validate(out)
    assert report["errors"] == []
    beh = out / "sub-P01" / "ses-2" / "beh"
    names = sorted(p.name for p in beh.iterdir())
    for label in ("eye1", "eye2", "gsr", "ecg", "ppg", "hr"):
        assert f"sub-P01_ses-2_task-emotion_recording-{label}_physio.tsv.gz" in names
        assert f"sub-P01_ses-2_task-emotion_recording-{label}_physio.json" in names
    side = json.loads((beh / "sub-P01_ses-2_task-emotion_recording-eye1_physio.json").read_text())
    assert side["PhysioType"] == "eyetrack" and side["RecordedEye"] == "left"
    assert side["SamplingFrequency"] == 1200.0
    assert side["Columns"][:3] == ["timestamp", "x_coordinate", "y_coordinate"]
    # The events: one row per trial, rating and prediction, pictures under stimuli/.
    rows = _read_tsv(beh / "sub-P01_ses-2_task-emotion_events.tsv")
    assert len(rows) == 3
    for row in rows:
        assert float(row["duration"]) == 5.0
        assert row["rated_arousal"] != "n/a" and row["pred_arousal"] != "n/a"
        assert 1.0 <= float(row["pred_valence"]) <= 7.0
        assert row["flagged"] in ("0", "1") and row["status"] == "predicted"
        assert (out / "stimuli" / row["stim_file"]).is_file()
    participants = _read_tsv(out / "participants.tsv")
    assert participants == [{"participant_id": "sub-P01", "sessions": "1,2,3"}]


@pytest.mark.timeout(120)
def test_missing_roles_export_what_there_is_and_say_so(sessions, tmp_path, capsys):
    out = tmp_path / "ds"
    code = main(["export", "bids", str(sessions["eyes_only"]), "--out", str(out),
                 "--task", "emotion", "--no-model"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "missing: gsr, hr" in text
    beh = out / "sub-P01" / "beh"
    names = sorted(p.name for p in beh.iterdir())
    assert [n for n in names if "physio.tsv" in n] == [
        "sub-P01_task-emotion_recording-eye1_physio.tsv.gz",
        "sub-P01_task-emotion_recording-eye2_physio.tsv.gz",
    ]
    prov = json.loads((out / "sourcedata" / "emoeye" / "sub-P01.json").read_text())
    assert prov["missing"] == ["gsr", "hr"]


@pytest.mark.timeout(120)
def test_invalid_participant_id_is_refused_naming_it(sessions, tmp_path, capsys):
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"file,participant\n{sessions['gazepoint'].name},P_01\n")
    out = tmp_path / "ds"
    code = main(["export", "bids", str(sessions["gazepoint"]), "--out", str(out),
                 "--task", "emotion", "--participants", str(mapping)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'P_01'" in err[0] and "not a valid BIDS label" in err[0]
    assert not out.exists()  # refused before anything was written


@pytest.mark.timeout(120)
def test_map_renames_and_export_is_byte_identical(sessions, tmp_path, capsys):
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"file,participant,session\n{sessions['gazepoint'].name},s7,a\n")
    dumps = []
    for k in range(2):
        out = tmp_path / f"ds{k}"
        assert main(["export", "bids", str(sessions["gazepoint"]), "--out", str(out),
                     "--task", "emotion", "--participants", str(mapping), "--no-model",
                     "--screen-resolution", "1920,1080", "--screen-size", "0.53,0.3",
                     "--screen-distance", "0.65"]) == 0  # fmt: skip
        dumps.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
                      if p.is_file() and "sourcedata" not in p.parts})  # fmt: skip
    assert dumps[0] == dumps[1]
    assert "sub-s7/ses-a/beh/sub-s7_ses-a_task-emotion_events.tsv" in dumps[0]
    eye = "sub-s7/ses-a/beh/sub-s7_ses-a_task-emotion_recording-eye1_physio"
    side = json.loads(dumps[0][eye + ".json"])
    assert side["SampleCoordinateSystem"] == "gaze-on-screen"
    assert side["x_coordinate"]["Units"] == "pixel"
    data = np.loadtxt(gzip.decompress(dumps[0][eye + ".tsv.gz"]).decode().replace("n/a", "nan")
                      .splitlines())  # fmt: skip
    x = data[:, 1][np.isfinite(data[:, 1])]
    assert 200 < np.median(x) < 1720  # pixels of a 1920-wide screen, not fractions
    events = json.loads(dumps[0]["sub-s7/ses-a/beh/sub-s7_ses-a_task-emotion_events.json"])
    pres = events["StimulusPresentation"]
    assert pres["ScreenResolution"] == [1920, 1080] and pres["ScreenDistance"] == 0.65


def test_two_recordings_of_one_subject_need_sessions(sessions, tmp_path, capsys):
    code = main(["export", "bids", str(sessions["gazepoint"]), str(sessions["eyes_only"]),
                 "--out", str(tmp_path / "ds"), "--task", "emotion", "--no-model"])  # fmt: skip
    assert code == 2
    assert "sub-P01" in capsys.readouterr().err


def test_uniform_leaves_dropouts_as_gaps():
    ts = np.r_[np.arange(0, 1, 0.01), np.arange(2, 3, 0.01)]  # a 1-s dropout
    grid, vals = uniform(ts, np.sin(ts)[:, None], 100.0)
    assert np.allclose(np.diff(grid), 0.01)
    inside = (grid > 1.05) & (grid < 1.95)
    assert np.isnan(vals[inside, 0]).all()
    assert np.allclose(vals[~np.isnan(vals[:, 0]), 0], np.sin(grid[~np.isnan(vals[:, 0])]),
                       atol=1e-3)  # fmt: skip


@pytest.mark.timeout(180)
def test_shared_recording_becomes_one_subject_per_participant(tmp_path, uid, capsys):
    rec = _record(tmp_path / "two.xdf", uid, participants=2)
    out = tmp_path / "ds"
    assert main(["export", "bids", str(rec), "--out", str(out), "--task", "emotion",
                 "--no-model"]) == 0  # fmt: skip
    assert [r["participant_id"] for r in _read_tsv(out / "participants.tsv")] == [
        "sub-P01",
        "sub-P02",
    ]
    first = _read_tsv(out / "sub-P01" / "beh" / "sub-P01_task-emotion_events.tsv")
    second = _read_tsv(out / "sub-P02" / "beh" / "sub-P02_task-emotion_events.tsv")
    assert len(first) == len(second) == 3
    assert {r["trial_id"] for r in first}.isdisjoint(r["trial_id"] for r in second)
    # Each participant's time starts at their own part (P01's at the first sample, P02's at
    # the schedule's start): the simulated onsets fall at the same offsets.
    a = [float(r["onset"]) for r in first]
    b = [float(r["onset"]) for r in second]
    assert np.allclose(a, b, atol=0.05)
    eye = out / "sub-P02" / "beh" / "sub-P02_task-emotion_recording-eye1_physio.tsv.gz"
    text = gzip.decompress(eye.read_bytes()).decode()
    t = np.loadtxt(text.replace("n/a", "nan").splitlines())[:, 0]
    assert 0 <= t[0] < 0.1 and t[-1] < 25.0  # P02's part only
    # A map cannot put the whole shared recording under one id.
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,participant\ntwo.xdf,X1\n")
    code = main(["export", "bids", str(rec), "--out", str(tmp_path / "ds2"), "--task", "emotion",
                 "--participants", str(mapping), "--no-model"])  # fmt: skip
    assert code == 2
    assert "holds 2 participants (P01, P02)" in capsys.readouterr().err
