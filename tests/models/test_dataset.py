from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from models.dataset import DatasetError, DatasetWriter, TrialDataset, split_by_participant
from models.preprocess import NormStats, normalise_signals


def test_round_trip_across_shards(tmp_path, few_trials) -> None:
    trials, oracle = few_trials
    with DatasetWriter(tmp_path / "ds", shard_size=5, source={"kind": "test"}) as w:
        for t, o in zip(trials, oracle, strict=True):
            assert w.add(t, oracle=tuple(o))
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["complete"] and meta["n_trials"] == 12
    assert [s["n"] for s in meta["shards"]] == [5, 5, 2]
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [
        "meta.json", "shard-00000.npz", "shard-00001.npz", "shard-00002.npz",
    ]  # fmt: skip

    ds = TrialDataset(tmp_path / "ds")
    assert len(ds) == 12 and ds.n_time == 360 and ds.scanpath_size == 64
    assert ds.spec == trials[0].spec
    assert ds.trial_ids == [t.trial_id for t in trials]
    assert list(ds.participants) == [t.participant for t in trials]
    order = [11, 0, 6, 5]  # across shards, out of order
    a = ds.arrays(order, ("signals", "mask", "baseline", "scanpath", "onset"))
    for k, i in enumerate(order):
        np.testing.assert_array_equal(a["signals"][k], trials[i].signals)
        np.testing.assert_array_equal(a["mask"][k], trials[i].mask)
        np.testing.assert_array_equal(a["baseline"][k], trials[i].baseline)
        np.testing.assert_allclose(a["scanpath"][k], trials[i].scanpath, atol=1e-3)  # float16
        assert a["onset"][k] == trials[i].onset
    classes = np.array([t.ratings.classes() for t in trials])
    np.testing.assert_array_equal(ds.arousal_class, classes[:, 0])
    np.testing.assert_array_equal(ds.valence_class, classes[:, 1])
    np.testing.assert_array_equal(ds.oracle_arousal, oracle[:, 0])


def test_items_are_model_inputs(tmp_path, few_trials) -> None:
    trials, _ = few_trials
    with DatasetWriter(tmp_path / "ds") as w:
        for t in trials:
            w.add(t)
    stats = NormStats(np.arange(5.0), np.ones(5) * 2)
    ds = TrialDataset(tmp_path / "ds", stats=stats)
    item = ds[3]
    assert item["timeseries"].dtype == torch.float32 and item["timeseries"].shape == (5, 360)
    np.testing.assert_allclose(
        item["timeseries"].numpy(),
        normalise_signals(trials[3].signals, trials[3].baseline, stats),
        rtol=1e-6,
    )
    assert item["stimulus"].shape == (3, 64, 64)
    assert ds.stimulus_names[int(item["stimulus_index"])] == trials[3].stimulus_id
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    batch = next(iter(loader))
    assert batch["scanpath"].shape == (4, 2, 64, 64)


def test_unrated_trials_skipped_or_flagged(tmp_path, few_trials) -> None:
    trials, _ = few_trials
    unrated = dataclasses.replace(trials[0], ratings=None)
    with DatasetWriter(tmp_path / "a") as w:
        assert not w.add(unrated)
        assert w.add(trials[1])
    assert json.loads((tmp_path / "a" / "meta.json").read_text())["skipped_unrated"] == 1
    with DatasetWriter(tmp_path / "b", keep_unrated=True) as w:
        w.add(unrated)
        w.add(trials[1])
    ds = TrialDataset(tmp_path / "b")
    assert ds.arousal_class[0] == -1
    np.testing.assert_array_equal(ds.labelled(), [1])


def test_writer_refuses_mixed_specs_and_existing_dirs(tmp_path, few_trials) -> None:
    trials, _ = few_trials
    short = dataclasses.replace(trials[1], signals=trials[1].signals[:, :300])
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(trials[0])
        with pytest.raises(ValueError, match="one trial spec"):
            w.add(short)
    with pytest.raises(FileExistsError):
        DatasetWriter(tmp_path / "ds")
    DatasetWriter(tmp_path / "ds", overwrite=True).close()
    assert len(TrialDataset(tmp_path / "ds")) == 0


def test_object_arrays_are_refused(tmp_path, few_trials) -> None:
    trials, _ = few_trials
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(trials[0])
    shard = tmp_path / "ds" / "shard-00000.npz"
    with np.load(shard) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["signals"] = np.array([object()] * 1, dtype=object)
    np.savez(shard, **arrays)
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        TrialDataset(tmp_path / "ds")


def test_missing_shard_is_reported(tmp_path, few_trials) -> None:
    trials, _ = few_trials
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(trials[0])
    (tmp_path / "ds" / "shard-00000.npz").unlink()
    with pytest.raises(DatasetError, match="missing"):
        TrialDataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="no meta.json"):
        TrialDataset(tmp_path)


def test_split_by_participant_is_disjoint_and_seeded() -> None:
    parts = np.repeat([f"P{i}" for i in range(10)], 7)
    tr, te = split_by_participant(parts, 0.3, seed=4)
    assert len(tr) + len(te) == len(parts)
    assert set(parts[tr]).isdisjoint(parts[te])
    assert len(set(parts[te])) == 3
    tr2, te2 = split_by_participant(parts, 0.3, seed=4)
    np.testing.assert_array_equal(te, te2)
    assert len(split_by_participant(parts[:14], 0.01)[1]) == 7  # at least one participant
    with pytest.raises(ValueError, match="at least 2 participants"):
        split_by_participant(["P1"] * 5, 0.2)


def test_trials_without_usable_data_never_enter_the_arrays(tmp_path, few_trials) -> None:
    from acquisition.trials.types import TrialError

    trials, _ = few_trials
    empty = dataclasses.replace(trials[0])
    empty.quality = dataclasses.replace(
        trials[0].quality, unusable=["gaze: usable data 0.00 < min_coverage 0.5"]
    )
    failed = TrialError.from_exception(KeyError("hr"), "cut", "P9-4", 33.0, "moon", "P9")
    with DatasetWriter(tmp_path / "ds") as w:
        assert not w.add(empty)
        assert w.add(trials[1])
        w.skip(failed, "failed")
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["n_trials"] == 1 and meta["trial_ids"] == [trials[1].trial_id]
    assert (meta["skipped_no_data"], meta["skipped_failed"], meta["skipped_unrated"]) == (1, 1, 0)
    assert [r["kind"] for r in meta["skipped"]] == ["no_data", "failed"]
    assert (
        meta["skipped"][0]["reason"] == "no usable data: gaze: usable data 0.00 < min_coverage 0.5"
    )
    assert meta["skipped"][1]["reason"] == "cut failed: KeyError: 'hr'"
    table = (tmp_path / "ds" / "skipped.csv").read_text().splitlines()
    assert table[0] == "kind,trial_id,participant,stimulus_id,onset,reason"
    assert table[2] == "failed,P9-4,P9,moon,33.0,cut failed: KeyError: 'hr'"
    assert len(TrialDataset(tmp_path / "ds")) == 1


def test_dataset_build_leaves_out_failed_and_empty_trials(tmp_path, monkeypatch) -> None:
    """The real cutting path: the 2nd trial's cut raises, the device is off for the whole 4th;
    both are counted and recorded, the rest written."""
    import acquisition.aligner as aligner_module
    from acquisition.config import AcquisitionConfig
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from emoeye.commands.dataset import cut_rated_trials

    cfg = dict(device_set="gazepoint", n_trials=5, isi=6, seed=3)
    onsets = [g["onset"] for g in Simulation(SimulationConfig(**cfg)).ground_truth()]
    sim = Simulation(SimulationConfig(**cfg, dropouts=[("gazepoint", onsets[3] - 1.5, 7.0)]))
    original, calls = aligner_module.cut_trial, [0]

    def cut_trial(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyError("stream 'E4_Hr' has no channel ''")
        return original(*args, **kwargs)

    monkeypatch.setattr(aligner_module, "cut_trial", cut_trial)
    with DatasetWriter(tmp_path / "ds") as w:
        stats = cut_rated_trials(sim, AcquisitionConfig(), w.add, skip=w.skip)
    assert (stats["trials"], stats["written"], stats["no_data"], stats["failed"]) == (4, 3, 1, 1)
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["trial_ids"] == ["1", "3", "5"]
    assert [(r["kind"], r["trial_id"]) for r in meta["skipped"]] == [
        ("failed", "2"),
        ("no_data", "4"),
    ]
    ds = TrialDataset(tmp_path / "ds")
    assert len(ds) == 3 and ds.arrays([0, 1, 2], ("mask",))["mask"].any(axis=(1, 2)).all()
