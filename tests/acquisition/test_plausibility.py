"""Plausibility of a bound stream's first seconds (pure: samples in, verdict out)."""

import numpy as np
import pytest

from acquisition.lsl.plausibility import check_stream, rhythm_strength, summarize
from acquisition.lsl.presets import PRESETS, RoleReading
from acquisition.streams import StreamSpec

GAZE = RoleReading("gaze", "gaze", {"x": 0, "y": 1})
GSR = RoleReading("gsr", "gsr", {"gsr": 0})
HR = RoleReading("hr", "hr_direct", {"hr": 0})
ECG = RoleReading("hr", "hr_ecg", {"signal": 0})
PPG = RoleReading("hr", "hr_ppg", {"signal": 0})


def spec(n=1, rate=60.0):
    return StreamSpec("dev", "X", n, rate)


def run(reading, values, rate=60.0, seconds=5.0, t=None):
    values = np.asarray(values, np.float64)
    values = values[:, None] if values.ndim == 1 else values
    t = np.arange(len(values)) / rate if t is None else t
    return check_stream(reading, spec(values.shape[1], rate), t, values, seconds)


def gaze_xy(scale=1.0, n=300):
    rng = np.random.default_rng(0)
    return np.c_[0.5 + 0.1 * rng.normal(size=n), 0.4 + 0.1 * rng.normal(size=n)] * scale


def test_gaze_in_screen_units_and_pixels():
    assert run(GAZE, gaze_xy()).verdict == "ok"
    pixels = run(GAZE, gaze_xy(1500.0))
    assert pixels.looks_wrong and "params.screen" in pixels.reason
    on_screen = RoleReading("gaze", "gaze", {"x": 0, "y": 1}, {"screen": (1920, 1080)})
    assert run(on_screen, gaze_xy() * [1920, 1080]).verdict == "ok"
    far = run(GAZE, gaze_xy(-1e6))
    assert far.looks_wrong and "neither" in far.reason


def test_gaze_read_twice_from_one_channel_is_suspect():
    twice = RoleReading("gaze", "gaze", {"x": 0, "y": 0})
    v = run(twice, gaze_xy())
    assert v.looks_wrong and "same values" in v.reason


def test_gaze_mostly_invalid_is_suspect():
    reading = RoleReading("gaze", "gaze", {"x": 0, "y": 1, "valid": 2})
    rows = np.c_[gaze_xy(), np.zeros(300)]
    assert "valid" in run(reading, rows).reason and run(reading, rows).looks_wrong
    rows[:, 2] = 1
    assert run(reading, rows).verdict == "ok"


def test_gazepoint_preset_reads_plausibly():
    ps = PRESETS["gazepoint"][0]
    rows = np.zeros((120, 9))
    rows[:, :2] = gaze_xy(n=120)
    rows[:, [2, 4, 6]] = 1
    rows[:, [3, 5]] = 4.0
    rows[:, 7], rows[:, 8] = 5.0, 70.0
    t = np.arange(120) / 60
    verdicts = {r.role: check_stream(r, ps.spec("gp"), t, rows) for r in ps.readings}
    assert all(v.verdict == "ok" for v in verdicts.values()), verdicts
    assert summarize(verdicts) == "gaze ok; gsr ok; hr ok"


@pytest.mark.parametrize(
    ("value", "verdict", "word"),
    [
        (5.0, "ok", "µS"),
        (512.0, "suspect", "raw counts"),
        (5e-6, "suspect", "siemens"),
        (-1, "suspect", "<= 0"),
    ],
)
def test_gsr_range(value, verdict, word):
    v = run(GSR, np.full(20, value), rate=4.0)
    assert v.verdict == verdict and word in v.reason


@pytest.mark.parametrize(
    ("value", "verdict", "word"),
    [(72.0, "ok", "bpm"), (800.0, "suspect", "RR in ms"), (0.8, "suspect", "intervals in s")],
)
def test_direct_hr_range(value, verdict, word):
    v = run(HR, np.full(5, value), rate=1.0)
    assert v.verdict == verdict and word in v.reason and f"{value:.4g}" in v.first


def test_interval_units():
    ms = np.array([820.0, 790, 805, 810])
    assert (
        run(RoleReading("hr", "hr_intervals", {"interval": 0}, {"interval_unit": "ms"}), ms).verdict
        == "ok"
    )
    wrong = run(RoleReading("hr", "hr_intervals", {"interval": 0}, {"interval_unit": "s"}), ms)
    assert wrong.looks_wrong and 'interval_unit = "ms"' in wrong.reason


def pulses(t, bpm, width, rng):
    beats = np.cumsum(60 / bpm + rng.normal(0, 0.03, 60)) - 0.4
    return sum(np.exp(-0.5 * ((t - b) / width) ** 2) for b in beats)


@pytest.mark.parametrize("bpm", [48.0, 72.0, 130.0])
def test_ecg_and_ppg_rhythm(bpm):
    rng = np.random.default_rng(int(bpm))
    t = np.arange(0, 6, 1 / 130)
    ecg = 1000 * pulses(t, bpm, 0.012, rng) + rng.normal(0, 40, len(t))
    v = run(ECG, ecg, rate=130.0, t=t)
    assert v.verdict == "ok" and abs(float(v.reason.split(" at ")[1].split()[0]) - bpm) < 6, v
    t = np.arange(0, 6, 1 / 64)
    ppg = pulses(t, bpm, 0.12, rng) + rng.normal(0, 0.05, len(t))
    v = run(PPG, ppg, rate=64.0, t=t)
    assert v.verdict == "ok" and abs(float(v.reason.split(" at ")[1].split()[0]) - bpm) < 6, v


def test_noise_is_no_rhythm():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = np.arange(0, 5, 1 / 64)
        assert run(PPG, rng.normal(size=len(t)), rate=64.0, t=t).looks_wrong
        t = np.arange(0, 5, 1 / 130)
        assert run(ECG, rng.normal(size=len(t)), rate=130.0, t=t).looks_wrong


def test_flat_short_and_irregular_signals():
    t = np.arange(0, 5, 1 / 64)
    assert "flat" in run(PPG, np.zeros(len(t)), rate=64.0, t=t).reason
    short = run(PPG, np.sin(t[:100]), rate=64.0, t=t[:100])
    assert short.verdict == "unknown" and "needs 3 s" in short.reason
    rng = np.random.default_rng(1)
    ti = np.sort(rng.uniform(0, 6, 6 * 40))
    irregular = check_stream(PPG, spec(1, 0.0), ti, pulses(ti, 80, 0.12, rng)[:, None])
    assert irregular.verdict == "ok", irregular
    assert rhythm_strength(ti, pulses(ti, 80, 0.12, rng), 0.0, "hr_ppg") > 0.7


def test_only_the_first_seconds_count():
    good, bad = np.full(40, 5.0), np.full(400, 9999.0)
    v = run(GSR, np.r_[good, bad], rate=4.0, seconds=5.0)  # 10 s of µS, then junk
    assert v.verdict == "ok"
    assert run(GSR, np.r_[good, bad], rate=4.0, seconds=200.0).looks_wrong


def test_markers_and_empty_streams():
    mk = RoleReading("markers", "markers", {})
    texts = np.array([["onset:a"], ["rating:arousal=3;valence=4"]], object)
    v = check_stream(mk, StreamSpec("m", "Markers", 1, 0.0, "string"), np.array([1.0, 2.0]), texts)
    assert v.verdict == "ok" and "onset:a" in v.first
    assert run(GSR, np.empty(0)).verdict == "unknown"
    assert run(GSR, np.full(8, np.nan)).looks_wrong


def test_a_reading_naming_a_missing_channel_raises():
    with pytest.raises(KeyError, match="no channel 3"):
        run(RoleReading("gsr", "gsr", {"gsr": 3}), np.ones((5, 2)))


def test_watch_checks_each_role_once_when_its_first_seconds_are_in(caplog):
    from acquisition.lsl.binding import BoundRole
    from acquisition.lsl.health import StreamHealth
    from acquisition.lsl.plausibility import PlausibilityWatch
    from acquisition.ringbuffer import RingBuffer

    eda = StreamSpec("Skin", "EDA", 1, 4.0, source_id="skin")
    hr = StreamSpec("Hr", "HR", 1, 1.0, source_id="hr")
    bufs = {s.key: RingBuffer(200, 1, np.float64) for s in (eda, hr)}
    roles = {
        "gsr": BoundRole("gsr", eda, GSR, bufs["skin"]),
        "hr": BoundRole("hr", hr, HR, bufs["hr"]),
    }
    health = {s.key: StreamHealth(s.key, s.name, [], s.nominal_srate) for s in (eda, hr)}
    watch = PlausibilityWatch(seconds=5.0)
    bufs["skin"].write(np.arange(0, 3, 0.25), np.full((12, 1), 512.0))  # raw counts, 3 s
    bufs["hr"].write(np.arange(0.0, 6.0), np.full((6, 1), 71.0))
    assert [r for r, _ in watch.update(roles, health)] == ["hr"]
    assert health["hr"].plausibility == "hr ok" and health["skin"].plausibility == ""
    bufs["skin"].write(np.arange(3, 6, 0.25), np.full((12, 1), 512.0))
    with caplog.at_level("WARNING"):
        ((role, verdict),) = watch.update(roles, health)
    assert role == "gsr" and verdict.looks_wrong
    assert health["skin"].plausibility.startswith("gsr SUSPECT: median 512")
    assert "gsr binding looks wrong" in health["skin"].message
    assert "gsr binding looks wrong" in caplog.text
    assert health["skin"].to_dict()["plausibility"] == health["skin"].plausibility
    assert watch.update(roles, health) == []  # once per role


def test_offline_source_first_seconds_and_plan():
    from acquisition.config import RoleRule
    from acquisition.lsl.binding import bind_roles
    from acquisition.lsl.plausibility import check_plan, first_seconds
    from acquisition.sim.simulator import Simulation, SimulationConfig

    sim = Simulation(SimulationConfig(device_set="gazepoint", n_trials=3, source_tag="test"))
    data = first_seconds(sim, seconds=5.0)
    assert {s.key for s in sim.streams} <= set(data)
    spans = {k: ts[-1] - ts[0] for k, (ts, _) in data.items() if len(ts) > 30}
    assert all(5.0 <= s < 8.0 for s in spans.values()), spans
    verdicts = check_plan(bind_roles(sim.streams), data)
    assert {r: v.verdict for r, v in verdicts.items()} == {
        "gaze": "ok",
        "gsr": "ok",
        "hr": "ok",
        "markers": verdicts["markers"].verdict,
    }
    # Read the GSR channel as heart rate: 5 µS is no bpm.
    wrong = RoleRule("hr", name="GazepointEyeTracker.*", kind="hr_direct", columns={"hr": "GSR"})
    verdicts = check_plan(bind_roles(sim.streams, [wrong]), data)
    assert verdicts["hr"].looks_wrong and "outside 30–220 bpm" in verdicts["hr"].reason
