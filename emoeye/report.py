"""A self-contained HTML report of one recording, for the experimenter after a session.

The page holds, as embedded PNG images (no file or network reference): each trial's signals
(pupil, GSR, heart rate) with the trial window shaded and its scanpath over the picture shown;
rating against prediction; trial quality and the streams' sample rates over time; and the
marker problems and file warnings as text. Trials and predictions are those of
``emoeye replay --fast`` on the same file and model.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

HEALTH_BIN_S = 10.0
"""Seconds per point of the sample-rate-over-time plot."""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def trial_figure(trial, catalogue, prediction=None) -> str:
    """One trial: scanpath over the picture, and pupil/GSR/HR against time with the window
    shaded (baseline before it). Base64 PNG."""
    import matplotlib.pyplot as plt

    from acquisition.trials.types import CHANNELS

    spec = trial.spec
    t = spec.grid()
    fig = plt.figure(figsize=(10, 3.2))
    ax0 = fig.add_axes([0.0, 0.08, 0.26, 0.84])
    stim = catalogue.resolve(trial.stimulus_id) if catalogue is not None else None
    if stim is not None:
        from PIL import Image

        ax0.imshow(np.asarray(Image.open(stim.path).convert("RGB")), extent=(0, 1, 1, 0))
    x, y = trial.signals[0], trial.signals[1]
    win = (t >= 0) & trial.mask[0]
    ax0.plot(x[win], y[win], "-", color="yellow", lw=1, alpha=0.8)
    ax0.scatter(x[win][::6], y[win][::6], s=8, c=t[win][::6], cmap="autumn", zorder=3)
    ax0.set_xlim(0, 1)
    ax0.set_ylim(1, 0)
    ax0.set_xticks([])
    ax0.set_yticks([])
    ax0.set_title(f"{trial.stimulus_id}: scanpath", fontsize=9)
    units = {"pupil": "mm", "gsr": "µS", "hr": "bpm"}
    for k, name in enumerate(("pupil", "gsr", "hr")):
        ax = fig.add_axes([0.33 + k * 0.23, 0.15, 0.19, 0.72])
        i = CHANNELS.index(name)
        v = np.where(trial.mask[i], trial.signals[i], np.nan)
        ax.plot(t, v, lw=1)
        ax.axvspan(0, spec.duration, color="tab:orange", alpha=0.15, lw=0)
        ax.axvline(0, color="tab:orange", lw=1)
        ax.set_title(f"{name} ({units[name]})", fontsize=9)
        ax.set_xlabel("s from onset", fontsize=8)
        ax.tick_params(labelsize=7)
    text = f"trial {trial.trial_id}  quality {trial.quality.score:.2f}"
    if trial.ratings is not None:
        text += f"  rated A{trial.ratings.arousal:g} V{trial.ratings.valence:g}"
    if prediction is not None:
        text += f"  predicted A{prediction.arousal:.1f} V{prediction.valence:.1f}"
        text += " (flagged)" if prediction.flagged else ""
    fig.suptitle(text, fontsize=9, x=0.62, y=1.02)
    return _png(fig)


def rating_figure(rows: list[dict], predictions: dict) -> str | None:
    """Rated against predicted arousal and valence (one point per rated, predicted trial)."""
    import matplotlib.pyplot as plt

    pairs = [(r["ratings"], predictions[r["trial_id"]]) for r in rows
             if "ratings" in r and r["trial_id"] in predictions]  # fmt: skip
    if not pairs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
    for ax, key in zip(axes, ("arousal", "valence"), strict=True):
        rated = [p[0][key] for p in pairs]
        pred = [getattr(p[1], key) for p in pairs]
        ax.plot([1, 7], [1, 7], color="grey", lw=1, ls="--")
        ax.scatter(rated, pred, s=18)
        ax.set_xlim(0.5, 7.5)
        ax.set_ylim(0.5, 7.5)
        ax.set_xlabel(f"rated {key}")
        ax.set_ylabel(f"predicted {key}")
    fig.tight_layout()
    return _png(fig)


def health_figure(source, rows: list[dict], t0: float) -> str:
    """Trial quality over the session, and each stream's sample rate in 10-s bins."""
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    if rows:
        onsets = np.array([r["onset"] for r in rows]) - t0
        ax0.plot(onsets, [r["quality"]["score"] for r in rows], "o-", ms=3)
    ax0.set_ylim(-0.05, 1.05)
    ax0.set_ylabel("trial quality")
    end = float(source.duration or 0.0)
    edges = np.append(np.arange(0.0, end, HEALTH_BIN_S), end)
    width = np.diff(edges)
    full = width >= 1.0  # a last bin under a second would say little
    for s in source.xdf_streams:
        if not len(s) or s.spec.is_string or s.stream_id in source.foreign:
            continue
        counts, _ = np.histogram(s.timestamps - t0, edges)
        rate = counts[full] / width[full]
        nominal = s.spec.nominal_srate
        label = s.spec.name if nominal > 0 else f"{s.spec.name} (irregular: samples/s)"
        ax1.plot(edges[:-1][full], rate / nominal if nominal > 0 else rate, lw=1, label=label)
    ax1.set_ylabel("sample rate / nominal")
    ax1.set_xlabel("s from the recording's start")
    ax1.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _png(fig)


def build_report(
    path: Path,
    config=None,
    checkpoint: Path | None = None,
    use_model: bool = True,
    max_trials: int = 24,
) -> str:
    """The report of one recording as an HTML string.

    Parameters
    ----------
    path
        The XDF recording.
    config
        Acquisition config (None: defaults).
    checkpoint, use_model
        The model (None: bundled), or none.
    max_trials
        Trials drawn one by one (the first ones; every trial is in the table).
    """
    import matplotlib

    matplotlib.use("Agg")
    from acquisition.config import AcquisitionConfig
    from acquisition.stimulus_catalogue import StimulusCatalogue
    from emoeye.commands.common import open_recording
    from emoeye.commands.replay import replay_fast

    config = config or AcquisitionConfig()
    source = open_recording(Path(path))
    kept: list = []
    rows: list[tuple[dict, object]] = []

    def keep(trial) -> None:
        if len(kept) < max_trials:
            kept.append(trial)

    summary = replay_fast(
        source, config, checkpoint, use_model=use_model, on_trial=keep,
        on_row=lambda row, pred: rows.append((row, pred)),
    )  # fmt: skip
    predictions = {r["trial_id"]: p for r, p in rows if p is not None}
    plain = [r for r, _ in rows]
    catalogue = StimulusCatalogue(config.stimulus_folder)
    t0 = float(source.t_start) if np.isfinite(source.t_start) else 0.0
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>EmoEye report: {e(Path(path).name)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;max-width:1100px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:2px 6px}img{max-width:100%}.bad{color:#b00}</style></head><body>",
        f"<h1>Session report: {e(Path(path).name)}</h1>",
        f"<p>{summary['seconds']:.1f} s of data, participant "
        f"{e(str(source.participant or 'unknown'))}: {summary['trials']} trial(s), "
        f"{summary['rated']} rated, {summary['predictions']} predicted, "
        f"{summary['incomplete']} incomplete.</p>",
        "<h2>Marker problems and file warnings</h2><ul id='problems'>",
    ]
    problems = [summary.get("marker_problems") or ""] + list(summary.get("notes", []))
    problems += list(source.warnings)
    problems = [p for p in problems if p]
    parts += [f"<li class='bad'>{e(p)}</li>" for p in problems] or ["<li>none</li>"]
    parts.append("</ul>")
    rating = rating_figure(plain, predictions)
    parts.append("<h2>Rating against prediction</h2>")
    parts.append(
        _img(rating, "rating vs prediction") if rating else "<p>no rated, predicted trial</p>"
    )
    parts.append("<h2>Quality and stream health over time</h2>")
    parts.append(_img(health_figure(source, plain, t0), "quality and health over time"))
    parts.append("<h2>Trials</h2><table><tr><th>trial</th><th>onset (s)</th><th>stimulus</th>"
                 "<th>quality</th><th>rated A/V</th><th>predicted A/V</th><th>flag</th></tr>")  # fmt: skip
    for r in plain:
        p = predictions.get(r["trial_id"])
        rt = r.get("ratings")
        rated = "" if rt is None else f"{rt['arousal']:g}/{rt['valence']:g}"
        parts.append(
            f"<tr><td>{e(r['trial_id'])}</td><td>{r['onset'] - t0:.2f}</td>"
            f"<td>{e(str(r['stimulus_id']))}</td><td>{r['quality']['score']:.2f}</td>"
            f"<td>{rated}</td>"
            f"<td>{'' if p is None else f'{p.arousal:.1f}/{p.valence:.1f}'}</td>"
            f"<td>{'' if p is None else ('flagged' if p.flagged else '')}</td></tr>"
        )
    parts.append("</table>")
    if len(plain) > len(kept):
        parts.append(f"<p>The first {len(kept)} of {len(plain)} trials are drawn.</p>")
    for trial in kept:
        parts.append(f"<h3>Trial {e(trial.trial_id)}</h3>")
        parts.append(_img(trial_figure(trial, catalogue, predictions.get(trial.trial_id)),
                          f"trial {trial.trial_id}"))  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)
