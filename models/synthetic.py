"""Synthetic trials with a planted class signal, for tests, benchmarks and smoke runs.

Not a simulator (that lives in ``acquisition``): it builds :class:`~acquisition.trials.types.Trial`
objects directly, with arousal planted in the pupil and GSR responses and valence planted in the
stimulus (each trial shows a bundled stimulus whose latent valence is the trial's valence) and,
weakly, in heart-rate deceleration. Labels equal the planted classes, so the oracle accuracy is 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.trials.scanpath import render_scanpath
from acquisition.trials.types import Ratings, Trial, TrialQuality, TrialSpec


def _stimuli_by_valence(catalogue: Any, n_classes: int) -> dict[int, list[str]]:
    by: dict[int, list[str]] = {}
    for sid in catalogue.ids:
        stim = catalogue.get(sid)
        if np.isfinite(stim.valence):
            cls = Ratings(1.0, float(stim.valence)).classes(n_classes)[1]
            by.setdefault(cls, []).append(sid)
    return by


def iter_synthetic_trials(
    n_participants: int = 6,
    trials_per_participant: int = 60,
    seed: int = 0,
    strength: float = 1.0,
    spec: TrialSpec | None = None,
    catalogue: Any = None,
    n_classes: int = 7,
) -> Iterator[tuple[Trial, tuple[int, int]]]:
    """Yield ``(trial, (arousal_class, valence_class))`` with 0-based planted classes.

    Parameters
    ----------
    strength
        Scale of the planted responses against the noise (1 = easy, 0 = labels are noise).
    catalogue
        Stimulus catalogue with latent valence per stimulus (the bundled one by default).
    """
    if catalogue is None:
        from acquisition.stimulus_catalogue import default_catalogue

        catalogue = default_catalogue()
    spec = spec or TrialSpec()
    rng = np.random.default_rng(seed)
    by_valence = _stimuli_by_valence(catalogue, n_classes)
    valences = np.array(sorted(by_valence))
    nb, ns = spec.n_baseline, spec.n_samples
    t = spec.grid()
    after = np.clip(t, 0, None)
    rise = (1 - np.exp(-after / 0.6)) * (t >= 0)
    slow = (1 - np.exp(-after / 2.0)) * (t >= 0)
    for p in range(n_participants):
        pid = f"P{p + 1:02d}"
        pupil0 = rng.uniform(3.0, 4.5)
        gsr0 = rng.uniform(2.0, 8.0)
        hr0 = rng.uniform(60, 85)
        gain = rng.uniform(0.9, 1.1)
        for k in range(trials_per_participant):
            # A skewed arousal distribution, like real ratings (middle classes common).
            a = int(np.clip(np.round(rng.normal(3.0, 1.6)), 0, n_classes - 1))
            v = int(rng.choice(valences))
            sid = str(rng.choice(by_valence[v]))
            level = a / (n_classes - 1)
            vlev = v / (n_classes - 1)
            n = nb + ns
            pupil = pupil0 + strength * gain * 0.6 * level * rise + rng.normal(0, 0.05, n)
            gsr = gsr0 + strength * gain * 0.8 * level * slow + rng.normal(0, 0.03, n)
            hr = hr0 - strength * 4.0 * (1 - vlev) * slow + rng.normal(0, 1.0, n)
            # Gaze: a few fixations, jittered.
            nfix = rng.integers(3, 8)
            cuts = np.sort(rng.integers(0, n, nfix - 1))
            fx = rng.uniform(0.2, 0.8, nfix)
            fy = rng.uniform(0.2, 0.8, nfix)
            seg = np.searchsorted(cuts, np.arange(n), side="right")
            x = fx[seg] + rng.normal(0, 0.01, n)
            y = fy[seg] + rng.normal(0, 0.01, n)
            signals = np.stack([x, y, pupil, gsr, hr]).astype(np.float32)
            baseline = signals[:, :nb].mean(axis=1).astype(np.float32)
            scanpath = render_scanpath(x[nb:], y[nb:], spec.scanpath_size)
            trial = Trial(
                trial_id=f"{pid}-{k + 1}",
                onset=float(k * 10.0),
                stimulus_id=sid,
                signals=signals,
                mask=np.ones_like(signals, dtype=bool),
                baseline=baseline,
                scanpath=scanpath,
                quality=TrialQuality(coverage={"gaze": 1.0, "gsr": 1.0, "hr": 1.0}, gaze_valid=1.0),
                spec=spec,
                ratings=Ratings(float(a + 1), float(v + 1)),
                participant=pid,
            )
            yield trial, (a, v)


def make_synthetic_trials(**kwargs: Any) -> tuple[list[Trial], np.ndarray]:
    """All of :func:`iter_synthetic_trials` as (trials, oracle classes (N, 2))."""
    trials, oracle = [], []
    for trial, o in iter_synthetic_trials(**kwargs):
        trials.append(trial)
        oracle.append(o)
    return trials, np.asarray(oracle, dtype=np.int64).reshape(-1, 2)


def write_synthetic_dataset(
    directory: str | Path, shard_size: int = 1024, overwrite: bool = False, **kwargs: Any
) -> Path:
    """Write synthetic trials (see :func:`iter_synthetic_trials`) as a dataset directory."""
    from models.dataset import DatasetWriter

    source = {"kind": "models.synthetic", **{k: v for k, v in kwargs.items() if k != "catalogue"}}
    source.pop("spec", None)
    with DatasetWriter(directory, shard_size=shard_size, source=source, overwrite=overwrite) as w:
        for trial, oracle in iter_synthetic_trials(**kwargs):
            w.add(trial, oracle=oracle)
    return Path(directory)
