"""Fault 4: NaN runs, blinks (pupil 0, validity 0), gaze off-screen, a flat-lined GSR and
out-of-range values: every trial is still cut and predicted, the damage is in its quality."""

from __future__ import annotations

import numpy as np
import pytest
from fault_rig import record

from acquisition.config import AcquisitionConfig
from acquisition.sim.faults import MutatedSource, set_columns
from acquisition.sim.simulator import Simulation, SimulationConfig
from emoeye.session import predict_offline

pytestmark = pytest.mark.timeout(60)

NAN = float("nan")


def _damaged(uid: str) -> tuple[Simulation, MutatedSource]:
    sim = Simulation(SimulationConfig(n_trials=5, isi=7.0, lead_in=1.5, seed=4, source_tag=uid))
    on = [g["onset"] for g in sim.ground_truth()]

    def mutate(chunk):
        ts = chunk.timestamps
        # Trial 1: 1.5 s of NaN in every channel.
        chunk = set_columns(
            chunk, dict.fromkeys(("FPOGX", "FPOGY", "LPMM", "RPMM", "GSR", "HR"), NAN),
            on[0] + 1.0, on[0] + 2.5,
        )  # fmt: skip
        # Trial 2: three 0.2-s blinks (pupil 0, validity 0) and 1 s of gaze far off-screen.
        for k in range(3):
            b = on[1] + 0.8 + k * 0.9
            chunk = set_columns(
                chunk, {"LPMM": 0.0, "RPMM": 0.0, "FPOGV": 0.0, "LPMMV": 0.0, "RPMMV": 0.0},
                b, b + 0.2,
            )  # fmt: skip
        chunk = set_columns(chunk, {"FPOGX": 1e6, "FPOGY": -40.0}, on[1] + 3.5, on[1] + 4.5)
        # Trial 3: GSR flat-lined (sensor off the skin) over baseline and window.
        chunk = set_columns(chunk, {"GSR": 5.0}, on[2] - 1.5, on[2] + 5.5)
        # Trial 4: out-of-range HR and GSR, infinite values.
        chunk = set_columns(chunk, {"HR": 400.0, "GSR": -3.0}, on[3] + 1.0, on[3] + 3.0)
        chunk = set_columns(chunk, {"HR": np.inf, "LPMM": -np.inf}, on[3] + 3.0, on[3] + 3.5)
        del ts
        return chunk

    return sim, MutatedSource(sim, mutate)


def test_f04_damaged_signals_are_cut_predicted_and_flagged(uid, checkpoint, tmp_path):
    sim, source = _damaged(uid)
    trials = []
    out = predict_offline(
        source, AcquisitionConfig(), checkpoint, tmp_path / "p.jsonl", on_trial=trials.append
    )
    preds = out["predictions"]
    assert len(trials) == len(preds) == 5
    assert out["worker"]["errors"] == 0 and out["aligner"]["trials_cut"] == 5
    for t, p in zip(trials, preds, strict=True):
        assert np.isfinite(t.signals).all() and np.isfinite(t.scanpath).all()
        assert np.isfinite(p.arousal_probs).all() and np.isfinite(p.valence_probs).all()
    q = [t.quality for t in trials]
    assert q[0].usable["gaze"] < 0.8 and q[0].usable["gsr"] < 0.8 and q[0].usable["hr"] < 0.8
    assert q[0].coverage["gaze"] > 0.99  # samples arrived: the stream is fine, its values not
    assert q[1].blinks >= 2 and q[1].gaze_valid < 0.8, q[1]
    assert any("flat" in n for n in q[2].notes), q[2].notes
    assert q[2].usable["gsr"] == 0.0
    assert q[3].usable["hr"] < 0.7 and q[3].usable["gsr"] < 0.7, q[3]
    assert q[4].usable["gaze"] > 0.9 and not any("flat" in n for n in q[4].notes)  # clean
    record("f04-signals", samples_lost_uncounted=0, trials_lost_uncounted=5 - len(preds))
