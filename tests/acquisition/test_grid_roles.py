import numpy as np

from acquisition.lsl.presets import PRESETS
from acquisition.lsl.reading import beats_to_hr, detect_beats, extract
from acquisition.trials.grid import fill_gaps, to_grid
from acquisition.trials.scanpath import render_scanpath


def test_to_grid_downsamples_and_marks_gaps():
    t = np.arange(0, 2, 1 / 1200)
    v = np.sin(2 * np.pi * 0.5 * t)
    v[(t > 0.8) & (t < 1.2)] = np.nan  # a 400 ms hole
    grid = np.arange(0, 2, 1 / 60)
    out, has = to_grid(t, v, grid, max_gap=0.1)
    ok = has & np.isfinite(out)
    assert np.allclose(out[ok], np.sin(2 * np.pi * 0.5 * grid[ok]), atol=0.02)
    inside = (grid > 0.805) & (grid < 1.195)  # bins wholly inside the hole
    around = (grid > 0.79) & (grid < 1.21)
    assert not has[inside].any() and has[~around & (grid < 1.9)].all()


def test_to_grid_interpolates_sparse_streams():
    t = np.arange(0, 5, 0.25)  # 4 Hz GSR
    grid = np.arange(0, 4.5, 1 / 60)
    out, has = to_grid(t, 2 * t, grid, max_gap=0.75)
    assert has.all()
    assert np.allclose(out, 2 * grid, atol=1e-9)


def test_fill_gaps():
    x = np.array([np.nan, 1.0, np.nan, 3.0, np.nan])
    assert fill_gaps(x).tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert fill_gaps(np.full(3, np.nan)).tolist() == [0.0, 0.0, 0.0]


def _stream(preset, idx=0):
    ps = PRESETS[preset][idx]
    return ps, ps.spec("sid")


def test_gazepoint_pupil_is_mean_of_valid_eyes_only():
    ps, spec = _stream("gazepoint")
    #        FPOGX FPOGY FPOGV LPMM LPMMV RPMM RPMMV GSR HR
    rows = np.array(
        [
            [0.5, 0.5, 1, 4.0, 1, 5.0, 1, 3, 70],
            [0.5, 0.5, 1, 4.0, 1, 9.0, 0, 3, 70],  # right invalid: pupil = left only
            [0.5, 0.5, 0, 0.0, 0, 0.0, 0, 3, 70],  # blink
        ]
    )
    out = extract(ps.readings[0], spec, np.arange(3.0), rows)
    assert out.column("pupil")[0] == 4.5
    assert out.column("pupil")[1] == 4.0
    assert np.isnan(out.column("pupil")[2]) and np.isnan(out.column("x")[2])
    assert out.column("valid").tolist() == [1, 1, 0]


def test_tobii_binocular_gaze_and_offscreen():
    ps, spec = _stream("tobii")
    rows = np.array(
        [
            [0.2, 0.4, 0.4, 0.6, 3.0, 3.4, 1, 1],
            [0.2, 0.4, 0.4, 0.6, 3.0, 3.4, 0, 1],
            [2.0, 2.0, 2.0, 2.0, 3.0, 3.4, 1, 1],  # off screen
        ]
    )
    out = extract(ps.readings[0], spec, np.arange(3.0), rows)
    assert np.allclose(out.column("x")[:2], [0.3, 0.4])
    assert np.allclose(out.column("pupil")[:2], [3.2, 3.4])
    assert out.column("valid").tolist() == [1, 1, 0]


def test_pupil_labs_flips_y_and_uses_confidence():
    ps, spec = _stream("pupil-labs")
    rows = np.array([[0.9, 0.3, 0.2, 4.0, 4.2], [0.1, 0.3, 0.2, 4.0, 4.2]])
    out = extract(ps.readings[0], spec, np.arange(2.0), rows)
    assert np.isclose(out.column("y")[0], 0.8)
    assert out.column("valid").tolist() == [1, 0]


def test_hr_from_rr_intervals_ms():
    ps, spec = _stream("polar-h10", 1)
    out = extract(
        ps.readings[0], spec, np.array([1.0, 2.0, 3.0]), np.array([[1000.0], [750.0], [5.0]])
    )
    assert out.column("hr").tolist() == [60.0, 80.0]  # 5 ms is implausible: dropped


def test_hr_from_synthetic_ecg():
    fs, bpm = 130.0, 72.0
    t = np.arange(0, 10, 1 / fs)
    beats = np.arange(0.3, 10, 60 / bpm)
    ecg = sum(1000 * np.exp(-0.5 * ((t - b) / 0.012) ** 2) for b in beats)
    ecg = ecg + np.random.default_rng(0).normal(0, 20, len(t))
    found = detect_beats(t, ecg, fs, "hr_ecg")
    _, hr = beats_to_hr(found)
    assert abs(len(found) - len(beats)) <= 1
    assert np.allclose(np.median(hr), bpm, atol=2)


def test_scanpath_image():
    x = np.linspace(0.1, 0.9, 300)
    y = np.full(300, 0.5)
    img = render_scanpath(x, y, 64)
    assert img.shape == (2, 64, 64) and img[0].max() == 1.0
    row = img[1, 32]
    assert row[55] > row[10] > 0  # later points brighter
    assert render_scanpath(np.full(5, np.nan), np.full(5, np.nan)).sum() == 0


def test_cached_filtfilt_equals_scipy():
    from scipy import signal

    from acquisition.lsl.reading import _band_filter, _filtfilt

    x = np.random.default_rng(1).normal(size=900)
    for kind, fs in (("hr_ecg", 130.0), ("hr_ppg", 64.0)):
        sos, zi = _band_filter(kind, fs)
        assert np.allclose(_filtfilt(sos, zi, x), signal.sosfiltfilt(sos, x), atol=1e-12)
