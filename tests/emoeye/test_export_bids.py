"""``emoeye export bids``: simulated sessions exported and checked by the official validator."""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from acquisition.lsl.presets import RoleReading
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.sim.video import VideoModel, VideoSimulation
from acquisition.streams import StreamSpec
from acquisition.xdf.writer import record_simulation
from emoeye.bids import _face_file, eeg_data, uniform, validate, validator_available
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
    """Five recordings: the Gazepoint set, the lab set (1200 Hz gaze, GSR, PPG, ECG, RR), one
    with eye tracking and markers only, the full set (lab + 32-channel EEG + OpenFace action
    units) and a video session on the full set with its continuous rating stream."""
    d = tmp_path_factory.mktemp("xdf")
    video = VideoSimulation(
        SimulationConfig(n_trials=1, lead_in=1.5, seed=4, participants=1, source_tag="video",
                         device_set="full"),
        VideoModel(clip_seconds=15),
    )  # fmt: skip
    record_simulation(video, d / "video.xdf", progress=False)
    return {
        "gazepoint": _record(d / "gp.xdf", "gp"),
        "lab": _record(d / "lab.xdf", "lab", device_set="lab"),
        "eyes_only": _record(d / "eyes.xdf", "eyes", presets=("tobii", "psychopy")),
        # The EEG starts a second after the other streams (its events must count from it).
        "full": _record(
            d / "full.xdf", "full", device_set="full", dropouts=(("eeg-32", 0.0, 1.0),)
        ),
        "video": d / "video.xdf",
    }


def _read_tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.timeout(300)
@needs_validator
def test_simulated_sessions_pass_the_official_validator(sessions, tmp_path, capsys):
    out = tmp_path / "ds"
    files = [sessions[k] for k in ("gazepoint", "lab", "eyes_only", "full", "video")]
    code = main(["export", "bids", *map(str, files), "--out", str(out), "--task", "emotion",
                 "--sessions", "1", "2", "3", "4", "5", "--validate"])  # fmt: skip
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
    assert participants == [{"participant_id": "sub-P01", "sessions": "1,2,3,4,5"}]
    # The extra modalities were part of what the validator passed.
    for ses in ("4", "5"):
        stem = out / "sub-P01" / f"ses-{ses}"
        assert (stem / "eeg" / f"sub-P01_ses-{ses}_task-emotion_eeg.vhdr").is_file()
        assert (
            stem / "beh" / f"sub-P01_ses-{ses}_task-emotion_recording-face_physio.tsv.gz"
        ).is_file()
    rating = (
        out / "sub-P01" / "ses-5" / "beh" / "sub-P01_ses-5_task-emotion_recording-rating_physio"
    )
    assert rating.with_suffix(".tsv.gz").is_file()


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


def _read_brainvision(vhdr: Path) -> tuple[dict, list[tuple[str, float, str]], np.ndarray]:
    """A BrainVision file read without pybv: the header's [Common Infos], (name, resolution,
    unit) per channel, and the (channels, samples) data in each channel's unit."""
    common, channels, section = {}, [], None
    for line in vhdr.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith(";") and "=" in line:
            key, value = line.split("=", 1)
            if section == "[Channel Infos]":
                name, _ref, res, unit = value.split(",")[:4]
                channels.append((name, float(res), unit))
            else:
                common[key] = value
    assert common["DataFormat"] == "BINARY" and common["BinaryFormat"] == "IEEE_FLOAT_32"
    assert common["DataOrientation"] == "MULTIPLEXED"
    raw = np.fromfile(vhdr.parent / common["DataFile"], dtype="<f4")
    data = raw.reshape(-1, int(common["NumberOfChannels"])).T.astype(np.float64)
    return common, channels, data * np.array([r for _, r, _ in channels])[:, None]


def _physio(path: Path) -> np.ndarray:
    text = gzip.decompress(path.read_bytes()).decode().replace("n/a", "nan")
    return np.loadtxt(text.splitlines(), ndmin=2)


@pytest.mark.timeout(180)
def test_eeg_face_and_rating_are_exported_and_read_back(sessions, tmp_path, capsys):
    import pyxdf

    out = tmp_path / "ds"
    assert main(["export", "bids", str(sessions["full"]), str(sessions["video"]), "--out",
                 str(out), "--task", "emotion", "--sessions", "a", "b", "--no-model",
                 "--power-line-frequency", "50", "--eeg-reference", "Cz"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "missing:" not in text and "not exported" not in text, text
    streams, _ = pyxdf.load_xdf(str(sessions["full"]), dejitter_timestamps=False)
    by_type = {s["info"]["type"][0]: s for s in streams}
    eeg_stream = by_type["EEG"]
    labels = [c["label"][0] for c in eeg_stream["info"]["desc"][0]["channels"][0]["channel"]]

    # EEG: BrainVision beside its sidecar, channels and events; the samples read back are the
    # stream's within float32 rounding.
    eeg = out / "sub-P01" / "ses-a" / "eeg"
    stem = "sub-P01_ses-a_task-emotion"
    common, channels, data = _read_brainvision(eeg / f"{stem}_eeg.vhdr")
    assert [c[0] for c in channels] == labels and len(labels) == 32
    assert {c[2] for c in channels} == {"µV"}
    assert float(common["SamplingInterval"]) == pytest.approx(4000.0)  # 250 Hz in µs
    expected = np.asarray(eeg_stream["time_series"], np.float64).T
    assert data.shape == expected.shape
    np.testing.assert_allclose(data, expected, rtol=1e-6, atol=1e-6)
    side = json.loads((eeg / f"{stem}_eeg.json").read_text())
    assert side["SamplingFrequency"] == 250.0 and side["EEGChannelCount"] == 32
    assert side["PowerLineFrequency"] == 50 and side["EEGReference"] == "Cz"
    assert side["SoftwareFilters"] == "n/a"
    assert side["RecordingDuration"] == pytest.approx(expected.shape[1] / 250.0)
    chans = _read_tsv(eeg / f"{stem}_channels.tsv")
    assert [c["name"] for c in chans] == labels
    assert {(c["type"], c["units"]) for c in chans} == {("EEG", "µV")}
    # EEG events count from the EEG file's first sample: onset + its time = the marker's time.
    markers = by_type["Markers"]
    onset_t = {
        str(v[0]).split(":", 1)[1]: t
        for v, t in zip(markers["time_series"], markers["time_stamps"], strict=True)
        if str(v[0]).startswith("onset:")
    }
    rows = _read_tsv(eeg / f"{stem}_events.tsv")
    beh_rows = _read_tsv(out / "sub-P01" / "ses-a" / "beh" / f"{stem}_events.tsv")
    assert len(rows) == len(beh_rows) == 3
    for row, beh_row in zip(rows, beh_rows, strict=True):
        t = float(row["onset"]) + eeg_stream["time_stamps"][0]
        assert t == pytest.approx(onset_t[row["stimulus_id"]], abs=0.01)
        assert float(beh_row["onset"]) - float(row["onset"]) == pytest.approx(1.0, abs=0.02)
    # ... and each is a Stimulus marker in the .vmrk, at its sample (1-based), a trial long.
    vmrk = (eeg / f"{stem}_eeg.vmrk").read_text(encoding="utf-8")
    marks = [ln.split("=", 1)[1].split(",") for ln in vmrk.splitlines() if ln.startswith("Mk")]
    stimuli = [m for m in marks if m[0] == "Stimulus"]
    assert [m[1] for m in stimuli] == ["S  1"] * len(rows)
    for m, row in zip(stimuli, rows, strict=True):
        assert int(m[2]) == round(float(row["onset"]) * 250.0) + 1
        assert int(m[3]) == round(float(row["duration"]) * 250.0)

    # Face action units: each AU and the confidence, AUs n/a where tracking failed.
    beh = out / "sub-P01" / "ses-a" / "beh"
    face_side = json.loads((beh / f"{stem}_recording-face_physio.json").read_text())
    assert face_side["Columns"][:2] == ["AU01", "AU02"] and face_side["Columns"][-1] == "confidence"
    assert len(face_side["Columns"]) == 18 and face_side["SamplingFrequency"] == 30.0
    assert face_side["AU12"]["Units"] == "arbitrary"
    face = _physio(beh / f"{stem}_recording-face_physio.tsv.gz")
    assert face.shape[1] == 18
    au = next(s for s in streams if s["info"]["type"][0] == "FacialAU")["time_series"]
    n = min(len(face), len(au)) - 1
    np.testing.assert_allclose(face[:n, :17], au[:n, :17], atol=0.02)  # AU01_r.. AU45_r
    np.testing.assert_allclose(face[:n, 17], au[:n, 17], atol=0.02)  # confidence

    # The continuous rating (video session): both axes at the stream's 20 Hz.
    beh_b = out / "sub-P01" / "ses-b" / "beh"
    rating_side = json.loads(
        (beh_b / "sub-P01_ses-b_task-emotion_recording-rating_physio.json").read_text()
    )
    assert rating_side["Columns"] == ["arousal", "valence"]
    assert rating_side["SamplingFrequency"] == 20.0
    rating = _physio(beh_b / "sub-P01_ses-b_task-emotion_recording-rating_physio.tsv.gz")
    vstreams, _ = pyxdf.load_xdf(str(sessions["video"]), dejitter_timestamps=False)
    ann = next(s for s in vstreams if s["info"]["type"][0] == "Annotation")["time_series"]
    n = min(len(rating), len(ann)) - 1
    np.testing.assert_allclose(rating[:n], ann[:n], atol=0.02)


@pytest.mark.timeout(120)
def test_without_pybv_everything_else_is_exported(sessions, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pybv", None)  # import pybv now raises ImportError
    out = tmp_path / "ds"
    assert main(["export", "bids", str(sessions["full"]), "--out", str(out),
                 "--task", "emotion", "--no-model"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert text.count("EEG not exported: pip install pybv") == 1, text
    assert not (out / "sub-P01" / "eeg").exists()
    names = {p.name for p in (out / "sub-P01" / "beh").iterdir()}
    for label in ("eye1", "eye2", "gsr", "ecg", "ppg", "hr", "face"):
        assert f"sub-P01_task-emotion_recording-{label}_physio.tsv.gz" in names
    assert len(_read_tsv(out / "sub-P01" / "beh" / "sub-P01_task-emotion_events.tsv")) == 3
    prov = json.loads((out / "sourcedata" / "emoeye" / "sub-P01.json").read_text())
    assert "EEG not exported: pip install pybv" in prov["notes"]


class _Stream:
    """The little of an XDF stream :func:`eeg_data` reads (spec, header, timestamps, values)."""

    def __init__(self, spec: StreamSpec, ts: np.ndarray, values: np.ndarray) -> None:
        self.spec, self.timestamps, self._values = spec, ts, values
        self.header = (
            "<info><desc><channels>"
            + "".join(
                f"<channel><label>{lab}</label><unit>{'mV' if lab == 'F4' else ''}</unit></channel>"
                for lab in spec.channel_labels
            )
            + "</channels></desc></info>"
        )

    def values(self, dtype=None) -> np.ndarray:
        return self._values.astype(dtype or np.float64)


def test_eeg_labels_fall_back_and_irregular_streams_are_resampled():
    # An irregular 4-channel amplifier bound by a config rule: two unlabelled electrodes read
    # as F3/F4 (F4 declared in mV), an AUX channel and a repeat of its label.
    spec = StreamSpec("Amp", "EEG", 4, 0.0, channel_labels=("", "F4", "AUX", "aux"))
    rng = np.random.default_rng(1)
    ts = np.arange(400) / 200.0 + rng.uniform(0, 2e-3, 400)  # 200 Hz, jittered: no gaps
    values = rng.normal(size=(400, 4))
    reading = RoleReading("eeg", "eeg", {"F3": 0, "F4": 1})
    eeg = eeg_data(_Stream(spec, ts, values), reading)
    assert eeg.names == ["F3", "F4", "AUX", "EEG4"]
    assert eeg.types == ["EEG", "EEG", "MISC", "MISC"]
    assert eeg.units == ["µV", "µV", "n/a", "n/a"]
    assert any("EEG4" in n and "no usable label" in n for n in eeg.notes)
    assert any("resampled" in n for n in eeg.notes)
    assert eeg.rate == pytest.approx(200.0, rel=0.2)
    grid = eeg.start + np.arange(eeg.data.shape[1]) / eeg.rate
    np.testing.assert_allclose(eeg.data[0], np.interp(grid, ts, values[:, 0]), atol=1e-9)
    np.testing.assert_allclose(eeg.data[1], 1e3 * np.interp(grid, ts, values[:, 1]), atol=1e-6)


def test_face_units_are_blank_where_tracking_failed():
    labels = ("AU06_r", "AU12_r", "confidence", "success")
    spec = StreamSpec("OpenFace", "FacialAU", 4, 30.0, channel_labels=labels)
    ts = np.arange(60) / 30.0
    values = np.column_stack([np.full(60, 1.5), np.full(60, 2.5), np.full(60, 0.9), np.ones(60)])
    values[20:30, 3] = 0.0  # success 0: lost
    values[40:45, 2] = 0.1  # confidence under the threshold
    reading = RoleReading(
        "face", "face", {"AU06": "AU06_r", "AU12": "AU12_r", "confidence": "confidence",
                         "success": "success"}, {"valid_threshold": 0.5}
    )  # fmt: skip
    [(label, data, _fmt, side)] = _face_file(_Stream(spec, ts, values), reading, 0.0)
    assert label == "face" and side["Columns"] == ["AU06", "AU12", "confidence"]
    lost = np.zeros(60, bool)
    lost[20:30] = lost[40:45] = True
    assert np.isnan(data[lost, :2]).all()
    assert np.allclose(data[~lost, :2], [1.5, 2.5])
    assert np.allclose(data[:, 2], values[:, 2])


def test_power_line_frequency_is_50_or_60(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "bids", "x.xdf", "--out", "ds", "--task", "t", "--power-line-frequency",
              "55"])  # fmt: skip
    assert exc.value.code == 2
    assert "expected 50 or 60 (Hz), got '55'" in capsys.readouterr().err
