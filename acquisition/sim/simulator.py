"""A seeded generative experiment: simulated devices with known ground truth.

The feeling happens per trial. Each trial's *felt* arousal and valence are the picture's norm plus
a participant offset plus a trial-level deviation (mood drift, habituation to repeated pictures,
fatigue, noise); pupil dilation, skin-conductance responses, heart-rate deceleration and gaze
(dwell, fixation spread) are driven by the felt state, and the rating is the felt state through
the participant's scale use plus response noise (:mod:`acquisition.sim.physiology`). Pictures are
the 16 bundled photos (the demo set) or a fresh generated set (``stimulus_seed``,
:mod:`acquisition.sim.stimuli`). Every stream of a device set is produced with the channel
layout, units and rate of its preset (:mod:`acquisition.sim.devices`), so the simulated devices
bind exactly like the real ones.

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

import numpy as np

from acquisition.lsl.presets import DEVICE_SETS, PresetStream, preset_streams
from acquisition.offline_acquisition import Block
from acquisition.sim import devices
from acquisition.sim.modalities import ExtraBody, ExtraResponseModel
from acquisition.sim.physiology import (
    SCALE,
    Drift,
    FeltModel,
    ResponseModel,
    draw_felt,
    ecg_template,
    events,
    hr_shape,
    pulse_template,
    pupil_shape,
    rate,
    scr_shape,
)
from acquisition.sim.stimuli import (
    DEFAULT_SET_SIZE,
    SALIENCY_SIZE,
    generate_set,
    saliency_map,
    sim_catalogue,
)
from acquisition.streams import Chunk, StreamSpec

__all__ = [
    "SALIENCY_SIZE",
    "SCALE",
    "SEGMENT",
    "Simulation",
    "SimulationConfig",
    "saliency_map",
]

SEGMENT = 1.0
"""Seconds of data time generated (and seeded) as one unit."""


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
        Stimulus ids (bundled or generated); None = all bundled photos, or the generated set of
        ``stimulus_seed``. Each participant sees them in their own seeded order, repeated when
        ``n_trials`` exceeds their number.
    stimulus_seed
        Draw a fresh generated picture set of ``n_stimuli`` pictures from this seed
        (:mod:`acquisition.sim.stimuli`) instead of the bundled photos.
    n_stimuli
        Size of the generated set.
    n_trials
        Trials per participant; None = number of stimuli.
    isi
        Onset-to-onset interval, seconds (picture, then rating).
    picture_seconds
        How long the picture is shown; None = min(5, 0.625 isi).
    lead_in
        Seconds before each participant's first onset.
    seed
        Everything random about the participants derives from it (not the pictures).
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
        Standard deviation of the response noise of ratings (scale points).
    felt
        How felt states depart from the norms and are rated (:class:`FeltModel`).
    responses
        Response sizes and variability (:class:`ResponseModel`).
    source_tag
        Suffix of every stream's source id; a fresh uuid when None.
    """

    device_set: str = "gazepoint"
    presets: tuple[str, ...] | None = None
    participants: int = 1
    stimuli: list[str] | None = None
    stimulus_seed: int | None = None
    n_stimuli: int = DEFAULT_SET_SIZE
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
    rating_noise: float = 0.5
    felt: FeltModel = field(default_factory=FeltModel)
    responses: ResponseModel = field(default_factory=ResponseModel)
    source_tag: str | None = None
    extra: ExtraResponseModel = field(default_factory=ExtraResponseModel)
    """EEG and face effect sizes (:mod:`acquisition.sim.modalities`)."""

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
        if self.stimulus_seed is not None and self.stimulus_seed < 0:
            raise ValueError("stimulus_seed must be >= 0")
        if self.n_stimuli < 1:
            raise ValueError("n_stimuli must be >= 1")


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
    offset_arousal: np.ndarray
    offset_valence: np.ndarray
    slope_arousal: np.ndarray
    slope_valence: np.ndarray
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
        self.catalogue = catalogue = sim_catalogue()
        if cfg.stimuli:
            self.stimulus_ids = list(cfg.stimuli)
        elif cfg.stimulus_seed is not None:
            self.stimulus_ids = [g.id for g in generate_set(cfg.stimulus_seed, cfg.n_stimuli)]
        else:
            self.stimulus_ids = list(catalogue.base.ids)
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
        self._extra = ExtraBody(self, cfg.extra)
        rng = np.random.default_rng([cfg.seed, 8])
        self._pupil_drift = Drift(rng, 0.25, (20.0, 120.0))
        self._gsr_drift = Drift(rng, 0.6, (60.0, 400.0))
        self._ecg_wander = Drift(rng, 60.0, (3.0, 10.0))
        self._ppg_wander = Drift(rng, 0.15, (5.0, 20.0))

    # ------------------------------------------------------------------ ground truth

    def _draw_participants(self) -> None:
        cfg, n = self.config, self.config.participants
        rng = np.random.default_rng([cfg.seed, 1])
        sd = cfg.responses.gain_sd
        fm = cfg.felt
        self._p = _Participants(
            start=self.start_time + np.arange(n) * self.participant_seconds,
            pupil_base=rng.uniform(3.2, 4.6, n),
            gsr_base=rng.uniform(2.0, 8.0, n),
            hr_base=rng.uniform(62.0, 82.0, n),
            pupil_gain=rng.lognormal(0.0, sd, n),
            gsr_gain=rng.lognormal(0.0, sd, n),
            hr_gain=rng.lognormal(0.0, sd, n),
            offset_arousal=rng.normal(0.0, fm.offset_sd[0], n),
            offset_valence=rng.normal(0.0, fm.offset_sd[1], n),
            slope_arousal=rng.lognormal(0.0, fm.slope_sd, n),
            slope_valence=rng.lognormal(0.0, fm.slope_sd, n),
            bias_arousal=rng.normal(0.0, fm.bias_sd[0], n),
            bias_valence=rng.normal(0.0, fm.bias_sd[1], n),
        )

    def _draw_trials(self) -> None:
        cfg, cat = self.config, self.catalogue
        n_stim = len(self.stimulus_ids)
        stim, part, onset, index, repeats = [], [], [], [], []
        for p in range(cfg.participants):
            rng = np.random.default_rng([cfg.seed, 2, p])
            reps = -(-self.n_trials // n_stim)
            order = np.concatenate([rng.permutation(n_stim) for _ in range(reps)])[: self.n_trials]
            stim.append(order)
            part.append(np.full(self.n_trials, p))
            onset.append(self._p.start[p] + cfg.lead_in + np.arange(self.n_trials) * cfg.isi)
            index.append(np.arange(self.n_trials))
            seen = np.zeros(n_stim, int)
            rep = np.empty(self.n_trials, int)
            for k, s in enumerate(order):
                rep[k] = seen[s]
                seen[s] += 1
            repeats.append(rep)
        self._t_stim = np.concatenate(stim).astype(int)
        self._t_part = np.concatenate(part).astype(int)
        self._t_onset = np.concatenate(onset)
        self._t_index = np.concatenate(index)
        self._t_repeat = np.concatenate(repeats)
        n = len(self._t_onset)
        ids = [self.stimulus_ids[i] for i in self._t_stim]
        self._t_arousal = np.array([cat.get(s).arousal for s in ids], float)  # picture norms
        self._t_valence = np.array([cat.get(s).valence for s in ids], float)
        lum = np.array([cat.image(s, 32).mean() for s in ids], float)

        fm, rm = cfg.felt, cfg.responses
        rng = np.random.default_rng([cfg.seed, 3])
        args = (self._t_part, self._t_index, self.n_trials, self._t_repeat, rng, fm)
        self._felt_a = draw_felt(self._t_arousal, *args, 0, self._p.offset_arousal)
        self._felt_v = draw_felt(self._t_valence, *args, 1, self._p.offset_valence)
        p = self._t_part
        sa, sv = self._p.slope_arousal[p], self._p.slope_valence[p]
        ba, bv = self._p.bias_arousal[p], self._p.bias_valence[p]
        zero = np.zeros(n)
        # The oracle: the felt state through the participant's scale use, without response noise.
        self._oracle_a = rate(self._felt_a, sa, ba, zero)
        self._oracle_v = rate(self._felt_v, sv, bv, zero)
        noise_a, noise_v = rng.normal(0.0, cfg.rating_noise, (2, n))
        self._rated_a = rate(self._felt_a, sa, ba, noise_a)
        self._rated_v = rate(self._felt_v, sv, bv, noise_v)

        lo, hi = SCALE
        an = (self._felt_a - lo) / (hi - lo)  # 0..1
        vn = (self._felt_v - 4.0) / 3.0  # -1..1
        self._an, self._vn = an, vn
        var = rng.normal(0.0, 1.0, (3, n))
        self._pupil_amp = (
            self._p.pupil_gain[p] * (rm.pupil_base + rm.pupil_arousal * an) + rm.pupil_var * var[0]
        )
        self._pupil_lat = rng.uniform(0.25, 0.6, n)  # half-rise ends up at ~0.5-1.5 s
        self._pupil_lum = -0.5 * (lum - 0.5)  # light reflex against a mid-grey screen
        responds = rng.uniform(0, 1, n) >= rm.scr_nonresponse
        self._scr_amp = (
            responds
            * self._p.gsr_gain[p]
            * (rm.scr_base + rm.scr_arousal * an**1.5)
            * np.exp(rm.scr_var * var[1])
        )
        self._scr_lat = rng.uniform(1.0, 3.0, n)
        hr_resp = np.where(vn > 0, rm.hr_pleasant * vn, rm.hr_unpleasant * vn) + rm.hr_orienting
        self._hr_amp = self._p.hr_gain[p] * hr_resp + rm.hr_var * var[2]

    def ground_truth(self) -> list[dict]:
        """Per trial: participant, trial (1-based within participant), stimulus_id, onset (data
        time); the picture's norms (``norm_*``, also as ``latent_*``), the felt state
        (``felt_*``), the rating, the oracle class (felt state through the participant's scale
        use, rounded, without response noise), the trial's response amplitudes (``response_*``:
        pupil dilation, SCR, heart-rate change as driven, before sensor noise) and the
        participant's scale use (``slope_*``, ``bias_*``) and felt offsets."""
        out = []
        pp = self._p
        for i in range(len(self._t_onset)):
            p = int(self._t_part[i])
            out.append(
                {
                    "participant": self.participant_id(p),
                    "participant_index": p,
                    "trial": i - p * self.n_trials + 1,
                    "stimulus_id": self.stimulus_ids[self._t_stim[i]],
                    "onset": float(self._t_onset[i]),
                    "repeat": int(self._t_repeat[i]),
                    "norm_arousal": float(self._t_arousal[i]),
                    "norm_valence": float(self._t_valence[i]),
                    "latent_arousal": float(self._t_arousal[i]),
                    "latent_valence": float(self._t_valence[i]),
                    "felt_arousal": float(self._felt_a[i]),
                    "felt_valence": float(self._felt_v[i]),
                    "rated_arousal": int(self._rated_a[i]),
                    "rated_valence": int(self._rated_v[i]),
                    "oracle_arousal": int(self._oracle_a[i]),
                    "oracle_valence": int(self._oracle_v[i]),
                    # The trial's response amplitudes before sensor noise, drift and overlap:
                    # what a perfect feature extractor could read off one trial at best.
                    "response_pupil": float(self._pupil_amp[i]),
                    "response_scr": float(self._scr_amp[i]),
                    "response_hr": float(self._hr_amp[i]),
                    "offset_arousal": float(pp.offset_arousal[p]),
                    "offset_valence": float(pp.offset_valence[p]),
                    "slope_arousal": float(pp.slope_arousal[p]),
                    "slope_valence": float(pp.slope_valence[p]),
                    "bias_arousal": float(pp.bias_arousal[p]),
                    "bias_valence": float(pp.bias_valence[p]),
                }
            )
        return out

    def stimulus_norms(self) -> dict[str, tuple[float, float]]:
        """Normative (arousal, valence) of every stimulus in use."""
        return {
            s: (self.catalogue.get(s).arousal, self.catalogue.get(s).valence)
            for s in self.stimulus_ids
        }

    def trial_responses(self, fs: float = 20.0) -> dict[str, np.ndarray]:
        """Per trial, the responses as measured from the simulated signals (no sensor noise):
        ``scr_amplitude`` (max skin conductance 1-5 s after onset minus the value at 1 s... the
        onset value), ``pupil_dilation`` (mean pupil 0.5-5 s minus the mean of the second before
        onset) and ``hr_change`` (mean heart rate 0.5-5 s minus the second before onset), plus
        ``felt_arousal`` and ``felt_valence``. Drift, spontaneous SCRs, overlapping responses,
        the light reflex and sinus arrhythmia all count, as they would in a recording."""
        n = len(self._t_onset)
        out = {k: np.zeros(n) for k in ("scr_amplitude", "pupil_dilation", "hr_deceleration")}
        rel = np.arange(-1.0, 5.0, 1.0 / fs)
        pre, post, late = rel < 0, rel >= 0.5, rel >= 1.0
        for i, o in enumerate(self._t_onset):
            t = o + rel
            g = self._gsr(t)
            out["scr_amplitude"][i] = g[late].max() - g[~pre][0]
            pu = self._pupil(t)
            out["pupil_dilation"][i] = pu[post].mean() - pu[pre].mean()
            hr = self._heart_rate(t)
            out["hr_deceleration"][i] = hr[pre].mean() - hr[post].mean()
        out["felt_arousal"] = self._felt_a.copy()
        out["felt_valence"] = self._felt_v.copy()
        out["participant"] = self._t_part.copy()
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
        """Fixations (start, end, x, y) over the whole session, and blinks.

        Felt arousal lengthens fixations (longer dwell) and draws more of them to salient
        regions; unpleasant felt valence spreads them wider (vigilant scanning)."""
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
                an = self._an[trial]
                d = rng.uniform(0.15, 0.35, n) * (0.8 + 0.6 * an)
                sal = saliency_map(self.stimulus_ids[self._t_stim[trial]])
                idx = rng.choice(sal.size, size=n, p=sal.ravel())
                r, c = np.divmod(idx, sal.shape[1])
                x = (c + rng.uniform(0, 1, n)) / sal.shape[1]
                y = (r + rng.uniform(0, 1, n)) / sal.shape[0]
                wander = rng.uniform(0, 1, n) > 0.55 + 0.4 * an  # off the salient regions
                x = np.where(wander, rng.uniform(0.1, 0.9, n), x)
                y = np.where(wander, rng.uniform(0.1, 0.9, n), y)
                spread = 0.012 * (1.0 + 1.5 * max(-self._vn[trial], 0.0))
                x = x + rng.normal(0, spread, n)
                y = y + rng.normal(0, spread, n)
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
        self._draw_blinks()

    def _draw_blinks(self) -> None:
        """Blinks (start, end) over the whole session: Poisson at ``blink_rate``, 0.1-0.3 s
        long, at least 0.1 s apart (every condition's gaze blinks the same way)."""
        cfg = self.config
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
        return hr + events(t, self._t_onset, self._hr_amp, hr_shape, 16.0)

    def _draw_heart(self) -> None:
        """Beat times from the heart-rate trajectory: one beat per unit of integrated rate."""
        rng = np.random.default_rng([self.config.seed, 6])
        self._hr_drift = Drift(rng, 3.0, (30.0, 200.0))
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
            shape = pupil_shape(
                t[:, None] - self._t_onset[sl], self._pupil_lat[sl], self.config.picture_seconds
            )
            base = base + shape @ (self._pupil_amp[sl] + self._pupil_lum[sl])
        return base

    def _gsr(self, t: np.ndarray) -> np.ndarray:
        """Skin conductance (µS) at data times ``t``."""
        tonic = self._p.gsr_base[self._participant(t)] + self._gsr_drift(t)
        return np.clip(tonic + events(t, *self._scr, scr_shape, 40.0), 0.05, None)

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
            out += ecg_template(t - b[np.clip(k, 0, len(b) - 1)])
        return out

    def _pulse(self, t: np.ndarray) -> np.ndarray:
        b = self._beats
        i = np.searchsorted(b, t, side="right")
        out = self._ppg_wander(t)
        for back in (1, 2, 3):
            out += pulse_template(t - b[np.clip(i - back, 0, len(b) - 1)])
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
        return devices.encode(self, ps, t, rng, self.config.noise)

    # The body as the device encoders read it (acquisition.sim.devices.Body).
    def gaze(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._gaze(t)

    def pupil(self, t: np.ndarray) -> np.ndarray:
        return self._pupil(t)

    def blinking(self, t: np.ndarray) -> np.ndarray:
        return _in_intervals(t, *self._blinks)

    def gsr(self, t: np.ndarray) -> np.ndarray:
        return self._gsr(t)

    def heart_rate(self, t: np.ndarray) -> np.ndarray:
        return self._heart_rate(t)

    def pulse(self, t: np.ndarray) -> np.ndarray:
        return self._pulse(t)

    def ecg(self, t: np.ndarray) -> np.ndarray:
        return self._ecg(t)

    def eeg(self, t: np.ndarray, noise: float) -> np.ndarray:
        return self._extra.eeg(t, noise)

    def face(self, t: np.ndarray, rng, noise: float) -> dict[str, np.ndarray]:
        return self._extra.face(t, rng, noise)

    def extra_responses(self) -> dict[str, np.ndarray]:
        """Per trial, the programmed EEG and face responses with the felt state
        (:meth:`acquisition.sim.modalities.ExtraBody.responses`)."""
        out = self._extra.responses()
        out["felt_arousal"] = self._felt_a.copy()
        out["felt_valence"] = self._felt_v.copy()
        return out

    def intervals(self, beat_t: np.ndarray) -> np.ndarray:
        """Interval (s) ending at each beat."""
        b = self._beats
        i = np.clip(np.searchsorted(b, beat_t), 1, len(b) - 1)
        return b[i] - b[i - 1]

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
