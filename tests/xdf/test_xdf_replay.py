"""Fast replay and dataset building from recordings: the same trials as the simulation itself."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.xdf.source import XdfSource
from emoeye.cli import main
from emoeye.commands.replay import replay_fast


def direct_trials(source) -> list:
    cfg = AcquisitionConfig()
    acq = Acquisition(bind_roles(source.streams, cfg.rules), cfg)
    return [e.trial for e in acq.run_offline(source, 0.5) if isinstance(e, TrialEvent)]


def assert_same_trials(a: list, b: list) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.stimulus_id == y.stimulus_id
        assert abs(x.onset - y.onset) < 1e-9
        assert np.allclose(x.signals, y.signals, atol=1e-5, equal_nan=True)
        assert np.array_equal(x.mask, y.mask)
        assert np.allclose(x.scanpath, y.scanpath, atol=1e-5)
        assert x.quality.complete == y.quality.complete
        assert (x.ratings is None) == (y.ratings is None)
        if x.ratings is not None:
            assert (x.ratings.arousal, x.ratings.valence) == (y.ratings.arousal, y.ratings.valence)


def test_replay_fast_gives_the_simulations_trials(sim_file):
    sim, path = sim_file
    expected = direct_trials(sim)
    got = []
    summary = replay_fast(
        XdfSource(path),
        AcquisitionConfig(),
        use_model=False,
        block_seconds=0.7,
        on_trial=got.append,
    )
    assert summary["trials"] == len(expected) == 6
    assert summary["rated"] == 6 and summary["incomplete"] == 0
    assert_same_trials(expected, got)
    # Block size does not change the result.
    assert_same_trials(expected, direct_trials(XdfSource(path)))


def test_replay_cli_fast_table_and_summary(sim_file, tmp_path, capsys):
    _, path = sim_file
    table = tmp_path / "trials.csv"
    rc = main(["replay", str(path), "--fast", "--no-model", "--out", str(table), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["trials"] == 6 and summary["warnings"] == []
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 6
    assert {r["rated_arousal"] != "" for r in rows} == {True}


def test_replay_cli_reports_damage(sim_file, tmp_path, capsys):
    _, path = sim_file
    data = path.read_bytes()
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert main(["replay", str(cut), "--no-model", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cut off" in out and "no footer" in out
    assert main(["replay", str(tmp_path / "missing.xdf")]) == 2


def test_dataset_build_from_files_and_simulator(tmp_path, uid, capsys):
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.xdf.writer import record_simulation

    # The CLI's --simulate defaults, recorded to a file.
    sim = Simulation(SimulationConfig(participants=2, n_trials=3, seed=3, source_tag=uid))
    path = tmp_path / "session.xdf"
    record_simulation(sim, path, progress=False)
    out = tmp_path / "ds"
    rc = main(["dataset", "build", str(path), "--out", str(out), "--quiet"])
    assert rc == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_trials"] == 6
    assert meta["participants"] == ["P01"] * 3 + ["P02"] * 3  # from the file's schedule
    rc = main(
        [
            "dataset", "build", str(path), "--out", str(out), "--overwrite", "--quiet",
            "--participant-map", f"{path.name}=S7",
        ]
    )  # fmt: skip
    assert rc == 0
    assert json.loads((out / "meta.json").read_text())["participants"] == ["S7"] * 6
    sim_out = tmp_path / "sim"
    rc = main(
        [
            "dataset", "build", "--simulate", "--participants", "2", "--trials", "3",
            "--seed", "3", "--out", str(sim_out), "--json",
        ]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["written"] == 6 and report["unrated"] == 0
    a = np.load(out / "shard-00000.npz")
    b = np.load(sim_out / "shard-00000.npz")
    # Same seed and settings: the recording and the simulator give the same dataset.
    assert np.allclose(a["signals"], b["signals"], atol=1e-5, equal_nan=True)
    assert np.array_equal(a["arousal_class"], b["arousal_class"])
    assert (b["oracle_arousal"] >= 0).all()


def test_dataset_build_skips_unrated_and_files_without_roles(
    make_sim, tmp_path, shared_xdf_dir, capsys
):
    from acquisition.xdf.writer import record_simulation

    sim = make_sim(isi=8.0)  # onsets at 1.5, 9.5, 17.5; ratings 6 s later
    sim.config.dropouts.append(("markers", 15.4, 0.2))  # lose the second rating
    path = tmp_path / "s.xdf"
    record_simulation(sim, path, progress=False)
    out = tmp_path / "ds"
    minimal = shared_xdf_dir / "minimal.xdf"
    rc = main(
        ["dataset", "build", str(path), str(minimal), "--out", str(out), "--json",
         "--participant-map", "minimal.xdf=M1"]
    )  # fmt: skip
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["trials"], report["written"], report["unrated"]) == (3, 2, 1)
    assert "missing role" in report["sources"][1]["error"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_trials"] == 2


def test_replay_fast_with_a_model_predicts_every_trial(sim_file, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet, ModelConfig
    from models.preprocess import NormStats

    torch.manual_seed(0)
    model = EmoEyeNet(ModelConfig(conv_channels=(8, 8), lstm_hidden=16)).eval()
    ckpt = save_checkpoint(tmp_path / "ck", model, NormStats(np.zeros(5), np.ones(5)))
    _, path = sim_file
    table, log = tmp_path / "t.csv", tmp_path / "p.jsonl"
    args = ["replay", str(path), "--checkpoint", str(ckpt), "--out", str(table)]
    assert main([*args, "--log", str(log), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] and summary["trials"] == summary["predictions"] == 6
    rows = list(csv.DictReader(table.open()))
    assert all(1 <= float(r["pred_arousal"]) <= 7 for r in rows)
    assert [r["participant"] for r in rows] == ["P01"] * 3 + ["P02"] * 3
    records = [json.loads(line) for line in log.read_text().splitlines()]
    preds = [r for r in records if r.get("event") == "prediction"]
    assert [p["participant"] for p in preds] == ["P01"] * 3 + ["P02"] * 3


def test_participant_map_forms(tmp_path):
    from emoeye.commands.dataset import _participant_schedule
    from models.sessions import SessionMapError, read_session_map

    inline = read_session_map("a.xdf=P1, dir/b.xdf=P2")
    assert inline.lookup("a.xdf").participant == "P1"
    assert inline.lookup("elsewhere/b.xdf").participant == "P2"  # by file name
    table = tmp_path / "map.csv"
    table.write_text("file,participant\n/data/s1.xdf,S01\n")
    assert read_session_map(str(table)).lookup("/data/s1.xdf").participant == "S01"
    bad = tmp_path / "bad.csv"
    bad.write_text("name,who\nx,y\n")
    with pytest.raises(SessionMapError, match="columns"):
        read_session_map(str(bad))
    with pytest.raises(SessionMapError, match="FILE=PARTICIPANT"):
        read_session_map("a.xdf")
    assert _participant_schedule("P01@0.0;P02@35.5") == [(0.0, "P01"), (35.5, "P02")]
