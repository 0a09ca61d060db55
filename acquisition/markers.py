"""Parsing stimulus markers: onsets with stimulus ids, and ratings."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

LOGGED_UNKNOWN = 20
"""Distinct unknown marker texts logged; past it one line says the rest are only counted."""

DEFAULT_ONSET = r"^\s*(?:onset|stim(?:ulus)?)\s*[:=]\s*(?P<stimulus>[^\s;,]+)\s*$"
DEFAULT_RATING = (
    r"^\s*rating\s*[:=]?\s*arousal\s*=\s*(?P<arousal>-?\d+(?:\.\d+)?)\s*[;, ]\s*"
    r"valence\s*=\s*(?P<valence>-?\d+(?:\.\d+)?)\s*$"
)


PRESENTER_PREFIX = "presenter:"
"""Markers ``emoeye present`` sends about itself (``presenter:abort``): skipped silently."""

VIDEO_PREFIX = "video:"
"""Markers of the simulator's video condition (``video:start:clip-01``): skipped silently."""


@dataclass(frozen=True)
class Onset:
    """A stimulus onset marker."""

    stimulus_id: str


@dataclass(frozen=True)
class Rating:
    """A rating marker (values on the configured scale)."""

    arousal: float
    valence: float


@dataclass
class MarkerParser:
    """Turns marker samples into :class:`Onset` / :class:`Rating`.

    Parameters
    ----------
    onset
        Regex with a named group ``stimulus``.
    rating
        Regex with named groups ``arousal`` and ``valence``.
    int_codes
        For integer marker streams: code → stimulus id. Without it, code N opens stimulus
        ``str(N)``; codes <= 0 are ignored.
    ignore
        Regex of marker texts to skip without a word (e.g. fixation crosses).
    scale
        (min, max) of the rating scale.
    min_onset_interval
        Seconds: an onset this close to the previous onset marker is dropped and counted
        (a script sending the onset every frame, a marker flood: one trial, not hundreds).
        Overlapping trials (onsets 1-5 s apart) are kept.
    unknown
        Unknown marker text (first 80 characters; at most 1000 texts) → times seen.
    unknown_total
        Unknown markers seen in all.
    """

    onset: str = DEFAULT_ONSET
    rating: str = DEFAULT_RATING
    int_codes: dict[int, str] | None = None
    ignore: str | None = None
    scale: tuple[float, float] = (1.0, 7.0)
    min_onset_interval: float = 0.25
    unknown: dict[str, int] = field(default_factory=dict)
    unknown_total: int = 0

    def __post_init__(self) -> None:
        try:
            self._onset = re.compile(self.onset, re.IGNORECASE)
            self._rating = re.compile(self.rating, re.IGNORECASE)
            self._ignore = re.compile(self.ignore, re.IGNORECASE) if self.ignore else None
        except re.error as exc:
            raise ValueError(f"bad marker regex: {exc}") from exc
        if "stimulus" not in self._onset.groupindex:
            raise ValueError("markers.onset regex needs a named group (?P<stimulus>...)")
        if not {"arousal", "valence"} <= set(self._rating.groupindex):
            raise ValueError("markers.rating regex needs named groups arousal and valence")

    def parse(self, value: object) -> Onset | Rating | None:
        """The marker's meaning, or None (unknown texts are logged once each)."""
        if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        ):
            if not math.isfinite(value) or value != int(value):
                return self._unknown(str(value))  # NaN, inf or 2.5 are no marker codes
            code = int(value)
            if self.int_codes is not None:
                stim = self.int_codes.get(code)
                return Onset(stim) if stim is not None else self._unknown(str(code))
            return Onset(str(code)) if code > 0 else None
        text = str(value)
        if (m := self._onset.match(text)) is not None:
            return Onset(m.group("stimulus"))
        if (m := self._rating.match(text)) is not None:
            return Rating(float(m.group("arousal")), float(m.group("valence")))
        if self._ignore is not None and self._ignore.search(text):
            return None
        if text.startswith((PRESENTER_PREFIX, VIDEO_PREFIX)):  # status, not stimuli
            return None
        return self._unknown(text)

    def _unknown(self, text: str) -> None:
        key = text[:80]
        self.unknown_total += 1
        seen = self.unknown.get(key, 0)
        if seen == 0:
            if len(self.unknown) < LOGGED_UNKNOWN:
                log.warning("ignoring unknown marker %r (logged once)", key)
            elif len(self.unknown) == LOGGED_UNKNOWN:
                log.warning(
                    "more than %d different unknown markers: further ones are counted, not "
                    "logged (check the marker format in the config)",
                    LOGGED_UNKNOWN,
                )
        if seen or len(self.unknown) < 1000:
            self.unknown[key] = seen + 1
        return None
