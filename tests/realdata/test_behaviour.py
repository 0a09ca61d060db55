"""Ratings from a PsychoPy-like behavioural CSV merged with real XDF recordings, through
``emoeye dataset build`` as a user runs it, and every way the two can disagree."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from emoeye.cli import main
from tests.realdata.conftest import (
    Recording,
    ratings_of,
    write_behaviour,
    write_recording,
)


def build(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["dataset", "build", *argv, "--quiet"])
    out = capsys.readouterr()
    return rc, (out.out + out.err).strip()


def one_map(tmp_path: Path, rec: Recording, behaviour: Path | None, pid: str = "P01") -> Path:
    m = tmp_path / "participants.csv"
    rows = ["file,participant,session,behaviour", f"{rec.path.name},{pid},1,{behaviour.name if behaviour else ''}"]  # fmt: skip
    m.write_text("\n".join(rows) + "\n")
    return m


def test_ratings_come_from_the_behavioural_file(tmp_path, capsys, recording):
    beh = write_behaviour(tmp_path / "sub01_ses1.csv", recording)
    rc, out = build(
        capsys, str(recording.path), "--out", str(tmp_path / "ds"),
        "--participants", str(one_map(tmp_path, recording, beh)), "--json",
    )  # fmt: skip
    assert rc == 0, out
    report = json.loads(out)
    assert report["written"] == len(recording.onsets) == 4
    got = ratings_of(tmp_path / "ds")
    assert sorted(got) == [f"P01-1-{k}" for k in range(1, 5)]
    assert [got[f"P01-1-{k}"] for k in range(1, 5)] == [
        (float(a), float(v)) for a, v in recording.ratings
    ]
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["source"]["behaviour"] == [str(beh)]
    assert any("4 trial(s) from" in n for n in report["sources"][0]["notes"])


def test_order_column_sorts_rows_and_custom_columns(tmp_path, capsys, recording):
    """Rows written out of order are put back by their trial number; columns are named by
    --behaviour-columns when they are not PsychoPy's."""
    rows = [
        [k + 1, s, a, v]
        for k, (s, (a, v)) in enumerate(
            zip(recording.stimuli, recording.ratings, strict=True)
        )  # fmt: skip
    ][::-1]
    beh = tmp_path / "b.tsv"
    with beh.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["n", "pic", "A", "V"])
        w.writerows(rows)
    rc, out = build(
        capsys, str(recording.path), "--out", str(tmp_path / "ds"),
        "--participant-map", f"{recording.path.name}=P01", "--behaviour", str(beh),
        "--behaviour-columns", "order=n,stimulus=pic,arousal=A,valence=V",
    )  # fmt: skip
    assert rc == 0, out
    got = ratings_of(tmp_path / "ds")
    assert [got[f"P01-{recording.path.stem}-{k}"] for k in range(1, 5)] == [
        (float(a), float(v)) for a, v in recording.ratings
    ]


def _bad_rows(rec: Recording, case: str) -> list[list[object]]:
    rows = [
        [k, f"stimuli/{s}.png", round(12.0 + t - rec.onsets[0], 4), a, v]
        for k, (s, t, (a, v)) in enumerate(
            zip(rec.stimuli, rec.onsets, rec.ratings, strict=True)
        )  # fmt: skip
    ]
    if case == "missing":
        del rows[2]
        for k, r in enumerate(rows):
            r[0] = k
    elif case == "extra":
        rows.append([4, "stimuli/extra.png", 60.0, 3, 3])
    elif case == "swapped":
        rows[1][1], rows[2][1] = rows[2][1], rows[1][1]
    elif case == "late":
        rows[3][2] = rows[3][2] + 2.0
    elif case == "text":
        rows[1][3] = "high"
    elif case == "scale":
        rows[2][4] = 9
    elif case == "repeat":
        rows[3][0] = 1
    return rows


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", r"line 5 \(trial 3, stimulus 'stimuli/.*\.png'\) does not match .*onset 3 shows"),
        ("extra", r"line 7 \(trial 5, stimulus 'stimuli/extra.png'\) has no onset in .*sub01_ses1.xdf \(5 trial rows, 4 onsets\)"),
        ("swapped", r"line 4 \(trial 2, .*\) does not match .*its onset 2 shows"),
        ("late", r"line 6 \(trial 4, .*\): onset 23.00 s after line 3's, but in .* onset 4 comes 21.00 s after onset 1"),
        ("text", r"line 4 \(stimulus .*\): arousal 'high' is not a number"),
        ("scale", r"line 5 \(trial 3, .*\): valence 9 is outside the declared scale 1..7"),
        ("repeat", r"line 6: trial order 1 \(trials.thisN\) repeats line 4"),
    ],
)  # fmt: skip
def test_mismatches_refuse_in_one_line_and_write_nothing(tmp_path, capsys, recording, case, expected):  # fmt: skip
    import re

    beh = write_behaviour(tmp_path / "b.csv", recording, rows=_bad_rows(recording, case))
    out_dir = tmp_path / "ds"
    rc, out = build(
        capsys, str(recording.path), "--out", str(out_dir),
        "--participants", str(one_map(tmp_path, recording, beh)),
    )  # fmt: skip
    assert rc == 2
    assert len(out.splitlines()) == 1, out
    assert re.search(expected, out), out
    assert not (out_dir / "meta.json").exists()


def test_missing_onset_row_is_named(tmp_path, capsys, uid):
    """An onset the data file lacks (the script crashed before writing the last row)."""
    rec = write_recording(tmp_path / "r.xdf", uid)
    rows = [[k, s, a, v] for k, (s, (a, v)) in enumerate(zip(rec.stimuli, rec.ratings, strict=True))][:3]  # fmt: skip
    beh = tmp_path / "b.csv"
    beh.write_text("trials.thisN,stimulus,arousal,valence\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")  # fmt: skip
    rc, out = build(
        capsys, str(rec.path), "--out", str(tmp_path / "ds"),
        "--participant-map", "r.xdf=P01", "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 2
    assert f"onset 4 (stimulus '{rec.stimuli[3]}'" in out and "has no row in" in out, out


def test_empty_rating_cells_leave_trials_unrated(tmp_path, capsys, recording):
    rows = _bad_rows(recording, "none")
    rows[1][3] = ""
    beh = write_behaviour(tmp_path / "b.csv", recording, rows=rows)
    rc, out = build(
        capsys, str(recording.path), "--out", str(tmp_path / "ds"), "--json",
        "--participants", str(one_map(tmp_path, recording, beh)),
    )  # fmt: skip
    assert rc == 0, out
    report = json.loads(out)
    assert report["written"] == 3 and report["unrated"] == 1
    assert "1 row(s) without both ratings" in " ".join(report["sources"][0]["notes"])


def test_missing_rating_column_names_what_was_tried(tmp_path, capsys, recording):
    beh = tmp_path / "b.csv"
    beh.write_text("image,score\nchelsea,3\n")
    rc, out = build(
        capsys, str(recording.path), "--out", str(tmp_path / "ds"),
        "--participant-map", f"{recording.path.name}=P01", "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 2
    assert "has no arousal column (tried arousal, arousal_rating" in out
    assert "--behaviour-columns arousal=COLUMN" in out


def test_in_stream_markers_alone_still_work(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "r.xdf", uid, keep_ratings=True)
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--participant-map", "r.xdf=P09")  # fmt: skip
    assert rc == 0, out
    got = ratings_of(tmp_path / "ds")
    assert [got[f"P09-r-{k}"] for k in range(1, 5)] == [
        (float(a), float(v)) for a, v in rec.ratings
    ]


def test_in_stream_and_file_must_agree(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "r.xdf", uid, keep_ratings=True)
    beh = write_behaviour(tmp_path / "b.csv", rec)
    args = ["--participant-map", "r.xdf=P01", "--behaviour", str(beh)]
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ok"), *args)
    assert rc == 0, out  # the same ratings twice: fine
    rows = _bad_rows(rec, "none")
    rows[2][3] = 7 if rows[2][3] != 7 else 6
    write_behaviour(beh, rec, rows=rows)
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "bad"), *args)
    assert rc == 2
    assert len(out.splitlines()) == 1
    assert f"r.xdf onset 3 (stimulus '{rec.stimuli[2]}'" in out
    assert "its rating marker says arousal" in out and "b.csv line 5" in out
    assert not (tmp_path / "bad" / "meta.json").exists()


def test_behaviour_files_pair_with_recordings(tmp_path, capsys, recording):
    beh = write_behaviour(tmp_path / "b.csv", recording)
    rc, out = build(
        capsys, str(recording.path), str(recording.path), "--out", str(tmp_path / "ds"),
        "--participant-map", f"{recording.path.name}=P01", "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 2
    assert "--behaviour: 1 file(s) for 2 recording(s)" in out


def test_sam_1_to_9_is_binned_not_rounded(tmp_path, capsys, uid):
    """--scale 1 9: the 1..9 ratings land in the documented equal-width bins; a 10 is refused."""
    rec = write_recording(tmp_path / "r.xdf", uid, rating_scale=(1, 9))
    rows = [[k, s, a, v] for k, (s, (a, v)) in enumerate(zip(rec.stimuli, rec.ratings, strict=True))]  # fmt: skip
    sam = [1, 2, 5, 9]
    for r, a in zip(rows, sam, strict=True):
        r[2] = a
    beh = tmp_path / "b.csv"
    beh.write_text("trial,stimulus,arousal,valence\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")  # fmt: skip
    rc, out = build(
        capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--scale", "1", "9",
        "--participant-map", "r.xdf=P01", "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 0, out
    from models.dataset import TrialDataset

    ds = TrialDataset(tmp_path / "ds")
    assert ds.arousal_class.tolist() == [0, 0, 3, 6]  # 1, 2 -> 1; 5 -> 4; 9 -> 7
    scale = ds.arrays([0], ("scale",))["scale"][0].tolist()
    assert scale == [1.0, 9.0]
    rows[1][2] = 10
    beh.write_text("trial,stimulus,arousal,valence\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")  # fmt: skip
    rc, out = build(
        capsys, str(rec.path), "--out", str(tmp_path / "ds2"), "--scale", "1", "9",
        "--participant-map", "r.xdf=P01", "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 2
    assert "line 3 (trial 2" in out and "arousal 10 is outside the declared scale 1..9" in out


def test_in_stream_rating_outside_declared_scale_is_refused(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "r.xdf", uid, keep_ratings=True)  # ratings 1..7
    rc, out = build(
        capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--scale", "1", "5",
        "--participant-map", "r.xdf=P01",
    )  # fmt: skip
    if max(max(r) for r in rec.ratings) <= 5:
        pytest.skip("this seed rated nothing above 5")
    assert rc == 2
    assert "rating marker" in out and "outside the declared scale 1..5" in out


def test_bad_scale_is_refused(tmp_path, capsys, recording):
    rc, out = build(
        capsys, str(recording.path), "--out", str(tmp_path / "ds"), "--scale", "9", "1",
        "--participant-map", f"{recording.path.name}=P01",
    )  # fmt: skip
    assert rc == 2 and "--scale: expected LOW < HIGH, got 9 1" in out


def test_a_quoted_cell_spanning_lines_keeps_line_numbers(tmp_path, capsys, recording):
    """PsychoPy quotes free-text answers, which may hold line breaks: the rows stay whole and
    errors name the line the row starts on."""
    rows = _bad_rows(recording, "none")
    beh = tmp_path / "b.csv"
    lines = ["trials.thisN,image_file,comment,arousal_slider.response,valence_slider.response"]
    for k, r in enumerate(rows):
        comment = '"felt\nodd"' if k == 0 else "ok"
        a = "x" if k == 2 else r[3]
        lines.append(f"{r[0]},{r[1]},{comment},{a},{r[4]}")
    beh.write_text("\n".join(lines) + "\n")
    rc, out = build(
        capsys, str(recording.path), "--out", str(tmp_path / "ds"),
        "--participant-map", f"{recording.path.name}=P01", "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 2
    assert f"{beh} line 5 (stimulus 'stimuli/{recording.stimuli[2]}.png'): arousal 'x'" in out, out
