"""Norms tables as the lookup baseline for pictures the training never showed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.dataset import TrialDataset
from models.evaluate import EvaluationError, evaluate_checkpoint
from models.norms import read_norms

pytestmark = pytest.mark.timeout(400)  # the shared training run happens in the first test


def _norms(path, ids, skip=None):
    rows = [f"{s},{1 + (i * 3) % 9},{1 + (i * 5) % 9}" for i, s in enumerate(ids) if s != skip]
    path.write_text("IAPS,valmn,aromn\n" + "\n".join(rows) + "\n")  # an IAPS-style table, 1..9
    return path


def test_norms_make_the_lookup_applicable_for_new_pictures(trained, synthetic_dir, tmp_path, capsys):  # fmt: skip
    ds = TrialDataset(synthetic_dir)
    assert not ds.stimulus_norms
    plain = evaluate_checkpoint(trained.checkpoint, synthetic_dir, protocol="stimulus", n_boot=50)
    assert plain["baselines"]["lookup"]["arousal"] is None  # new pictures, no norms: n/a
    assert plain["lookup_norms"] is None
    path = _norms(tmp_path / "iaps.csv", ds.stimulus_names.tolist())
    rep = evaluate_checkpoint(
        trained.checkpoint, synthetic_dir, protocol="stimulus", n_boot=50, norms=read_norms(path)
    )
    assert rep["lookup_coverage"] == {"arousal": 1.0, "valence": 1.0}
    assert rep["lookup_norms"] == f"{path} (IAPS)"
    for head in ("arousal", "valence"):
        assert 0.0 <= rep["baselines"]["lookup"][head]["balanced_accuracy"] <= 1.0
        assert rep["ci95"]["lookup"][head] is not None
    # The CLI: the same through --norms.
    from emoeye.cli import main

    args = ["evaluate", "--data", str(synthetic_dir), "--checkpoint", str(trained.checkpoint),
            "--protocol", "stimulus", "--json", "--bootstrap", "50", "--norms", str(path)]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["baselines"]["lookup"] == rep["baselines"]["lookup"]
    # A picture the table lacks: one line naming it.
    meta = json.loads((trained.checkpoint / "config.json").read_text())
    seen = meta["training"]["split"]["train_stimuli"]
    missing = ds.stimulus_names[~np.isin(ds.stimulus_names, seen)][0]  # a held-out picture
    bad = _norms(tmp_path / "partial.csv", ds.stimulus_names.tolist(), skip=str(missing))
    with pytest.raises(EvaluationError, match=f"has no norms for stimulus '{missing}'"):
        evaluate_checkpoint(
            trained.checkpoint, synthetic_dir, protocol="stimulus", n_boot=50, norms=read_norms(bad)
        )
    assert main([*args[:-1], str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emoeye: error: norms:") and len(err.splitlines()) == 1
