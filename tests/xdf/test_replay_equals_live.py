"""Replay equals live: a session recorded while a device drops out for 3 s replays to the same
trials, coverage and predictions the live session made (stamps treated as the live inlets
treat them: clock sync, no dejitter)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest

from acquisition.config import AcquisitionConfig
from acquisition.lsl.live import LiveAcquisition, discover
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.player import LslPlayer
from acquisition.xdf.source import XdfSource
from emoeye.commands.replay import replay_fast
from emoeye.session import LiveSession, SessionConfig

DROPOUT_S = 3.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model with the default architecture."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet
    from models.preprocess import NormStats

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "model"
    return save_checkpoint(out, EmoEyeNet().eval(), NormStats.identity())


def _config() -> AcquisitionConfig:
    config = AcquisitionConfig()
    # Live waits this long for a silent stream before cutting anyway: longer than the dropout,
    # so the live cut sees the samples that follow it, as the replay does.
    config.trial = dataclasses.replace(config.trial, grace=8.0)
    return config


def _record_live(sim: Simulation, checkpoint: Path, tmp_path: Path, uid: str) -> tuple:
    """Run a live session over LSL, recording it, while the eye tracker drops out for 3 s
    across the end of the second trial's window (its coverage stays above the 0.5 that a
    prediction needs). Returns (predictions, recording)."""
    onsets = [g["onset"] for g in sim.ground_truth()]
    (gaze,) = [s for s in sim.streams if s.type == "Gaze"]
    player = LslPlayer(sim, speed=1.0, wait_consumers=30.0)
    visible = discover(10.0, [s.source_id for s in sim.streams])
    config = _config()
    session = LiveSession(
        config,
        SessionConfig(
            checkpoint=checkpoint,
            log_path=tmp_path / "live.jsonl",
            outlet=False,
            record_backend="emoeye",
        ),
        live=LiveAcquisition(config, streams=visible),
        say=lambda *_: None,
    )
    path = tmp_path / "session.xdf"
    try:
        session.start()
        session.start_recording(path)
        player.start()
        assert player.wait_started(40.0), "the consumers never connected"
        drop_at = player.to_local(onsets[1] + 3.5)
        while pylsl.local_clock() < drop_at:
            time.sleep(0.005)
        player.pause_stream(gaze.key, DROPOUT_S)
        assert player.join(timeout=sim.duration + 60.0)
        deadline = time.monotonic() + 60.0
        while session.store.count < len(onsets) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # the last chunks reach the recorder
        session.stop_recording()
    finally:
        session.stop()
        player.close()
    assert player.samples_paused[gaze.key] > 100, "the device never dropped out"
    return session.store.latest(100), path


@pytest.mark.lsl
@pytest.mark.timeout(300)
def test_recorded_session_replays_to_the_live_trials(checkpoint, tmp_path, uid):
    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=3, isi=8.0, lead_in=1.5, source_tag=uid)
    )
    live, path = _record_live(sim, checkpoint, tmp_path, uid)
    assert len(live) == 3
    got = []
    summary = replay_fast(
        XdfSource(path),
        _config(),
        checkpoint,
        tmp_path / "replay.jsonl",
        on_row=lambda row, pred: got.append((row, pred)),
    )
    assert summary["trials"] == 3 and summary["predictions"] == 3
    replayed = [p for _, p in got]
    onset_diff = max(abs(a.onset - b.onset) for a, b in zip(live, replayed, strict=True))
    assert onset_diff < 1e-3, onset_diff
    for a, b in zip(live, replayed, strict=True):
        assert a.stimulus_id == b.stimulus_id
        cov_a, cov_b = a.quality["coverage"], b.quality["coverage"]
        assert cov_a.keys() == cov_b.keys()
        for role in cov_a:
            assert cov_a[role] == pytest.approx(cov_b[role], abs=0.02), (role, cov_a, cov_b)
        assert np.allclose(a.arousal_probs, b.arousal_probs, atol=1e-4)
        assert np.allclose(a.valence_probs, b.valence_probs, atol=1e-4)
    # The dropout shows: the second trial lost about half its window in both.
    assert min(live[1].quality["coverage"].values()) < 0.8
    # pyxdf's jitter removal would have moved the stamps around the dropout (the old default).
    smooth = XdfSource(path, dejitter=True)
    raw = XdfSource(path)
    (g_raw,) = [s for s in raw.xdf_streams if s.spec.type == "Gaze"]
    (g_smooth,) = [s for s in smooth.xdf_streams if s.spec.type == "Gaze"]
    assert np.max(np.abs(g_raw.timestamps - g_smooth.timestamps)) > 0.1
