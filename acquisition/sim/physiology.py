"""Physiology of the simulated participant: the felt state per trial and the responses it drives.

The generative model (documented with its sources in docs/models.md, "The simulator")::

    felt      = picture norm + participant offset + mood drift + habituation + fatigue + noise
    responses = f(felt): pupil dilation and SCR grow with felt arousal, heart rate decelerates
                with unpleasant felt valence, gaze dwells longer and spreads wider
    rating    = participant scale use (slope, bias) applied to felt + response noise, rounded

Response shapes are the usual textbook ones: a pupil dilation rising ~0.5-1.5 s after onset, a
skin-conductance response peaking ~2-3 s after onset with slow recovery, a heart-rate change that
peaks ~2.5 s after onset (Bradley et al. 2001, 2008; Boucsein 2012).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCALE = (1.0, 7.0)
"""Rating scale of the simulated ratings."""


@dataclass(frozen=True)
class FeltModel:
    """How the felt state of a trial departs from the picture's norm, and how it is rated.

    Attributes
    ----------
    offset_sd
        Participant offsets (arousal, valence): temperament, how the picture set suits them.
    mood_sd, mood_ar
        Mood drift: an AR(1) process over a participant's trials (stationary sd, lag-1 weight).
    habituation
        Felt arousal lost per earlier viewing of the same picture (up to three viewings).
    fatigue
        Felt arousal lost from the first to the last trial of a session.
    trial_sd
        Trial-level deviation no other term explains (arousal, valence).
    slope_sd
        Log-normal sd of how much of the scale a participant uses around its middle.
    bias_sd
        Participant rating bias (arousal, valence), scale points.
    """

    offset_sd: tuple[float, float] = (0.45, 0.4)
    mood_sd: tuple[float, float] = (0.3, 0.35)
    mood_ar: float = 0.9
    habituation: float = 0.25
    fatigue: float = 0.6
    trial_sd: tuple[float, float] = (0.55, 0.5)
    slope_sd: float = 0.15
    bias_sd: tuple[float, float] = (0.4, 0.4)


@dataclass(frozen=True)
class ResponseModel:
    """Size and trial-to-trial variability of each response (tuned so that, pooled over the
    trials of 20 participants, r(felt arousal, SCR amplitude) ~ 0.4, r(felt arousal, pupil
    dilation) ~ 0.3 and r(felt valence, HR change) ~ -0.2, as measured by
    :meth:`acquisition.sim.simulator.Simulation.trial_responses`)."""

    pupil_base: float = 0.05
    pupil_arousal: float = 0.45
    pupil_var: float = 0.37
    scr_base: float = 0.05
    scr_arousal: float = 0.7
    scr_var: float = 0.78
    scr_nonresponse: float = 0.15
    hr_orienting: float = -0.8
    hr_pleasant: float = 1.5
    hr_unpleasant: float = 4.0
    hr_var: float = 6.0
    gain_sd: float = 0.3


def draw_felt(
    norm: np.ndarray,
    participant: np.ndarray,
    trial_index: np.ndarray,
    n_trials: int,
    repeats: np.ndarray,
    rng: np.random.Generator,
    model: FeltModel,
    head: int,
    offsets: np.ndarray,
) -> np.ndarray:
    """Felt arousal (``head=0``) or valence (``head=1``) of every trial, clipped to 1..7.

    Parameters
    ----------
    norm
        The picture's norm per trial.
    participant, trial_index
        0-based participant and position in their session per trial.
    repeats
        Earlier viewings of the same picture by the same participant, per trial.
    offsets
        Participant offsets (one per participant).
    """
    n = len(norm)
    mood = np.zeros(n)
    sd, ar = model.mood_sd[head], model.mood_ar
    innov = rng.normal(0.0, sd * math.sqrt(1 - ar**2), n)
    for i in range(n):  # AR(1) within each participant's session
        first = i == 0 or participant[i] != participant[i - 1]
        mood[i] = rng.normal(0.0, sd) if first else ar * mood[i - 1] + innov[i]
    felt = norm + offsets[participant] + mood + rng.normal(0.0, model.trial_sd[head], n)
    if head == 0:
        felt = felt - model.habituation * np.minimum(repeats, 3)
        felt = felt - model.fatigue * trial_index / max(n_trials - 1, 1)
    else:  # repeated pictures feel less extreme
        felt = 4.0 + (felt - 4.0) * (1.0 - 0.1 * np.minimum(repeats, 3))
    return np.clip(felt, *SCALE)


def rate(felt: np.ndarray, slope: np.ndarray, bias: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Integer ratings 1..7: the participant's scale use applied to the felt state, plus noise."""
    lo, hi = SCALE
    return np.clip(np.round(4.0 + slope * (felt - 4.0) + bias + noise), lo, hi).astype(int)


# --------------------------------------------------------------------------- response shapes


def pupil_shape(tau: np.ndarray, latency: np.ndarray, hold: float) -> np.ndarray:
    """Dilation 0..1: rises after ``latency`` (half-rise ~0.4 s later), held while the picture
    is on, then relaxes."""
    rise = 1.0 - np.exp(-np.clip(tau - latency, 0.0, None) / 0.6)
    fall = np.exp(-np.clip(tau - latency - hold, 0.0, None) / 1.2)
    return rise * fall


_SCR_RISE, _SCR_DECAY = 0.75, 4.0
_SCR_PEAK_T = math.log(_SCR_DECAY / _SCR_RISE) * _SCR_RISE * _SCR_DECAY / (_SCR_DECAY - _SCR_RISE)
_SCR_NORM = math.exp(-_SCR_PEAK_T / _SCR_DECAY) - math.exp(-_SCR_PEAK_T / _SCR_RISE)


def scr_shape(tau: np.ndarray) -> np.ndarray:
    """Skin-conductance response, peak 1 about 2 s after its onset, slow recovery."""
    tau = np.clip(tau, 0.0, None)
    return (np.exp(-tau / _SCR_DECAY) - np.exp(-tau / _SCR_RISE)) / _SCR_NORM


def hr_shape(tau: np.ndarray) -> np.ndarray:
    """Heart-rate change 0..1 peaking 2.5 s after onset, gone after ~8 s."""
    x = np.clip(tau, 0.0, None) / 2.5
    return x**2 * np.exp(2.0 * (1.0 - x))


def ecg_template(dt: np.ndarray) -> np.ndarray:
    """One PQRST complex in µV, ``dt`` seconds from the R peak."""
    waves = (  # (centre s, amplitude µV, width s)
        (-0.16, 120.0, 0.025),
        (-0.03, -120.0, 0.010),
        (0.0, 1100.0, 0.011),
        (0.03, -250.0, 0.010),
        (0.26, 280.0, 0.045),
    )
    out = np.zeros_like(dt)
    for centre, amp, width in waves:
        out += amp * np.exp(-0.5 * ((dt - centre) / width) ** 2)
    return out


def pulse_template(dt: np.ndarray) -> np.ndarray:
    """Peripheral pulse wave 0..~1, ``dt`` seconds after the R peak (systolic peak, then the
    dicrotic wave)."""
    dt = np.where(dt >= 0, dt, np.inf)
    return np.exp(-0.5 * ((dt - 0.26) / 0.07) ** 2) + 0.35 * np.exp(
        -0.5 * ((dt - 0.52) / 0.09) ** 2
    )


class Drift:
    """Slow smooth fluctuation: a few sinusoids of random period and phase (a function of time,
    so any segment can be evaluated on its own)."""

    def __init__(self, rng: np.random.Generator, amp: float, periods: tuple[float, float]):
        self.freq = 1.0 / rng.uniform(*periods, size=4)
        self.phase = rng.uniform(0, 2 * np.pi, size=4)
        self.amp = amp * rng.uniform(0.5, 1.0, size=4) / 2.0

    def __call__(self, t: np.ndarray) -> np.ndarray:
        arg = 2 * np.pi * t[:, None] * self.freq + self.phase
        return np.sin(arg) @ self.amp


def events(t: np.ndarray, times: np.ndarray, amps: np.ndarray, shape, span: float) -> np.ndarray:
    """Sum of ``amp * shape(t - time)`` over events within ``span`` seconds before ``t``."""
    if len(t) == 0:
        return np.zeros(0)
    lo = np.searchsorted(times, t[0] - span)
    hi = np.searchsorted(times, t[-1], side="right")
    if hi <= lo:
        return np.zeros(len(t))
    return shape(t[:, None] - times[lo:hi]) @ amps[lo:hi]
