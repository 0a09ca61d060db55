"""The video condition: a slowly varying felt state, physiology driven by it, and a continuous
rating stream, as in video/VR datasets with joystick annotation (CASE, CEAP-360VR).

Each participant watches ``n_trials`` clips of ``clip_seconds`` back to back after the lead-in.
The felt arousal and valence are, per participant, a low-passed step function of each clip's
mean (clips differ in what they make one feel) plus an Ornstein-Uhlenbeck process (a mean-
reverting random walk, time constant :attr:`VideoModel.tau`), evaluated on a 20-Hz grid and
clipped to 1..7. The physiology follows that state with its usual lags (pupil ~1 s, heart rate
~1.5 s; skin-conductance responses appear at a rate and size that grow with arousal), and the
participant moves a two-axis slider (the ``Annotation`` stream, 20 Hz, channels ``arousal`` and
``valence`` on 1..7) that tracks the felt state :attr:`VideoModel.annotation_lag` seconds late,
through their scale use and a little hand noise. The marker stream carries only
``video:start:<clip>`` markers, which open no trial: continuous mode is what predicts here.

Everything else (devices, noise, dropouts, clock offsets, blinks, XDF and LSL output) is the
picture simulator's (:class:`~acquisition.sim.simulator.Simulation`), which this subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import lfilter

from acquisition.lsl.presets import PresetStream
from acquisition.sim.physiology import SCALE, Drift, events, scr_shape
from acquisition.sim.simulator import SEGMENT, Simulation, SimulationConfig, _slug

ANNOTATION = PresetStream(
    "annotation",
    "ContinuousRating",
    "Annotation",
    20.0,
    ("arousal", "valence"),
    (),  # no role: the annotation is the truth to evaluate against, never a model input
    manufacturer="EmoEye (simulated slider)",
)
"""The continuous rating stream: a two-axis slider sampled at 20 Hz, values on 1..7."""

VIDEO_MARKER = "video:start:{clip}"
"""Marker sent at each clip's start (the marker parser skips ``video:`` markers silently)."""

FELT_FS = 20.0
"""Rate of the felt-state grid, Hz."""


@dataclass(frozen=True)
class VideoModel:
    """How the felt state moves during videos and how it is annotated.

    Attributes
    ----------
    clip_seconds
        Length of each clip.
    clip_spread
        Clip means are drawn uniformly from ``4 ± clip_spread`` (arousal, valence).
    clip_smooth
        Time constant (s) of the felt state's move to a new clip's mean.
    tau, sd
        Ornstein-Uhlenbeck time constant (s) and stationary sd (scale points) of the moment-to-
        moment fluctuation around the clip mean.
    annotation_lag
        Seconds the slider trails the felt state (raters lag by 1-4 s: CASE, Sharma et al. 2019).
    annotation_noise
        Sd of the slow hand noise on the slider (scale points).
    """

    clip_seconds: float = 60.0
    clip_spread: tuple[float, float] = (1.8, 1.8)
    clip_smooth: float = 6.0
    tau: float = 15.0
    sd: tuple[float, float] = (0.7, 0.7)
    annotation_lag: float = 2.0
    annotation_noise: float = 0.12


class VideoSimulation(Simulation):
    """A simulated video session (see the module text).

    Parameters
    ----------
    config
        As for :class:`~acquisition.sim.simulator.Simulation`; ``n_trials`` is the number of
        clips per participant (default 2), ``isi`` and ``picture_seconds`` are set to the clip
        length.
    video
        The felt-state and annotation model.
    """

    def __init__(self, config: SimulationConfig | None = None, video: VideoModel | None = None):
        self.video = video = video or VideoModel()
        cfg = config or SimulationConfig()
        if video.clip_seconds < 10:
            raise ValueError("clip_seconds must be >= 10")
        cfg = replace(
            cfg,
            n_trials=cfg.n_trials or 2,
            isi=video.clip_seconds,
            picture_seconds=video.clip_seconds,
            rating_delay=video.clip_seconds / 2,
        )
        super().__init__(cfg)
        # The slider joins the device streams (with the same source-id tag).
        tag = self.streams[0].source_id.rsplit("-", 1)[-1]
        self.preset_streams.append(ANNOTATION)
        self.streams.append(ANNOTATION.spec(f"sim-annotation-{_slug(ANNOTATION.name)}-{tag}"))
        self._offsets.append(self._match_offset(len(self.streams) - 1))
        self._phase = np.append(self._phase, 0.0)

    # ------------------------------------------------------------------ felt state

    def _draw_trials(self) -> None:
        """Clips instead of pictures, and the felt state on a 20-Hz grid."""
        cfg, vm = self.config, self.video
        n = self.n_trials
        self._t_part = np.repeat(np.arange(cfg.participants), n)
        self._t_index = np.tile(np.arange(n), cfg.participants)
        self._t_onset = np.concatenate(
            [
                self._p.start[p] + cfg.lead_in + np.arange(n) * cfg.isi
                for p in range(cfg.participants)
            ]
        )
        self._t_stim = np.zeros(len(self._t_onset), int)
        self._t_repeat = np.zeros(len(self._t_onset), int)
        rng = np.random.default_rng([cfg.seed, 30])
        lo, hi = SCALE
        self._clip_mean = 4.0 + rng.uniform(-1, 1, (len(self._t_onset), 2)) * vm.clip_spread
        self._clip_mean = np.clip(self._clip_mean, lo + 0.5, hi - 0.5)
        grid = self.start_time - 5.0 + np.arange(int((self.duration + 10.0) * FELT_FS)) / FELT_FS
        self._felt_t = grid
        felt = np.empty((len(grid), 2))
        dt = 1.0 / FELT_FS
        phi = np.exp(-dt / vm.tau)
        smooth = np.exp(-dt / vm.clip_smooth)
        pp = self._p
        for head, offset in enumerate((pp.offset_arousal, pp.offset_valence)):
            # Target: the running clip's mean (neutral before the first clip), per participant.
            i = np.searchsorted(self._t_onset, grid, side="right") - 1
            part = self._participant(grid)
            target = np.where(i >= 0, self._clip_mean[np.clip(i, 0, None), head], 4.0)
            target = np.where((i >= 0) & (self._t_part[np.clip(i, 0, None)] == part), target, 4.0)
            target = target + offset[part]
            zi = [smooth * target[0]]
            level = lfilter([1 - smooth], [1, -smooth], target, zi=zi)[0]
            innov = rng.normal(0.0, vm.sd[head] * np.sqrt(1 - phi**2), len(grid))
            ou = lfilter([1.0], [1, -phi], innov, zi=[phi * rng.normal(0, vm.sd[head])])[0]
            felt[:, head] = np.clip(level + ou, lo, hi)
        self._felt = felt
        self._felt_a = np.array([self._clip_felt(k, 0) for k in range(len(self._t_onset))])
        self._felt_v = np.array([self._clip_felt(k, 1) for k in range(len(self._t_onset))])
        self._an = (self._felt_a - lo) / (hi - lo)  # per clip, as the picture simulator's
        self._vn = (self._felt_v - 4.0) / 3.0

    def _clip_felt(self, k: int, head: int) -> float:
        t0 = self._t_onset[k]
        inside = (self._felt_t >= t0) & (self._felt_t < t0 + self.config.isi)
        return float(self._felt[inside, head].mean())

    def felt_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Felt (arousal, valence) on 1..7 at data times ``t``."""
        t = np.asarray(t, float)
        return (
            np.interp(t, self._felt_t, self._felt[:, 0]),
            np.interp(t, self._felt_t, self._felt[:, 1]),
        )

    def _norm(self, t: np.ndarray, lag: float) -> tuple[np.ndarray, np.ndarray]:
        """Felt arousal 0..1 and valence -1..1, ``lag`` seconds earlier."""
        a, v = self.felt_at(t - lag)
        return (a - SCALE[0]) / (SCALE[1] - SCALE[0]), (v - 4.0) / 3.0

    def annotation(self, t: np.ndarray) -> np.ndarray:
        """The slider's (arousal, valence) at data times ``t``, (n, 2) on 1..7: the felt state
        ``annotation_lag`` s earlier through the participant's scale use, plus hand noise."""
        vm, p = self.video, self._participant(t)
        a, v = self.felt_at(t - vm.annotation_lag)
        out = np.empty((len(t), 2), np.float32)
        pp = self._p
        for c, (felt, slope, bias, drift) in enumerate(
            (
                (a, pp.slope_arousal, pp.bias_arousal, self._hand[0]),
                (v, pp.slope_valence, pp.bias_valence, self._hand[1]),
            )
        ):
            # Half the rating bias: a slider is placed, not picked from 7 boxes.
            value = 4.0 + slope[p] * (felt - 4.0) + 0.5 * bias[p] + drift(t)
            out[:, c] = np.clip(value, *SCALE)
        return out

    # ------------------------------------------------------------------ physiology

    def _draw_gaze(self) -> None:
        """Fixations all over the moving picture: longer when aroused, wider when unpleasant;
        the eye follows a slowly moving centre of interest. Blinks as in the picture task."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 31])
        n = int(self.duration / 0.25) + 10
        t = self.start_time + rng.uniform(0.0, 0.1)
        st, xs, ys, ends = [], [], [], []
        centre = Drift(rng, 0.3, (4.0, 15.0)), Drift(rng, 0.25, (4.0, 15.0))
        for _ in range(n):
            if t >= self.end_time:
                break
            an, vn = self._norm(np.array([t]), 0.5)
            d = rng.uniform(0.15, 0.35) * (0.8 + 0.6 * an[0])
            spread = 0.08 * (1.0 + 1.5 * max(-vn[0], 0.0))
            x = 0.5 + centre[0](np.array([t]))[0] + rng.normal(0, spread)
            y = 0.5 + centre[1](np.array([t]))[0] + rng.normal(0, spread)
            st.append(t)
            ends.append(t + d)
            xs.append(np.clip(x, 0.01, 0.99))
            ys.append(np.clip(y, 0.01, 0.99))
            t += d + 0.03
        st, end, x, y = map(np.asarray, (st, ends, xs, ys))
        self._fix = (
            np.concatenate([[-np.inf], st]),
            np.concatenate([st[:1], end[:-1], [np.inf]]),
            np.concatenate([x[:1], x]),
            np.concatenate([y[:1], y]),
        )
        self._draw_blinks()
        hand = np.random.default_rng([cfg.seed, 32])
        amp = self.video.annotation_noise * 2.0
        self._hand = (Drift(hand, amp, (3.0, 12.0)), Drift(hand, amp, (3.0, 12.0)))

    def _hr_trajectory(self, t: np.ndarray) -> np.ndarray:
        """Heart rate rises with arousal and falls with unpleasantness, ~1.5 s late."""
        p = self._participant(t)
        an, vn = self._norm(t, 1.5)
        hr = self._p.hr_base[p] + self._hr_drift(t) + 2.5 * np.sin(2 * np.pi * 0.25 * t + 1.0)
        return hr + self._p.hr_gain[p] * (8.0 * (an - 0.5) + 4.0 * vn)

    def _draw_scrs(self) -> None:
        """Skin-conductance responses whose rate and size grow with felt arousal (thinned
        Poisson process: up to one every 4 s when most aroused)."""
        rng = np.random.default_rng([self.config.seed, 33])
        rmax = 0.25
        n = rng.poisson(rmax * self.duration)
        t = np.sort(rng.uniform(self.start_time, self.end_time, n))
        an, _ = self._norm(t, 1.5)
        rate = 0.015 + (rmax - 0.015) * an**2
        keep = rng.uniform(0, rmax, n) < rate
        t, an = t[keep], an[keep]
        p = self._participant(t)
        amp = self._p.gsr_gain[p] * (0.05 + 0.6 * an**1.5) * rng.lognormal(0.0, 0.4, len(t))
        self._scr = (t, amp)

    def _gsr(self, t: np.ndarray) -> np.ndarray:
        """Skin conductance (µS): tonic level that follows arousal slowly, plus the SCRs."""
        p = self._participant(t)
        an, _ = self._norm(t, 4.0)
        tonic = self._p.gsr_base[p] + self._gsr_drift(t) + self._p.gsr_gain[p] * 1.2 * an
        return np.clip(tonic + events(t, *self._scr, scr_shape, 40.0), 0.05, None)

    def _pupil(self, t: np.ndarray) -> np.ndarray:
        """Pupil diameter (mm): dilates with felt arousal ~1 s late."""
        p = self._participant(t)
        an, _ = self._norm(t, 1.0)
        return (
            self._p.pupil_base[p] + self._pupil_drift(t) + self._p.pupil_gain[p] * 0.8 * (an - 0.5)
        )

    # ------------------------------------------------------------------ streams

    def _times(self, index, ps, t0, rng) -> np.ndarray:
        if ps.type == "Markers":
            ev = self._t_onset if ps.channel_format == "string" else np.empty(0)
            return ev[np.searchsorted(ev, t0) : np.searchsorted(ev, t0 + SEGMENT)]
        return super()._times(index, ps, t0, rng)

    def _values(self, ps, t, rng) -> np.ndarray:
        if ps.type == "Annotation":
            return self.annotation(t)
        if ps.type == "Markers":
            out = np.empty((len(t), 1), object)
            for row, tk in enumerate(t):
                k = int(np.searchsorted(self._t_onset, tk, side="right")) - 1
                out[row, 0] = VIDEO_MARKER.format(clip=self.clip_id(k))
            return out
        return super()._values(ps, t, rng)

    def clip_id(self, k: int) -> str:
        """Id of clip ``k`` (0-based over the session): ``clip-01``... per participant."""
        return f"clip-{int(self._t_index[k]) + 1:02d}"

    # ------------------------------------------------------------------ ground truth

    def ground_truth(self) -> list[dict]:
        """Per clip: participant, clip id, onset, the clip's mean felt state and the
        participant's scale use (the felt time course is :meth:`felt_series`)."""
        out = []
        for k in range(len(self._t_onset)):
            p = int(self._t_part[k])
            out.append(
                {
                    "participant": self.participant_id(p),
                    "clip": self.clip_id(k),
                    "onset": float(self._t_onset[k]),
                    "seconds": self.config.isi,
                    "felt_arousal": float(self._felt_a[k]),
                    "felt_valence": float(self._felt_v[k]),
                    "slope_arousal": float(self._p.slope_arousal[p]),
                    "slope_valence": float(self._p.slope_valence[p]),
                    "annotation_lag": self.video.annotation_lag,
                }
            )
        return out

    def felt_series(self, fs: float = 4.0) -> dict[str, np.ndarray]:
        """The felt state over the session: ``t``, ``arousal``, ``valence`` at ``fs`` Hz."""
        t = self.start_time + np.arange(int(self.duration * fs)) / fs
        a, v = self.felt_at(t)
        return {"t": t, "arousal": a, "valence": v}


__all__ = ["ANNOTATION", "VideoModel", "VideoSimulation"]
