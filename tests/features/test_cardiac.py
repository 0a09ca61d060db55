"""Heart features: heart-rate change on the grid; beats, rate and RMSSD from a raw ECG/PPG as
neurokit2 computes them on the same samples."""

from __future__ import annotations

import neurokit2 as nk
import numpy as np
import pytest

from features import cardiac
from features.table import Options, recording_features


def test_hr_change_is_window_mean_minus_baseline():
    rate, nb = 60.0, 60
    t = (np.arange(nb + 300) - nb) / rate
    hr = np.where(t > 0.4, 67.0, 70.0)
    f, note = cardiac.hr_features(hr, rate, nb)
    assert note == "" and f["hr_baseline"] == 70.0 and f["hr_mean"] == 67.0
    assert f["hr_change"] == pytest.approx(-3.0)
    f, note = cardiac.hr_features(np.where(t < 0, np.nan, hr), rate, nb)
    assert np.isnan(f["hr_change"]) and "no baseline" in note


def test_a_short_ecg_gives_beats_and_rate_but_no_rmssd():
    rate = 130.0
    ecg = nk.ecg_simulate(duration=6, sampling_rate=int(rate), heart_rate=72, random_state=1)
    t = np.arange(len(ecg)) / rate - 1.0
    f, note = cardiac.wave_features(t, ecg, rate, "ecg")
    assert note == "" and f["wave_kind"] == "ecg"
    assert 6 <= f["wave_beats"] <= 8
    assert f["wave_hr_mean"] == pytest.approx(72, abs=4)
    assert np.isnan(f["hrv_rmssd"]) and "too few for RMSSD" in f["hrv_note"]


def test_a_long_enough_ecg_gives_neurokit2s_rmssd():
    rate = 130.0
    ecg = nk.ecg_simulate(duration=15, sampling_rate=int(rate), heart_rate=70, random_state=2)
    t = np.arange(len(ecg)) / rate - 1.0
    f, _ = cardiac.wave_features(t, ecg, rate, "ecg")
    _, info = nk.ecg_process(ecg, sampling_rate=rate)
    peaks = info["ECG_R_Peaks"]
    assert len(peaks) >= cardiac.HRV_MIN_BEATS and f["wave_beats"] == len(peaks)
    expected = nk.hrv_time(peaks, sampling_rate=rate)["HRV_RMSSD"].iloc[0]
    assert f["hrv_rmssd"] == pytest.approx(expected, rel=1e-9) and f["hrv_note"] == ""


def test_a_ppg_gives_pulse_peaks_and_rate():
    rate = 64.0
    ppg = nk.ppg_simulate(duration=6, sampling_rate=int(rate), heart_rate=70, random_state=3)
    t = np.arange(len(ppg)) / rate - 1.0
    f, note = cardiac.wave_features(t, ppg, rate, "ppg")
    _, info = nk.ppg_process(ppg, sampling_rate=rate)
    assert note == "" and f["wave_kind"] == "ppg" and f["wave_beats"] == len(info["PPG_Peaks"])
    assert 5 <= f["wave_beats"] <= 8 and f["wave_hr_mean"] == pytest.approx(70, abs=5)


def test_a_flat_or_too_short_waveform_is_nan_with_a_reason():
    f, note = cardiac.wave_features(np.arange(100) / 130.0, np.zeros(100), 130.0, "ppg")
    assert np.isnan(f["wave_beats"]) and "under 2 s" in note


@pytest.mark.timeout(300)
def test_table_matches_neurokit2_on_the_recorded_ecg(recordings):
    """Tolerance 1e-9: the table gives nk.ecg_process the ECG samples of the trial's span
    (onset - baseline to onset + duration) as recorded."""
    from emoeye.commands.common import open_recording

    rec = recording_features(recordings["lab"], Options())
    source = open_recording(recordings["lab"])
    ecg = next(s for s in source.xdf_streams if s.spec.type == "ECG")
    rate = ecg.spec.nominal_srate
    assert rec.rows
    for row in rec.rows:
        assert row["wave_kind"] == "ecg" and row["hr_source"] == "hr_intervals"
        sel = (ecg.timestamps >= row["onset"] - 1.0) & (ecg.timestamps < row["onset"] + 5.0)
        x = ecg.values(dtype=np.float64)[sel, 0]
        signals, info = nk.ecg_process(x, sampling_rate=rate)
        t = ecg.timestamps[sel] - row["onset"]
        assert row["wave_beats"] == len(info["ECG_R_Peaks"]) >= 4
        bpm = signals["ECG_Rate"].to_numpy()
        assert row["wave_hr_mean"] == pytest.approx(bpm[t >= 0.5].mean(), abs=1e-9)
        assert row["wave_hr_baseline"] == pytest.approx(bpm[t < 0].mean(), abs=1e-9)
        # The simulated heart: neurokit2's rate and the RR stream's agree within a few bpm.
        assert row["wave_hr_mean"] == pytest.approx(row["hr_mean"], abs=8)
        assert np.isnan(row["hrv_rmssd"]) and "too few for RMSSD" in row["hrv_note"]
