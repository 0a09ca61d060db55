"""Onset markers + buffer contents → trials. Pure logic, no LSL: live, replay and dataset
building all drive it with the same calls (``add_markers`` then ``poll(now)``).

Every accepted onset ends as exactly one :class:`TrialEvent`: the cut trial, or a
:class:`~acquisition.trials.types.TrialError` when cutting it raised. The onset leaves the
pending list only after its event exists, so no exception can lose it."""

from __future__ import annotations

import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field

import numpy as np

from acquisition.lsl.presets import EXTRA_ROLES
from acquisition.markers import MarkerParser, Onset, Rating
from acquisition.reporting import FailureLog, is_milestone
from acquisition.trials.cut import RoleReader, cut_trial
from acquisition.trials.types import Ratings, Trial, TrialError, TrialSpec

OPTIONAL_WAIT_S = 0.5
"""Seconds past a window's end (once the required roles are in) a trial waits for a bound
optional role (EEG, face) that lags, before it is cut without the end of that role's data."""

log = logging.getLogger(__name__)


@dataclass
class TrialEvent:
    """An onset's record: its cut trial, or the error that stands in for it (exactly one set).

    Consumers that predict or store trials check :attr:`error` first (or :attr:`ok`).
    """

    trial: Trial | None = None
    error: TrialError | None = None

    def __post_init__(self) -> None:
        if (self.trial is None) == (self.error is None):
            raise ValueError("a TrialEvent holds a trial or an error, exactly one")

    @property
    def ok(self) -> bool:
        """True when the trial was cut."""
        return self.trial is not None

    @property
    def trial_id(self) -> str:
        """The onset's trial id."""
        return self.trial.trial_id if self.trial is not None else self.error.trial_id


@dataclass
class RatingEvent:
    """Ratings arrived for an already-cut trial."""

    trial_id: str
    ratings: Ratings


@dataclass
class _Pending:
    trial_id: str
    onset: float
    stimulus_id: str
    notes: list[str] = field(default_factory=list)
    seen_at: float | None = None  # ``now`` of the first poll that saw it


@dataclass
class _Cut:
    trial_id: str
    onset: float
    ratings: Ratings | None
    trial: weakref.ref[Trial] | weakref.ref[TrialError]


@dataclass
class AlignerStats:
    """What the aligner saw and did; every marker is accounted for here."""

    markers: int = 0
    onsets: int = 0
    duplicates: int = 0
    ignored: int = 0  # neither an onset nor a rating
    unknown_markers: int = 0  # of those, texts or codes the parser could not read
    trials_cut: int = 0
    trials_failed: int = 0
    no_data: int = 0
    incomplete: int = 0
    unknown_stimulus: int = 0
    ratings_attached: int = 0
    ratings_orphaned: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return dict(self.__dict__, dropped=dict(self.dropped))

    def count_drop(self, reason: str, n: int = 1) -> int:
        """Count ``n`` markers dropped for ``reason``; returns the count so far."""
        self.dropped[reason] = total = self.dropped.get(reason, 0) + n
        return total

    def marker_problems(self) -> str:
        """One line of what went wrong with the markers ('' when nothing did), for the
        experimenter's views (dashboard summary, headless footer)."""
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.duplicates, "duplicate onsets"),
                (self.unknown_markers, "unknown markers"),
                (self.ratings_orphaned, "ratings without a trial"),
                (self.unknown_stimulus, "unknown stimulus ids"),
                *((n, k.replace("_", " ")) for k, n in sorted(self.dropped.items())),
            )
            if n
        ]
        return "markers: " + ", ".join(parts) if parts else ""


def _log_rarely(n: int, msg: str, *args: object) -> None:
    """Warn on the 1st, 10th, 100th... occurrence: a flood of bad markers is reported, not
    spammed (every occurrence is counted in :class:`AlignerStats`)."""
    if n == 1:
        log.warning(msg + " (counted)", *args)
    elif is_milestone(n):
        log.warning(msg + " (%d so far, all counted)", *args, n)


class TrialAligner:
    """Keeps onsets pending until their window is complete, then cuts them.

    Parameters
    ----------
    spec
        Trial window and grid.
    roles
        Role → reader of its data (buffers behind them).
    watermark
        Role → newest time its data is known complete up to.
    parser
        Marker parser (default formats when None).
    stimuli
        Known stimulus ids; onsets naming others are still cut, with a note and a count.
    participant
        Participant id stamped on trials.
    id_prefix
        Prefix of trial ids (e.g. ``"P01-"``).
    max_pending
        Onsets waiting at most; beyond it the oldest is cut early and counted as incomplete.
    rating_window
        Seconds after an onset during which a rating marker belongs to that trial.
    """

    def __init__(
        self,
        spec: TrialSpec,
        roles: Mapping[str, RoleReader],
        watermark: Callable[[str], float],
        parser: MarkerParser | None = None,
        stimuli: Container[str] | None = None,
        participant: str | None = None,
        id_prefix: str = "",
        max_pending: int = 1000,
        rating_window: float = 60.0,
    ) -> None:
        self.spec = spec
        self.roles = roles
        self.watermark = watermark
        self.parser = parser or MarkerParser()
        self.stimuli = stimuli
        self.participant = participant
        self.id_prefix = id_prefix
        self.max_pending = max_pending
        self.rating_window = rating_window
        self.stats = AlignerStats()
        self.failures = FailureLog(log)
        self._pending: list[_Pending] = []
        # Cut trials that may still get ratings: small records with weak references, so the
        # aligner never keeps a trial's arrays alive once its consumers are done with it.
        self._recent: deque[_Cut] = deque(maxlen=64)
        self._seen: deque[tuple[float, str]] = deque(maxlen=4096)
        self._seen_set: set[tuple[float, str]] = set()
        self._count = 0
        self._out: list[TrialEvent | RatingEvent] = []
        self._early_ratings: dict[str, Ratings] = {}  # rated before the window closed
        self.onset_listeners: list[Callable[[str, float, str], None]] = []
        """Called with (trial_id, onset, stimulus_id) when an onset marker is accepted, before
        its window closes (the inference worker embeds the stimulus image then)."""
        self._previous_onset_t: float | None = None  # newest onset marker, accepted or not
        self.last_onset: tuple[str, float, str] | None = None
        """(trial_id, onset, stimulus_id) of the newest accepted onset."""

    @property
    def pending(self) -> int:
        """Onsets waiting for their window to complete."""
        return len(self._pending)

    def add_markers(self, timestamps: np.ndarray, values: np.ndarray) -> None:
        """Feed marker samples (values: (n, channels), the first channel is read)."""
        for t, row in zip(timestamps, values, strict=False):
            value = (row[0] if len(row) else "") if np.ndim(row) else row
            self.stats.markers += 1
            if not np.isfinite(t):
                n = self.stats.count_drop("marker_bad_timestamp")
                _log_rarely(n, "marker with a non-finite timestamp dropped")
                continue
            unknown_before = self.parser.unknown_total
            meaning = self.parser.parse(value)
            if isinstance(meaning, Onset):
                self._onset(float(t), meaning.stimulus_id)
            elif isinstance(meaning, Rating):
                self._rating(float(t), meaning)
            else:
                # Skipped by design (presenter:/video: status, the config's ignore pattern,
                # code 0) or unreadable; only the latter is a marker problem.
                self.stats.ignored += 1
                self.stats.unknown_markers += self.parser.unknown_total - unknown_before

    def _onset(self, t: float, stimulus_id: str) -> None:
        key = (round(t, 6), stimulus_id)
        if key in self._seen_set:  # the same marker sample delivered twice
            self.stats.duplicates += 1
            return
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(key)
        self._seen_set.add(key)
        previous, self._previous_onset_t = self._previous_onset_t, t
        gap = self.parser.min_onset_interval
        if previous is not None and abs(t - previous) < gap:
            # No picture is shown for a 5-s trial this soon after another: a script sending
            # the onset every frame, or a marker flood. Measured from the previous onset
            # marker, accepted or not, so a flood opens one trial, not one every ``gap``.
            n = self.stats.count_drop("onset_too_close")
            _log_rarely(
                n,
                "onset %r at %.3f is %.3f s after the previous onset marker (minimum %g s, "
                "markers.min_onset_interval): dropped",
                stimulus_id, t, abs(t - previous), gap,
            )  # fmt: skip
            return
        self.stats.onsets += 1
        self._count += 1
        pending = _Pending(f"{self.id_prefix}{self._count}", t, stimulus_id)
        if self.stimuli is not None and stimulus_id not in self.stimuli:
            self.stats.unknown_stimulus += 1
            pending.notes.append(f"unknown stimulus id {stimulus_id!r}")
            log.warning("onset names unknown stimulus %r (trial still cut)", stimulus_id)
        self._pending.append(pending)
        self._pending.sort(key=lambda p: p.onset)
        self.last_onset = (pending.trial_id, t, stimulus_id)
        for listener in self.onset_listeners:
            listener(pending.trial_id, t, stimulus_id)
        if len(self._pending) > self.max_pending:
            oldest = self._pending[0]
            oldest.notes.append("cut early: too many onsets pending")
            self._settle(oldest, complete=False)

    def _rating(self, t: float, rating: Rating) -> None:
        scale = self.parser.scale
        if not all(scale[0] <= v <= scale[1] for v in (rating.arousal, rating.valence)):
            n = self.stats.count_drop("rating_out_of_scale")
            _log_rarely(
                n, "rating %s/%s outside the scale %g..%g: ignored",
                rating.arousal, rating.valence, *scale,
            )  # fmt: skip
            return
        ratings = Ratings(rating.arousal, rating.valence, scale[0], scale[1], t)
        candidates = [tr for tr in self._recent if tr.onset < t and tr.ratings is None]
        # Pending trials already rated are no candidates either: a second rating must not
        # overwrite the first (markers read in one go, a flood of ratings).
        pending = [
            p for p in self._pending if p.onset < t and p.trial_id not in self._early_ratings
        ]
        latest_cut = candidates[-1] if candidates else None
        latest_pending = pending[-1] if pending else None
        if latest_pending is not None and (
            latest_cut is None or latest_pending.onset > latest_cut.onset
        ):
            # Rated before its window closed (rare): keep it with the pending onset.
            latest_pending.notes.append("rated before window end")
            self._early_ratings[latest_pending.trial_id] = ratings
            self.stats.ratings_attached += 1
            return
        if latest_cut is None or t - latest_cut.onset > self.rating_window:
            self.stats.ratings_orphaned += 1
            _log_rarely(
                self.stats.ratings_orphaned, "rating at %.3f matches no recent trial: ignored", t
            )
            return
        latest_cut.ratings = ratings
        trial = latest_cut.trial()
        if trial is not None:
            trial.ratings = ratings
        self.stats.ratings_attached += 1
        self._out.append(RatingEvent(latest_cut.trial_id, ratings))

    def poll(self, now: float) -> list[TrialEvent | RatingEvent]:
        """Cut every pending trial whose streams have passed its end, or whose grace ran out.

        ``now`` is the current time on the same clock (wall clock live, data time offline).
        The grace period runs from the window's end, or from when the onset was first seen if
        its marker came late, so data still in flight is waited for.
        """
        for p in self._pending:
            if p.seen_at is None:
                p.seen_at = now
        while self._pending:
            p = self._pending[0]
            end = p.onset + self.spec.duration
            lagging = [r for r in self._required() if self.watermark(r) < end]
            if not lagging:
                # Bound optional roles (EEG, face) get a short wait, never the grace period:
                # a trial is complete without them (docs/modalities.md).
                late = [r for r in self._optional() if self.watermark(r) < end]
                if late and now < max(end, p.seen_at) + OPTIONAL_WAIT_S:
                    break
                if late:
                    p.notes.append("cut without the end of optional " + ", ".join(late))
                self._settle(p, complete=True)
            elif now >= max(end, p.seen_at) + self.spec.grace:
                # Grace runs from the window's end, or from when a late marker was seen.
                p.notes.append("cut on grace timeout; late: " + ", ".join(lagging))
                self._settle(p, complete=False)
            else:
                break
        out, self._out = self._out, []
        return out

    def flush(self) -> list[TrialEvent | RatingEvent]:
        """Cut everything still pending (end of a recording or shutdown)."""
        while self._pending:
            p = self._pending[0]
            end = p.onset + self.spec.duration
            lagging = [r for r in self._required() if self.watermark(r) < end]
            if lagging:
                p.notes.append("cut at shutdown; incomplete: " + ", ".join(lagging))
            self._settle(p, complete=not lagging)
        out, self._out = self._out, []
        return out

    def _required(self) -> list[str]:
        return [r for r in self.spec.required_roles if r in self.roles]

    def _optional(self) -> list[str]:
        return [r for r in EXTRA_ROLES if r in self.roles and r not in self.spec.required_roles]

    def _settle(self, p: _Pending, complete: bool) -> None:
        """Turn pending onset ``p`` into its event, then (only then) drop it from pending."""
        self._out.append(self._cut(p, complete))
        self._pending.remove(p)

    def _cut(self, p: _Pending, complete: bool) -> TrialEvent:
        """The onset's event: its trial, or an error record when cutting raised."""
        ratings = self._early_ratings.pop(p.trial_id, None)
        try:
            trial = cut_trial(
                p.trial_id,
                p.onset,
                p.stimulus_id,
                self.roles,
                self.spec,
                participant=self.participant,
                complete=complete,
                notes=p.notes,
            )
        except Exception as exc:  # a binding or data bug: an error record, never a lost onset
            error = TrialError.from_exception(
                exc, "cut", p.trial_id, p.onset, p.stimulus_id, self.participant, p.notes
            )
            error.ratings = ratings
            self.stats.trials_failed += 1
            self.failures.report(exc, "cut", p.trial_id)
            # Kept for the ratings that follow: they attach to the error record, not orphaned.
            self._recent.append(_Cut(p.trial_id, p.onset, ratings, weakref.ref(error)))
            return TrialEvent(error=error)
        trial.ratings = ratings
        trial.cut_time = time.perf_counter()
        self.stats.trials_cut += 1
        if not complete:
            self.stats.incomplete += 1
        if not trial.predictable:
            self.stats.no_data += 1
        self._recent.append(_Cut(trial.trial_id, trial.onset, trial.ratings, weakref.ref(trial)))
        return TrialEvent(trial)
