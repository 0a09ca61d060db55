"""The terminal live view of a session: what the dashboard shows, as text.

On a terminal it is a ``rich`` live panel (streams with state, rate, lag and gaps; the current
trial and its seconds left; the last predictions with classes, flags and latency; the worker's
counters). When stdout is not a terminal it prints one plain line per prediction instead (and
one per skipped trial), so logs and tests can read it.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from inference.prediction import Prediction

REFRESH_S = 0.25


def format_prediction(p: Prediction) -> str:
    """One plain line for a prediction, or for a record that holds none (its reason)."""
    unit = "window" if p.mode == "continuous" else "trial"
    if p.status != "predicted":
        what = "no usable data" if p.status == "no_data" else "ERROR"
        return f"{what} {unit} {p.trial_id} {p.stimulus_id}: not predicted: {p.error}"
    flag = f"  FLAGGED ({p.flag_reason})" if p.flagged else ""
    err = f"  ERROR {p.error}" if p.error else ""
    total = p.latency_ms.get("total", float("nan"))
    score = p.quality.get("score", float("nan"))
    return (
        f"prediction {unit} {p.trial_id} {p.stimulus_id or '-'}: arousal {p.arousal:.2f} "
        f"(class {p.arousal_class}) valence {p.valence:.2f} (class {p.valence_class}) "
        f"quality {score:.2f} latency {total:.1f} ms{flag}{err}"
    )


def _fmt(value: float, spec: str, missing: str = "-") -> str:
    return missing if value is None or not math.isfinite(value) else format(value, spec)


class HeadlessView:
    """Shows a running :class:`~emoeye.session.LiveSession` in the terminal.

    Parameters
    ----------
    session
        A started session (``live``, ``store``, ``worker``, ``stop_requested``).
    out
        Where to write (stdout by default).
    rich_view
        Force the rich panel (True) or plain lines (False); None = rich only on a terminal.
    history
        Predictions listed in the panel.
    """

    def __init__(
        self,
        session: Any,
        out: TextIO | None = None,
        rich_view: bool | None = None,
        history: int = 8,
    ) -> None:
        self.session = session
        self.out = out or sys.stdout
        self.rich_view = self.out.isatty() if rich_view is None else rich_view
        self.history = history
        self._seq = 0
        self._overflowed = 0

    # ------------------------------------------------------------------ plain

    def print_new(self) -> int:
        """Print a line per prediction (and skipped trial) since the last call; returns count."""
        new, self._seq = self.session.store.since(self._seq)
        for p in new:
            print(format_prediction(p), file=self.out, flush=True)
        over = self.session.worker.stats.overflowed
        if over > self._overflowed:
            print(
                f"skipped {over - self._overflowed} trial(s): inference queue full "
                "(see the log's 'skipped' records)",
                file=self.out,
                flush=True,
            )
            self._overflowed = over
        return len(new)

    # ------------------------------------------------------------------ rich

    def render(self) -> Any:
        """The rich renderable of the current state."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        s = self.session
        live = s.live
        streams = Table(title="Streams", expand=True, title_justify="left")
        for col in ("stream", "roles", "state", "rate Hz", "lag ms", "gaps", "samples"):
            streams.add_column(col, justify="right" if col not in ("stream", "roles") else "left")
        colour = {"ok": "green", "stalled": "yellow", "lost": "red", "error": "red"}
        for h in live.health.values():
            state = h.state.value
            nominal = "irr" if not h.nominal_srate else f"{h.nominal_srate:g}"
            streams.add_row(
                h.name,
                ",".join(h.roles) or "-",
                f"[{colour.get(state, 'white')}]{state}[/]",
                f"{_fmt(h.measured_srate, '.1f')} / {nominal}",
                _fmt(h.lag * 1e3 if math.isfinite(h.lag) else float("nan"), ".0f"),
                str(h.gaps),
                str(h.samples),
            )
        aligner = live.core.aligner
        duration = live.core.config.trial.duration
        current = Text("no onset yet", style="dim")
        if aligner.last_onset is not None:
            tid, onset, stim = aligner.last_onset
            import pylsl

            left = onset + duration - pylsl.local_clock()
            state = f"{left:4.1f} s left" if left > 0 else "window closed"
            current = Text(f"trial {tid}  stimulus {stim}  {state}   pending {aligner.pending}")
        preds = Table(title="Last predictions", expand=True, title_justify="left")
        for col in ("trial", "stimulus", "arousal", "valence", "quality", "latency ms", "flag"):
            preds.add_column(col)
        recent = s.store.latest(self.history * 20)  # windows (continuous mode) are listed apart
        trials = [p for p in recent if p.mode != "continuous"][-self.history :]
        window = next((p for p in reversed(recent) if p.mode == "continuous"), None)
        for p in reversed(trials):
            if p.status != "predicted":  # an error or no-data record: no values to show
                kind = "[red]error[/]" if p.status == "failed" else "[yellow]no data[/]"
                preds.add_row(p.trial_id, p.stimulus_id, "-", "-", "-", "-", f"{kind} {p.error}")
                continue
            preds.add_row(
                p.trial_id,
                p.stimulus_id,
                f"{p.arousal:.2f} ({p.arousal_class})",
                f"{p.valence:.2f} ({p.valence_class})",
                _fmt(p.quality.get("score", float("nan")), ".2f"),
                _fmt(p.latency_ms.get("total", float("nan")), ".1f"),
                p.flag_reason if p.flagged else "",
            )
        w = s.worker.stats.to_dict()
        lat = w.get("latency_ms") or {}
        footer = Text(
            f"predicted {w['predicted']}  flagged {w['flagged']}  failed {w['failed']}  "
            f"no data {w['no_data']}  skipped {w['overflowed']}  queue {s.worker.pending} (max {w['queue_depth_max']})  "
            f"latency p50 {lat.get('p50', '-')} p99 {lat.get('p99', '-')} ms  "
            f"trials cut {aligner.stats.trials_cut}  ratings {s.ratings}"
            + (f"\n{problems}" if (problems := aligner.stats.marker_problems()) else "")
            + (f"\nlog: {s.log_path}" if getattr(s, "log_path", None) else "")
            + "\nCtrl-C to stop",
            style="dim",
        )
        parts = [streams, Text("Current trial", style="bold"), current, preds]
        if window is not None:
            values = (
                f"arousal {window.arousal:.2f}  valence {window.valence:.2f}"
                if window.status == "predicted"
                else f"not predicted: {window.error}"
            )
            parts.append(
                Text(
                    f"Continuous: window {window.trial_id} ending at "
                    f"{window.onset + duration:.1f}  {window.stimulus_id or 'no stimulus'}  "
                    f"{values}",
                    style="bold",
                )
            )
        return Group(*parts, footer)

    # ------------------------------------------------------------------ loop

    def run(self, seconds: float | None = None) -> None:
        """Show the session until ``seconds`` pass or a stop is requested (Ctrl-C propagates)."""
        deadline = None if not seconds else time.monotonic() + seconds
        stop = self.session.stop_requested

        def done() -> bool:
            return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

        if not self.rich_view:
            while not done():
                self.print_new()
                stop.wait(0.1)
            return
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.out)
        with Live(self.render(), console=console, refresh_per_second=4, transient=False) as view:
            while not done():
                stop.wait(REFRESH_S)
                view.update(self.render())

    def finish(self) -> None:
        """Print what arrived after the loop ended (the drained trials), in plain mode."""
        if not self.rich_view:
            self.print_new()
