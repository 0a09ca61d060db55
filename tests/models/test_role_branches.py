"""The network's optional-role branches: trained with EEG and face when the dataset has them,
recorded in the checkpoint; at run time a missing role is masked and flagged, an extra one
ignored and noted (docs/modalities.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from acquisition.aligner import TrialEvent
from acquisition.config import parse_config
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.sim.simulator import Simulation, SimulationConfig
from emoeye.cli import main
from models.dataset import DatasetWriter, TrialDataset
from models.network import EmoEyeNet, ModelConfig, au_change
from models.predictor import Predictor

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """4 participants x 10 trials: Gazepoint + 32-channel EEG + OpenFace, as trials and a
    dataset."""
    sim = Simulation(
        SimulationConfig(
            presets=("gazepoint", "eeg-32", "openface", "psychopy"), participants=4, n_trials=10,
            seed=2,
        )
    )  # fmt: skip
    acq = Acquisition(bind_roles(sim.streams), parse_config({}), catalogue=sim.catalogue)
    trials = [e.trial for e in acq.run_offline(sim, 1.0) if isinstance(e, TrialEvent)]
    for t in trials:
        t.participant = sim.participant_of(t.onset)
    out = tmp_path_factory.mktemp("roles") / "ds"
    with DatasetWriter(out) as w:
        for t in trials:
            w.add(t)
    return out, trials


def test_forward_masks_a_missing_role_and_ignores_an_extra_one():
    cfg = ModelConfig(use_eeg=True, use_face=True, use_stimulus=False)
    assert cfg.roles == ("eeg", "face") and cfg.branches[-2:] == ("eeg", "face")
    model = EmoEyeNet(cfg).eval()
    ts, sp = torch.randn(2, 5, 360), torch.rand(2, 2, 64, 64)
    eeg = torch.randn(2, 12)
    eeg[0, 3] = float("nan")  # a region without electrodes
    face, mask = torch.rand(2, 21, 360), torch.ones(2, 21, 360, dtype=torch.bool)
    with torch.no_grad():
        full = model(ts, sp, eeg=eeg, face=face, face_mask=mask)
        no_eeg = model(ts, sp, face=face, face_mask=mask)
        ablated = model(ts, sp, eeg=eeg, face=face, face_mask=mask, ablate=["eeg"])
    assert all(torch.isfinite(x).all() for x in (*full, *no_eeg))
    assert torch.allclose(no_eeg[0], ablated[0]) and not torch.allclose(full[0], no_eeg[0])
    plain = EmoEyeNet(ModelConfig(use_stimulus=False)).eval()
    with torch.no_grad():
        a = plain(ts, sp)
        b = plain(ts, sp, eeg=eeg, face=face, face_mask=mask)  # ignored
    assert torch.equal(a[0], b[0])


def test_au_change_is_the_tracked_mean_change_from_the_baseline():
    x = torch.zeros(2, 3, 10)
    x[:, :, 4:] = 2.0  # a rise of 2 at onset (sample 4)
    x[0, 0, 6] = 50.0  # an untracked frame's value must not count
    mask = torch.ones(2, 3, 10, dtype=torch.bool)
    mask[0, 0, 6] = False
    mask[1, 1, :4] = False  # no tracked baseline: unknown, 0
    mask[1, 2] = False  # a unit the device lacks
    got = au_change(x, mask, n_baseline=4)
    assert torch.allclose(got, torch.tensor([[2.0, 2.0, 2.0], [2.0, 0.0, 0.0]]))


def test_role_summaries_reach_the_fused_layer_and_old_configs_load_without_them():
    cfg = ModelConfig(use_eeg=True, use_face=True, use_stimulus=False, role_summary=True)
    model = EmoEyeNet(cfg)
    assert model.eeg.out_dim == cfg.embed_dim + cfg.eeg_features
    assert model.face.out_dim == cfg.embed_dim + cfg.face_units
    model.eval()
    ts, sp = torch.randn(2, 5, 360), torch.rand(2, 2, 64, 64)
    face, mask = torch.rand(2, 21, 360), torch.ones(2, 21, 360, dtype=torch.bool)
    face2 = face.clone()
    face2[:, 9, 60:] += 1.0  # AU12 rises after onset: the summary sees it
    with torch.no_grad():
        a = model(ts, sp, eeg=torch.randn(2, 12), face=face, face_mask=mask)
        b = model(ts, sp, eeg=torch.randn(2, 12))  # face missing: masked, still runs
    assert all(torch.isfinite(t).all() for t in (*a, *b))
    with torch.no_grad():
        s1 = model.face(face, mask)[:, cfg.embed_dim :]
        s2 = model.face(face2, mask)[:, cfg.embed_dim :]
    changed = (s2 - s1).abs().amax(dim=0) > 1e-4
    assert changed[9] and changed.sum() == 1
    # A checkpoint config written before the summaries reads as without them, same state dict.
    old = {k: v for k, v in cfg.to_dict().items() if k != "role_summary"}
    old_cfg = ModelConfig.from_dict(old)
    assert old_cfg.role_summary is False
    keys = set(EmoEyeNet(old_cfg).state_dict())
    assert not any(k.startswith(("eeg.summary", "face.summary")) for k in keys)


def test_trained_with_the_roles_runs_with_and_without_them(rich, tmp_path, capsys):
    data, trials = rich
    ds = TrialDataset(data)
    assert ds.roles == ["eeg", "face"]
    batch = ds.batch(np.arange(4))
    assert batch["eeg"].shape == (4, 12) and batch["face"].shape == (4, 21, ds.n_time)
    ckpt = tmp_path / "ckpt"
    rc = main(["train", "--data", str(data), "--out", str(ckpt), "--epochs", "2", "--no-progress",
               "--hold-out-stimuli", "0", "--no-stimulus"])  # fmt: skip
    assert rc == 0
    config = json.loads((ckpt / "config.json").read_text())["model"]
    assert config["use_eeg"] is True and config["use_face"] is True  # recorded in the checkpoint
    assert config["role_summary"] is True  # new models pass the per-trial summaries on
    capsys.readouterr()
    rc = main(["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--split", "all",
               "--bootstrap", "10", "--json"])  # fmt: skip
    assert rc == 0
    p = Predictor(ckpt)
    t = trials[0]
    assert p.role_notes(t) == ([], [])
    with_roles = p.predict([t])
    t.eeg = None  # the EEG amplifier is gone
    flags, notes = p.role_notes(t)
    assert flags == ["eeg missing: masked (the model was trained with it)"] and notes == []
    without = p.predict([t])
    assert np.isfinite(without[0]).all() and not np.allclose(with_roles[0], without[0])
    # Without the flag --drop-branch, no EEG branch: an EEG trial is ignored and noted.
    ck2 = tmp_path / "ck2"
    rc = main(["train", "--data", str(data), "--out", str(ck2), "--epochs", "1", "--no-progress",
               "--hold-out-stimuli", "0", "--no-stimulus", "--drop-branch", "eeg"])  # fmt: skip
    assert rc == 0
    p2 = Predictor(ck2)
    assert p2.config.roles == ("face",)
    assert p2.role_notes(trials[1]) == ([], ["eeg ignored: the model was not trained with it"])
    assert np.isfinite(p2.predict([trials[1]])[0]).all()
