"""The aligner and acquisition core driven with plain chunks (no LSL): edge cases of trials."""

import numpy as np
import pytest

from acquisition.aligner import RatingEvent, TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.core import Acquisition, MissingRoleError
from acquisition.lsl.binding import bind_roles
from acquisition.lsl.presets import PRESETS
from acquisition.markers import MarkerParser
from acquisition.streams import Chunk
from acquisition.trials.types import TrialSpec

GP = PRESETS["gazepoint"][0].spec("gp")
MK = PRESETS["psychopy"][0].spec("mk")
RR = PRESETS["polar-h10"][1].spec("rr")


def gazepoint_chunk(t0: float, t1: float, rate: float = 60.0, pupil: float = 4.0) -> Chunk:
    ts = np.arange(t0, t1, 1 / rate)
    n = len(ts)
    v = np.column_stack(
        [
            0.5 + 0.1 * np.sin(ts),
            np.full(n, 0.5),
            np.ones(n),
            np.full(n, pupil),
            np.ones(n),
            np.full(n, pupil),
            np.ones(n),
            5.0 + 1e-5 * np.sin(ts),  # a real GSR moves; a constant one reads as flat-lined
            np.full(n, 70.0),
        ]
    )
    return Chunk(GP, ts, v)


def markers(*items: tuple[float, str]) -> Chunk:
    ts = np.array([t for t, _ in items], dtype=float)
    vals = np.array([[m] for _, m in items], dtype=object)
    return Chunk(MK, ts, vals)


def make(spec: TrialSpec | None = None, streams=(GP, MK)) -> Acquisition:
    cfg = AcquisitionConfig(trial=spec or TrialSpec())
    return Acquisition(bind_roles(list(streams)), cfg)


def trials_of(events):
    return [e.trial for e in events if isinstance(e, TrialEvent)]


def test_trial_cut_when_watermark_passes_end():
    acq = make()
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 14.9))
    assert trials_of(acq.poll(now=14.9)) == []
    acq.write(gazepoint_chunk(14.9, 15.1))
    (trial,) = trials_of(acq.poll(now=15.1))
    assert trial.stimulus_id == "coffee" and trial.trial_id == "1"
    assert trial.signals.shape == (5, 360) and np.isfinite(trial.signals).all()
    assert trial.quality.coverage == {"gaze": 1.0, "gsr": 1.0, "hr": 1.0}
    assert trial.quality.complete and trial.quality.gaze_valid == 1.0
    assert np.allclose(trial.baseline[2:], [4.0, 5.0, 70.0])
    assert trial.scanpath.shape == (2, 64, 64)


def test_overlapping_trials_share_data():
    acq = make()
    acq.write(markers((10.0, "onset:coffee"), (12.0, "onset:moon"), (13.5, "onset:rocket")))
    acq.write(gazepoint_chunk(0, 20))
    trials = trials_of(acq.poll(now=20))
    assert [t.stimulus_id for t in trials] == ["coffee", "moon", "rocket"]
    assert np.allclose(trials[1].signals[:, :60], trials[0].signals[:, 120:180], atol=1e-4)


def test_onset_before_streams_start_is_cut_with_missing_part_marked():
    acq = make()
    acq.write(markers((1.0, "onset:coffee")))
    acq.write(gazepoint_chunk(3.0, 10))
    (trial,) = trials_of(acq.poll(now=10))
    assert 0.55 < trial.quality.coverage["gaze"] < 0.65
    assert trial.quality.gaps["gaze"] >= 1
    assert not trial.mask[0, 60:150].any() and trial.mask[0, 200:].all()


def test_early_marker_is_kept_pending_not_dropped():
    acq = make()
    acq.write(gazepoint_chunk(0, 5))
    acq.write(markers((30.0, "onset:coffee")))  # arrives long before its data
    assert trials_of(acq.poll(now=5)) == [] and acq.aligner.pending == 1
    acq.write(gazepoint_chunk(5, 36))
    assert len(trials_of(acq.poll(now=36))) == 1


def test_duplicate_onsets_deduped_on_timestamp():
    acq = make()
    acq.write(markers((10.0, "onset:coffee"), (10.0, "onset:coffee"), (10.5, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 20))
    assert len(trials_of(acq.poll(now=20))) == 2
    assert acq.aligner.stats.duplicates == 1


def test_grace_timeout_cuts_incomplete_trial():
    acq = make(TrialSpec(grace=1.0))
    acq.write(markers((10.0, "onset:coffee")))
    assert acq.poll(now=10.1) == []
    acq.write(gazepoint_chunk(0, 13))  # device dies at 13 s
    assert trials_of(acq.poll(now=15.5)) == []
    (trial,) = trials_of(acq.poll(now=16.1))
    assert not trial.quality.complete
    assert any("grace" in n for n in trial.quality.notes)
    assert 0.55 < trial.quality.coverage["gaze"] < 0.65
    assert acq.aligner.stats.incomplete == 1


def test_rating_attaches_to_preceding_trial():
    acq = make()
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 16))
    (trial,) = trials_of(acq.poll(now=16))
    acq.write(markers((16.5, "rating:arousal=6;valence=2")))
    events = acq.poll(now=17)
    (rating,) = [e for e in events if isinstance(e, RatingEvent)]
    assert rating.trial_id == trial.trial_id and trial.ratings.arousal == 6
    assert trial.ratings.classes() == (5, 1)


def test_rating_without_onset_is_counted_not_attached():
    acq = make()
    acq.write(markers((3.0, "rating:arousal=6;valence=2"), (4.0, "hello world")))
    acq.write(gazepoint_chunk(0, 5))
    assert acq.poll(now=5) == []
    assert acq.aligner.stats.ratings_orphaned == 1 and acq.aligner.stats.ignored == 1


def test_status_markers_are_skipped_and_only_unknown_ones_are_a_problem():
    """presenter:/video: status markers are skipped by design: counted as ignored,
    not reported to the experimenter as unknown markers (a video session showed every clip's
    marker as a marker problem)."""
    acq = make()
    sent = ["video:start:clip-01", "presenter:abort", "hello world", "video:start:clip-02"]
    acq.write(markers(*((1.0 + k, v) for k, v in enumerate(sent))))
    acq.write(gazepoint_chunk(0, 7))
    assert acq.poll(now=7) == []
    stats = acq.aligner.stats
    assert stats.ignored == 4 and stats.unknown_markers == 1
    assert stats.marker_problems() == "markers: 1 unknown markers"


def test_unknown_stimulus_is_cut_with_note():
    acq = make()
    acq.write(markers((10.0, "onset:not_a_picture")))
    acq.write(gazepoint_chunk(0, 16))
    (trial,) = trials_of(acq.poll(now=16))
    assert "unknown stimulus" in " ".join(trial.quality.notes)
    assert acq.aligner.stats.unknown_stimulus == 1


def test_nan_and_blinks_marked_not_propagated():
    acq = make()
    acq.write(markers((10.0, "onset:coffee")))
    chunk = gazepoint_chunk(0, 16)
    blink = (chunk.timestamps > 11.0) & (chunk.timestamps < 11.2)
    chunk.values[blink, 2:7] = 0  # Gazepoint blink: invalid, pupil 0
    chunk.values[(chunk.timestamps > 12) & (chunk.timestamps < 12.3), 7] = np.nan  # GSR NaN run
    acq.write(chunk)
    (trial,) = trials_of(acq.poll(now=16))
    assert np.isfinite(trial.signals).all()
    assert trial.quality.blinks == 1
    assert trial.quality.gaze_valid < 1.0
    assert trial.quality.coverage["gsr"] == 1.0  # the stream delivered samples...
    assert 0.9 < trial.quality.usable["gsr"] < 0.97  # ...but 0.3 s of them were NaN
    assert trial.quality.usable["gaze"] < 1.0  # pupil lost during the blink


def test_irregular_hr_stream_and_missing_role_error():
    with pytest.raises(MissingRoleError, match="markers"):
        make(streams=(GP,))
    spec = TrialSpec()
    # Gaze+GSR from Gazepoint, HR from a Polar RR stream: RR outranks nothing here since the
    # direct HR channel wins, so bind HR explicitly through a config rule.
    from acquisition.config import RoleRule

    cfg = AcquisitionConfig(trial=spec, rules=[RoleRule("hr", type="RR")])
    acq = Acquisition(bind_roles([GP, MK, RR], cfg.rules), cfg)
    assert acq.roles["hr"].spec.type == "RR"
    beats = np.arange(0.5, 20, 0.8)
    acq.write(Chunk(RR, beats, np.full((len(beats), 1), 800.0)))
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 20))
    (trial,) = trials_of(acq.poll(now=20))
    assert np.allclose(trial.window[4], 75.0)


def test_flush_cuts_pending_at_shutdown():
    acq = make()
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 12))
    (trial,) = trials_of(acq.flush())
    assert not trial.quality.complete


def test_int_marker_codes():
    parser = MarkerParser(int_codes={3: "coffee"})
    assert parser.parse(3).stimulus_id == "coffee"
    assert parser.parse(4) is None and parser.unknown == {"4": 1}
    assert MarkerParser().parse(np.int32(2)).stimulus_id == "2"


def test_onset_listener_called_before_window_closes():
    acq = make()
    seen = []
    acq.aligner.onset_listeners.append(lambda *a: seen.append(a))
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 11))
    assert acq.poll(now=11) == []
    assert seen == [("1", 10.0, "coffee")] and acq.aligner.last_onset == seen[0]


def test_grace_runs_from_a_late_markers_arrival():
    acq = make(TrialSpec(grace=1.0))
    acq.write(gazepoint_chunk(0, 13))
    acq.write(markers((10.0, "onset:coffee")))  # marker seen only at 20 s
    assert acq.poll(now=20.0) == []
    acq.write(gazepoint_chunk(13, 20.5))  # the data in flight still arrives in time
    (trial,) = trials_of(acq.poll(now=20.5))
    assert trial.quality.complete


def test_onsets_closer_than_min_interval_are_dropped_and_counted(caplog):
    acq = make()
    # Every 50 ms for 1 s (a script sending the onset each frame), then an overlapping trial.
    flood = [(10.0 + 0.05 * k, "onset:coffee") for k in range(20)]
    acq.write(markers(*flood, (12.0, "onset:moon")))
    acq.write(gazepoint_chunk(0, 20))
    trials = trials_of(acq.poll(now=20))
    assert [(t.onset, t.stimulus_id) for t in trials] == [(10.0, "coffee"), (12.0, "moon")]
    st = acq.aligner.stats
    assert st.dropped == {"onset_too_close": 19} and st.onsets == 2
    assert st.markers == st.onsets + st.duplicates + st.ignored + sum(st.dropped.values())
    # Reported on the 1st and 10th drop, not 19 times; and in one line for the views.
    assert sum("dropped" in r.message for r in caplog.records) == 2
    assert st.marker_problems() == "markers: 19 onset too close"


def test_min_onset_interval_configurable(tmp_path):
    from acquisition.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text("[markers]\nmin_onset_interval = 0\n")
    assert load_config(path).markers.min_onset_interval == 0.0
    path.write_text("[markers]\nmin_onset_interval = -1\n")
    with pytest.raises(ConfigError, match="markers.min_onset_interval"):
        load_config(path)


def test_second_rating_does_not_overwrite_a_pending_trials_first():
    acq = make()
    acq.write(
        markers(
            (10.0, "onset:coffee"),
            (11.0, "rating:arousal=6;valence=2"),  # before the window closed
            (11.5, "rating:arousal=1;valence=1"),  # no unrated trial before it
        )
    )
    acq.write(gazepoint_chunk(0, 20))
    (trial,) = trials_of(acq.poll(now=20))
    assert (trial.ratings.arousal, trial.ratings.valence) == (6, 2)
    st = acq.aligner.stats
    assert st.ratings_attached == 1 and st.ratings_orphaned == 1


def test_repeated_problems_are_told_on_the_1st_10th_100th():
    from acquisition.reporting import is_milestone

    assert [n for n in range(-1, 10_001) if is_milestone(n)] == [1, 10, 100, 1000, 10_000]


def errors_of(events):
    return [e.error for e in events if isinstance(e, TrialEvent) and e.error is not None]


def fail_on_call(fn, calls: set[int], exc: BaseException):
    """``fn`` that raises ``exc`` on the given 1-based calls (fault injection)."""
    count = [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] in calls:
            raise exc
        return fn(*args, **kwargs)

    return wrapped


# A stage of the cut, the name to patch, and the calls to fail for the 2nd of 3 trials.
CUT_STAGES = {
    "cut": ("acquisition.aligner.cut_trial", {2}),
    "grid": ("acquisition.trials.cut.to_grid", {6}),  # 5 channels per trial: the 2nd's first
    "quality": ("acquisition.trials.cut._gaze_quality", {2}),
    "scanpath": ("acquisition.trials.cut.render_scanpath", {2}),
}


@pytest.mark.parametrize("stage", sorted(CUT_STAGES))
def test_a_cut_that_raises_becomes_an_error_record_for_its_onset(stage, monkeypatch, caplog):
    """Fault at one stage of the 2nd of 3 cuts: every onset still gives exactly one event, the
    failed one an error record with the reason and exception type; its rating attaches."""
    import importlib

    target, calls = CUT_STAGES[stage]
    module, name = target.rsplit(".", 1)
    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, name, fail_on_call(getattr(mod, name), calls, KeyError("hr")))
    acq = make()
    acq.write(markers((10.0, "onset:coffee"), (20.0, "onset:moon"), (30.0, "onset:rocket")))
    acq.write(markers((26.0, "rating:arousal=5;valence=3")))  # rates the 2nd (failed) trial
    acq.write(gazepoint_chunk(0, 40))
    events = acq.poll(now=40)
    trial_events = [e for e in events if isinstance(e, TrialEvent)]
    assert [e.trial_id for e in trial_events] == ["1", "2", "3"]
    assert [e.ok for e in trial_events] == [True, False, True]
    (error,) = errors_of(events)
    assert error.reason == "cut failed: KeyError: 'hr'" and error.exc_type == "KeyError"
    assert (error.onset, error.stimulus_id, error.stage) == (20.0, "moon", "cut")
    assert (error.ratings.arousal, error.ratings.valence) == (5, 3)
    st = acq.aligner.stats
    assert (st.onsets, st.trials_cut, st.trials_failed, st.ratings_orphaned) == (3, 2, 1, 0)
    assert acq.aligner.pending == 0
    (logged,) = [r for r in caplog.records if "cut failed" in r.getMessage()]
    assert logged.exc_info and "trial 2" in logged.getMessage()


def test_onset_leaves_pending_only_once_its_record_exists(monkeypatch):
    """An exception that is not turned into a record (Ctrl-C inside a cut) leaves the onset
    pending: the next poll or the flush still cuts it."""
    import acquisition.aligner as aligner_module

    monkeypatch.setattr(
        aligner_module,
        "cut_trial",
        fail_on_call(aligner_module.cut_trial, {1}, KeyboardInterrupt()),
    )
    acq = make()
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 16))
    with pytest.raises(KeyboardInterrupt):
        acq.poll(now=16)
    assert acq.aligner.pending == 1
    (trial,) = trials_of(acq.flush())
    assert trial.trial_id == "1" and acq.aligner.pending == 0


def test_every_cut_failing_is_logged_once_with_traceback_then_at_milestones(monkeypatch, caplog):
    import acquisition.aligner as aligner_module

    def broken(*args, **kwargs):
        raise KeyError("stream 'E4_Hr' has no channel '' (channels: hr)")

    monkeypatch.setattr(aligner_module, "cut_trial", broken)
    acq = make()
    acq.write(markers(*((10.0 + 6 * i, f"onset:s{i}") for i in range(12))))
    acq.write(gazepoint_chunk(0, 100))
    events = acq.poll(now=100)
    assert len(errors_of(events)) == 12 and acq.aligner.stats.trials_failed == 12
    logged = [r for r in caplog.records if "cut failed" in r.getMessage()]
    assert [bool(r.exc_info) for r in logged] == [True, False]
    assert "10 such cut failures" in logged[1].getMessage()


def test_trial_event_holds_a_trial_or_an_error():
    with pytest.raises(ValueError, match="exactly one"):
        TrialEvent()


def test_missing_optional_role_is_a_note_not_a_zero():
    """A lab without GSR requires gaze and HR only: the unbound GSR role does not zero the
    score, is noted, and the trial is predictable."""
    from acquisition.trials.cut import cut_trial

    acq = make()
    acq.write(gazepoint_chunk(0, 20))
    spec = TrialSpec(required_roles=("gaze", "hr"))
    roles = {r: acq.roles[r] for r in ("gaze", "hr")}
    trial = cut_trial("1", 10.0, "coffee", roles, spec)
    q = trial.quality
    assert q.unbound == ["gsr"] and q.required == ["gaze", "hr"]
    assert q.score == pytest.approx(1.0) and trial.predictable
    assert "gsr not bound (optional role)" in q.notes
    assert q.causes(0.5) == []
    # The same stream layout with GSR required: unbound, so not predictable, and said so.
    required = cut_trial("1", 10.0, "coffee", roles, TrialSpec())
    assert not required.predictable
    assert required.quality.unusable == ["gsr: no stream bound"]
    assert "gsr not bound" in required.quality.causes(0.5)
    assert not any("optional" in n for n in required.quality.notes)


def test_flag_causes_list_each_low_figure():
    from acquisition.trials.types import TrialQuality

    q = TrialQuality(
        coverage={"gaze": 0.9, "gsr": 0.3, "hr": 0.45},
        gaze_valid=0.2,
        required=["gaze", "gsr", "hr"],
    )
    assert q.score == pytest.approx(0.3 * 0.2)
    assert q.causes(0.5) == ["gaze valid 0.20", "gsr coverage 0.30", "hr coverage 0.45"]
    only_product = TrialQuality(coverage={"gaze": 0.7}, gaze_valid=0.7, required=["gaze"])
    assert only_product.score < 0.5
    assert only_product.causes(0.5) == ["gaze coverage 0.70", "gaze valid 0.70"]


def test_trial_without_data_is_not_predictable_and_counted():
    """No data in any channel: cut (a record), but not predictable, with a reason per role."""
    acq = make()
    acq.write(markers((50.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 20))  # the device stopped long before the onset
    (trial,) = trials_of(acq.flush())
    assert not trial.predictable and not trial.mask.any()
    assert trial.quality.unusable == [
        "gaze: usable data 0.00 < min_coverage 0.5",
        "gsr: usable data 0.00 < min_coverage 0.5",
        "hr: usable data 0.00 < min_coverage 0.5",
    ]
    assert acq.aligner.stats.no_data == 1
    assert trial.summary()["quality"]["unusable"] == trial.quality.unusable


def test_min_coverage_sets_the_threshold_per_required_role():
    acq = make(TrialSpec(min_coverage=0.7))
    acq.write(markers((10.0, "onset:coffee"), (30.0, "onset:moon")))
    acq.write(gazepoint_chunk(0, 13.0))  # 3 of 5 s: coverage 0.6
    acq.write(gazepoint_chunk(24.0, 40))
    first, second = trials_of(acq.poll(now=40))
    assert not first.predictable and second.predictable
    assert all("< min_coverage 0.7" in r for r in first.quality.unusable)
    relaxed = make(TrialSpec(min_coverage=0.5))
    relaxed.write(markers((10.0, "onset:coffee")))
    relaxed.write(gazepoint_chunk(0, 13.0))
    (trial,) = trials_of(relaxed.flush())
    assert trial.predictable


def test_min_coverage_config_key(tmp_path):
    from acquisition.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text("[trial]\nmin_coverage = 0.8\nrequired_roles = ['gaze', 'hr']\n")
    cfg = load_config(path)
    assert cfg.trial.min_coverage == 0.8 and TrialSpec().min_coverage == 0.5
    path.write_text("[trial]\nmin_coverage = 0\n")
    assert load_config(path).trial.min_coverage == 0.0
    path.write_text("[trial]\nmin_coverage = 1.5\n")
    with pytest.raises(ConfigError, match="trial.min_coverage.*0..1"):
        load_config(path)


def test_stimulus_ids_match_by_file_name_stem_or_case(tmp_path):
    from PIL import Image

    from acquisition.stimulus_catalogue import StimulusCatalogue

    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "img_022.jpg")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "Beach_01.PNG")
    cat = StimulusCatalogue(tmp_path)
    for sid in ("img_022", "img_022.jpg", "IMG_022.JPG", "stimuli/img_022.jpg", "img_022.JPG"):
        assert sid in cat and cat.get(sid).path == tmp_path / "img_022.jpg", sid
    for sid in ("Beach_01", "beach_01", "beach_01.png", "Beach_01.PNG"):
        assert cat.get(sid).id == "Beach_01", sid
    assert "coffee.jpg" in cat  # the bundled set too
    assert "img_023.jpg" not in cat and "" not in cat and None not in cat
    red = cat.image_hwc("img_022.jpg", 4)[0, 0]
    assert red[0] > 200 and red[2] < 50  # the red picture, read through its file name
    # Trials naming files are known stimuli: no "unknown stimulus" note, nothing counted.
    cfg = AcquisitionConfig(trial=TrialSpec(), stimulus_folder=tmp_path)
    acq = Acquisition(bind_roles([GP, MK]), cfg)
    acq.write(markers((10.0, "onset:img_022.jpg")))
    acq.write(gazepoint_chunk(0, 16))
    (trial,) = trials_of(acq.poll(now=16))
    assert trial.stimulus_id == "img_022.jpg" and acq.aligner.stats.unknown_stimulus == 0


def test_a_role_that_cannot_be_read_is_named_in_the_error_record(monkeypatch):
    """The reported live bug: reading HR raised KeyError for every trial."""
    acq = make()
    reader = acq.roles["hr"]

    def broken(t0, t1):
        raise KeyError("stream 'E4_Hr' has no channel '' (channels: hr)")

    monkeypatch.setattr(reader, "read", broken)
    acq.write(markers((10.0, "onset:coffee")))
    acq.write(gazepoint_chunk(0, 16))
    (error,) = errors_of(acq.poll(now=16))
    assert error.role == "hr" and error.exc_type == "KeyError"
    assert error.reason == (
        "cut failed: KeyError: \"stream 'E4_Hr' has no channel '' (channels: hr)\" "
        "(reading role hr)"
    )
    assert error.summary()["role"] == "hr"


def test_presenter_status_markers_are_not_unknown():
    from acquisition.markers import MarkerParser

    parser = MarkerParser()
    assert parser.parse("presenter:abort") is None
    assert parser.unknown_total == 0
    assert parser.parse("something else") is None and parser.unknown_total == 1
