"""Binding and reading of device layouts the presets do not describe (pure: StreamSpec objects)."""

import re
import tomllib

import numpy as np
import pytest

from acquisition.config import ConfigError, RoleRule, parse_config
from acquisition.lsl.binding import bind_roles, describe_reading
from acquisition.lsl.presets import PRESETS, RoleReading
from acquisition.lsl.reading import extract, regular_signal
from acquisition.streams import StreamSpec


def one(name, type_, rate=4.0, labels=(), n=1, fmt="float32"):
    return StreamSpec(name, type_, n, rate, fmt, f"sid-{name}", tuple(labels))


MARKERS = one("Stim", "Markers", 0.0, fmt="string")


# ------------------------------------------------------------------ single-channel streams


@pytest.mark.parametrize(
    ("type_", "labels", "role", "kind"),
    [
        ("HR", ("hr",), "hr", "hr_direct"),  # the E4_Hr stream of the lost session
        ("HR", (), "hr", "hr_direct"),
        ("HeartRate", ("bpm_value",), "hr", "hr_direct"),
        ("GSR", ("EDA",), "gsr", "gsr"),
        ("EDA", (), "gsr", "gsr"),
        ("EDA", ("temperature",), "gsr", "gsr"),  # mislabelled: the type decides
        ("ECG", ("Lead II",), "hr", "hr_ecg"),
        ("PPG", ("ppg_green",), "hr", "hr_ppg"),
        ("BVP", (), "hr", "hr_ppg"),
        ("RR", ("rri",), "hr", "hr_intervals"),
        ("IBI", (), "hr", "hr_intervals"),
    ],
)
def test_single_channel_stream_binds_by_type_whatever_its_label(type_, labels, role, kind):
    spec = one("Dev", type_, labels=labels)
    plan = bind_roles([spec, MARKERS])
    cand = plan.roles[role]
    assert cand.spec is spec and cand.reading.kind == kind
    assert list(cand.reading.columns.values()) == [0]  # channel 0 by index, never by label
    assert spec.key not in plan.unbound


def test_e4_hr_stream_reads_without_key_error():
    spec = one("E4_Hr", "HR", 1.0, ("hr",))
    reading = bind_roles([spec]).roles["hr"].reading
    out = extract(reading, spec, np.arange(3.0), np.array([[70.0], [72.0], [400.0]]))
    assert out.column("hr")[:2].tolist() == [70.0, 72.0] and np.isnan(out.column("hr")[2])


def test_rr_and_ibi_units():
    rr = bind_roles([one("H10", "RR", 0.0)]).roles["hr"].reading
    ibi = bind_roles([one("E4", "IBI", 0.0, ("x",))]).roles["hr"].reading
    assert rr.params["interval_unit"] == "ms" and ibi.params["interval_unit"] == "s"


# ------------------------------------------------------------------ multi-channel streams


def test_two_channel_unlabelled_gaze_is_gaze_only():
    tobii_4c = one("Tobii 4C", "Gaze", 90.0, n=2)
    plan = bind_roles([tobii_4c, MARKERS])
    assert plan.roles["gaze"].reading.columns == {"x": 0, "y": 1}
    assert "gsr" not in plan.roles and "hr" not in plan.roles  # not the gazepoint preset
    out = extract(plan.roles["gaze"].reading, tobii_4c, np.arange(2.0), np.array([[0.2, 0.7]] * 2))
    assert out.column("x").tolist() == [0.2, 0.2] and out.column("y").tolist() == [0.7, 0.7]


def test_two_channel_labelled_gaze_by_label_or_not_at_all():
    named = one("G", "Gaze", 60.0, ("gaze_y", "gaze_x"), n=2)
    assert bind_roles([named]).roles["gaze"].reading.columns == {"x": "gaze_x", "y": "gaze_y"}
    vague = one("G", "Gaze", 60.0, ("a", "b"), n=2)
    plan = bind_roles([vague])
    assert "gaze" not in plan.roles
    assert "do not say which channel is x" in plan.unbound[vague.key]


@pytest.mark.parametrize(("type_", "n"), [("PPG", 16), ("Gaze", 9), ("GSR", 3), ("ECG", 8)])
def test_unlabelled_multichannel_stream_is_not_bound_and_says_why(type_, n):
    spec = one("Dev", type_, 100.0, n=n)
    plan = bind_roles([spec, MARKERS])
    assert set(plan.roles) == {"markers"}
    why = plan.unbound[spec.key]
    assert f"{n} unlabelled channels" in why and "[roles." in why
    assert "Not bound:" in plan.explain() and why in plan.explain()


def test_labelled_multichannel_stream_binds_the_channel_named_like_its_type():
    spec = one("Wrist", "PPG", 64.0, ("acc_x", "acc_y", "acc_z", "PPG", "temp"), n=5)
    assert bind_roles([spec]).roles["hr"].reading.columns == {"signal": "PPG"}
    unclear = one("Wrist", "PPG", 64.0, ("green", "red", "ir"), n=3)
    plan = bind_roles([unclear])
    assert "hr" not in plan.roles and "green, red, ir" in plan.unbound[unclear.key]


def test_string_stream_of_a_numeric_type_is_not_bound():
    spec = one("Odd", "GSR", 0.0, fmt="string")
    plan = bind_roles([spec])
    assert "gsr" not in plan.roles and "read as numbers" in plan.unbound[spec.key]


def test_unknown_type_is_listed_with_a_reason():
    emg = one("Cap", "EMG", 500.0, n=32)
    plan = bind_roles([emg])
    assert "type 'EMG' is not one EmoEye reads" in plan.unbound[emg.key]
    # EEG is read by type, but an unlabelled one only by config (docs/modalities.md).
    eeg = one("Cap", "EEG", 500.0, n=32)
    plan = bind_roles([eeg])
    assert "eeg" not in plan.roles and "binds only by config" in plan.unbound[eeg.key]


def test_preset_needs_its_labels():
    # A 9-channel Gaze stream with other labels is not the Gazepoint, whatever its channel count.
    spec = one("Tracker", "Gaze", 60.0, tuple("abcdefghi"), n=9)
    plan = bind_roles([spec])
    assert plan.roles == {} and spec.key in plan.unbound
    gp = PRESETS["gazepoint"][0].spec("gp")
    assert set(bind_roles([gp]).roles) == {"gaze", "gsr", "hr"}


def test_stream_that_lost_to_another_says_so():
    e4 = one("E4_Hr", "HR", 1.0, ("hr",))
    ppg = one("Bvp", "BVP", 64.0)
    plan = bind_roles([e4, ppg])
    assert plan.roles["hr"].spec is e4
    assert "could play hr (hr_ppg" in plan.unbound[ppg.key] and "'E4_Hr'" in plan.unbound[ppg.key]


# ------------------------------------------------------------------ rules and columns


def test_stream_left_out_by_a_rule_says_so():
    gp = PRESETS["gazepoint"][0].spec("gp")
    ecg = PRESETS["polar-h10"][0].spec("ecg")
    plan = bind_roles([gp, ecg], [RoleRule("gaze", name="nothing-here")])
    assert "gaze" not in plan.roles and plan.roles["hr"].spec is gp
    assert "could play hr (hr_ecg" in plan.unbound[ecg.key]
    plan = bind_roles([ecg], [RoleRule("hr", name="nothing-here")])
    assert plan.unbound[ecg.key] == "a config rule decides hr"


def test_rule_with_index_columns_reads_distinct_channels():
    spec = one("Lab", "Gaze", 250.0, n=3)
    rule = RoleRule("gaze", name="Lab", kind="gaze", columns={"x": 0, "y": 1, "pupil": 2})
    reading = bind_roles([spec], [rule]).roles["gaze"].reading
    out = extract(reading, spec, np.arange(2.0), np.array([[0.1, 0.9, 3.5], [0.2, 0.8, 3.6]]))
    assert out.column("x").tolist() == [0.1, 0.2] and out.column("y").tolist() == [0.9, 0.8]
    assert out.column("pupil").tolist() == [3.5, 3.6]


def test_rule_naming_a_missing_channel_is_not_bound():
    spec = one("Lab", "Gaze", 250.0, n=2)
    for cols in ({"x": "gx", "y": "gy"}, {"x": 0, "y": 2}):
        plan = bind_roles([spec], [RoleRule("gaze", name="Lab", kind="gaze", columns=cols)])
        assert "gaze" not in plan.roles
        assert "is not a channel of the stream" in plan.unbound[spec.key]


def test_rule_without_column_on_a_multichannel_stream_says_which_key():
    spec = one("Ring", "PPG", 100.0, n=16)
    plan = bind_roles([spec], [RoleRule("hr", name="Ring", kind="hr_ppg")])
    assert "set columns.signal" in plan.unbound[spec.key]
    rule = RoleRule("hr", name="Ring", kind="hr_ppg", columns={"signal": 5})
    plan = bind_roles([spec], [rule])
    assert plan.roles["hr"].reading.columns == {"signal": 5}
    assert describe_reading(plan.roles["hr"].reading, spec).startswith("signal = channel 5")


def test_rule_preset_on_a_single_channel_stream_keeps_its_params():
    spec = one("Strap", "RR", 0.0, ("value",))
    reading = bind_roles([spec], [RoleRule("hr", name="Strap", preset="polar-h10")]).roles["hr"]
    assert reading.reading.columns == {"interval": 0}
    assert reading.reading.params["interval_unit"] == "ms"


def test_unlabelled_stream_has_no_channel_by_label():
    spec = one("Lab", "Gaze", 250.0, n=2)
    label = RoleReading("gaze", "gaze", {"x": "gx", "y": "gy"})
    with pytest.raises(KeyError, match="no channel 'gx'"):  # never silently channel 0
        extract(label, spec, np.zeros(1), np.zeros((1, 2)))
    bad = RoleReading("gsr", "gsr", {"gsr": 4})
    with pytest.raises(KeyError, match=r"no channel 4 \(channels 0\.\.1\)"):
        extract(bad, spec, np.zeros(1), np.zeros((1, 2)))


def _cfg(text: str):
    return parse_config(tomllib.loads(text))


def test_config_columns_by_label_or_index():
    cfg = _cfg(
        """
[roles.gaze]
name = "Tobii 4C"
kind = "gaze"
[roles.gaze.columns]
x = 0
y = "gy"
valid_left = 2
pupil_valid_right = "pv"
[roles.gaze.params]
screen = [1920, 1080]
flip_y = true
[roles.gsr]
type = "EDA"
columns = { gsr = 3 }
"""
    )
    gaze, gsr = cfg.rules
    assert gaze.columns == {"x": 0, "y": "gy", "valid_left": 2, "pupil_valid_right": "pv"}
    assert gaze.params == {"screen": (1920, 1080), "flip_y": True}
    assert gsr.kind == "gsr" and gsr.columns == {"gsr": 3}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[roles.gaze]\nkind = "gaze"\ncolumns = { x = -1, y = 1 }', "roles.gaze.columns.x"),
        ('[roles.gaze]\nkind = "gaze"\ncolumns = { x = true, y = 1 }', "roles.gaze.columns.x"),
        ('[roles.gaze]\nkind = "gaze"\ncolumns = { x = 0.5, y = 1 }', "roles.gaze.columns.x"),
        ('[roles.gaze]\nkind = "gaze"\ncolumns = { x = "", y = 1 }', "roles.gaze.columns.x"),
        ('[roles.gaze]\nkind = "gaze"\ncolumns = { x = 0, z = 1 }', "roles.gaze.columns.z"),
        ('[roles.gaze]\nkind = "gaze"\ncolumns = { x = 0 }', "roles.gaze.columns"),
        ("[roles.hr]\ncolumns = { signal = 0 }", "roles.hr.kind"),
        ('[roles.hr]\nkind = "hr_ppg"\ncolumns = { hr = 0 }', "roles.hr.columns.hr"),
        ('[roles.gsr]\nkind = "hr_ppg"', "roles.gsr.kind"),
        ("[roles.gaze]\ncolumns = 3", "roles.gaze.columns"),
        ("[roles.gaze.params]\nscreen = [1920]", "roles.gaze.params.screen"),
        ("[roles.gaze.params]\nzoom = 2", "roles.gaze.params.zoom"),
        ('[roles.hr.params]\ninterval_unit = "min"', "roles.hr.params.interval_unit"),
        ('[roles.gaze.params]\nflip_y = "yes"', "roles.gaze.params.flip_y"),
    ],
)
def test_config_column_errors_name_the_key(text, key):
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        _cfg(text)


# ------------------------------------------------------------------ irregular ECG/PPG


def _pulses(t: np.ndarray, bpm: float, width: float = 0.1) -> np.ndarray:
    beats = np.arange(0.2, t[-1] + 1, 60 / bpm)
    return sum(np.exp(-0.5 * ((t - b) / width) ** 2) for b in beats)


def test_irregular_ppg_gives_heart_rate():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 12, 12 * 50))  # ~50 Hz on average, jittered, no nominal rate
    t[100:110] = t[100]  # a chunk stamped once
    spec = one("Ring", "PPG", 0.0)
    reading = bind_roles([spec]).roles["hr"].reading
    out = extract(reading, spec, t, _pulses(t, 75.0)[:, None])
    assert len(out) >= 10 and abs(np.median(out.column("hr")) - 75.0) < 3


def test_irregular_ppg_stamped_once_per_chunk_gives_heart_rate():
    true = np.arange(0, 12, 1 / 50)
    stamps = np.ceil(true * 2) / 2  # a 0.5 s chunk at a time, every sample stamped at its end
    spec = one("Ring", "PPG", 0.0)
    out = extract(
        bind_roles([spec]).roles["hr"].reading, spec, stamps, _pulses(true, 80.0)[:, None]
    )
    assert len(out) >= 10 and abs(np.median(out.column("hr")) - 80.0) < 2


def test_spread_repeated_stamps():
    from acquisition.lsl.reading import _spread_repeated

    ts = np.array([1.0, 1, 1, 2, 2, 2, 2, 2.5, 3, 3])
    out = _spread_repeated(ts)
    assert out.tolist() == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 2.75, 3.0]
    out = _spread_repeated(np.r_[ts, 9.0, 9.0])  # after a silence: at the usual pace
    assert out[-2] > 8.5 and out[-1] == 9.0 and np.all(np.diff(out) > 0)
    plain = np.arange(5.0)
    assert _spread_repeated(plain) is plain


def test_regular_signal_keeps_regular_streams_and_marks_holes():
    t = np.arange(0, 2, 1 / 130)
    x = np.sin(t)
    same = regular_signal(t, x, 130.0)
    assert same[0] is t and same[2] == 130.0
    hole = np.r_[np.arange(0, 1, 0.02), np.arange(2, 3, 0.02)]
    ts, v, rate = regular_signal(hole, np.ones(len(hole)), 0.0)
    assert rate == 64.0 and np.isclose(ts[1] - ts[0], 1 / 64)
    inside = (ts > 0.98 + 1e-9) & (ts < 2.0 - 1e-9)  # between the last and the next sample
    assert np.isnan(v[inside]).all() and np.isfinite(v[~inside]).all()


def test_the_documented_config_examples_parse():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.S)
    assert len(blocks) >= 2
    rules = [r for block in blocks for r in _cfg(block).rules]
    assert any(r.columns == {"x": 0, "y": 1} for r in rules)
