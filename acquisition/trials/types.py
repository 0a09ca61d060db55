"""The trial: what acquisition hands to inference, the dashboard and dataset building."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHANNELS = ("x", "y", "pupil", "gsr", "hr")
"""Common-grid channels of :attr:`Trial.signals`, in order."""

PHYSIO_CHANNELS = ("pupil", "gsr", "hr")
"""Channels most informative as change from the pre-onset baseline."""


@dataclass(frozen=True)
class TrialSpec:
    """How trials are cut.

    Attributes
    ----------
    duration
        Window length after onset, seconds (EmoEye: 5).
    baseline
        Pre-onset baseline kept with each trial, seconds.
    grid_rate
        Rate of the common resampling grid, Hz (EmoEye's Gazepoint data: 60).
    scanpath_size
        Side of the rendered scanpath image, pixels.
    grace
        Seconds after the window's end to wait for late streams before cutting anyway.
    required_roles
        Roles whose data a trial waits for.
    """

    duration: float = 5.0
    baseline: float = 1.0
    grid_rate: float = 60.0
    scanpath_size: int = 64
    grace: float = 2.0
    required_roles: tuple[str, ...] = ("gaze", "gsr", "hr")

    @property
    def n_samples(self) -> int:
        """Samples in the trial window on the common grid."""
        return int(round(self.duration * self.grid_rate))

    @property
    def n_baseline(self) -> int:
        """Samples in the baseline on the common grid."""
        return int(round(self.baseline * self.grid_rate))

    def grid(self) -> np.ndarray:
        """Grid times relative to onset: baseline samples (negative) then window samples."""
        step = 1.0 / self.grid_rate
        return (np.arange(-self.n_baseline, self.n_samples) * step).astype(np.float64)


@dataclass
class TrialQuality:
    """Quality figures of a trial.

    ``coverage`` is, per role, the fraction of the window the stream delivered samples for
    (valid or not, 0..1); ``usable`` per role the fraction with usable values after NaNs,
    blinks and out-of-range values are removed; ``gaze_valid`` the
    fraction of valid gaze samples; ``blinks`` the count of blink-like pupil/gaze losses
    (80-500 ms); ``gaps`` per role the count of holes longer than 3 nominal periods (0.25 s for
    irregular streams); ``missing`` the roles with no data at all; ``notes`` short explanations.
    """

    coverage: dict[str, float] = field(default_factory=dict)
    usable: dict[str, float] = field(default_factory=dict)
    gaze_valid: float = 0.0
    blinks: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        """One figure 0..1: the worst role coverage times gaze validity."""
        cov = min(self.coverage.values()) if self.coverage else 0.0
        return float(cov * self.gaze_valid)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return {
            "coverage": {k: round(v, 4) for k, v in self.coverage.items()},
            "usable": {k: round(v, 4) for k, v in self.usable.items()},
            "gaze_valid": round(self.gaze_valid, 4),
            "blinks": self.blinks,
            "gaps": dict(self.gaps),
            "missing": list(self.missing),
            "complete": self.complete,
            "score": round(self.score, 4),
            "notes": list(self.notes),
        }


@dataclass
class Ratings:
    """A participant's self-report for a trial, on the scale [scale_min, scale_max]."""

    arousal: float
    valence: float
    scale_min: float = 1.0
    scale_max: float = 7.0
    timestamp: float = float("nan")

    def classes(self, n_classes: int = 7) -> tuple[int, int]:
        """0-based class indices after mapping the scale onto 1..n_classes."""

        def to_class(v: float) -> int:
            frac = (v - self.scale_min) / max(self.scale_max - self.scale_min, 1e-9)
            return int(np.clip(round(frac * (n_classes - 1)), 0, n_classes - 1))

        return to_class(self.arousal), to_class(self.valence)


@dataclass
class Trial:
    """One stimulus presentation, cut and preprocessed.

    Attributes
    ----------
    trial_id
        Unique within a session: ``"<n>"`` counting from 1, prefixed by the participant if known.
    onset
        Onset time on the receiving machine's LSL clock.
    stimulus_id
        The stimulus shown (from the onset marker).
    signals
        float32 (5, n_baseline + n_samples): x, y, pupil, gsr, hr on the common grid, baseline
        first. Gaps are filled (linear, edges held) so the array is finite; ``mask`` says where
        data was real.
    mask
        bool (5, n_baseline + n_samples): True where the grid point had data nearby.
    baseline
        float32 (5,): mean of each channel over the baseline (NaN where the baseline had none).
    scanpath
        float32 (2, S, S): fixation density and time-of-visit images of the gaze in the window.
    quality
        Coverage, validity, blinks, gaps.
    raw
        Per role (timestamps, values) of the window including baseline, as extracted.
    ratings
        Self-report attached after the trial, when it comes.
    spec
        How it was cut.
    participant
        Participant id when known (from config, file metadata or the simulator).
    """

    trial_id: str
    onset: float
    stimulus_id: str
    signals: np.ndarray
    mask: np.ndarray
    baseline: np.ndarray
    scanpath: np.ndarray
    quality: TrialQuality
    spec: TrialSpec
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    ratings: Ratings | None = None
    participant: str | None = None
    cut_time: float = float("nan")
    """``time.perf_counter()`` when the trial was cut (latency figures downstream)."""

    @property
    def window(self) -> np.ndarray:
        """The signals after onset only, (5, n_samples)."""
        return self.signals[:, self.spec.n_baseline :]

    def summary(self) -> dict:
        """JSON-ready facts about the trial (no arrays)."""
        out = {
            "trial_id": self.trial_id,
            "onset": round(self.onset, 4),
            "stimulus_id": self.stimulus_id,
            "participant": self.participant,
            "quality": self.quality.to_dict(),
        }
        if self.ratings is not None:
            out["ratings"] = {"arousal": self.ratings.arousal, "valence": self.ratings.valence}
        return out
