"""The onsets of a whole offline recording, as the trial aligner accepts them, each with the
in-stream rating marker that attaches to it: the look-ahead ``emoeye dataset build`` matches a
behavioural file against before it writes anything (:mod:`models.behaviour`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np


@dataclass
class OnsetRecord:
    """An accepted onset marker of a recording, with the in-stream rating that follows it."""

    onset: float
    stimulus: str
    rating: tuple[float, float] | None = None
    rating_time: float = math.nan


def recording_onsets(source: Any, config: Any) -> list[OnsetRecord] | None:
    """The accepted onset markers of an offline source, each with the in-stream rating marker
    that attaches to it (the latest earlier onset not yet rated, within the aligner's rating
    window), exactly as the trial aligner accepts them. None without a marker stream."""
    from acquisition.aligner import TrialAligner
    from acquisition.markers import Onset, Rating
    from acquisition.offline_acquisition import bind_offline

    key = bind_offline(source, config, check=False).roles.get("markers")
    if key is None:
        return None
    stream = next((s for s in getattr(source, "xdf_streams", []) if s.spec.key == key), None)
    ts, values = (
        (stream.timestamps, stream.values()) if stream is not None else source.collect()[key]
    )
    quiet = [logging.getLogger(n) for n in ("acquisition.markers", "acquisition.aligner")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:  # the real pass logs these once; the look-ahead stays silent
        lg.setLevel(logging.CRITICAL)
    try:
        parser = replace(config.markers, unknown={}, unknown_total=0)
        aligner = TrialAligner(
            config.trial, {}, lambda role: -math.inf, parser=replace(parser, unknown={}),
            max_pending=2**62,
        )  # fmt: skip
        out: list[OnsetRecord] = []
        aligner.onset_listeners.append(lambda _id, t, s: out.append(OnsetRecord(t, s)))
        for t, row in zip(ts, values, strict=False):
            value = (row[0] if len(row) else "") if np.ndim(row) else row
            meaning = parser.parse(value)
            if isinstance(meaning, Onset):
                aligner.add_markers(np.asarray([t], dtype=float), [[value]])
            elif isinstance(meaning, Rating) and math.isfinite(t):
                target = next((o for o in reversed(out) if o.onset < t and o.rating is None), None)
                if target is not None and t - target.onset <= aligner.rating_window:
                    target.rating = (meaning.arousal, meaning.valence)
                    target.rating_time = float(t)
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
    return out
