"""``emoeye features``: one row per onset from real XDF recordings, missing roles, dropouts,
AOIs, predictions, Parquet, and ``emoeye batch features`` byte-identical to the command."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import record_simulation
from emoeye.cli import main


def _record(path: Path, tag: str, **kw) -> Path:
    base = dict(n_trials=3, isi=7.0, lead_in=1.5, seed=5, participants=1, source_tag=tag)
    record_simulation(Simulation(SimulationConfig(**{**base, **kw})), path, progress=False)
    return path


@pytest.fixture(scope="module")
def recs(tmp_path_factory) -> dict[str, Path]:
    """Gazepoint; the lab set with GSR lost over the second trial; eyes only (no GSR, no HR)."""
    d = tmp_path_factory.mktemp("features")
    return {
        "gp": _record(d / "gp.xdf", "xgp"),
        "lab": _record(d / "lab.xdf", "xlab", device_set="lab", dropouts=[("gsr", 8.0, 7.0)]),
        "eyes": _record(d / "eyes.xdf", "xeyes", presets=("tobii", "psychopy")),
    }


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> float:
    return float(text) if text != "" else math.nan


@pytest.mark.timeout(300)
def test_one_row_per_onset_with_quality_ratings_and_dropouts(recs, tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert main(["features", str(recs["gp"]), str(recs["lab"]), "--out", str(out), "--quiet"]) == 0
    rows = _rows(out)
    for name in ("gp", "lab"):
        table = tmp_path / f"{name}-replay.csv"
        assert main(["replay", str(recs[name]), "--fast", "--quiet", "--no-model",
                     "--out", str(table)]) == 0  # fmt: skip
        replayed = _rows(table)
        mine = [r for r in rows if r["file"] == recs[name].name]
        assert [r["trial_id"] for r in mine] == [r["trial_id"] for r in replayed] != []
        for a, b in zip(mine, replayed, strict=True):
            assert _num(a["onset"]) == pytest.approx(float(b["onset"]), abs=1e-6)
            assert _num(a["quality"]) == pytest.approx(float(b["quality"]), abs=1e-3)
            assert _num(a["rated_arousal"]) == _num(b["rated_arousal"])
    lab = [r for r in rows if r["file"] == "lab.xdf"]
    lost = [r for r in lab if 8.0 <= float(r["onset"]) < 15.0]
    assert len(lost) == 1 and lost[0]["status"] == "no_data"
    assert lost[0]["scr_count"] == "" and "gsr" in lost[0]["note"]
    assert lost[0]["fixation_count"] != "" and lost[0]["hr_change"] != ""
    assert all(r["status"] == "ok" and r["scr_amplitude"] != "" for r in lab if r is not lost[0])
    assert {r["wave_kind"] for r in lab} == {"ecg"} and {r["hr_source"] for r in lab} == {
        "hr_intervals"
    }
    assert all(r["pred_status"] == "" and r["pred_arousal"] == "" for r in rows)


@pytest.mark.timeout(300)
def test_missing_roles_leave_their_columns_empty_and_say_so(recs, tmp_path, capsys):
    out = tmp_path / "eyes.csv"
    assert main(["features", str(recs["eyes"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "role gsr has no stream in the recording" in text and "role hr" in text
    rows = _rows(out)
    assert len(rows) == 3
    for r in rows:
        assert r["status"] == "ok" and r["fixation_count"] != "" and r["pupil_dilation"] != ""
        assert r["scr_count"] == r["hr_change"] == r["coverage_gsr"] == r["coverage_hr"] == ""
        assert r["blink_count"] != ""


@pytest.mark.timeout(300)
def test_aoi_columns_and_a_bad_aoi_file(recs, tmp_path, capsys):
    aoi = tmp_path / "aoi.csv"
    aoi.write_text("stimulus_id,name,x0,y0,x1,y1\n*,screen,0,0,1,1\n*,corner,0,0,0.01,0.01\n")
    out = tmp_path / "aoi-f.csv"
    assert main(["features", str(recs["gp"]), "--out", str(out), "--aoi", str(aoi), "--quiet"]) == 0
    for r in _rows(out):
        assert _num(r["aoi_screen_fixations"]) == _num(r["fixation_count"]) > 0
        assert _num(r["aoi_screen_first"]) == _num(r["first_fixation"])
        assert 0 < _num(r["aoi_screen_dwell"]) <= 5.0 and r["aoi_corner_dwell"] == "0"
    aoi.write_text("stimulus_id,name,x0,y0,x1,y1\n*,screen,1,0,0,1\n")
    assert main(["features", str(recs["gp"]), "--out", str(out), "--aoi", str(aoi)]) == 2
    err = capsys.readouterr().err
    assert "needs x0 < x1" in err and len(err.strip().splitlines()) == 1


@pytest.mark.timeout(300)
def test_predictions_fill_their_columns(recs, tmp_path, checkpoint):
    out = tmp_path / "pred.csv"
    assert main(["features", str(recs["gp"]), "--out", str(out), "--quiet",
                 "--checkpoint", str(checkpoint)]) == 0  # fmt: skip
    rows = _rows(out)
    assert len(rows) == 3
    for r in rows:
        assert r["pred_status"] == "predicted" and 1.0 <= float(r["pred_arousal"]) <= 7.0
        assert r["pred_flagged"] in ("0", "1")


def test_parquet_table_equals_the_csv_table(recs, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) not installed")
    from features.table import TEXT_COLUMNS

    files = [str(recs["gp"]), str(recs["lab"])]
    assert main(["features", *files, "--out", str(tmp_path / "f.csv"), "--quiet"]) == 0
    assert main(["features", *files, "--out", str(tmp_path / "f.parquet"), "--quiet"]) == 0
    rows = _rows(tmp_path / "f.csv")
    table = pq.read_table(tmp_path / "f.parquet")
    assert table.column_names == list(rows[0])  # the same columns, in the same order
    data = table.to_pydict()
    assert len(rows) == 6 and len(data["trial_id"]) == 6
    numeric = 0
    for c in table.column_names:
        for k, r in enumerate(rows):
            if c in TEXT_COLUMNS:
                assert data[c][k] == r[c], (c, k)
            elif r[c] == "":
                assert math.isnan(data[c][k]), (c, k)
            else:  # the CSV keeps 6 significant digits (onset: 6 decimals)
                numeric += 1
                assert data[c][k] == pytest.approx(float(r[c]), rel=1e-5, abs=1e-6), (c, k)
    assert numeric > 100  # the comparison saw real figures, not only empty cells


def test_parquet_without_pyarrow_is_refused_naming_the_extra(recs, tmp_path, capsys,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow fails
    out = tmp_path / "f.parquet"
    assert main(["features", str(recs["gp"]), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Parquet needs pyarrow" in err and "emoeye[parquet]" in err
    assert not out.exists()


def test_other_suffixes_and_bad_files_are_refused(recs, tmp_path, capsys):
    assert main(["features", str(recs["gp"]), "--out", str(tmp_path / "f.xlsx")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err
    bad = tmp_path / "bad.xdf"
    bad.write_text("not a recording\n")
    assert main(["features", str(bad), "--out", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err
    assert "not an XDF file" in err and len(err.strip().splitlines()) == 1


@pytest.mark.timeout(600)
def test_batch_features_is_byte_identical_on_processes_and_dask(recs, tmp_path, capsys):
    pytest.importorskip("distributed")
    files = [recs["gp"], recs["lab"]]
    single = tmp_path / "single"
    for f in files:
        assert main(["features", str(f), "--out", str(single / f"{f.stem}.csv"), "--quiet"]) == 0
    for how in (["--jobs", "2"], ["--scheduler", "local:2"]):
        out = tmp_path / how[1].replace(":", "")
        assert (
            main(["batch", "features", *map(str, files), "--out", str(out), "--quiet", *how]) == 0
        )
        assert "2 file(s): 2 done" in capsys.readouterr().out
        for f in files:
            assert (out / f"{f.stem}.csv").read_bytes() == (single / f"{f.stem}.csv").read_bytes()
        manifest = json.loads((out / "batch-manifest.json").read_text())
        assert {Path(r["file"]).name for r in manifest["files"] if r["status"] == "ok"} == {
            "gp.xdf",
            "lab.xdf",
        }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("predict", [False, True])
def test_an_onset_whose_cut_fails_still_gets_its_row(recs, tmp_path, checkpoint, monkeypatch,
                                                     predict):  # fmt: skip
    import acquisition.aligner as aligner_module

    real, calls = aligner_module.cut_trial, [0]

    def cut_trial(*args, **kwargs):  # the second onset's cut raises (a fault, as in tests/faults)
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("injected cut failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(aligner_module, "cut_trial", cut_trial)
    out = tmp_path / "f.csv"
    extra = ["--checkpoint", str(checkpoint)] if predict else []
    assert main(["features", str(recs["gp"]), "--out", str(out), "--quiet", *extra]) == 0
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    failed = rows[1]
    assert "cut failed" in failed["note"] and failed["quality"] == "0"
    assert failed["trial_id"] and failed["stimulus_id"] and failed["onset"]
    assert failed["scr_count"] == failed["fixation_count"] == failed["pupil_dilation"] == ""
    assert rows[0]["rated_arousal"] != "" and rows[2]["rated_arousal"] != ""
    assert "injected cut failure" in failed["note"]
    if predict:
        assert failed["pred_status"] == "not_predicted" and rows[0]["pred_status"] == "predicted"
