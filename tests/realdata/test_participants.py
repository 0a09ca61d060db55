"""The participant map is required for real recordings, and a person's sessions stay together."""

from __future__ import annotations

import json

import numpy as np

from emoeye.cli import main
from tests.realdata.conftest import write_behaviour, write_recording


def build(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["dataset", "build", *argv, "--quiet"])
    out = capsys.readouterr()
    return rc, (out.out + out.err).strip()


def test_a_real_recording_without_a_map_is_refused(tmp_path, capsys, uid):
    # Even with a participant in its header: ids of real files are given, never taken.
    rec = write_recording(tmp_path / "P07_day2.xdf", uid, keep_ratings=True, participant="P07")
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ds"))
    assert rc == 2
    assert out.splitlines() == [
        f"emoeye: error: {rec.path} needs a participant map (--participants map.csv with columns "
        "file,participant[,session]); participant ids of real recordings are never guessed "
        "from file names"
    ]
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())


def test_a_recording_missing_from_the_map_is_named(tmp_path, capsys, uid):
    a = write_recording(tmp_path / "a.xdf", uid, keep_ratings=True)
    b = write_recording(tmp_path / "b.xdf", uid, seed=4, keep_ratings=True)
    m = tmp_path / "map.csv"
    m.write_text("file,participant\na.xdf,P01\n")
    rc, out = build(capsys, str(a.path), str(b.path), "--out", str(tmp_path / "ds"), "--participants", str(m))  # fmt: skip
    assert rc == 2
    assert len(out.splitlines()) == 1
    assert f"{b.path} is not in {m}" in out
    assert not (tmp_path / "ds" / "meta.json").exists()


def test_map_errors(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "a.xdf", uid, keep_ratings=True)
    m = tmp_path / "map.csv"
    m.write_text("recording,who\na.xdf,P01\n")
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--participants", str(m))  # fmt: skip
    assert rc == 2 and "needs columns 'file' and 'participant'" in out
    m.write_text("file,participant,session\na.xdf,P01,1\nb.xdf,P01,1\n")
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--participants", str(m))  # fmt: skip
    assert rc == 2 and "b.xdf and a.xdf are both P01 session 1" in out
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--participants", "3")
    assert rc == 2 and "--participants 3: with FILE.xdf it is the participant map" in out
    rc, out = build(capsys, "--simulate", "--participants", "many", "--out", str(tmp_path / "s"))
    assert rc == 2 and "--participants: with --simulate, a number of participants" in out
    rc, out = build(
        capsys, "--simulate", "--participants", "1", "--behaviour", str(m), "--out", str(tmp_path / "s")
    )  # fmt: skip
    assert rc == 2 and "--behaviour is for recordings" in out


def test_two_sessions_of_one_person_stay_on_one_side(tmp_path, capsys, uid):
    """Sessions of P01 (two files, different names) carry one participant id, unique trial
    ids, and every participant split keeps them together."""
    recs = {
        "anna_monday.xdf": ("P01", 1, 3),
        "anna_friday.xdf": ("P01", 2, 4),
        "bob.xdf": ("P02", 1, 5),
        "carl.xdf": ("P03", 1, 6),
    }
    lines = ["file,participant,session,behaviour"]
    paths = []
    for name, (pid, ses, seed) in recs.items():
        rec = write_recording(tmp_path / name, uid, seed=seed)
        beh = write_behaviour(tmp_path / f"{pid}_{ses}.csv", rec)
        lines.append(f"{name},{pid},{ses},{beh.name}")
        paths.append(str(rec.path))
    m = tmp_path / "participants.csv"
    m.write_text("\n".join(lines) + "\n")
    rc, out = build(capsys, *paths, "--out", str(tmp_path / "ds"), "--participants", str(m), "--json")  # fmt: skip
    assert rc == 0, out
    report = json.loads(out)
    assert report["written"] == 16
    from models.dataset import TrialDataset, split_by_participant
    from models.train import split_three_ways

    ds = TrialDataset(tmp_path / "ds")
    assert sorted(set(ds.participants.tolist())) == ["P01", "P02", "P03"]
    assert len(set(ds.trial_ids)) == len(ds) == 16
    assert {t.rsplit("-", 1)[0] for t in ds.trial_ids} == {"P01-1", "P01-2", "P02-1", "P03-1"}
    anna = np.array([t.startswith("P01-") for t in ds.trial_ids])
    for seed in range(6):
        tr, te = split_by_participant(ds.participants, 0.34, seed)
        assert len(te) and not (anna[tr].any() and anna[te].any())
        parts = split_three_ways(ds.participants, 0.34, 0.34, seed)
        assert sum(anna[p].any() for p in parts) == 1  # both sessions in one of the three
    from models.crossval import fold_indices, grouped_folds

    folds = grouped_folds(ds.participants, 3)  # leave one participant out: 3, not 4 files
    assert len(folds) == 3
    for fold in folds:
        sides = fold_indices(ds, fold, "participant", 0.5, 0)
        assert sum(anna[idx].any() for idx in sides.values()) == 1


def test_behaviour_from_the_map_missing_or_given_twice(tmp_path, capsys, uid):
    rec = write_recording(tmp_path / "a.xdf", uid)
    m = tmp_path / "map.csv"
    m.write_text("file,participant,behaviour\na.xdf,P01,beh/a.csv\n")
    rc, out = build(capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--participants", str(m))  # fmt: skip
    assert rc == 2 and out == f"emoeye: error: ratings: {tmp_path / 'beh' / 'a.csv'} does not exist"
    beh = write_behaviour(tmp_path / "b.csv", rec)
    rc, out = build(
        capsys, str(rec.path), "--out", str(tmp_path / "ds"), "--participants", str(m),
        "--behaviour", str(beh),
    )  # fmt: skip
    assert rc == 2 and "a behavioural file from both --behaviour and the participant map" in out
