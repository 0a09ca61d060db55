import pytest

from acquisition.config import ConfigError, RoleRule, load_config, parse_config
from acquisition.lsl.binding import bind_roles
from acquisition.lsl.presets import DEVICE_SETS, PRESETS, preset_streams
from acquisition.streams import StreamSpec


def specs(device_set: str) -> list[StreamSpec]:
    return [ps.spec(f"sid-{i}") for i, ps in enumerate(preset_streams(DEVICE_SETS[device_set]))]


@pytest.mark.parametrize("device_set", list(DEVICE_SETS))
def test_every_device_set_binds_all_roles(device_set):
    plan = bind_roles(specs(device_set))
    assert plan.missing() == [], plan.explain()


def test_hr_prefers_intervals_over_ecg():
    plan = bind_roles(specs("pupil-polar"))
    assert plan.roles["hr"].reading.kind == "hr_intervals"
    assert plan.roles["gaze"].spec.name == "pupil_capture"


def test_missing_role_is_named_with_visible_streams():
    gaze_only = [PRESETS["tobii"][0].spec("t")]
    plan = bind_roles(gaze_only)
    assert plan.missing() == ["gsr", "hr", "markers"]
    text = plan.explain()
    assert "MISSING" in text and "Tobii Pro Eyetracker" in text


def test_generic_stream_types_bind():
    streams = [
        StreamSpec("MyEDA", "EDA", 1, 32.0),
        StreamSpec("Beats", "ECG", 1, 250.0),
        StreamSpec("Stim", "Markers", 1, 0.0, "string"),
    ]
    plan = bind_roles(streams)
    assert plan.roles["gsr"].spec.name == "MyEDA"
    assert plan.roles["hr"].reading.kind == "hr_ecg"
    assert plan.roles["markers"].spec.name == "Stim"


def test_our_own_prediction_outlet_is_never_bound():
    plan = bind_roles([StreamSpec("EmoEye-Predictions", "Markers", 1, 0.0, "string")])
    assert "markers" not in plan.roles


def test_rule_overrides_presets():
    streams = specs("gazepoint") + [PRESETS["polar-h10"][0].spec("ecg")]
    assert bind_roles(streams).roles["hr"].reading.kind == "hr_direct"
    plan = bind_roles(streams, [RoleRule("hr", name="PolarH10.*")])
    assert plan.roles["hr"].reading.kind == "hr_ecg"


def test_rule_with_explicit_columns():
    custom = StreamSpec("Lab tracker", "Gaze", 3, 250.0, channel_labels=("gx", "gy", "pd"))
    rule = RoleRule(
        "gaze", name="Lab tracker", kind="gaze", columns={"x": "gx", "y": "gy", "pupil_left": "pd"}
    )
    plan = bind_roles([custom], [rule])
    assert plan.roles["gaze"].reading.columns["x"] == "gx"


def test_config_parses_and_names_bad_keys(tmp_path):
    good = tmp_path / "ok.toml"
    good.write_text(
        """
participant = "P07"
buffer_seconds = 40
[trial]
duration = 4.0
grid_rate = 50
[markers]
onset = '^show (?P<stimulus>\\w+)$'
scale = [1, 9]
[roles.hr]
type = "RR"
preset = "polar-h10"
"""
    )
    cfg = load_config(good)
    assert cfg.trial.duration == 4.0 and cfg.trial.n_samples == 200
    assert cfg.markers.parse("show beach").stimulus_id == "beach"
    assert cfg.markers.scale == (1.0, 9.0)
    assert cfg.rules[0].preset == "polar-h10" and cfg.participant == "P07"
    bad = {
        "[trial]\nduration = 'long'": "trial.duration",
        "[trial]\nwindow = 5": "trial.window",
        "[markers]\nonset = '(unclosed'": "markers.onset",
        "[markers]\nonset = 'no group'": "markers",
        "[roles.emg]\ntype = 'EMG'": "roles.emg",
        "[roles.face.columns]\nsmile = 'x'": "roles.face.columns.smile",
        "[roles.eeg.params]\nunit = 'nV'": "roles.eeg.params.unit",
        "[roles.gaze]\npreset = 'acme'": "roles.gaze.preset",
        "buffer_seconds = 2": "buffer_seconds",
        "[colours]\nx = 1": "colours",
    }
    for text, key in bad.items():
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config(__import__("tomllib").loads(text))
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "broken.toml").write_text("[trial\n")
        load_config(tmp_path / "broken.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
