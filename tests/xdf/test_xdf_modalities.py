"""EEG and face on record and replay: a simulated full-set session written to XDF replays with
the same EEG features and action units, and enters datasets (docs/modalities.md)."""

from __future__ import annotations

import json

import numpy as np

from acquisition.aligner import TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.lsl.presets import FACE_AUS, OPENFACE_AUS
from acquisition.trials.modalities import EEG_FEATURES
from acquisition.xdf.source import XdfSource
from acquisition.xdf.writer import record_simulation
from emoeye.cli import main
from models.dataset import TrialDataset


def trials_of(source, block: float) -> list:
    cfg = AcquisitionConfig()
    acq = Acquisition(bind_roles(source.streams, cfg.rules), cfg)
    return [e.trial for e in acq.run_offline(source, block) if isinstance(e, TrialEvent)]


def test_full_set_records_replays_and_builds_a_dataset(make_sim, tmp_path):
    sim = make_sim(device_set="full", n_trials=3)
    path = tmp_path / "full.xdf"
    record_simulation(sim, path, progress=False)
    source = XdfSource(path)
    plan = bind_roles(source.streams)
    assert plan.roles["eeg"].reading.kind == "eeg" and len(plan.roles["eeg"].reading.columns) == 32
    assert plan.roles["face"].why == "preset openface"
    live, replay = trials_of(sim, 0.5), trials_of(source, 0.7)
    assert len(live) == len(replay) == 3
    for a, b in zip(live, replay, strict=True):
        assert b.eeg is not None and b.face is not None
        assert a.eeg.channels == b.eeg.channels and b.eeg.asymmetry_pair == "F4/F3"
        np.testing.assert_allclose(a.eeg.vector(), b.eeg.vector(), rtol=1e-3, atol=1e-3)
        assert b.face.aus == OPENFACE_AUS
        np.testing.assert_allclose(a.face.signals, b.face.signals, atol=1e-4)
        assert np.array_equal(a.face.mask, b.face.mask)
        qa, qb = a.quality.to_dict(), b.quality.to_dict()
        assert qa["eeg"] == qb["eeg"] and qa["face"] == qb["face"]
        for role in ("eeg", "face"):
            assert qa["coverage"][role] == qb["coverage"][role] > 0.9
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(path), "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["roles"] == ["eeg", "face"] and meta["eeg_features"] == list(EEG_FEATURES)
    ds = TrialDataset(out)
    assert ds.roles == ["eeg", "face"] and len(ds) == 3
    arrays = ds.arrays(np.arange(3), ["eeg", "face", "face_mask"])
    assert arrays["eeg"].shape == (3, len(EEG_FEATURES)) and np.isfinite(arrays["eeg"]).all()
    assert arrays["face"].shape == (3, len(FACE_AUS), ds.n_time)
    # The units OpenFace gives are present; py-feat's extra ones are masked.
    present = arrays["face_mask"].any(axis=(0, 2))
    assert [au for au, p in zip(FACE_AUS, present, strict=True) if p] == list(OPENFACE_AUS)
    np.testing.assert_allclose(arrays["eeg"][0], replay[0].eeg.vector(), rtol=1e-5)


def test_a_dataset_without_the_new_roles_is_as_before(make_sim, tmp_path):
    sim = make_sim(device_set="lab", n_trials=2)
    path = tmp_path / "lab.xdf"
    record_simulation(sim, path, progress=False)
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(path), "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "meta.json").read_text())["roles"] == []
    with np.load(out / "shard-00000.npz") as npz:
        assert "eeg" not in npz.files and "face" not in npz.files
