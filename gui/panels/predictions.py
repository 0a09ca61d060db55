"""Predictions as they arrive: the current trial on the arousal–valence plane with its class
probabilities, the history of expected values, and the trial timeline with quality per trial.

Records that hold no prediction (a trial whose cut or model failed, or one without usable data)
are shown by their reason in the caption and as a red (failed) or grey (no data) stub on the
timeline; they put no point on the plane nor in the history of values.
"""

from __future__ import annotations

import functools

import numpy as np

from gui.qt import QtCore, QtGui, pg
from gui.style import AROUSAL_COLOUR, FLAGGED_COLOUR, VALENCE_COLOUR, quality_colour, tidy_plot
from gui.timeline import TrialLog

SCALE = np.arange(1, 8, dtype=np.float64)
SCALE_TICKS = [[(float(v), str(int(v))) for v in SCALE]]
UNIT_TICKS = [[(0.0, "0"), (0.5, ".5"), (1.0, "1")]]
"""Ticks of a 0..1 axis (probabilities, quality scores)."""
PLANE_HISTORY = 20
"""Previous trials drawn (small, faded) on the arousal–valence plane."""
HISTORY_TRIALS = 40
"""Trials in the history and timeline plots."""
CURRENT_COLOUR = "#6a1b9a"
EARLIER_COLOUR = "#b39ddb"

FLAGGED_BRUSH = pg.mkBrush(0, 0, 0, 0)
FLAGGED_PEN = pg.mkPen(FLAGGED_COLOUR, width=2)
WHITE_PEN = pg.mkPen("w", width=1)
FAILED_COLOUR = "#c62828"


def predicted(p) -> bool:
    """True when the record holds a prediction (not an error or no-data record)."""
    return getattr(p, "status", "predicted") == "predicted"


def _statuses(log: TrialLog, n: int) -> list[str]:
    """Statuses of the newest ``n`` records, aligned with ``log.history_arrays(n)``."""
    return [getattr(p, "status", "predicted") for p in list(log.predictions)[-n:]]


TICK_PITCH_PX = 14
"""Least distance (px) between two tick labels of a 1..7 axis before some are dropped."""
TICK_EDGE_PX = 6
"""Least distance (px) from a tick to the end of its axis: pyqtgraph leaves out a label that
would cross the end."""
TICK_SETS = ((1, 2, 3, 4, 5, 6, 7), (1, 4, 7), (2, 4, 6), (1, 7), (4,))


def scale_ticks(low: float, high: float, pixels: float) -> list[list[tuple[float, str]]]:
    """Tick labels for a 1..7 axis showing ``low..high`` over ``pixels``: every value when
    their labels fit, else the fullest of :data:`TICK_SETS` that fits (at 1366x768 with every
    panel shown the plots are 25-90 px tall, and seven labels overprinted each other or were
    left out)."""
    per_unit = pixels / (high - low)
    for values in TICK_SETS:
        pitch = per_unit * (values[1] - values[0]) if len(values) > 1 else pixels
        edge = per_unit * min(min(values) - low, high - max(values))
        if pitch >= TICK_PITCH_PX and edge >= TICK_EDGE_PX:
            break
    return [[(float(v), str(v)) for v in values]]


def fit_scale_axis(plot: pg.PlotItem, axis: str, labels: tuple[str, ...] = ()) -> None:
    """Keep a 1..7 axis legible at any size: its ticks thin out (:func:`scale_ticks`) and its
    title is the longest of ``labels`` (longest first) that fits along the axis, else the last."""
    ax = plot.getAxis(axis)
    vertical = axis in ("left", "right")
    shown: list = [None, None]
    ax.setTicks(SCALE_TICKS)
    if labels:
        plot.setLabel(axis, labels[0])

    def refit() -> None:
        rect = plot.vb.sceneBoundingRect()
        pixels = rect.height() if vertical else rect.width()
        low, high = plot.vb.viewRange()[1 if vertical else 0]
        if pixels <= 0 or high <= low:
            return
        ticks = scale_ticks(low, high, pixels)
        if ticks != shown[0]:
            shown[0] = ticks
            ax.setTicks(ticks)
        if labels:
            metrics = QtGui.QFontMetrics(ax.label.font())
            fits = [t for t in labels if metrics.horizontalAdvance(t) <= pixels]
            label = fits[0] if fits else labels[-1]
            if label != shown[1]:
                shown[1] = label
                plot.setLabel(axis, label)

    plot.vb.sigResized.connect(lambda *_: refit())
    refit()


@functools.cache
def marker_style(colour: str, flagged: bool) -> dict:
    """Scatter style of a prediction: a filled circle in colour, or a hollow grey square when the
    trial was flagged for low quality.

    Cached: pyqtgraph's symbol atlas keys on the pen and brush *objects*, so a fresh brush per
    update would add a symbol image to the atlas every time (memory that grows for ever).
    """
    if flagged:
        return {"brush": FLAGGED_BRUSH, "pen": FLAGGED_PEN, "symbol": "s"}
    return {"brush": pg.mkBrush(colour), "pen": WHITE_PEN, "symbol": "o"}


@functools.cache
def _brush(colour: str):
    return pg.mkBrush(colour)


def _prob_plot(
    layout: pg.GraphicsLayout, row: int, title: str
) -> tuple[pg.PlotItem, pg.BarGraphItem]:
    plot = layout.addPlot(row=row, col=1)
    plot.setTitle(title, size="8pt")
    tidy_plot(plot, left_width=24)
    plot.setXRange(0.4, 7.6, padding=0)
    plot.setYRange(0, 1, padding=0)
    plot.getAxis("bottom").setTicks(SCALE_TICKS)
    plot.getAxis("left").setTicks(UNIT_TICKS)
    bars = pg.BarGraphItem(x=SCALE, height=np.zeros(7), width=0.7, brush="#bbbbbb", pen=None)
    plot.addItem(bars)
    return plot, bars


class PlanePanel(pg.GraphicsLayoutWidget):
    """The newest prediction on the arousal–valence plane (1..7 × 1..7), earlier ones faded, and
    its class probabilities as two bar charts."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.ci.setSpacing(1)
        self.caption = self.ci.addLabel(
            "Arousal–valence: waiting for the first prediction", row=0, col=0, colspan=2, size="9pt"
        )
        # The bars go beside the plane, not under it: the panel is wider than tall, and under it
        # they left the plane 50-62 px of height at 1366x768 with the EEG and face strip shown.
        self.plane = self.ci.addPlot(row=1, col=0, rowspan=2)
        tidy_plot(self.plane, left_width=40)
        self.plane.setRange(xRange=(0.5, 7.5), yRange=(0.5, 7.5), padding=0)
        fit_scale_axis(
            self.plane,
            "bottom",
            ("valence (1 unpleasant … 7 pleasant)", "valence (1–7)", "valence"),
        )
        fit_scale_axis(
            self.plane, "left", ("arousal (1 calm … 7 excited)", "arousal (1–7)", "arousal")
        )
        self.plane.showGrid(x=True, y=True, alpha=0.2)
        for angle in (0, 90):
            self.plane.addItem(
                pg.InfiniteLine(
                    pos=4.0, angle=angle, pen=pg.mkPen("#9e9e9e", style=QtCore.Qt.DashLine)
                )
            )
        self.history = pg.ScatterPlotItem(size=8, pxMode=True)
        self.plane.addItem(self.history)
        self.current = pg.ScatterPlotItem(size=18, pxMode=True)
        self.plane.addItem(self.current)
        self.label = pg.TextItem("", color="#212121", anchor=(0, 1))
        self.plane.addItem(self.label)
        self.ci.addLabel(
            f"<span style='color:{CURRENT_COLOUR}'>●</span> this trial &nbsp; "
            f"<span style='color:{EARLIER_COLOUR}'>●</span> earlier &nbsp; "
            f"<span style='color:{FLAGGED_COLOUR}'>□</span> flagged (low quality)",
            row=3,
            col=0,
            colspan=2,
            size="8pt",
        )
        self.arousal_plot, self.arousal_bars = _prob_plot(self.ci, 1, "P(arousal = 1…7)")
        self.valence_plot, self.valence_bars = _prob_plot(self.ci, 2, "P(valence = 1…7)")
        self.ci.layout.setColumnStretchFactor(0, 3)
        self.ci.layout.setColumnStretchFactor(1, 2)
        self._version = -1
        self.shown = None
        """The prediction on show (tests read it)."""

    def update_view(self, log: TrialLog) -> None:
        """Redraw when a prediction arrived."""
        if log.version == self._version:
            return
        self._version = log.version
        records = list(log.predictions)[-(PLANE_HISTORY + 1) :]
        if not records:
            return
        newest = records[-1]
        self.shown = newest
        if not predicted(newest):
            # No values to draw: say why, keep the earlier predictions on the plane.
            self.current.setData([])
            self.history.setData(
                [
                    {"pos": (q.valence, q.arousal), **marker_style(EARLIER_COLOUR, q.flagged)}
                    for q in records
                    if predicted(q)
                ]
            )
            what = "no usable data" if newest.status == "no_data" else "error"
            self.caption.setText(
                f"{newest.trial_id} <b>{newest.stimulus_id}</b> · not predicted<br>"
                f"<span style='color:{FAILED_COLOUR}'>{what}: {newest.error}</span>",
                size="9pt",
            )
            self.label.setText("")
            self.arousal_bars.setOpts(height=np.zeros(7))
            self.valence_bars.setOpts(height=np.zeros(7))
            return
        *older, p = [q for q in records if predicted(q)]
        self.history.setData(
            [
                {"pos": (q.valence, q.arousal), **marker_style(EARLIER_COLOUR, q.flagged)}
                for q in older
            ]
        )
        self.current.setData(
            [{"pos": (p.valence, p.arousal), **marker_style(CURRENT_COLOUR, p.flagged)}]
        )
        flag = (
            f"<br><span style='color:{FLAGGED_COLOUR}'>flagged: {p.flag_reason or 'low quality'}"
            "</span>"
            if p.flagged
            else ""
        )
        total = p.latency_ms.get("total")
        latency = f" <span style='color:#757575'>({total:.0f} ms)</span>" if total else ""
        error = f"<br><span style='color:#c62828'>model error: {p.error}</span>" if p.error else ""
        self.caption.setText(
            f"{p.trial_id} <b>{p.stimulus_id}</b> · arousal <b>{p.arousal:.1f}</b> · "
            f"valence <b>{p.valence:.1f}</b>{latency}{flag}{error}",
            size="9pt",
        )
        self.label.setText(p.trial_id)
        self.label.setPos(p.valence + 0.15, p.arousal + 0.15)
        grey = FLAGGED_COLOUR
        self.arousal_bars.setOpts(
            height=np.asarray(p.arousal_probs, dtype=float),
            brush=grey if p.flagged else AROUSAL_COLOUR,
        )
        self.valence_bars.setOpts(
            height=np.asarray(p.valence_probs, dtype=float),
            brush=grey if p.flagged else VALENCE_COLOUR,
        )


class ValuesPanel(pg.GraphicsLayoutWidget):
    """Expected arousal and valence (1..7) per trial, flagged trials hollow and grey."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.plot = self.addPlot()
        self.plot.setTitle(
            f"Predicted <span style='color:{AROUSAL_COLOUR}'>■ arousal</span> "
            f"<span style='color:{VALENCE_COLOUR}'>■ valence</span> (expected, 1–7)",
            size="9pt",
        )
        tidy_plot(self.plot, left_width=28)
        self.plot.setYRange(0.8, 7.2, padding=0)
        fit_scale_axis(self.plot, "left")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "trial (order of prediction)")
        self.arousal_line = self.plot.plot(pen=pg.mkPen(AROUSAL_COLOUR, width=1))
        self.valence_line = self.plot.plot(pen=pg.mkPen(VALENCE_COLOUR, width=1))
        self.arousal_pts = pg.ScatterPlotItem(size=8)
        self.valence_pts = pg.ScatterPlotItem(size=8)
        self.plot.addItem(self.arousal_pts)
        self.plot.addItem(self.valence_pts)
        self._version = -1

    def update_view(self, log: TrialLog) -> None:
        """Redraw when a prediction arrived."""
        if log.version == self._version:
            return
        self._version = log.version
        h = log.history_arrays(HISTORY_TRIALS)
        seq = h["seq"]
        if not len(seq):
            return
        ok = np.array([s == "predicted" for s in _statuses(log, HISTORY_TRIALS)], dtype=bool)
        for key in ("arousal", "valence"):  # records without a prediction leave a gap
            h[key] = np.where(ok, h[key], np.nan)
        flagged = h["flagged"]
        for line, pts, key, colour in (
            (self.arousal_line, self.arousal_pts, "arousal", AROUSAL_COLOUR),
            (self.valence_line, self.valence_pts, "valence", VALENCE_COLOUR),
        ):
            line.setData(seq, h[key], connect="finite")
            pts.setData(
                [
                    {"pos": (s, v), **marker_style(colour, f)}
                    for s, v, f, good in zip(seq, h[key], flagged, ok, strict=True)
                    if good
                ]
            )
        self.plot.setXRange(*_x_range(seq), padding=0)


class TimelinePanel(pg.GraphicsLayoutWidget):
    """The trial timeline: one bar per trial, its quality score (0..1), grey when flagged, red
    when its cut or prediction failed."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.plot = self.addPlot()
        self.plot.setTitle("Trial quality 0–1 (grey = flagged)", size="9pt")
        tidy_plot(self.plot, left_width=28)
        # Room below 0 and above 1: the gridded axis drops a tick label that would cross its
        # ends, and at 70 px only ".5" was left.
        self.plot.setYRange(-0.12, 1.15, padding=0)
        self.plot.getAxis("left").setTicks(UNIT_TICKS)
        self.plot.setLabel("bottom", "trial (order of prediction)")
        self.plot.showGrid(y=True, alpha=0.2)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brushes=[], pen=None)
        self.plot.addItem(self.bars)
        self._version = -1

    def update_view(self, log: TrialLog) -> None:
        """Redraw when a prediction arrived."""
        if log.version == self._version:
            return
        self._version = log.version
        h = log.history_arrays(HISTORY_TRIALS)
        seq = h["seq"]
        if not len(seq):
            return
        quality = np.nan_to_num(h["quality"], nan=0.0)
        statuses = _statuses(log, HISTORY_TRIALS)
        self.bars.setOpts(
            x=seq,
            height=np.maximum(quality, 0.02),  # a score of 0 still shows as a (grey) stub
            brushes=[
                _brush(FAILED_COLOUR if st == "failed" else quality_colour(q, f))
                for q, f, st in zip(quality, h["flagged"], statuses, strict=True)
            ],
        )
        self.plot.setXRange(*_x_range(seq), padding=0)


def _x_range(seq: np.ndarray) -> tuple[float, float]:
    last = float(seq[-1])
    return max(last - HISTORY_TRIALS, 0.0) + 0.5, max(last, 12.0) + 0.5
