"""Device layouts the presets do not describe, over real LSL outlets: names, labels, channel
counts, rates, Unix-epoch stamps, unlabelled and mislabelled channels (issue 13, cases 1 and 5).

Streams get uuid names and source ids and are resolved by source id; inlets go before outlets.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pylsl
import pytest

from acquisition.aligner import TrialEvent
from acquisition.config import load_config
from acquisition.lsl.live import LiveAcquisition, discover
from emoeye.cli import main

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(90)]


def outlet(name, type_, n, rate, sid, labels=(), fmt=pylsl.cf_float32) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, type_, n, rate, fmt, sid)
    if labels:
        chans = info.desc().append_child("channels")
        for label in labels:
            chans.append_child("channel").append_child_value("label", label)
    return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)


def pulses(t: np.ndarray, bpm: float, width: float = 0.1) -> np.ndarray:
    """A PPG-like pulse train at ``bpm``."""
    period = 60.0 / bpm
    phase = np.mod(t, period) - period / 2
    return np.exp(-0.5 * (phase / width) ** 2)


def gaze2(t: np.ndarray) -> np.ndarray:
    """Two-channel gaze in 0..1, NaN during a 200 ms blink every 3 s."""
    xy = np.c_[0.5 + 0.2 * np.sin(t / 2), 0.4 + 0.1 * np.cos(t / 3)]
    xy[np.mod(t, 3.0) < 0.2] = np.nan
    return xy


def collect(live: LiveAcquisition, n: int, timeout: float = 15.0) -> list:
    trials: list = []
    end = time.monotonic() + timeout
    while len(trials) < n and time.monotonic() < end:
        trials += [e.trial for e in live.poll(wait=0.05) if isinstance(e, TrialEvent)]
    return trials


def start_live(config, source_ids: list[str]) -> LiveAcquisition:
    visible = discover(5.0, source_ids)
    assert {s.source_id for s, _ in visible} == set(source_ids)
    live = LiveAcquisition(config, streams=visible, rebind=False)
    live.start()
    assert live.wait_connected(10.0)
    time.sleep(0.5)  # inlets are pulling before the back-dated data goes out
    return live


def test_e4_streams_and_unlabelled_gaze_cut_every_trial(uid, tmp_path):
    """Case 1: E4-style GSR/BVP/HR streams stamped in Unix-epoch seconds (the HR one a single
    channel labelled 'hr', the GSR one labelled 'EDA'), a 2-channel unlabelled gaze stream with
    blinks, and custom onset markers: every onset becomes a trial with every role."""
    cfg_path = tmp_path / "lab.toml"
    cfg_path.write_text(
        "[trial]\ngrace = 1.0\n[markers]\n"
        "onset = '^image_onset\\|stim=(?P<stimulus>[^|]+)$'\n"
        "rating = '^rating\\|arousal=(?P<arousal>\\d+)\\|valence=(?P<valence>\\d+)$'\n"
    )
    config = load_config(cfg_path)
    sids = {k: f"{k}-{uid}" for k in ("gaze", "gsr", "bvp", "hr", "mk")}
    outs = {
        "gaze": outlet(f"Tobii4C-{uid}", "Gaze", 2, 120.0, sids["gaze"]),
        "gsr": outlet(f"E4_Gsr-{uid}", "GSR", 1, 4.0, sids["gsr"], ("EDA",)),
        "bvp": outlet(f"E4_Bvp-{uid}", "BVP", 1, 64.0, sids["bvp"], ("bvp",)),
        "hr": outlet(f"E4_Hr-{uid}", "HR", 1, 1.0, sids["hr"], ("hr",)),
        "mk": outlet(f"Stim-{uid}", "Markers", 1, 0.0, sids["mk"], ("m",), pylsl.cf_string),
    }
    live = start_live(config, list(sids.values()))
    try:
        plan = live.plan
        assert plan.roles["gaze"].reading.columns == {"x": 0, "y": 1}
        assert plan.roles["gsr"].spec.source_id == sids["gsr"]
        assert plan.roles["hr"].spec.source_id == sids["hr"]  # direct HR beats BVP
        assert plan.roles["hr"].reading.columns == {"hr": 0}
        now, epoch = pylsl.local_clock(), time.time()
        span = 14.0
        for key, rate in (("gaze", 120.0), ("gsr", 4.0), ("bvp", 64.0), ("hr", 1.0)):
            t = np.arange(-span, 0, 1.0 / rate)
            if key == "gaze":
                rows, stamps = gaze2(t), now + t
            else:
                value = {"gsr": 5.0 + 0.1 * np.sin(t), "bvp": pulses(t, 70.0), "hr": 70 + 0 * t}
                rows, stamps = value[key][:, None], epoch + t  # Unix-epoch seconds
            for k in range(0, len(t), 64):  # chunked, as device drivers push
                outs[key].push_chunk(rows[k : k + 64].tolist(), stamps[k : k + 64].tolist())
        onsets = (now - 13.0, now - 7.0)
        for i, t0 in enumerate(onsets):
            outs["mk"].push_sample([f"image_onset|stim=img_02{i}.jpg"], t0)
            outs["mk"].push_sample([f"rating|arousal=5|valence={3 + i}"], t0 + 5.5)
        trials = collect(live, 2)
        health = {h.name: h for h in live.health.values()}
    finally:
        live.stop()
        del live
    assert len(trials) == 2, [h.to_dict() for h in health.values()]
    for trial, t0 in zip(trials, onsets, strict=True):
        assert abs(trial.onset - t0) < 0.005
        q = trial.quality
        assert not q.missing and min(q.coverage[r] for r in ("gaze", "gsr", "hr")) > 0.8, q
        hr = trial.signals[4][trial.mask[4]]
        assert len(hr) and np.allclose(hr, 70.0, atol=0.5)
        gsr = trial.signals[3][trial.mask[3]]
        assert np.all((gsr > 4.8) & (gsr < 5.2))
        x, y = trial.signals[0], trial.signals[1]
        assert not np.allclose(x, y)  # two channels, not one read twice
    assert health[f"E4_Hr-{uid}"].unix_epoch and health[f"E4_Gsr-{uid}"].unix_epoch
    # Each bound stream's first seconds were checked and look right.
    assert health[f"E4_Hr-{uid}"].plausibility == "hr ok"
    assert health[f"E4_Gsr-{uid}"].plausibility == "gsr ok"
    assert health[f"Tobii4C-{uid}"].plausibility == "gaze ok"
    assert all(h.errors == 0 for h in health.values())
    del outs


def test_config_with_index_columns(uid, tmp_path):
    """A config with index columns reads an unlabelled 3-channel gaze stream and channel 3 of
    a 16-channel unlabelled PPG stream."""
    sids = {k: f"{k}-{uid}" for k in ("gaze", "ppg16", "mk")}
    cfg_path = tmp_path / "index.toml"
    cfg_path.write_text(
        f"""
[trial]
grace = 1.0
required_roles = ["gaze", "hr"]
[roles.gaze]
source_id = "{sids["gaze"]}"
kind = "gaze"
columns = {{ x = 0, y = 1, pupil = 2 }}
[roles.hr]
source_id = "{sids["ppg16"]}"
kind = "hr_ppg"
[roles.hr.columns]
signal = 3
"""
    )
    config = load_config(cfg_path)
    outs = {
        "gaze": outlet(f"Lab-{uid}", "Gaze", 3, 60.0, sids["gaze"]),
        "ppg16": outlet(f"Ring16-{uid}", "PPG", 16, 100.0, sids["ppg16"]),
        "mk": outlet(f"Stim-{uid}", "Markers", 1, 0.0, sids["mk"], fmt=pylsl.cf_string),
    }
    live = start_live(config, list(sids.values()))
    rng = np.random.default_rng(0)
    try:
        now = pylsl.local_clock()
        t = np.arange(-9.0, 0, 1 / 60)
        rows = np.c_[0.3 + 0.1 * np.sin(t), 0.7 + 0.05 * np.cos(t), 3.5 + 0 * t]
        outs["gaze"].push_chunk(rows.tolist(), (now + t).tolist())
        t = np.arange(-9.0, 0, 1 / 100)
        rows = rng.normal(0, 1, (len(t), 16))
        rows[:, 3] = 100 * pulses(t, 66.0)  # the one channel with a pulse
        for k in range(0, len(t), 100):
            outs["ppg16"].push_chunk(rows[k : k + 100].tolist(), (now + t[k : k + 100]).tolist())
        outs["mk"].push_sample(["onset:coffee"], now - 7.5)
        (trial,) = collect(live, 1)
    finally:
        live.stop()
        del live
    x, y, pupil, _, hr = (trial.signals[i][trial.mask[i]] for i in range(5))
    assert np.all((x > 0.15) & (x < 0.45)) and np.all((y > 0.6) & (y < 0.8))
    assert np.allclose(pupil, 3.5, atol=1e-3)
    assert len(hr) and abs(np.median(hr) - 66.0) < 3
    del outs


@pytest.mark.parametrize("stamping", ["per sample", "per chunk"])
def test_irregular_ppg_gives_heart_rate(uid, stamping):
    """Case 5: a PPG stream without a nominal rate, its samples stamped one by one (jittered)
    or a chunk at a time (one stamp per chunk, as many wristband bridges do)."""
    sids = {k: f"{k}-{uid}" for k in ("ppg", "mk")}
    outs = {
        "ppg": outlet(f"Wrist-{uid}", "PPG", 1, 0.0, sids["ppg"], ("green",)),
        "mk": outlet(f"Stim-{uid}", "Markers", 1, 0.0, sids["mk"], fmt=pylsl.cf_string),
    }
    from acquisition.config import AcquisitionConfig
    from acquisition.trials.types import TrialSpec

    config = AcquisitionConfig(trial=TrialSpec(grace=1.0, required_roles=("hr",)))
    live = start_live(config, list(sids.values()))
    try:
        assert live.plan.roles["hr"].reading.kind == "hr_ppg"
        now = pylsl.local_clock()
        t = np.sort(np.random.default_rng(1).uniform(-10.0, 0.0, 10 * 45))  # ~45 Hz, jittered
        for k in range(0, len(t), 30):
            part = t[k : k + 30]
            rows = pulses(part, 80.0)[:, None].tolist()
            if stamping == "per sample":
                outs["ppg"].push_chunk(rows, (now + part).tolist())
            else:
                outs["ppg"].push_chunk(rows, float(now + part[-1]))
        # An irregular stream's data counts as complete once stamped a moment ago: the
        # back-dated burst must be in before the onset that asks for it.
        health = live.health[f"{sids['ppg']}"]
        end = time.monotonic() + 5
        while health.samples < len(t) and time.monotonic() < end:
            time.sleep(0.02)
        outs["mk"].push_sample(["onset:moon"], now - 7.5)
        (trial,) = collect(live, 1)
    finally:
        live.stop()
        del live
    hr = trial.signals[4][trial.mask[4]]
    assert trial.quality.coverage["hr"] > 0.8 and abs(np.median(hr) - 80.0) < 3
    del outs


class Feeder(threading.Thread):
    """Pushes each outlet's rows in real time (stamped now) until stopped."""

    def __init__(self, feeds: list[tuple[pylsl.StreamOutlet, float, object]]) -> None:
        super().__init__(daemon=True)
        self.feeds, self.halt = feeds, threading.Event()

    def run(self) -> None:
        t0 = pylsl.local_clock()
        sent = [0] * len(self.feeds)
        while not self.halt.wait(0.05):
            elapsed = pylsl.local_clock() - t0
            for i, (out, rate, rows) in enumerate(self.feeds):
                n = int(elapsed * rate)
                if n > sent[i]:
                    t = np.arange(sent[i], n) / rate
                    out.push_chunk(rows(t).tolist(), (t0 + t).tolist())
                    sent[i] = n


def test_emoeye_streams_reports_readings_plausibility_and_unbound(uid, capsys):
    """Case 5: a 2-channel unlabelled gaze stream is gaze only (not the Gazepoint's GSR and
    HR); a 16-channel unlabelled PPG is listed with the reason it is not bound; a GSR stream
    sending raw counts is bound but flagged implausible."""
    n = {"gaze": f"Tobii4C-{uid}", "ppg": f"PPG16-{uid}", "gsr": f"Skin-{uid}", "hr": f"Hr-{uid}"}
    outs = {
        "gaze": outlet(n["gaze"], "Gaze", 2, 90.0, f"g-{uid}"),
        "ppg": outlet(n["ppg"], "PPG", 16, 100.0, f"p-{uid}"),
        "gsr": outlet(n["gsr"], "EDA", 1, 8.0, f"s-{uid}"),
        "hr": outlet(n["hr"], "HR", 1, 2.0, f"h-{uid}", ("hr",)),
        "mk": outlet(f"Stim-{uid}", "Markers", 1, 0.0, f"m-{uid}", fmt=pylsl.cf_string),
    }
    rng = np.random.default_rng(2)
    feeder = Feeder(
        [
            (outs["gaze"], 90.0, gaze2),
            (outs["ppg"], 100.0, lambda t: rng.normal(size=(len(t), 16))),
            (outs["gsr"], 8.0, lambda t: (512 + 3 * np.sin(t))[:, None]),  # raw ADC counts
            (outs["hr"], 2.0, lambda t: (72 + 0 * t)[:, None]),
        ]
    )
    feeder.start()
    try:
        outs["mk"].push_sample(["onset:coffee"])
        code = main(["streams", "--json", "--timeout", "1.5", "--sample", "2"])
        report = json.loads(capsys.readouterr().out)
        code_text = main(["streams", "--timeout", "1.5", "--sample", "1.5"])
        text = capsys.readouterr().out
    finally:
        feeder.halt.set()
        feeder.join(5)
    keys = {s["name"]: s["source_id"] for s in report["streams"]}
    assert {n["gaze"], n["ppg"], n["gsr"], n["hr"]} <= set(keys)
    readings = report["readings"]
    assert readings["gaze"]["name"] == n["gaze"] and readings["gaze"]["plausible"] == "ok"
    assert readings["gaze"]["reading"].startswith("x = channel 0, y = channel 1")
    assert readings["gsr"]["name"] == n["gsr"]  # not gaze x read as µS
    assert readings["gsr"]["plausible"] == "suspect" and "raw counts" in readings["gsr"]["reason"]
    assert readings["hr"]["name"] == n["hr"] and readings["hr"]["plausible"] == "ok"
    assert readings["hr"]["first"].startswith("72 72")
    assert "16 unlabelled channels" in report["unbound"][keys[n["ppg"]]]
    assert code == code_text == 0
    assert "plausible: SUSPECT: median 5" in text and "is not µS" in text, text
    assert "Not bound:" in text
    assert f"'{n['ppg']}'" in text.split("Not bound:")[1]
    del outs
