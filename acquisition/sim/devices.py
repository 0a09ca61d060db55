"""Device encodings: the simulated body's signals written in each preset's layout, units, dtype
and conventions (Gazepoint's 0-for-invalid, Tobii's NaN and per-eye columns, Pupil Labs'
bottom-left origin and confidence, EyeLink pixels and pupil area, E4/Shimmer/Polar heart signals).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from acquisition.lsl.presets import PresetStream

DTYPES = {
    "float32": np.float32,
    "double64": np.float64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "int64": np.int64,
}
"""LSL channel format -> numpy dtype of the simulated samples."""


class Body(Protocol):
    """What the encoders read: true signals at data times ``t``."""

    def gaze(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def pupil(self, t: np.ndarray) -> np.ndarray: ...
    def blinking(self, t: np.ndarray) -> np.ndarray: ...
    def gsr(self, t: np.ndarray) -> np.ndarray: ...
    def heart_rate(self, t: np.ndarray) -> np.ndarray: ...
    def pulse(self, t: np.ndarray) -> np.ndarray: ...
    def ecg(self, t: np.ndarray) -> np.ndarray: ...
    def intervals(self, beat_t: np.ndarray) -> np.ndarray: ...
    def eeg(self, t: np.ndarray, noise: float) -> np.ndarray: ...
    def face(self, t: np.ndarray, rng, noise: float) -> dict[str, np.ndarray]: ...


def encode(body: Body, ps: PresetStream, t: np.ndarray, rng, noise: float) -> np.ndarray:
    """Channel values of one (non-marker) preset stream at data times ``t``."""
    n = len(t)
    if ps.type == "Gaze":
        cols = gaze_columns(body, ps, t, rng, noise)
    elif ps.type == "GSR":
        g = body.gsr(t) + noise * rng.normal(0, 0.01, n)
        cols = {ps.channel_labels[0]: np.clip(g, 0.01, None)}
    elif ps.type == "BVP":  # E4: AC-coupled, arbitrary units around 0
        cols = {"bvp": 80.0 * (body.pulse(t) - 0.4) + noise * rng.normal(0, 3.0, n)}
    elif ps.type == "PPG":  # Shimmer: raw mV with an offset
        cols = {"PPG_A13": 1500.0 + 180.0 * body.pulse(t) + noise * rng.normal(0, 5.0, n)}
    elif ps.type == "ECG":
        cols = {"ECG": body.ecg(t) + noise * rng.normal(0, 15.0, n)}
    elif ps.type == "IBI":
        cols = {"ibi": body.intervals(t)}
    elif ps.type == "RR":
        cols = {"RR": np.round(1000.0 * body.intervals(t))}
    elif ps.type == "EEG":  # µV, one column per electrode of the preset
        eeg = body.eeg(t, noise)
        cols = {label: eeg[:, c] for c, label in enumerate(ps.channel_labels)}
    elif ps.type == "FacialAU":
        cols = body.face(t, rng, noise)
    else:
        raise ValueError(f"no simulation for stream type {ps.type!r}")
    out = np.empty((n, len(ps.channel_labels)), DTYPES.get(ps.channel_format, np.float32))
    for c, label in enumerate(ps.channel_labels):
        out[:, c] = cols[label]
    return out


def gaze_columns(body: Body, ps: PresetStream, t: np.ndarray, rng, noise: float) -> dict:
    """Columns of an eye tracker's stream, by preset."""
    n = len(t)
    gx, gy = body.gaze(t)
    pupil = body.pupil(t)
    ok = ~body.blinking(t)
    eye = rng.normal(0, 1, (6, n)) * noise
    if ps.preset == "gazepoint":
        x = np.where(ok, gx + 0.004 * eye[0], 0.0)
        y = np.where(ok, gy + 0.004 * eye[1], 0.0)
        lp = np.where(ok, pupil + 0.05 + 0.02 * eye[2], 0.0)
        rp = np.where(ok, pupil - 0.05 + 0.02 * eye[3], 0.0)
        hr = body.heart_rate(t)
        gsr = body.gsr(t) + noise * 0.01 * eye[4]
        valid = ok.astype(float)
        return dict(
            FPOGX=x, FPOGY=y, FPOGV=valid, LPMM=lp, LPMMV=valid, RPMM=rp, RPMMV=valid,
            GSR=gsr, HR=hr,
        )  # fmt: skip
    if ps.preset == "tobii":
        nan = np.nan
        cols = {}
        for k, side in enumerate(("left", "right")):
            dx = (-0.004, 0.004)[k]
            cols[f"{side}_gaze_x"] = np.where(ok, gx + dx + 0.004 * eye[2 * k], nan)
            cols[f"{side}_gaze_y"] = np.where(ok, gy + 0.004 * eye[2 * k + 1], nan)
            dp = (0.05, -0.05)[k]
            cols[f"{side}_pupil_diameter"] = np.where(ok, pupil + dp + 0.02 * eye[4 + k], nan)
            cols[f"{side}_validity"] = ok.astype(float)
        return cols
    if ps.preset == "pupil-labs":
        conf = np.where(ok, rng.uniform(0.8, 1.0, n), rng.uniform(0.0, 0.3, n))
        return {
            "confidence": conf,
            "norm_pos_x": gx + 0.005 * eye[0],
            "norm_pos_y": 1.0 - (gy + 0.005 * eye[1]),  # origin bottom-left
            "diameter0_3d": np.where(ok, pupil - 0.05 + 0.03 * eye[2], 0.0),
            "diameter1_3d": np.where(ok, pupil + 0.05 + 0.03 * eye[3], 0.0),
        }
    if ps.preset == "eyelink":  # pixels on 1920x1080, pupil area in arbitrary units
        w, h = 1920.0, 1080.0
        cols = {}
        for k, side in enumerate(("left", "right")):
            cols[f"gx_{side}"] = np.where(ok, (gx + 0.003 * eye[2 * k]) * w, np.nan)
            cols[f"gy_{side}"] = np.where(ok, (gy + 0.003 * eye[2 * k + 1]) * h, np.nan)
            cols[f"pa_{side}"] = np.where(ok, 300.0 * pupil**2 + 10.0 * eye[4 + k], 0.0)
        return cols
    raise ValueError(f"no simulation for gaze preset {ps.preset!r}")
