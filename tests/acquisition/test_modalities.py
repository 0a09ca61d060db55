"""EEG and facial action units: binding, reading, trial features and quality, the simulator's
outlets and their effect sizes (docs/modalities.md)."""

import json

import numpy as np
import pytest

from acquisition.aligner import TrialEvent
from acquisition.config import ConfigError, parse_config
from acquisition.core import Acquisition
from acquisition.lsl.binding import bind_roles
from acquisition.lsl.modalities import au_name
from acquisition.lsl.plausibility import check_stream
from acquisition.lsl.presets import EEG_32, OPENFACE_AUS, PRESETS, RoleReading
from acquisition.lsl.reading import RoleSeries, extract
from acquisition.offline_acquisition import collect
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.streams import StreamSpec
from acquisition.trials.modalities import eeg_features


def sim(**kw) -> Simulation:
    kw.setdefault("source_tag", "test")
    return Simulation(SimulationConfig(**kw))


def trials_of(s: Simulation, config=None, block: float = 0.5) -> list:
    config = config or parse_config({})
    acq = Acquisition(bind_roles(s.streams, config.rules), config, catalogue=s.catalogue)
    return [e.trial for e in acq.run_offline(s, block) if isinstance(e, TrialEvent)]


def eeg_spec(labels=(), n=None, name="Cap") -> StreamSpec:
    n = n or len(labels)
    return StreamSpec(name, "EEG", n, 250.0, source_id=f"src-{name}", channel_labels=tuple(labels))


# --------------------------------------------------------------------------- binding


def test_eeg_binds_by_its_10_20_labels_and_leaves_other_channels_out():
    spec = eeg_spec(("FP1", "fp2", "F3", "F4", "Cz", "TRIGGER", "AUX1"))
    plan = bind_roles([spec])
    reading = plan.roles["eeg"].reading
    assert list(reading.columns) == ["Fp1", "Fp2", "F3", "F4", "Cz"]  # usual spelling
    assert reading.columns["Fp1"] == "FP1" and "2 others left out" in plan.roles["eeg"].why


def test_unlabelled_or_non_10_20_eeg_binds_only_by_config():
    bare = eeg_spec(n=8, name="Bare")
    numbered = eeg_spec([f"Ch{i}" for i in range(8)], name="Numbered")
    plan = bind_roles([bare, numbered])
    assert "eeg" not in plan.roles
    assert "binds only by config" in plan.unbound[bare.key]
    assert "no 10-20 electrode labels" in plan.unbound[numbered.key]
    cfg = parse_config(
        {
            "roles": {
                "eeg": {"name": "Bare", "columns": {"F3": 0, "F4": 1}, "params": {"unit": "mV"}}
            }
        }
    )
    plan = bind_roles([bare, numbered], cfg.rules)
    r = plan.roles["eeg"].reading
    assert r.kind == "eeg" and r.columns == {"F3": 0, "F4": 1}
    series = extract(r, bare, np.arange(3.0), np.ones((3, 8)) * 0.01)
    assert series.fields == ("F3", "F4") and np.allclose(series.values, 10.0)  # mV -> µV


def test_eeg_channels_are_chosen_in_the_config():
    spec = PRESETS["eeg-32"][0].spec("cap")
    cfg = parse_config({"roles": {"eeg": {"type": "EEG", "columns": ["F3", "F4", "Pz"]}}})
    assert bind_roles([spec], cfg.rules).roles["eeg"].reading.columns == {
        "F3": "F3",
        "F4": "F4",
        "Pz": "Pz",
    }
    with pytest.raises(ConfigError, match=r"roles\.eeg\.columns"):
        parse_config({"roles": {"eeg": {"columns": []}}})


def test_face_presets_and_generic_action_unit_labels():
    of = PRESETS["openface"][0].spec("of")
    assert of.channel_labels[:2] == ("AU01_r", "AU02_r") and of.channel_labels[-2:] == (
        "confidence",
        "success",
    )
    pf = PRESETS["py-feat"][0].spec("pf")
    assert bind_roles([of]).roles["face"].why == "preset openface"
    assert bind_roles([pf]).roles["face"].why == "preset py-feat"
    # Any stream whose labels name action units, whatever its type; _c columns are presence.
    odd = StreamSpec("Cam", "Video", 4, 30.0, source_id="cam",
                     channel_labels=("au12", "AU04_r", "AU12_c", "success"))  # fmt: skip
    r = bind_roles([odd]).roles["face"].reading
    assert r.columns == {"AU12": "au12", "AU04": "AU04_r", "success": "success"}
    assert au_name("AU12_c") is None and au_name("AU6") == "AU06" and au_name("gsr") is None


def test_sessions_without_the_new_roles_are_as_before():
    s = sim(device_set="lab", n_trials=2)
    plan = bind_roles(s.streams)
    assert "eeg" not in plan.explain() and "face" not in plan.explain()
    for t in trials_of(s):
        q = t.quality.to_dict()
        assert t.eeg is None and t.face is None and "eeg" not in t.raw
        assert "eeg" not in q and "face" not in q and set(q["coverage"]) == {"gaze", "gsr", "hr"}
        assert not any("eeg" in n or "face" in n for n in q["notes"])


# --------------------------------------------------------------------------- reading


def test_face_success_zero_marks_samples_invalid():
    spec = PRESETS["openface"][0].spec("of")
    reading = PRESETS["openface"][0].readings[0]
    values = np.full((4, len(spec.channel_labels)), 1.5)
    values[:, -2] = [0.9, 0.9, 0.9, 0.1]  # confidence
    values[:, -1] = [1, 0, 1, 1]  # success
    series = extract(reading, spec, np.arange(4.0), values)
    assert series.fields[-1] == "valid" and list(series.column("valid")) == [1, 0, 1, 0]
    assert np.isnan(series.values[[1, 3], :-1]).all() and (series.values[[0, 2], :-1] == 1.5).all()


def test_plausibility_of_eeg_and_face():
    spec = eeg_spec(("F3", "F4"))
    reading = RoleReading("eeg", "eeg", {"F3": "F3", "F4": "F4"})
    ts = np.arange(1000) / 250.0
    rng = np.random.default_rng(0)
    assert check_stream(reading, spec, ts, rng.normal(0, 20, (1000, 2))).verdict == "ok"
    volts = check_stream(reading, spec, ts, rng.normal(0, 20e-6, (1000, 2)))
    assert volts.looks_wrong and "unit" in volts.reason
    of = PRESETS["openface"][0]
    lost = np.zeros((100, len(of.channel_labels)))
    assert check_stream(of.readings[0], of.spec("x"), ts[:100], lost).looks_wrong


# --------------------------------------------------------------------------- EEG features


def _series(x: np.ndarray, names, fs=250.0, t0=-1.0) -> RoleSeries:
    return RoleSeries(t0 + np.arange(len(x)) / fs, x, tuple(names))


def test_flat_and_railed_channels_are_excluded_and_line_noise_measured():
    rng = np.random.default_rng(1)
    n = 6 * 250
    t = np.arange(n) / 250.0
    x = rng.normal(0, 10, (n, 4))
    x[:, 1] = 3.2  # flat: a disconnected electrode
    x[:, 2] = np.clip(rng.normal(0, 400, n), -300, 300)  # railed at ±300 µV
    x[:, 3] += 30 * np.sin(2 * np.pi * 50 * t)  # heavy mains
    f = eeg_features(_series(x, ("F3", "F4", "Cz", "Pz")), 0.0, 5.0, 1.0, 250.0)
    assert f.excluded == {"F4": "flat", "Cz": "railed"} and f.channels == ("F3", "Pz")
    assert 0.3 < f.line_noise < 0.9
    assert f.asymmetry_pair == "" and np.isnan(f.asymmetry)  # F4 excluded: no pair


def test_alpha_band_power_is_baseline_relative_and_asymmetry_falls_back():
    n = 6 * 250
    t = np.arange(n) / 250.0 - 1.0
    rng = np.random.default_rng(2)
    alpha = np.sin(2 * np.pi * 10 * t)
    # F8 carries twice the alpha amplitude of F7 after onset (ln power ratio ln 4).
    gain_r = np.where(t >= 0, 2.0, 1.0)
    x = np.stack([10 * alpha * gain_r, 10 * alpha, 10 * alpha * np.where(t >= 0, 0.5, 1.0)], 1)
    x += rng.normal(0, 1, x.shape)
    f = eeg_features(_series(x, ("F8", "F7", "O1")), 0.0, 5.0, 1.0, 250.0)
    assert f.asymmetry_pair == "F8/F7"
    assert f.asymmetry == pytest.approx(np.log(4), abs=0.1)
    assert f.asymmetry_change == pytest.approx(np.log(4), abs=0.15)
    db = dict(zip(f.channels, f.band_power["alpha"], strict=True))
    assert db["F8"] == pytest.approx(10 * np.log10(4), abs=0.5)
    assert db["O1"] == pytest.approx(10 * np.log10(0.25), abs=0.5)
    assert abs(db["F7"]) < 0.5


def test_a_flat_eeg_channel_in_a_cut_trial_is_noted():
    s = sim(presets=("eeg-32", "openface", "psychopy"), n_trials=2, seed=4)
    cfg = parse_config({"trial": {"required_roles": ["eeg", "face"]}})
    spec = s.streams[0]

    class FlatO1:  # a real source whose O1 electrode came off
        streams = s.streams

        def iter_blocks(self, block_seconds=0.5):
            for block in s.iter_blocks(block_seconds):
                for c in block.chunks:
                    if c.stream.key == spec.key:
                        c.values[:, EEG_32.index("O1")] = 0.0
                yield block

    acq = Acquisition(bind_roles(s.streams), cfg, catalogue=s.catalogue)
    trials = [e.trial for e in acq.run_offline(FlatO1()) if isinstance(e, TrialEvent)]
    assert len(trials) == 2
    for t in trials:
        assert t.quality.eeg["excluded"] == {"O1": "flat"} and t.quality.eeg["channels"] == 31
        assert "eeg: excluded O1 (flat)" in t.quality.notes and "O1" not in t.eeg.channels
        assert t.predictable and t.quality.required == ["eeg", "face"]


# --------------------------------------------------------------------------- the simulator


def test_full_set_trials_carry_eeg_and_face():
    s = sim(device_set="full", n_trials=4, seed=1)
    trials = trials_of(s)
    assert len(trials) == 4
    for t in trials:
        q = t.quality.to_dict()
        assert q["coverage"]["eeg"] == 1.0 and q["coverage"]["face"] > 0.9
        assert q["eeg"]["channels"] == 32 and q["eeg"]["excluded"] == {}
        assert 0.005 < q["eeg"]["line_noise"] < 0.15  # the simulated 50 Hz
        assert 0.0 < q["face"]["tracked"] <= 1.0
        assert t.eeg.asymmetry_pair == "F4/F3" and np.isfinite(t.eeg.asymmetry)
        assert t.face.aus == OPENFACE_AUS and t.face.signals.shape == (17, t.signals.shape[1])
        assert t.raw["eeg"][1].shape[1] == 32
        assert q["required"] == ["gaze", "gsr", "hr"]  # optional roles are not scored


def test_blinks_are_frontal_eeg_artefacts_and_au45():
    s = sim(presets=("tobii", "eeg-32", "openface", "psychopy"), n_trials=6, blink_rate=0.5)
    data = collect(s, 1.0)
    eeg_spec_, face_spec = s.streams[1], s.streams[2]
    ts, v = data[eeg_spec_.key]
    blinking = s.blinking(ts)
    assert blinking.mean() > 0.02
    fp1, o1 = v[:, EEG_32.index("Fp1")], v[:, EEG_32.index("O1")]
    assert fp1[blinking].mean() - fp1[~blinking].mean() > 50  # µV up at Fp1
    assert abs(o1[blinking].mean() - o1[~blinking].mean()) < 10  # nothing at the back
    ts, f = data[face_spec.key]
    au45 = f[:, face_spec.channel_labels.index("AU45_r")]
    ok = f[:, -1] == 1
    b = s.blinking(ts)
    assert au45[b & ok].mean() > au45[~b & ok].mean() + 1.0
    # Tracking drops out now and then, with OpenFace's zeros and low confidence.
    s2 = sim(presets=("openface", "psychopy"), n_trials=40)
    ts, f = collect(s2, 2.0)[s2.streams[0].key]
    lost = f[:, -1] == 0
    assert 0.005 < lost.mean() < 0.2
    assert (f[lost, :-2] == 0).all() and (f[lost, -2] < 0.3).all()


def test_eeg_and_face_effect_sizes():
    """Trial-level effects of the felt state, measured through the trial cutter's features
    (docs/modalities.md lists the targets and their sources)."""
    s = sim(presets=("eeg-32", "openface", "psychopy"), participants=10, n_trials=20, seed=1,
            stimulus_seed=11)  # fmt: skip
    cfg = parse_config({"trial": {"required_roles": ["eeg", "face"]}})
    trials = trials_of(s, cfg, 2.0)
    r = s.extra_responses()
    fa, fv = r["felt_arousal"], r["felt_valence"]
    assert len(trials) == len(fa) == 200
    post = [i for i, c in enumerate(trials[0].eeg.channels) if c[0] in "PO"]
    alpha = np.array([np.mean(t.eeg.band_power["alpha"][post]) for t in trials])
    asym = np.array([t.eeg.asymmetry for t in trials])
    nb = trials[0].spec.n_baseline

    def au_change(t, au):
        j, m = t.face.aus.index(au), t.face.mask
        if not m[:nb].any() or not m[nb:].any():
            return np.nan
        return t.face.signals[j, nb:][m[nb:]].mean() - t.face.signals[j, :nb][m[:nb]].mean()

    def r_(x, y):
        ok = np.isfinite(y)
        return np.corrcoef(x[ok], y[ok])[0, 1]

    a12 = np.array([au_change(t, "AU12") for t in trials])
    a04 = np.array([au_change(t, "AU04") for t in trials])
    assert r_(fa, alpha) == pytest.approx(-0.3, abs=0.12)
    assert r_(fv, asym) == pytest.approx(0.3, abs=0.12)
    assert r_(fv, a12) == pytest.approx(0.45, abs=0.12)
    assert r_(fv, a04) == pytest.approx(-0.45, abs=0.12)
    # The programmed responses carry the felt state more cleanly than the measured ones.
    assert r_(fa, -r["alpha_suppression"]) < r_(fa, alpha) < 0


def test_fast_paths_equal_the_reference_implementations():
    from scipy import signal

    from acquisition.trials.grid import to_grid
    from acquisition.trials.modalities import _grid_many, welch

    rng = np.random.default_rng(5)
    for shape in ((4, 1250), (3, 251), (2, 90)):
        x = rng.normal(0, 10, shape)
        n = min(250, shape[1])
        f1, p1 = signal.welch(x, fs=250.0, nperseg=n, noverlap=n // 2, axis=-1)
        f2, p2 = welch(x, 250.0)
        np.testing.assert_allclose(f1, f2)
        np.testing.assert_allclose(p1, p2, rtol=1e-10, atol=1e-12)
    # Irregular 30 Hz frames with a hole, onto a 60 Hz grid: column by column the same.
    t = np.sort(rng.uniform(0, 6, 180))
    t = t[(t < 2.0) | (t > 2.6)]
    v = rng.uniform(0, 5, (len(t), 5))
    grid = -0.5 + np.arange(400) / 60.0
    many = _grid_many(t, v, grid, 0.1)
    for j in range(5):
        ref, _ = to_grid(t, v[:, j], grid, 0.1)
        np.testing.assert_allclose(many[j], ref, equal_nan=True)
    assert np.isnan(many[:, (grid > 2.1) & (grid < 2.5)]).all()


def test_a_lagging_optional_role_is_waited_for_briefly_never_for_the_grace():
    from acquisition.aligner import OPTIONAL_WAIT_S

    s = sim(device_set="full", n_trials=1, lead_in=2.0, isi=8.0)
    cfg = parse_config({})
    acq = Acquisition(bind_roles(s.streams), cfg, catalogue=s.catalogue)
    eeg_key = acq.plan.roles["eeg"].spec.key
    onset = s.ground_truth()[0]["onset"]
    end = onset + cfg.trial.duration
    for block in s.iter_blocks(0.25):
        if block.t_end > end + 0.5:
            break
        for c in block.chunks:  # the EEG stops 1 s before the window's end
            if c.stream.key != eeg_key or c.timestamps[0] < end - 1.0:
                acq.write(c)
        for key, buf in acq.buffers.items():
            if key != eeg_key:
                buf.watermark = max(buf.watermark, block.t_end)
        if block.t_end < end:
            assert acq.poll(block.t_end) == []
    assert acq.poll(end + 0.1) == []  # required roles are in; the EEG gets a moment
    events = acq.poll(end + OPTIONAL_WAIT_S + 0.01)
    (trial,) = [e.trial for e in events if isinstance(e, TrialEvent)]
    assert trial.quality.complete and "cut without the end of optional eeg" in trial.quality.notes
    assert 0.7 < trial.quality.coverage["eeg"] < 0.85 and trial.eeg is not None


@pytest.mark.lsl
@pytest.mark.timeout(90)
def test_live_eeg_and_face_over_lsl_and_emoeye_streams(uid, capsys):
    """Real outlets: a labelled 8-electrode EEG with a trigger channel, an unlabelled EEG (not
    bound), an OpenFace-layout stream with a tracking loss, markers. `emoeye streams` reports
    both roles as plausible; the live acquisition cuts trials carrying both."""
    import time

    import pylsl

    from acquisition.lsl.live import LiveAcquisition, discover
    from emoeye.cli import main

    def outlet(name, type_, labels, rate, sid, n=None, fmt=pylsl.cf_float32):
        info = pylsl.StreamInfo(name, type_, n or len(labels), rate, fmt, sid)
        if labels:
            chans = info.desc().append_child("channels")
            for label in labels:
                chans.append_child("channel").append_child_value("label", label)
        return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)

    eeg_labels = ("Fp1", "Fp2", "F3", "F4", "Cz", "Pz", "O1", "O2", "TRIGGER")
    face_spec = PRESETS["openface"][0]
    sids = {k: f"{k}-{uid}" for k in ("eeg", "raw", "face", "mk")}
    outs = {
        "eeg": outlet(f"Cap-{uid}", "EEG", eeg_labels, 250.0, sids["eeg"]),
        "raw": outlet(f"Raw-{uid}", "EEG", (), 250.0, sids["raw"], n=4),
        "face": outlet(f"OpenFace-{uid}", "FacialAU", face_spec.channel_labels, 30.0, sids["face"]),
        "mk": outlet(f"Stim-{uid}", "Markers", ("m",), 0.0, sids["mk"], fmt=pylsl.cf_string),
    }
    cfg = parse_config({"trial": {"required_roles": ["eeg", "face"], "grace": 1.0}})
    visible = discover(5.0, list(sids.values()))
    live = LiveAcquisition(cfg, streams=visible, rebind=False)
    live.start()
    assert live.wait_connected(10.0)
    time.sleep(0.5)
    rng = np.random.default_rng(3)
    try:
        assert set(live.plan.roles) == {"eeg", "face", "markers"}
        assert "binds only by config" in live.plan.unbound[sids["raw"]]
        now = pylsl.local_clock()
        t = np.arange(-14.0, 0, 1 / 250.0)
        eeg = rng.normal(0, 8, (len(t), 9)) + 15 * np.sin(2 * np.pi * 10 * t)[:, None]
        eeg[:, 8] = 0.0  # the trigger channel: not EEG, never read
        tf = np.arange(-14.0, 0, 1 / 30.0)
        face = np.zeros((len(tf), len(face_spec.channel_labels)))
        face[:, :17] = rng.uniform(0, 1, (len(tf), 17))
        face[:, 17], face[:, 18] = 0.95, 1.0
        lost = (tf > -12.5) & (tf < -11.5)  # a second without the face
        face[lost, :17], face[lost, 17], face[lost, 18] = 0.0, 0.05, 0.0
        for key, rows, ts in (("eeg", eeg, t), ("face", face, tf)):
            for k in range(0, len(ts), 50):
                outs[key].push_chunk(rows[k : k + 50].tolist(), (now + ts[k : k + 50]).tolist())
        outs["raw"].push_chunk(rng.normal(size=(250, 4)).tolist())
        onsets = (now - 13.0, now - 7.0)
        for i, t0 in enumerate(onsets):
            outs["mk"].push_sample([f"onset:img_02{i}"], t0)
        trials = []
        end = time.monotonic() + 15.0
        while len(trials) < 2 and time.monotonic() < end:
            trials += [e.trial for e in live.poll(wait=0.05) if isinstance(e, TrialEvent)]
    finally:
        live.stop()
        del live
    assert len(trials) == 2
    first, second = trials
    for trial in trials:
        assert trial.eeg.channels == ("Fp1", "Fp2", "F3", "F4", "Cz", "Pz", "O1", "O2")
        assert trial.eeg.asymmetry_pair == "F4/F3" and trial.quality.coverage["eeg"] > 0.9
    assert first.quality.face["tracked"] == pytest.approx(0.8, abs=0.03)  # 1 s of 5 lost
    assert second.quality.face["tracked"] == 1.0
    # `emoeye streams` names both readings and judges them.
    feeder_end = pylsl.local_clock() + 6.0

    def feed():
        while pylsl.local_clock() < feeder_end:
            outs["eeg"].push_chunk(rng.normal(0, 10, (25, 9)).tolist())
            outs["face"].push_chunk(face[:3].tolist())
            time.sleep(0.1)

    import threading

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    try:
        code = main(["streams", "--json", "--timeout", "1.5", "--sample", "2"])
        report = json.loads(capsys.readouterr().out)
    finally:
        th.join(10)
    assert code == 1  # gaze, GSR and HR (required by default) are not there
    assert report["readings"]["eeg"]["plausible"] == "ok", report["readings"]["eeg"]
    assert report["readings"]["face"]["plausible"] == "ok", report["readings"]["face"]
    assert "8 channels" in report["readings"]["eeg"]["reading"]
    outs.clear()  # outlets after the inlets
