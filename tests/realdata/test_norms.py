"""Normative picture ratings (OASIS, IAPS, NAPS, plain) through dataset build and the config,
and the scale mapping they share with ratings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acquisition.config import ConfigError, load_config
from acquisition.trials.scale import axis_class, bin_edges, model_axis, rating_class
from acquisition.trials.types import Ratings
from emoeye.cli import main
from models.norms import NormsError, read_norms
from tests.realdata.conftest import write_recording


def test_scale_bins_are_equal_width_and_documented():
    assert [rating_class(v, 1, 7) + 1 for v in range(1, 8)] == list(range(1, 8))
    assert [rating_class(v, 1, 9) + 1 for v in range(1, 10)] == [1, 1, 2, 3, 4, 5, 6, 7, 7]
    assert np.allclose(bin_edges(1, 9), [1, 15 / 7, 23 / 7, 31 / 7, 39 / 7, 47 / 7, 55 / 7, 9])
    # A value on an inner edge goes up; the top edge belongs to the last class.
    assert rating_class(15 / 7, 1, 9) == 1 and rating_class(9, 1, 9) == 6
    assert [rating_class(v, 0, 100) for v in (0, 14.2, 14.3, 50, 100)] == [0, 0, 1, 3, 6]
    assert Ratings(9, 1, 1, 9).classes() == (6, 0)
    # Norm means: the axis position falls in the class a rating of that value would.
    for v in np.linspace(1, 9, 81):
        assert axis_class(model_axis(v, 1, 9)) == rating_class(v, 1, 9)


def test_docs_table_matches_the_code():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    row = "| model class | " + " | ".join(str(k) for k in range(1, 8)) + " |"
    assert row in doc
    edges = bin_edges(1, 9)
    cells = [f"{edges[k]:.2f}–{edges[k + 1]:.2f}" for k in range(7)]
    assert "| 1–9 bin | " + " | ".join(cells) + " |" in doc


def write(path, text):
    path.write_text(text)
    return path


def test_norm_table_formats(tmp_path):
    oasis = read_norms(write(tmp_path / "oasis.csv",
        ",Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean,Arousal_SD,Arousal_N\n"
        "I1,Acorn 1,Object,Pixabay,4.68,0.99,103,2.44,1.69,101\n"))  # fmt: skip
    assert oasis.format == "OASIS" and oasis.scale == (1.0, 7.0)
    assert oasis.get("acorn 1.jpg") == pytest.approx((model_axis(2.44, 1, 7), model_axis(4.68, 1, 7)))  # fmt: skip
    iaps = read_norms(write(tmp_path / "iaps.txt",
        "desc\tIAPS\tvalmn\tvalsd\taromn\tarosd\nSnake\t1050\t3.46\t1.93\t6.87\t1.68\n"))  # fmt: skip
    assert iaps.format == "IAPS" and iaps.scale == (1.0, 9.0)
    assert axis_class(iaps.get("1050")[0]) == rating_class(6.87, 1, 9)
    naps = read_norms(write(tmp_path / "naps.csv",
        "ID;Category;Valence_M;Valence_SD;Arousal_M;Arousal_SD\nAnimals_001_h;animals;7.1;1.2;4.3;2\n"))  # fmt: skip
    assert naps.format == "NAPS" and naps.get("Animals_001_h.jpg") is not None
    plain = tmp_path / "plain.csv"
    write(plain, "id,valence,arousal\nchelsea,60,20\n")
    with pytest.raises(NormsError, match="does not say its rating scale"):
        read_norms(plain)
    assert read_norms(plain, (0, 100)).raw["chelsea"] == (20.0, 60.0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("id,valence,arousal\nchelsea,5,x\n", r"line 2 \('chelsea'\): arousal 'x' is not a number"),
        ("id,valence,arousal\nchelsea,5,12\n", r"line 2 \('chelsea'\): arousal 12 is outside the plain scale 1..9"),  # fmt: skip
        ("id,valence,arousal\nchelsea,5,5\nChelsea.png,4,4\n", r"line 3: id 'Chelsea.png' repeats line 2"),  # fmt: skip
        ("name,pleasure\nchelsea,5\n", r"is no OASIS, IAPS, NAPS or plain"),
    ],
)  # fmt: skip
def test_bad_norm_tables(tmp_path, text, expected):
    with pytest.raises(NormsError, match=expected):
        read_norms(write(tmp_path / "n.csv", text), (1, 9))


def _norms_for(rec, path, skip: str | None = None):
    rows = [f"{s},{3 + i % 3},{2 + i % 5}" for i, s in enumerate(dict.fromkeys(rec.stimuli)) if s != skip]  # fmt: skip
    rows.append("never_shown,5,5")  # the norms may list more pictures than were shown
    return write(path, "id,valence,arousal\n" + "\n".join(rows) + "\n")


def test_build_stores_norms_of_shown_pictures(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "r.xdf", uid, keep_ratings=True)
    norms = _norms_for(rec, tmp_path / "norms.csv")
    rc = main(["dataset", "build", str(rec.path), "--out", str(tmp_path / "ds"), "--json",
               "--participant-map", "r.xdf=P01", "--norms", str(norms), "--norms-scale", "1", "9"])  # fmt: skip
    assert rc == 0
    notes = json.loads(capsys.readouterr().out)["sources"][0]["notes"]
    n = len(set(rec.stimuli))
    assert f"norms: {n} shown picture(s) from {norms} (plain, scale 1..9); 1 of its {n + 1} id(s) not shown in this recording" in notes  # fmt: skip
    from models.dataset import TrialDataset

    ds = TrialDataset(tmp_path / "ds")
    assert set(ds.stimulus_norms) == set(rec.stimuli)  # shown pictures only
    table = read_norms(norms, (1, 9))
    for sid in rec.stimuli:
        assert ds.stimulus_norms[sid] == pytest.approx(table.get(sid))
    k = ds.stimulus_ids.tolist().index(rec.stimuli[0])
    assert ds.norm_arousal[k] == pytest.approx(table.get(rec.stimuli[0])[0])
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["source"]["norms"]["format"] == "plain"


def test_a_shown_picture_without_norms_is_refused(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "r.xdf", uid, keep_ratings=True)
    norms = _norms_for(rec, tmp_path / "norms.csv", skip=rec.stimuli[1])
    rc = main(["dataset", "build", str(rec.path), "--out", str(tmp_path / "ds"), "--quiet",
               "--participant-map", "r.xdf=P01", "--norms", str(norms), "--norms-scale", "1", "9"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err == (
        f"emoeye: error: norms: {norms} has no norms for stimulus {rec.stimuli[1]!r} shown in "
        f"{rec.path}; every shown picture needs a row"
    )
    assert not (tmp_path / "ds" / "meta.json").exists()


def test_config_names_the_norms(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "r.xdf", uid, keep_ratings=True)
    norms = _norms_for(rec, tmp_path / "norms.csv")
    cfg = write(tmp_path / "c.toml", f'[stimuli]\nnorms = "{norms}"\nnorms_scale = [1, 9]\n')
    assert load_config(cfg).stimulus_norms == norms
    rc = main(["dataset", "build", str(rec.path), "--out", str(tmp_path / "ds"), "--quiet",
               "--participant-map", "r.xdf=P01", "--config", str(cfg)])  # fmt: skip
    assert rc == 0, capsys.readouterr()
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert set(meta["stimulus_norms"]) == set(rec.stimuli)
    with pytest.raises(ConfigError, match="stimuli.norm_file': unknown key"):
        load_config(write(tmp_path / "bad.toml", '[stimuli]\nnorm_file = "x.csv"\n'))
    with pytest.raises(ConfigError, match="stimuli.norms_scale"):
        load_config(write(tmp_path / "bad2.toml", "[stimuli]\nnorms_scale = [9, 1]\n"))
