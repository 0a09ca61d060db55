"""A seeded generative experiment: simulated devices with known ground truth.

Each bundled stimulus has a latent arousal/valence (1..7); each simulated participant has gains
and biases drawn from the seed. Pupil dilation and phasic skin-conductance responses grow with
arousal, heart rate decelerates after unpleasant pictures (and slightly accelerates after pleasant
ones), fixations land on salient regions of the picture actually shown, and blinks, noise,
dropouts and clock offsets are added on demand. Every stream of a device set is produced with
the channel layout, units and rate of its preset, so the simulated devices bind exactly like the
real ones.

Time model
    Participants run one after another on one data timeline starting at
    ``SimulationConfig.start_time``: each has a lead-in, then ``n_trials`` onsets ``isi`` apart.
    Sparse events (fixations, blinks, heart beats, skin-conductance responses) are drawn once for
    the whole session; sampled signals are evaluated on demand in 1-second segments whose noise
    is seeded by (seed, stream, segment), so the output is identical for any block size and an
    hour at 1200 Hz is never held in memory.

The picture fills the screen: gaze (0..1, origin top-left) and picture coordinates coincide, as
the scanpath renderer assumes.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage

from acquisition.lsl.presets import DEVICE_SETS, PresetStream, preset_streams
from acquisition.offline_acquisition import Block
from acquisition.stimulus_catalogue import default_catalogue
from acquisition.streams import Chunk, StreamSpec

SEGMENT = 1.0
"""Seconds of data time generated (and seeded) as one unit."""

SALIENCY_SIZE = 64
"""Side of the saliency map fixations are drawn from."""

SCALE = (1.0, 7.0)
"""Rating scale."""

_DTYPES = {
    "float32": np.float32,
    "double64": np.float64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "int64": np.int64,
}


@dataclass
class SimulationConfig:
    """What to simulate.

    Attributes
    ----------
    device_set
        Key of :data:`acquisition.lsl.presets.DEVICE_SETS`.
    presets
        Preset names to simulate instead of the device set (e.g. add ``"presentation"``).
    participants
        Number of participants, run one after another on the same timeline.
    stimuli
        Stimulus ids (bundled catalogue); None = all. Each participant sees them in their own
        seeded order, repeated when ``n_trials`` exceeds their number.
    n_trials
        Trials per participant; None = number of stimuli.
    isi
        Onset-to-onset interval, seconds (picture, then rating).
    picture_seconds
        How long the picture is shown; None = min(5, 0.625 isi).
    lead_in
        Seconds before each participant's first onset.
    seed
        Everything random derives from it.
    rating_delay
        Seconds from onset to the rating marker (< ``isi``); None = min(6, 0.75 isi).
    noise
        Multiplier of every measurement-noise level (0 = noiseless sensors).
    blink_rate
        Blinks per second.
    dropouts
        ``(what, start, duration)``: no samples from matching streams in
        ``[start, start + duration)`` of data time. ``what`` is a preset name, a stream name or
        type, a role (``gaze``, ``gsr``, ``hr``, ``markers``) or a stream key.
    clock_offset
        ``what`` (as in dropouts) → seconds added to the matching streams' timestamps.
    unix_epoch
        Stamp Empatica-style streams in Unix-epoch seconds when played live; None = as each
        preset says (only the E4 ones). Offline blocks always carry data time.
    start_time
        Data time of the session's start.
    rating_noise
        Standard deviation of the rating noise (scale points).
    participant_gain_sd
        Spread (log-normal sd) of participants' physiological gains.
    response_variability
        Trial-to-trial spread (log-normal sd) of each response's amplitude (habituation,
        attention); larger makes physiology a weaker cue of the latent state.
    source_tag
        Suffix of every stream's source id; a fresh uuid when None.
    """

    device_set: str = "gazepoint"
    presets: tuple[str, ...] | None = None
    participants: int = 1
    stimuli: list[str] | None = None
    n_trials: int | None = None
    isi: float = 8.0
    picture_seconds: float | None = None
    lead_in: float = 3.0
    seed: int = 0
    rating_delay: float | None = None
    noise: float = 1.0
    blink_rate: float = 0.3
    dropouts: list[tuple[str, float, float]] = field(default_factory=list)
    clock_offset: dict[str, float] = field(default_factory=dict)
    unix_epoch: bool | None = None
    start_time: float = 0.0
    rating_noise: float = 0.6
    participant_gain_sd: float = 0.3
    response_variability: float = 0.3
    source_tag: str | None = None

    def __post_init__(self) -> None:
        if self.picture_seconds is None:
            self.picture_seconds = min(5.0, 0.625 * self.isi)
        if self.rating_delay is None:
            self.rating_delay = min(6.0, 0.75 * self.isi)
        if self.presets is None and self.device_set not in DEVICE_SETS:
            raise KeyError(
                f"unknown device set {self.device_set!r}; known: {', '.join(DEVICE_SETS)}"
            )
        if not 0 < self.picture_seconds <= self.isi or not 0 < self.rating_delay < self.isi:
            raise ValueError("need 0 < picture_seconds <= isi and 0 < rating_delay < isi")
        if self.participants < 1:
            raise ValueError("participants must be >= 1")
        if self.n_trials is not None and self.n_trials < 1:
            raise ValueError("n_trials must be >= 1")
        if self.stimuli is not None and not self.stimuli:
            raise ValueError("stimuli must name at least one stimulus (None = all)")


# --------------------------------------------------------------------------- response shapes


def _pupil_shape(tau: np.ndarray, latency: np.ndarray, hold: float) -> np.ndarray:
    """Dilation 0..1: rises after ``latency`` (half-rise ~0.4 s later), held while the picture
    is on, then relaxes."""
    rise = 1.0 - np.exp(-np.clip(tau - latency, 0.0, None) / 0.6)
    fall = np.exp(-np.clip(tau - latency - hold, 0.0, None) / 1.2)
    return rise * fall


_SCR_RISE, _SCR_DECAY = 0.75, 4.0
_SCR_PEAK_T = math.log(_SCR_DECAY / _SCR_RISE) * _SCR_RISE * _SCR_DECAY / (_SCR_DECAY - _SCR_RISE)
_SCR_NORM = math.exp(-_SCR_PEAK_T / _SCR_DECAY) - math.exp(-_SCR_PEAK_T / _SCR_RISE)


def _scr_shape(tau: np.ndarray) -> np.ndarray:
    """Skin-conductance response, peak 1 about 2 s after its onset, slow recovery."""
    tau = np.clip(tau, 0.0, None)
    return (np.exp(-tau / _SCR_DECAY) - np.exp(-tau / _SCR_RISE)) / _SCR_NORM


def _hr_shape(tau: np.ndarray) -> np.ndarray:
    """Heart-rate change 0..1 peaking 2.5 s after onset, gone after ~8 s."""
    x = np.clip(tau, 0.0, None) / 2.5
    return x**2 * np.exp(2.0 * (1.0 - x))


def _ecg_template(dt: np.ndarray) -> np.ndarray:
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


def _pulse_template(dt: np.ndarray) -> np.ndarray:
    """Peripheral pulse wave 0..~1, ``dt`` seconds after the R peak (systolic peak, then the
    dicrotic wave)."""
    dt = np.where(dt >= 0, dt, np.inf)
    return np.exp(-0.5 * ((dt - 0.26) / 0.07) ** 2) + 0.35 * np.exp(
        -0.5 * ((dt - 0.52) / 0.09) ** 2
    )


class _Drift:
    """Slow smooth fluctuation: a few sinusoids of random period and phase (a function of time,
    so any segment can be evaluated on its own)."""

    def __init__(self, rng: np.random.Generator, amp: float, periods: tuple[float, float]):
        self.freq = 1.0 / rng.uniform(*periods, size=4)
        self.phase = rng.uniform(0, 2 * np.pi, size=4)
        self.amp = amp * rng.uniform(0.5, 1.0, size=4) / 2.0

    def __call__(self, t: np.ndarray) -> np.ndarray:
        arg = 2 * np.pi * t[:, None] * self.freq + self.phase
        return np.sin(arg) @ self.amp


@lru_cache(maxsize=64)
def saliency_map(stimulus_id: str, size: int = SALIENCY_SIZE) -> np.ndarray:
    """Probability map (size, size) of where fixations land: blurred gradient magnitude of the
    picture with a mild centre bias (rows top to bottom)."""
    img = default_catalogue().image(stimulus_id, size).mean(axis=0)
    smooth = ndimage.gaussian_filter(img, 1.0)
    grad = np.hypot(ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1))
    sal = ndimage.gaussian_filter(grad, size / 20)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    centre = np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / (2 * 0.25**2))
    sal = sal / (sal.max() + 1e-9) * centre + 0.02
    sal = sal / sal.sum()
    sal.setflags(write=False)
    return sal


def _in_intervals(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """True where t lies in one of the sorted, non-overlapping [start, end) intervals."""
    i = np.searchsorted(starts, t, side="right") - 1
    return (i >= 0) & (t < ends[np.clip(i, 0, None)]) if len(starts) else np.zeros(len(t), bool)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --------------------------------------------------------------------------- the simulation


@dataclass
class _Participants:
    start: np.ndarray
    pupil_base: np.ndarray
    gsr_base: np.ndarray
    hr_base: np.ndarray
    pupil_gain: np.ndarray
    gsr_gain: np.ndarray
    hr_gain: np.ndarray
    bias_arousal: np.ndarray
    bias_valence: np.ndarray


class Simulation:
    """A whole simulated experiment, as an :class:`~acquisition.offline_acquisition.OfflineSource`.

    Parameters
    ----------
    config
        What to simulate; defaults to one participant on the Gazepoint set.

    Attributes
    ----------
    streams
        One :class:`StreamSpec` per preset stream of the device set.
    preset_streams
        The matching :class:`PresetStream` of each stream.
    unix_epoch_keys
        Keys of streams a live player stamps in Unix-epoch seconds.
    stimulus_ids
        The stimuli in use; integer marker code N is ``stimulus_ids[N - 1]``.
    duration
        Seconds of data in the session.
    """

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = cfg = config or SimulationConfig()
        catalogue = default_catalogue()
        self.stimulus_ids = list(cfg.stimuli) if cfg.stimuli else list(catalogue.ids)
        for sid in self.stimulus_ids:
            catalogue.get(sid)  # unknown ids fail here, with the known ones named
        self.n_trials = cfg.n_trials if cfg.n_trials is not None else len(self.stimulus_ids)
        self.participant_seconds = cfg.lead_in + self.n_trials * cfg.isi
        self.duration = cfg.participants * self.participant_seconds
        self.start_time = float(cfg.start_time)
        self.end_time = self.start_time + self.duration

        names = cfg.presets if cfg.presets is not None else DEVICE_SETS[cfg.device_set]
        self.preset_streams: list[PresetStream] = preset_streams(list(names))
        tag = cfg.source_tag or uuid.uuid4().hex[:12]
        self.streams: list[StreamSpec] = [
            ps.spec(f"sim-{_slug(ps.preset)}-{_slug(ps.name)}-{tag}") for ps in self.preset_streams
        ]
        self.unix_epoch_keys = {
            spec.key
            for spec, ps in zip(self.streams, self.preset_streams, strict=True)
            if (ps.unix_epoch if cfg.unix_epoch is None else cfg.unix_epoch and ps.unix_epoch)
        }
        self._offsets = [self._match_offset(i) for i in range(len(self.streams))]
        self._phase = np.random.default_rng([cfg.seed, 9]).uniform(0, 1, len(self.streams))
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

        self._draw_participants()
        self._draw_trials()
        self._draw_gaze()
        self._draw_heart()
        self._draw_scrs()
        rng = np.random.default_rng([cfg.seed, 8])
        self._pupil_drift = _Drift(rng, 0.25, (20.0, 120.0))
        self._gsr_drift = _Drift(rng, 0.6, (60.0, 400.0))
        self._ecg_wander = _Drift(rng, 60.0, (3.0, 10.0))
        self._ppg_wander = _Drift(rng, 0.15, (5.0, 20.0))

    # ------------------------------------------------------------------ ground truth

    def _draw_participants(self) -> None:
        cfg, n = self.config, self.config.participants
        rng = np.random.default_rng([cfg.seed, 1])
        sd = cfg.participant_gain_sd
        self._p = _Participants(
            start=self.start_time + np.arange(n) * self.participant_seconds,
            pupil_base=rng.uniform(3.2, 4.6, n),
            gsr_base=rng.uniform(2.0, 8.0, n),
            hr_base=rng.uniform(62.0, 82.0, n),
            pupil_gain=rng.lognormal(0.0, sd, n),
            gsr_gain=rng.lognormal(0.0, sd, n),
            hr_gain=rng.lognormal(0.0, sd, n),
            bias_arousal=rng.normal(0.0, 0.5, n),
            bias_valence=rng.normal(0.0, 0.5, n),
        )

    def _draw_trials(self) -> None:
        cfg, cat = self.config, default_catalogue()
        n_stim = len(self.stimulus_ids)
        stim, part, onset = [], [], []
        for p in range(cfg.participants):
            rng = np.random.default_rng([cfg.seed, 2, p])
            reps = -(-self.n_trials // n_stim)
            order = np.concatenate([rng.permutation(n_stim) for _ in range(reps)])
            stim.append(order[: self.n_trials])
            part.append(np.full(self.n_trials, p))
            onset.append(self._p.start[p] + cfg.lead_in + np.arange(self.n_trials) * cfg.isi)
        self._t_stim = np.concatenate(stim).astype(int)
        self._t_part = np.concatenate(part).astype(int)
        self._t_onset = np.concatenate(onset)
        n = len(self._t_onset)
        ids = [self.stimulus_ids[i] for i in self._t_stim]
        self._t_arousal = np.array([cat.get(s).arousal for s in ids], float)
        self._t_valence = np.array([cat.get(s).valence for s in ids], float)
        lum = np.array([cat.image(s, 32).mean() for s in ids], float)

        rng = np.random.default_rng([cfg.seed, 3])
        ba, bv = self._p.bias_arousal[self._t_part], self._p.bias_valence[self._t_part]
        lo, hi = SCALE
        self._oracle_a = np.clip(np.round(self._t_arousal + ba), lo, hi).astype(int)
        self._oracle_v = np.clip(np.round(self._t_valence + bv), lo, hi).astype(int)
        noise_a, noise_v = rng.normal(0.0, cfg.rating_noise, (2, n))
        self._rated_a = np.clip(np.round(self._t_arousal + ba + noise_a), lo, hi).astype(int)
        self._rated_v = np.clip(np.round(self._t_valence + bv + noise_v), lo, hi).astype(int)

        an = (self._t_arousal - lo) / (hi - lo)  # 0..1
        vn = (self._t_valence - 4.0) / 3.0  # -1..1
        self._vn = vn
        # Trial-to-trial variability of the responses (habituation, attention).
        var = rng.lognormal(0.0, cfg.response_variability, (3, n))
        self._pupil_amp = self._p.pupil_gain[self._t_part] * (0.05 + 0.45 * an) * var[0]
        self._pupil_lat = rng.uniform(0.25, 0.6, n)  # half-rise ends up at ~0.5-1.5 s
        self._pupil_lum = -0.5 * (lum - 0.5)  # light reflex against a mid-grey screen
        self._scr_amp = self._p.gsr_gain[self._t_part] * (0.03 + 0.7 * an**1.5) * var[1]
        self._scr_lat = rng.uniform(1.0, 3.0, n)
        hr_resp = np.where(vn > 0, 1.5 * vn, 4.5 * vn) - 0.8  # orienting dip for every picture
        self._hr_amp = self._p.hr_gain[self._t_part] * hr_resp * var[2]

    def ground_truth(self) -> list[dict]:
        """Per trial: participant, trial (1-based within participant), stimulus_id, onset (data
        time), latent_arousal, latent_valence, rated_arousal, rated_valence, oracle_arousal,
        oracle_valence (round(latent + participant bias), clipped to the scale)."""
        out = []
        for i in range(len(self._t_onset)):
            p = int(self._t_part[i])
            out.append(
                {
                    "participant": self.participant_id(p),
                    "participant_index": p,
                    "trial": i - p * self.n_trials + 1,
                    "stimulus_id": self.stimulus_ids[self._t_stim[i]],
                    "onset": float(self._t_onset[i]),
                    "latent_arousal": float(self._t_arousal[i]),
                    "latent_valence": float(self._t_valence[i]),
                    "rated_arousal": int(self._rated_a[i]),
                    "rated_valence": int(self._rated_v[i]),
                    "oracle_arousal": int(self._oracle_a[i]),
                    "oracle_valence": int(self._oracle_v[i]),
                }
            )
        return out

    @staticmethod
    def participant_id(index: int) -> str:
        """Participant id of a 0-based index (``"P01"``...)."""
        return f"P{index + 1:02d}"

    def participant_of(self, t: float) -> str:
        """Id of the participant whose session covers data time ``t``."""
        i = int(np.searchsorted(self._p.start, t, side="right")) - 1
        return self.participant_id(min(max(i, 0), self.config.participants - 1))

    @property
    def int_codes(self) -> dict[int, str]:
        """Integer marker code → stimulus id (codes are 1-based indices of ``stimulus_ids``)."""
        return {i + 1: sid for i, sid in enumerate(self.stimulus_ids)}

    def beat_times(self) -> np.ndarray:
        """Every heart beat (R peak) of the session, data time."""
        return self._beats.copy()

    # ------------------------------------------------------------------ sparse events

    def _draw_gaze(self) -> None:
        """Fixations (start, end, x, y) over the whole session, and blinks."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 4])
        # Scenes: fixation cross (centre) and pictures, back to back.
        scenes = []  # (start, end, trial or -1)
        for p in range(cfg.participants):
            first = p * self.n_trials
            scenes.append((self._p.start[p], self._t_onset[first], -1))
            for i in range(first, first + self.n_trials):
                off = self._t_onset[i] + cfg.picture_seconds
                nxt = self._t_onset[i] + cfg.isi
                scenes.append((self._t_onset[i], off, i))
                if nxt > off:
                    scenes.append((off, nxt, -1))
        starts, durs, xs, ys = [], [], [], []
        for s0, s1, trial in scenes:
            picture = trial >= 0
            lat = rng.uniform(0.18, 0.3) if picture else rng.uniform(0.1, 0.25)
            n = int((s1 - s0) / 0.2) + 3
            if picture:
                d = rng.uniform(0.2, 0.4, n)
                sal = saliency_map(self.stimulus_ids[self._t_stim[trial]])
                idx = rng.choice(sal.size, size=n, p=sal.ravel())
                r, c = np.divmod(idx, sal.shape[1])
                spread = 0.012 * (1.0 + 0.8 * max(-self._vn[trial], 0.0))
                x = (c + rng.uniform(0, 1, n)) / sal.shape[1] + rng.normal(0, spread, n)
                y = (r + rng.uniform(0, 1, n)) / sal.shape[0] + rng.normal(0, spread, n)
            else:
                d = rng.uniform(0.3, 0.6, n)
                x, y = rng.normal(0.5, 0.012, (2, n))
            x, y = np.clip(x, 0.01, 0.99), np.clip(y, 0.01, 0.99)
            sacc = 0.02 + 0.15 * np.hypot(np.diff(x), np.diff(y))
            st = s0 + lat + np.concatenate([[0.0], np.cumsum(d[:-1] + sacc)])
            keep = st < s1
            starts.append(st[keep])
            durs.append(d[keep])
            xs.append(x[keep])
            ys.append(y[keep])
        st, x, y = np.concatenate(starts), np.concatenate(xs), np.concatenate(ys)
        sacc = 0.02 + 0.15 * np.hypot(np.diff(x), np.diff(y))
        # A fixation lasts until the saccade to the next one starts (across scene changes too).
        end = np.append(np.maximum(st[:-1], st[1:] - sacc), np.inf)
        # Before the first fixation the eye rests where the first one is.
        self._fix = (
            np.concatenate([[-np.inf], st]),
            np.concatenate([st[:1], end]),
            np.concatenate([x[:1], x]),
            np.concatenate([y[:1], y]),
        )

        rng = np.random.default_rng([cfg.seed, 5])
        n = rng.poisson(cfg.blink_rate * self.duration) if cfg.blink_rate > 0 else 0
        b0 = np.sort(rng.uniform(self.start_time, self.end_time, n))
        b1 = b0 + rng.uniform(0.1, 0.3, n)
        keep = np.ones(n, bool)
        keep[1:] = b0[1:] > b1[:-1] + 0.1
        self._blinks = (b0[keep], b1[keep])

    def _hr_trajectory(self, t: np.ndarray) -> np.ndarray:
        """Instantaneous heart rate (bpm) at data times ``t``."""
        p = np.clip(np.searchsorted(self._p.start, t, side="right") - 1, 0, None)
        hr = self._p.hr_base[p] + self._hr_drift(t) + 2.5 * np.sin(2 * np.pi * 0.25 * t + 1.0)
        return hr + self._events(t, self._t_onset, self._hr_amp, _hr_shape, 16.0)

    def _draw_heart(self) -> None:
        """Beat times from the heart-rate trajectory: one beat per unit of integrated rate."""
        rng = np.random.default_rng([self.config.seed, 6])
        self._hr_drift = _Drift(rng, 3.0, (30.0, 200.0))
        fs = 20.0
        t = self.start_time - 2.0 + np.arange(int((self.duration + 4.0) * fs) + 1) / fs
        # In minutes, so the trial-response matrix stays small for long sessions.
        hr = np.concatenate([self._hr_trajectory(t[i : i + 1200]) for i in range(0, len(t), 1200)])
        phase = rng.uniform(0, 1) + np.concatenate([[0.0], np.cumsum(hr[:-1] / 60.0 / fs)])
        k = np.arange(math.ceil(phase[0]), math.floor(phase[-1]) + 1)
        beats = np.interp(k, phase, t) + rng.normal(0, 0.004, len(k))
        self._beats = np.sort(beats)

    def _draw_scrs(self) -> None:
        """Phasic skin-conductance responses: one per trial plus spontaneous ones."""
        rng = np.random.default_rng([self.config.seed, 7])
        n = rng.poisson(self.duration / 30.0)
        t_sp = rng.uniform(self.start_time, self.end_time, n)
        p = np.clip(np.searchsorted(self._p.start, t_sp, side="right") - 1, 0, None)
        amp_sp = rng.exponential(0.08, n) * self._p.gsr_gain[p]
        t = np.concatenate([self._t_onset + self._scr_lat, t_sp])
        amp = np.concatenate([self._scr_amp, amp_sp])
        order = np.argsort(t)
        self._scr = (t[order], amp[order])

    @staticmethod
    def _events(t, times, amps, shape, span: float) -> np.ndarray:
        """Sum of ``amp * shape(t - time)`` over events within ``span`` seconds before ``t``."""
        if len(t) == 0:
            return np.zeros(0)
        lo = np.searchsorted(times, t[0] - span)
        hi = np.searchsorted(times, t[-1], side="right")
        if hi <= lo:
            return np.zeros(len(t))
        return shape(t[:, None] - times[lo:hi]) @ amps[lo:hi]

    # ------------------------------------------------------------------ signals at times t

    def _participant(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self._p.start, t, side="right") - 1, 0, None)

    def _pupil(self, t: np.ndarray) -> np.ndarray:
        """Pupil diameter (mm) at data times ``t``, both eyes' mean."""
        base = self._p.pupil_base[self._participant(t)] + self._pupil_drift(t)
        if len(t) == 0:
            return base
        lo = np.searchsorted(self._t_onset, t[0] - self.config.isi - 10.0)
        hi = np.searchsorted(self._t_onset, t[-1], side="right")
        if hi > lo:
            sl = slice(lo, hi)
            shape = _pupil_shape(
                t[:, None] - self._t_onset[sl], self._pupil_lat[sl], self.config.picture_seconds
            )
            base = base + shape @ (self._pupil_amp[sl] + self._pupil_lum[sl])
        return base

    def _gsr(self, t: np.ndarray) -> np.ndarray:
        """Skin conductance (µS) at data times ``t``."""
        tonic = self._p.gsr_base[self._participant(t)] + self._gsr_drift(t)
        return np.clip(tonic + self._events(t, *self._scr, _scr_shape, 40.0), 0.05, None)

    def _gaze(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True gaze point (screen units, origin top-left): fixations joined by saccades."""
        st, end, fx, fy = self._fix
        i = np.searchsorted(st, t, side="right") - 1
        j = np.minimum(i + 1, len(st) - 1)
        gap = np.maximum(st[j] - end[i], 1e-9)
        frac = np.clip((t - end[i]) / gap, 0.0, 1.0)
        return fx[i] + frac * (fx[j] - fx[i]), fy[i] + frac * (fy[j] - fy[i])

    def _heart_rate(self, t: np.ndarray) -> np.ndarray:
        """Heart rate (bpm) as a device reports it: from the last completed beat interval."""
        b = self._beats
        i = np.clip(np.searchsorted(b, t, side="right") - 1, 1, len(b) - 1)
        return 60.0 / (b[i] - b[i - 1])

    def _ecg(self, t: np.ndarray) -> np.ndarray:
        b = self._beats
        i = np.searchsorted(b, t)
        out = self._ecg_wander(t)
        for k in (i - 1, i):
            out += _ecg_template(t - b[np.clip(k, 0, len(b) - 1)])
        return out

    def _pulse(self, t: np.ndarray) -> np.ndarray:
        b = self._beats
        i = np.searchsorted(b, t, side="right")
        out = self._ppg_wander(t)
        for back in (1, 2, 3):
            out += _pulse_template(t - b[np.clip(i - back, 0, len(b) - 1)])
        return out

    # ------------------------------------------------------------------ streams

    def _stream_segment(self, index: int, seg: int) -> tuple[np.ndarray, np.ndarray]:
        """Data times and values of stream ``index`` in segment ``seg`` (cached briefly)."""
        key = (index, seg)
        if key not in self._cache:
            if len(self._cache) > 4 * len(self.streams):
                self._cache.clear()
            ps = self.preset_streams[index]
            rng = np.random.default_rng([self.config.seed, 100 + index, seg])
            t0 = self.start_time + seg * SEGMENT
            t = self._times(index, ps, t0, rng)
            t = t[(t >= self.start_time) & (t < self.end_time)]
            self._cache[key] = (t, self._values(ps, t, rng))
        return self._cache[key]

    def _times(self, index: int, ps: PresetStream, t0: float, rng) -> np.ndarray:
        """Sample times of one segment: a regular grid, jittered ~200 Hz, or events."""
        t1 = t0 + SEGMENT
        if ps.nominal_srate > 0:
            rate = ps.nominal_srate
            phase = self.start_time + self._phase[index] / rate
            k0 = math.ceil((t0 - phase) * rate - 1e-9)
            k1 = math.ceil((t1 - phase) * rate - 1e-9)
            return phase + np.arange(k0, k1) / rate
        if ps.type == "Gaze":  # Pupil Capture: ~200 Hz, irregular
            n = int(round(200 * SEGMENT))
            return t0 + (np.arange(n) + rng.uniform(-0.3, 0.3, n) + 0.5) / 200.0
        if ps.type in ("RR", "IBI"):
            b = self._beats
            return b[np.searchsorted(b, t0) : np.searchsorted(b, t1)]
        if ps.type == "Markers":
            ev = self._marker_times(ps)
            return ev[np.searchsorted(ev, t0) : np.searchsorted(ev, t1)]
        raise ValueError(f"no simulation for irregular stream {ps.name!r}")

    def _marker_times(self, ps: PresetStream) -> np.ndarray:
        if ps.channel_format == "string":
            return np.sort(
                np.concatenate([self._t_onset, self._t_onset + self.config.rating_delay])
            )
        return self._t_onset

    def _markers(self, ps: PresetStream, t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self._t_onset, t, side="right") - 1
        if ps.channel_format != "string":
            return (self._t_stim[i] + 1).astype(np.int32)[:, None]
        out = np.empty((len(t), 1), object)
        for row, (k, tk) in enumerate(zip(i, t, strict=True)):
            if tk == self._t_onset[k]:
                out[row, 0] = f"onset:{self.stimulus_ids[self._t_stim[k]]}"
            else:
                out[row, 0] = f"rating:arousal={self._rated_a[k]};valence={self._rated_v[k]}"
        return out

    def _values(self, ps: PresetStream, t: np.ndarray, rng) -> np.ndarray:
        """Channel values of one preset stream at data times ``t``, in its layout and dtype."""
        if ps.type == "Markers":
            return self._markers(ps, t)
        noise = self.config.noise
        n = len(t)
        if ps.type == "Gaze":
            cols = self._gaze_columns(ps, t, rng)
        elif ps.type == "GSR":
            g = self._gsr(t) + noise * rng.normal(0, 0.01, n)
            cols = {ps.channel_labels[0]: np.clip(g, 0.01, None)}
        elif ps.type == "BVP":  # E4: AC-coupled, arbitrary units around 0
            cols = {"bvp": 80.0 * (self._pulse(t) - 0.4) + noise * rng.normal(0, 3.0, n)}
        elif ps.type == "PPG":  # Shimmer: raw mV with an offset
            cols = {"PPG_A13": 1500.0 + 180.0 * self._pulse(t) + noise * rng.normal(0, 5.0, n)}
        elif ps.type == "ECG":
            cols = {"ECG": self._ecg(t) + noise * rng.normal(0, 15.0, n)}
        elif ps.type == "IBI":
            cols = {"ibi": self._intervals(t)}
        elif ps.type == "RR":
            cols = {"RR": np.round(1000.0 * self._intervals(t))}
        else:
            raise ValueError(f"no simulation for stream type {ps.type!r}")
        out = np.empty((n, len(ps.channel_labels)), _DTYPES.get(ps.channel_format, np.float32))
        for c, label in enumerate(ps.channel_labels):
            out[:, c] = cols[label]
        return out

    def _intervals(self, beat_t: np.ndarray) -> np.ndarray:
        """Interval (s) ending at each beat."""
        b = self._beats
        i = np.clip(np.searchsorted(b, beat_t), 1, len(b) - 1)
        return b[i] - b[i - 1]

    def _gaze_columns(self, ps: PresetStream, t: np.ndarray, rng) -> dict[str, np.ndarray]:
        n, noise = len(t), self.config.noise
        gx, gy = self._gaze(t)
        pupil = self._pupil(t)
        blink = _in_intervals(t, *self._blinks)
        ok = ~blink
        eye = rng.normal(0, 1, (6, n)) * noise
        if ps.preset == "gazepoint":
            x = np.where(ok, gx + 0.004 * eye[0], 0.0)
            y = np.where(ok, gy + 0.004 * eye[1], 0.0)
            lp = np.where(ok, pupil + 0.05 + 0.02 * eye[2], 0.0)
            rp = np.where(ok, pupil - 0.05 + 0.02 * eye[3], 0.0)
            hr = self._heart_rate(t)
            gsr = self._gsr(t) + noise * 0.01 * eye[4]
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

    # ------------------------------------------------------------------ offline source

    def _match_offset(self, index: int) -> float:
        return sum(
            off for what, off in self.config.clock_offset.items() if self._matches(index, what)
        )

    def _matches(self, index: int, what: str) -> bool:
        ps, spec = self.preset_streams[index], self.streams[index]
        names = {ps.preset, ps.name, ps.type, spec.key, *(r.role for r in ps.readings)}
        return what.lower() in {s.lower() for s in names}

    def _drop_mask(self, index: int, t: np.ndarray) -> np.ndarray:
        keep = np.ones(len(t), bool)
        for what, start, dur in self.config.dropouts:
            if self._matches(index, what):
                keep &= ~((t >= start) & (t < start + dur))
        return keep

    def samples(self, index: int, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Stream ``index``'s samples with data time in ``[t0, t1)``, before offsets and
        dropouts."""
        s0 = max(math.floor((t0 - self.start_time) / SEGMENT), 0)
        s1 = math.ceil((t1 - self.start_time) / SEGMENT)
        ts, vs = [], []
        for seg in range(s0, s1):
            t, v = self._stream_segment(index, seg)
            keep = (t >= t0) & (t < t1)
            ts.append(t[keep])
            vs.append(v[keep])
        if not ts:
            spec = self.streams[index]
            dtype = object if spec.is_string else np.float32
            return np.empty(0), np.empty((0, spec.channel_count), dtype)
        return np.concatenate(ts), np.concatenate(vs)

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator[Block]:
        """Blocks of ``block_seconds`` of data time (see :class:`~acquisition.offline_acquisition.Block`).

        Timestamps are data time plus any configured clock offset; streams in
        :attr:`unix_epoch_keys` are flagged ``chunk.meta["unix_epoch"]`` but stay on data time.
        """
        if block_seconds <= 0:
            raise ValueError("block_seconds must be > 0")
        last = self.end_time + max([0.0, *self._offsets])
        n_blocks = max(math.ceil((last - self.start_time) / block_seconds - 1e-9), 1)
        b0 = self.start_time + min([0.0, *self._offsets])
        for k in range(n_blocks):
            b1 = last if k == n_blocks - 1 else self.start_time + (k + 1) * block_seconds
            chunks = []
            for i, spec in enumerate(self.streams):
                off = self._offsets[i]
                t, v = self.samples(i, b0 - off, b1 - off)
                keep = self._drop_mask(i, t)
                if not keep.all():
                    t, v = t[keep], v[keep]
                if len(t):
                    meta = {"unix_epoch": True} if spec.key in self.unix_epoch_keys else {}
                    chunks.append(Chunk(spec, t + off, v, meta))
            yield Block(b1, chunks)
            b0 = b1
