"""Real-looking recordings: a simulated session written as a lab would record it (no simulator
metadata, so no participant schedule), with or without in-stream rating markers, and the
behavioural CSV its experiment script would have written."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from acquisition.offline_acquisition import collect
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import write_streams


@dataclass
class Recording:
    """An XDF file and what its experiment showed: onset times, stimulus ids, ratings."""

    path: Path
    onsets: list[float]
    stimuli: list[str]
    ratings: list[tuple[float, float]]


def write_recording(
    path: Path, uid: str, seed: int = 3, n_trials: int = 4, keep_ratings: bool = False,
    participant: str | None = None, rating_scale: tuple[int, int] = (1, 7),
) -> Recording:  # fmt: skip
    """A one-participant simulated session written with the plain XDF writer (header without
    the simulator's participant schedule). Rating markers are dropped unless ``keep_ratings``;
    the returned ratings are the simulator's, stretched onto ``rating_scale`` when it is not
    1..7 (as a 1..9 SAM would give them)."""
    sim = Simulation(
        SimulationConfig(n_trials=n_trials, isi=7.0, lead_in=1.5, seed=seed, source_tag=uid)
    )
    data = collect(sim, 1.0)
    onsets, stimuli, ratings = [], [], []
    streams = []
    lo, hi = rating_scale
    for spec in sim.streams:
        ts, vals = data[spec.key]
        if spec.type == "Markers" and spec.is_string:
            keep = []
            for i, v in enumerate(vals[:, 0]):
                text = str(v)
                if text.startswith("onset:"):
                    onsets.append(float(ts[i]))
                    stimuli.append(text.split(":", 1)[1])
                    keep.append(i)
                elif text.startswith("rating:"):
                    a, v2 = (float(p.split("=")[1]) for p in text.split(":", 1)[1].split(";"))
                    ratings.append(
                        tuple(round(lo + (x - 1) * (hi - lo) / 6) for x in (a, v2))  # type: ignore[misc]
                    )
                    if keep_ratings:
                        keep.append(i)
            ts, vals = ts[keep], vals[keep]
        streams.append((spec, ts, vals))
    meta = {"participant": participant} if participant else None
    write_streams(path, streams, metadata=meta)
    return Recording(path, onsets, stimuli, [tuple(r) for r in ratings])


def write_behaviour(
    path: Path, rec: Recording, header: tuple[str, ...] = (
        "trials.thisN", "image_file", "image.started", "arousal_slider.response",
        "valence_slider.response",
    ), rows: list[list[object]] | None = None, t0: float = 12.0,
) -> Path:  # fmt: skip
    """A PsychoPy-like data file for ``rec``: an instructions row, then a row per trial (picture
    path, onset in experiment time, ratings). ``rows`` replaces the trial rows."""
    if rows is None:
        first = rec.onsets[0]
        rows = [
            [k, f"stimuli/{s}.png", round(t0 + t - first, 4), a, v]
            for k, (s, t, (a, v)) in enumerate(
                zip(rec.stimuli, rec.onsets, rec.ratings, strict=True)
            )  # fmt: skip
        ]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerow(["", "", "", "", ""])  # instructions: no picture
        w.writerows(rows)
    return path


@pytest.fixture
def recording(tmp_path: Path, uid: str) -> Recording:
    return write_recording(tmp_path / "sub01_ses1.xdf", uid)


def ratings_of(ds_dir: Path) -> dict[str, tuple[float, float]]:
    from models.dataset import TrialDataset

    ds = TrialDataset(ds_dir)
    raw = ds.arrays(np.arange(len(ds)), ("arousal", "valence"))
    return {
        t: (float(a), float(v))
        for t, a, v in zip(ds.trial_ids, raw["arousal"], raw["valence"], strict=True)
    }
