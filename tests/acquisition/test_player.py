"""The real-time LSL player over real outlets and inlets: zero drops, exact values and spacing.

Inlets are always deleted before the player's outlets (liblsl may crash otherwise).
"""

import time

import numpy as np
import pylsl
import pytest

from acquisition.offline_acquisition import collect
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.player import LslPlayer

pytestmark = pytest.mark.lsl

SHORT = dict(n_trials=3, isi=1.6, lead_in=0.5)  # 5.3 s of data


def short_sim(uid: str, **kw) -> Simulation:
    return Simulation(SimulationConfig(source_tag=uid, **{**SHORT, **kw}))


def open_inlets(sim: Simulation) -> dict[str, pylsl.StreamInlet]:
    inlets = {}
    for spec in sim.streams:
        (info,) = pylsl.resolve_byprop("source_id", spec.source_id, minimum=1, timeout=5.0)
        inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)
        inlet.open_stream(timeout=5.0)
        inlets[spec.key] = inlet
    return inlets


def pull_all(inlets, expected: dict[str, int], timeout: float) -> dict[str, tuple]:
    """Pull until every stream has its expected count (or the timeout), then a bit more to
    catch duplicates."""
    got = {k: ([], []) for k in inlets}
    deadline = time.monotonic() + timeout
    extra_until = None
    while time.monotonic() < deadline:
        for key, inlet in inlets.items():
            values, stamps = inlet.pull_chunk(timeout=0.0)
            if stamps:
                got[key][0].extend(stamps)
                got[key][1].extend(values)
        done = all(len(got[k][0]) >= n for k, n in expected.items())
        if done and extra_until is None:
            extra_until = time.monotonic() + 0.3
        if extra_until is not None and time.monotonic() > extra_until:
            break
        time.sleep(0.01)
    return {k: (np.array(ts), v) for k, (ts, v) in got.items()}


def play_and_pull(sim: Simulation, speed: float, timeout: float = 20.0):
    expected = {k: len(ts) for k, (ts, _) in collect(sim).items()}
    player = LslPlayer(sim, speed=speed, wait_consumers=5.0)
    try:
        inlets = open_inlets(sim)
        player.start()
        got = pull_all(inlets, expected, timeout)
        assert player.join(timeout=5.0)
        for inlet in inlets.values():
            inlet.close_stream()
        del inlet, inlets  # inlets before outlets
    finally:
        player.close()
    return player, got


@pytest.mark.timeout(60)
def test_lab_set_zero_drops_exact_values_and_spacing(uid):
    sim = short_sim(uid, device_set="lab", seed=11)
    ref = collect(sim)
    player, got = play_and_pull(sim, speed=4.0)
    for spec in sim.streams:
        ts_ref, v_ref = ref[spec.key]
        ts, values = got[spec.key]
        assert len(ts) == len(ts_ref) == player.samples_pushed[spec.key], spec.name
        if spec.is_string:
            assert [row[0] for row in values] == list(v_ref[:, 0])
        else:
            np.testing.assert_array_equal(np.asarray(values, v_ref.dtype), v_ref)
        # Timestamps: exactly the player's mapping of data time; spacing compressed by speed.
        np.testing.assert_allclose(ts, player.to_local(ts_ref, spec.key), rtol=0, atol=1e-9)
        if len(ts) > 1:
            np.testing.assert_allclose(np.diff(ts), np.diff(ts_ref) / 4.0, rtol=0, atol=1e-7)


@pytest.mark.timeout(60)
def test_outlets_announce_preset_metadata(uid):
    sim = short_sim(uid, device_set="gazepoint")
    with LslPlayer(sim, speed=50.0) as player:
        spec = sim.streams[0]
        (info,) = pylsl.resolve_byprop("source_id", spec.source_id, minimum=1, timeout=5.0)
        inlet = pylsl.StreamInlet(info)
        full = inlet.info(timeout=5.0)
        labels, ch = [], full.desc().child("channels").child("channel")
        while not ch.empty():
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        assert (full.name(), full.type(), full.nominal_srate()) == (spec.name, "Gaze", 60.0)
        assert tuple(labels) == spec.channel_labels
        assert full.desc().child_value("manufacturer") == "Gazepoint"
        del inlet
        assert player.join(timeout=10.0)


@pytest.mark.timeout(60)
def test_unix_epoch_streams_are_stamped_like_the_e4_app(uid):
    sim = short_sim(uid, device_set="tobii-e4", n_trials=1)
    player, got = play_and_pull(sim, speed=5.0)
    for spec in sim.streams:
        ts = got[spec.key][0]
        assert len(ts) == player.samples_pushed[spec.key] > 0
        if spec.key in sim.unix_epoch_keys:
            assert abs(ts[-1] - time.time()) < 30.0  # Unix seconds, not the LSL clock
        else:
            assert abs(ts[-1] - pylsl.local_clock()) < 30.0
    # Both clocks were read at the same instant: the same data time lines up.
    gsr = next(s.key for s in sim.streams if s.name == "E4_Gsr")
    offset = player.t0_unix - player.t0_local
    assert player.to_local(1.0, gsr) - player.to_local(1.0) == pytest.approx(offset)


@pytest.mark.timeout(60)
def test_stop_midway_and_pause_stream(uid):
    sim = short_sim(uid, device_set="gazepoint", n_trials=40)  # 64 s of data
    key = sim.streams[0].key
    with LslPlayer(sim, speed=1.0) as player:
        assert player.wait_started(5.0)
        time.sleep(0.3)
        player.pause_stream(key, 0.4)
        time.sleep(0.8)
        player.stop()
        assert player.join(timeout=3.0) and not player.running
        with pytest.raises(KeyError):
            player.pause_stream("nope", 1.0)
    assert 0 < player.samples_pushed[key] < 60 * 1.5
    assert 15 <= player.samples_paused[key] <= 40  # ~0.4 s at 60 Hz withheld


def test_player_rejects_bad_speed(uid):
    with pytest.raises(ValueError):
        LslPlayer(short_sim(uid), speed=0)


class TinySource:
    """A minimal offline source without the simulator's extras (no start_time, no Unix keys)."""

    def __init__(self, uid: str) -> None:
        from acquisition.lsl.presets import PRESETS

        self.streams = [PRESETS["gazepoint"][0].spec(f"tiny-{uid}")]

    def iter_blocks(self, block_seconds: float = 0.5):
        from acquisition.offline_acquisition import Block
        from acquisition.streams import Chunk

        spec = self.streams[0]
        for k in range(4):
            ts = 500.0 + k * 0.5 + np.arange(30) / 60.0
            values = np.full((30, spec.channel_count), k, np.float32)
            yield Block(500.0 + (k + 1) * 0.5, [Chunk(spec, ts, values)])


@pytest.mark.timeout(60)
def test_any_offline_source_plays_from_its_first_sample(uid):
    source = TinySource(uid)
    key = source.streams[0].key
    player = LslPlayer(source, speed=2.0, wait_consumers=5.0)
    try:
        (info,) = pylsl.resolve_byprop("source_id", key, minimum=1, timeout=5.0)
        inlet = pylsl.StreamInlet(info, recover=False)
        inlet.open_stream(timeout=5.0)
        player.start()
        got = pull_all({key: inlet}, {key: 120}, 10.0)[key]
        assert player.join(timeout=5.0)
        del inlet
    finally:
        player.close()
    ts, values = got
    assert len(ts) == 120 and player.origin == 500.0
    np.testing.assert_array_equal(np.asarray(values)[:, 0], np.repeat(np.arange(4), 30))
    np.testing.assert_allclose(
        np.diff(ts),
        np.diff(np.concatenate([500.0 + k * 0.5 + np.arange(30) / 60.0 for k in range(4)])) / 2.0,
        atol=1e-7,
    )
