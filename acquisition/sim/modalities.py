"""The simulated participant's EEG and face (docs/modalities.md, "The simulator").

EEG (32 electrodes of a 10-20 cap, µV)
    A 1/f background (white noise through a fixed FIR filter whose amplitude falls as
    ``1/sqrt(f)``: power as 1/f), a posterior-dominant alpha rhythm at the participant's alpha
    frequency, suppressed during each picture in proportion to felt arousal (alpha
    desynchronisation: Klimesch 1999; Schubring & Schupp 2019), frontal alpha that shifts to the
    right hemisphere with pleasant felt valence (so ``ln F4α - ln F3α`` rises: Davidson 1992;
    Coan & Allen 2004), blink artefacts at frontal sites during the gaze stream's blinks
    (largest at Fp1/Fp2), and 50 Hz line noise.

Face (OpenFace 2.0 layout, intensities 0-5)
    Idle intensities per participant; during each picture AU12 (lip corner puller) and AU6
    (cheek raiser) grow with pleasant felt valence, AU4 (brow lowerer) with unpleasant valence,
    all scaled up with felt arousal (Larsen, Norris & Cacioppo 2003; Höfling et al. 2020);
    AU45 is the gaze stream's blinks; tracking drops out now and then (``success`` 0,
    ``confidence`` low, intensities 0, as OpenFace sends).

Everything is a function of data time, with noise seeded per block of samples, so any segment
is generated on its own and identical for any block size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acquisition.lsl.presets import EEG_32, OPENFACE_AUS
from acquisition.sim.physiology import Drift

EEG_RATE = 250.0


@dataclass(frozen=True)
class ExtraResponseModel:
    """Effect sizes of the felt state on EEG and face, tuned so that, pooled over the trials of
    10 participants and measured through the trial cutter's features, r(felt arousal, posterior
    alpha power change) ~ -0.3, r(felt valence, frontal alpha asymmetry) ~ 0.3, r(felt valence,
    AU12 change) ~ 0.45 and r(felt valence, AU4 change) ~ -0.45
    (``tests/acquisition/test_modalities.py::test_eeg_and_face_effect_sizes``; sources in
    docs/modalities.md)."""

    alpha_uv: float = 9.0
    """Posterior alpha amplitude at rest (µV, sine amplitude)."""
    alpha_erd: float = 0.15
    """Alpha lost during any picture (event-related desynchronisation)."""
    alpha_arousal: float = 0.45
    """Extra alpha lost at the highest felt arousal (share)."""
    alpha_var: float = 0.12
    """Trial-to-trial sd of the alpha suppression."""
    asymmetry: float = 0.15
    """Frontal alpha amplitude is multiplied by ``exp(asymmetry * valence)`` on the right and
    divided by it on the left (valence -1..1), so ``ln F4α - ln F3α`` (power) changes by
    ``4 * asymmetry * valence``."""
    asymmetry_var: float = 0.15
    """Trial-to-trial sd of the asymmetry shift."""
    background_uv: float = 10.0
    """RMS of the 1/f background (µV)."""
    blink_uv: float = 150.0
    """Blink artefact at Fp1/Fp2 (µV)."""
    line_uv: tuple[float, float] = (1.0, 4.0)
    """Range of 50 Hz line-noise amplitudes over electrodes (µV)."""
    au_smile: float = 1.6
    """AU12 at the most pleasant felt valence and middle arousal (0-5 intensity)."""
    au_frown: float = 1.4
    """AU4 at the most unpleasant felt valence and middle arousal."""
    au_arousal: float = 0.5
    """Expressions grow by this share from middle to highest felt arousal (shrink below)."""
    au_var: float = 0.6
    """Trial-to-trial sd (log scale) of expression intensity."""
    au_spontaneous: float = 0.8
    """Mean (exponential) of expression that is not about the picture, per trial and unit."""
    au_noise: float = 0.12
    """Frame-to-frame measurement noise of each intensity."""
    dropout_rate: float = 1 / 40.0
    """Tracking losses per second."""
    dropout_s: tuple[float, float] = (0.3, 1.5)
    """Range of their durations, s."""


def _gain(name: str, weights: dict[str, float]) -> float:
    """Weight of an electrode by its name's region (longest matching prefix)."""
    low = name.lower()
    for prefix in sorted(weights, key=len, reverse=True):
        if low.startswith(prefix):
            return weights[prefix]
    return 0.0


_ALPHA_TOPO = {"o": 1.0, "po": 1.0, "p": 0.85, "cp": 0.6, "tp": 0.45, "c": 0.5, "t": 0.4,
               "fc": 0.45, "f": 0.5, "af": 0.45, "fp": 0.4}  # fmt: skip
_BLINK_TOPO = {"fp": 1.0, "af": 0.6, "f": 0.35, "fc": 0.15, "ft": 0.1, "c": 0.05, "t": 0.05}


def _side(name: str) -> int:
    """+1 right hemisphere (even number), -1 left (odd), 0 midline."""
    digits = "".join(ch for ch in name if ch.isdigit())
    if not digits:
        return 0
    return 1 if int(digits) % 2 == 0 else -1


def _frontal(name: str) -> bool:
    return name.lower().rstrip("0123456789z").lower() in ("fp", "af", "f", "fc", "ft")


def _pink_taps(fs: float, n: int = 251) -> np.ndarray:
    """FIR taps whose amplitude falls as 1/sqrt(f) above 1 Hz (power as 1/f), 0 at DC."""
    from scipy import signal

    freq = np.concatenate([[0.0, 0.5], np.geomspace(1.0, fs / 2, 24)])
    gain = np.concatenate([[0.0, 0.7], 1.0 / np.sqrt(np.geomspace(1.0, fs / 2, 24))])
    taps = signal.firwin2(n, freq, gain, fs=fs)
    return taps / np.sqrt((taps**2).sum())  # unit output sd from unit white noise


class ExtraBody:
    """EEG and face signals of a :class:`~acquisition.sim.simulator.Simulation`.

    Parameters
    ----------
    sim
        The simulation (its trials, felt states, blinks and participants).
    model
        Effect sizes.
    """

    def __init__(self, sim, model: ExtraResponseModel | None = None) -> None:
        self.sim = sim
        self.model = m = model or ExtraResponseModel()
        cfg = sim.config
        rng = np.random.default_rng([cfg.seed, 11])
        n_p = cfg.participants
        n = len(sim._t_onset)
        an, vn = sim._an, sim._vn
        # EEG
        self.alpha_freq = rng.uniform(9.0, 11.5, n_p)
        self.alpha_gain = rng.lognormal(0.0, 0.25, n_p)
        self.alpha_topo = np.array([_gain(c, _ALPHA_TOPO) for c in EEG_32])
        self.alpha_phase = rng.uniform(0, 2 * np.pi, len(EEG_32))
        self.blink_topo = np.array([_gain(c, _BLINK_TOPO) for c in EEG_32])
        self.side = np.array([_side(c) if _frontal(c) else 0 for c in EEG_32], float)
        self.line_amp = rng.uniform(*m.line_uv, len(EEG_32))
        self.line_phase = rng.uniform(0, 2 * np.pi, len(EEG_32))
        self.alpha_drift = Drift(rng, 0.3, (3.0, 15.0))
        self.taps = _pink_taps(EEG_RATE)
        self.suppress = np.clip(
            m.alpha_erd + m.alpha_arousal * an + rng.normal(0, m.alpha_var, n), -0.3, 0.9
        )
        self.shift = m.asymmetry * vn + rng.normal(0, m.asymmetry_var, n)
        # Face
        self.au_idle = rng.uniform(0.05, 0.35, (n_p, len(OPENFACE_AUS)))
        scale = (1.0 + m.au_arousal * (2 * an - 1)) * rng.lognormal(0.0, m.au_var, n)
        spont = rng.exponential(m.au_spontaneous, (2, n)) if m.au_spontaneous > 0 else 0 * an
        self.smile = m.au_smile * np.clip(vn, 0, None) * scale + spont[0]
        self.frown = m.au_frown * np.clip(-vn, 0, None) * scale + spont[1]
        self.surprise = 0.4 * an * rng.lognormal(0.0, m.au_var, n)  # brows, lids with arousal
        k = rng.poisson(m.dropout_rate * sim.duration) if m.dropout_rate > 0 else 0
        d0 = np.sort(rng.uniform(sim.start_time, sim.end_time, k))
        d1 = d0 + rng.uniform(*m.dropout_s, k)
        keep = np.ones(k, bool)
        keep[1:] = d0[1:] > d1[:-1]
        self.dropouts = (d0[keep], d1[keep])

    # ------------------------------------------------------------------ time courses

    def _course(self, t: np.ndarray, amps: np.ndarray, rise: float, fall: float) -> np.ndarray:
        """Sum over trials of ``amp`` times a plateau: rising ``rise`` s after onset, held
        while the picture is on, decaying over ``fall`` s."""
        sim = self.sim
        on = sim._t_onset
        hold = sim.config.picture_seconds
        if len(t) == 0:
            return np.zeros(0)
        lo = np.searchsorted(on, t[0] - hold - 6 * fall)
        hi = np.searchsorted(on, t[-1], side="right")
        if hi <= lo:
            return np.zeros(len(t))
        tau = t[:, None] - on[lo:hi]
        up = 1.0 - np.exp(-np.clip(tau, 0.0, None) / rise)
        down = np.exp(-np.clip(tau - hold, 0.0, None) / fall)
        return (up * down * (tau >= 0)) @ amps[lo:hi]

    def _blink_wave(self, t: np.ndarray) -> np.ndarray:
        """0..1 eyelid closure during the gaze stream's blinks (a raised sine)."""
        b0, b1 = self.sim._blinks
        i = np.searchsorted(b0, t, side="right") - 1
        ok = i >= 0
        ic = np.clip(i, 0, None)
        inside = ok & (t < b1[ic]) if len(b0) else np.zeros(len(t), bool)
        out = np.zeros(len(t))
        if inside.any():
            frac = (t[inside] - b0[ic[inside]]) / (b1[ic[inside]] - b0[ic[inside]])
            out[inside] = np.sin(np.pi * frac) ** 2
        return out

    def tracking(self, t: np.ndarray) -> np.ndarray:
        """True where the face is tracked (outside the dropouts)."""
        d0, d1 = self.dropouts
        i = np.searchsorted(d0, t, side="right") - 1
        if not len(d0):
            return np.ones(len(t), bool)
        return ~((i >= 0) & (t < d1[np.clip(i, 0, None)]))

    # ------------------------------------------------------------------ signals

    def _background(self, t: np.ndarray, noise: float) -> np.ndarray:
        """(n, 32) 1/f background at the regular sample times ``t`` (250 Hz grid)."""
        cfg = self.sim.config
        start = self.sim.start_time
        k = np.round((t - start) * EEG_RATE).astype(np.int64)
        block = int(EEG_RATE)
        b0, b1 = int(k[0] // block) - 1, int(k[-1] // block)
        white = np.concatenate(
            [
                np.random.default_rng([cfg.seed, 200, b + 1]).normal(0, 1, (block, len(EEG_32)))
                for b in range(b0, b1 + 1)
            ]
        )
        from scipy import signal

        pink = signal.oaconvolve(white, self.taps[:, None], mode="full", axes=0)
        idx = k - b0 * block
        return self.model.background_uv * noise * pink[idx]

    def eeg(self, t: np.ndarray, noise: float) -> np.ndarray:
        """(n, 32) µV at the sample times ``t`` (a 250 Hz grid)."""
        m, sim = self.model, self.sim
        n = len(t)
        if n == 0:
            return np.zeros((0, len(EEG_32)))
        p = sim._participant(t)
        amp = m.alpha_uv * self.alpha_gain[p] * (1.0 + self.alpha_drift(t))
        sup = np.clip(self._course(t, self.suppress, 0.3, 0.6), -0.5, 0.95)
        shift = self._course(t, self.shift, 0.4, 0.8)
        frontal = self.side != 0
        topo = self.alpha_topo[None, :] * np.where(
            frontal[None, :], np.exp(self.side[None, :] * shift[:, None]), 1.0
        )
        # Posterior alpha is suppressed with arousal; frontal alpha carries the asymmetry.
        posterior = ~frontal
        gain = np.where(posterior[None, :], (1.0 - sup)[:, None], 1.0 - 0.3 * sup[:, None])
        phase = 2 * np.pi * self.alpha_freq[p][:, None] * t[:, None] + self.alpha_phase[None, :]
        out = (amp[:, None] * gain * topo) * np.sin(phase)
        out += m.blink_uv * self._blink_wave(t)[:, None] * self.blink_topo[None, :]
        out += self.line_amp * np.sin(2 * np.pi * 50.0 * t[:, None] + self.line_phase)
        if noise > 0:
            out += self._background(t, noise)
        return out

    def face(self, t: np.ndarray, rng, noise: float) -> dict[str, np.ndarray]:
        """OpenFace 2.0 columns (``AU01_r``... ``confidence``, ``success``) at times ``t``."""
        sim = self.sim
        n = len(t)
        p = sim._participant(t)
        smile = self._course(t, self.smile, 0.6, 1.0)
        frown = self._course(t, self.frown, 0.6, 1.0)
        surprise = self._course(t, self.surprise, 0.3, 0.8)
        drive = {"AU12": smile, "AU06": 0.6 * smile, "AU04": frown, "AU07": 0.3 * frown,
                 "AU01": surprise, "AU02": 0.8 * surprise, "AU05": 0.6 * surprise}  # fmt: skip
        ok = self.tracking(t)
        cols = {}
        blink = 3.0 * self._blink_wave(t)
        for j, au in enumerate(OPENFACE_AUS):
            v = (
                self.au_idle[p, j]
                + drive.get(au, 0.0)
                + noise * rng.normal(0, self.model.au_noise, n)
            )
            if au == "AU45":
                v = v + blink
            cols[f"{au}_r"] = np.where(ok, np.clip(v, 0.0, 5.0), 0.0)
        cols["confidence"] = np.where(ok, rng.uniform(0.85, 0.98, n), rng.uniform(0.0, 0.2, n))
        cols["success"] = ok.astype(float)
        return cols

    def responses(self) -> dict[str, np.ndarray]:
        """Per trial, the programmed responses: posterior alpha suppression (share), frontal
        asymmetry shift (``ln F4α - ln F3α``, change), AU12 and AU4 peak intensities."""
        return {
            "alpha_suppression": self.suppress.copy(),
            "asymmetry_shift": 4.0 * self.shift,
            "au12": self.smile.copy(),
            "au04": self.frown.copy(),
        }
