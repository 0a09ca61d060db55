"""The trial: what acquisition hands to inference, the dashboard and dataset building."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from acquisition.trials.modalities import EegFeatures, FaceTrack

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
        Roles whose data a trial waits for, whose quality it is scored on, and which the model
        needs.
    min_coverage
        Fraction of the window (0..1) each required role must hold usable data for; a trial
        below it for any required role is recorded with the reason but never predicted nor
        written to a dataset.
    """

    duration: float = 5.0
    baseline: float = 1.0
    grid_rate: float = 60.0
    scanpath_size: int = 64
    grace: float = 2.0
    required_roles: tuple[str, ...] = ("gaze", "gsr", "hr")
    min_coverage: float = 0.5

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
    irregular streams); ``missing`` the roles with no data at all; ``unbound`` the roles with no
    stream; ``required`` the roles the trial is scored on (the spec's required roles; every
    role with a coverage figure when empty); ``unusable`` why the trial cannot be predicted
    (a required role below ``TrialSpec.min_coverage``; empty when it can); ``notes`` short
    explanations.
    """

    coverage: dict[str, float] = field(default_factory=dict)
    usable: dict[str, float] = field(default_factory=dict)
    gaze_valid: float = 0.0
    blinks: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)
    eeg: dict = field(default_factory=dict)
    """When EEG is bound: ``channels`` kept, ``excluded`` (electrode → flat/railed/no data),
    ``line_noise`` share (docs/modalities.md)."""
    face: dict = field(default_factory=dict)
    """When a face stream is bound: ``tracked``, the share of frames with successful tracking."""

    def scored_roles(self) -> list[str]:
        """The roles the score is computed over: required and bound (an optional role, or a
        required one with no stream, does not enter the figure; see :meth:`causes`)."""
        roles = self.required or list(self.coverage)
        return [r for r in roles if r in self.coverage and r not in self.unbound]

    @property
    def score(self) -> float:
        """One figure 0..1: the worst coverage of the scored roles, times gaze validity when
        gaze is one of them. 0 when no required role has a stream."""
        roles = self.scored_roles()
        if not roles:
            return 0.0
        cov = min(self.coverage[r] for r in roles)
        return float(cov * (self.gaze_valid if "gaze" in roles else 1.0))

    def causes(self, threshold: float) -> list[str]:
        """What keeps the score down, one item per cause (``"gsr coverage 0.40"``,
        ``"gaze valid 0.30"``, ``"hr not bound"``): every factor below ``threshold``, or, when
        only their product is below it, every factor below 1."""
        roles = self.scored_roles()
        factors = [(f"{r} coverage", self.coverage[r]) for r in roles]
        if "gaze" in roles:
            factors.append(("gaze valid", self.gaze_valid))
        low = [(k, v) for k, v in factors if v < threshold] or [(k, v) for k, v in factors if v < 1]
        out = [f"{k} {v:.2f}" for k, v in sorted(low, key=lambda kv: kv[1])]
        required = self.required or list(self.coverage)
        return out + [f"{r} not bound" for r in required if r in self.unbound]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return {
            "coverage": {k: round(v, 4) for k, v in self.coverage.items()},
            "usable": {k: round(v, 4) for k, v in self.usable.items()},
            "gaze_valid": round(self.gaze_valid, 4),
            "blinks": self.blinks,
            "gaps": dict(self.gaps),
            "missing": list(self.missing),
            "unbound": list(self.unbound),
            "required": list(self.required),
            "complete": self.complete,
            "score": round(self.score, 4),
            "unusable": list(self.unusable),
            "notes": list(self.notes),
            **({"eeg": dict(self.eeg)} if self.eeg else {}),
            **({"face": dict(self.face)} if self.face else {}),
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
        """0-based class indices: equal-width bins of the scale (:mod:`acquisition.trials.scale`)."""
        from acquisition.trials.scale import rating_class

        lo, hi = self.scale_min, self.scale_max
        return rating_class(self.arousal, lo, hi, n_classes), rating_class(
            self.valence, lo, hi, n_classes
        )


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
    mode: str = "trial"
    """``"trial"`` (cut at an onset) or ``"continuous"`` (a window of continuous mode,
    :mod:`acquisition.trials.continuous`)."""
    eeg: EegFeatures | None = None
    """Band powers and frontal asymmetry when an EEG stream is bound (raw µV in ``raw["eeg"]``)."""
    face: FaceTrack | None = None
    """Action units on the common grid when a face stream is bound."""

    @property
    def predictable(self) -> bool:
        """True when every required role holds usable data for at least
        ``TrialSpec.min_coverage`` of the window (``quality.unusable`` says why not)."""
        return not self.quality.unusable

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


@dataclass
class TrialError:
    """Why an onset has no trial, or its trial no prediction: the record that stands in for it.

    Attributes
    ----------
    trial_id, onset, stimulus_id, participant
        Identity of the onset (as its trial would have had).
    stage
        Where it failed: ``"cut"`` (reading, resampling, quality, scanpath), ``"predict"``
        (the worker) or ``"session"`` (handing the trial on).
    reason
        One line: what failed and the exception (``"cut failed: KeyError: ..."``).
    exc_type
        The exception's type name (``"KeyError"``).
    notes
        The onset's notes (unknown stimulus, late marker...).
    role
        The role whose reading raised, when that is where it failed.
    """

    trial_id: str
    onset: float
    stimulus_id: str
    stage: str
    reason: str
    exc_type: str
    participant: str | None = None
    notes: list[str] = field(default_factory=list)
    ratings: Ratings | None = None
    role: str | None = None
    mode: str = "trial"
    """As :attr:`Trial.mode`."""

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        stage: str,
        trial_id: str,
        onset: float,
        stimulus_id: str,
        participant: str | None = None,
        notes: list[str] | None = None,
        mode: str = "trial",
    ) -> TrialError:
        """The record of ``exc`` raised at ``stage`` for this onset (``exc.role``, when set,
        names the role being read); ``mode`` as :attr:`Trial.mode` (a window's failure is a
        window's record)."""
        name = type(exc).__name__
        role = getattr(exc, "role", None)
        where = f" (reading role {role})" if role else ""
        return cls(
            trial_id=trial_id,
            onset=float(onset),
            stimulus_id=stimulus_id,
            stage=stage,
            reason=f"{stage} failed: {name}: {exc}{where}",
            exc_type=name,
            participant=participant,
            notes=list(notes or []),
            role=role,
            mode=mode,
        )

    def summary(self) -> dict:
        """JSON-ready facts (the ``trial_error`` record)."""
        return {
            "trial_id": self.trial_id,
            "onset": round(self.onset, 4),
            "stimulus_id": self.stimulus_id,
            "participant": self.participant,
            "stage": self.stage,
            "error": self.reason,
            "exc_type": self.exc_type,
            "role": self.role,
            "notes": list(self.notes),
        }
