"""Scrolling signals per role, with trial windows shaded and onsets marked."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from acquisition.lsl.reading import RoleSeries, extract
from gui.qt import QtCore, QtGui, QtWidgets, pg
from gui.style import (
    ONSET_COLOUR,
    ROLE_COLOURS,
    TRIAL_SHADE,
    TRIAL_SHADE_FLAGGED,
    TRIAL_SHADE_OK,
    tidy_plot,
)
from gui.timeline import TrialMark

MAX_POINTS = 2000
"""At most this many points per curve per frame (a 1200 Hz stream over 20 s is 24,000)."""

POINTS_PER_PIXEL = 2.0
"""Within MAX_POINTS, at most this many points per pixel column of the plot: more cannot be
seen, and each costs path building and rasterising in every frame."""

MIN_POINTS = 400
"""The budget's floor, for a plot not laid out yet (width 0) or a very narrow one."""

PER_SAMPLE_KINDS = ("gaze", "gsr", "hr_direct")
"""Readings computed sample by sample: raw rows can be strided *before* extraction (cheap).
Beat-based readings (ECG, PPG, intervals) need every sample and are extracted in full."""

SLOW_KINDS_PERIOD_S = 0.25
"""Beat-based heart rate changes once per beat: re-read it at most this often."""

POOL = 6
"""Trial windows drawn per plot at most (reused items)."""
_BRUSHES = {c: pg.mkBrush(c) for c in (TRIAL_SHADE, TRIAL_SHADE_OK, TRIAL_SHADE_FLAGGED)}


@dataclass(frozen=True)
class Trace:
    """One curve: which role and field, its colour and legend name."""

    role: str
    field: str
    colour: str
    name: str


@dataclass(frozen=True)
class Track:
    """One plot of stacked signals."""

    key: str
    title: str
    units: str
    traces: tuple[Trace, ...]
    y_range: tuple[float, float] | None = None


TRACKS = (
    Track(
        "gaze",
        "Gaze position",
        "screen (0–1)",
        (
            Trace("gaze", "x", ROLE_COLOURS["x"], "x"),
            Trace("gaze", "y", ROLE_COLOURS["y"], "y"),
        ),
        (-0.05, 1.05),
    ),
    Track(
        "pupil", "Pupil diameter", "mm", (Trace("gaze", "pupil", ROLE_COLOURS["pupil"], "pupil"),)
    ),
    Track(
        "gsr", "Skin conductance (GSR)", "µS", (Trace("gsr", "gsr", ROLE_COLOURS["gsr"], "GSR"),)
    ),
    Track("hr", "Heart rate", "bpm", (Trace("hr", "hr", ROLE_COLOURS["hr"], "HR"),)),
)


def read_for_display(role, t0: float, t1: float, max_points: int = MAX_POINTS) -> RoleSeries:
    """A role's standard series over [t0, t1), at most ``max_points`` samples.

    Per-sample readings stride the raw rows first, then run acquisition's own extraction on them;
    beat-based readings are extracted in full and strided after.
    """
    kind = role.reading.kind
    if kind in PER_SAMPLE_KINDS:
        ts, values = role.buffer.read(t0, t1)
        step = max(1, math.ceil(len(ts) / max_points))
        return extract(role.reading, role.spec, ts[::step], values[::step])
    series = role.read(t0, t1).between(t0, t1)
    step = max(1, math.ceil(len(series) / max_points))
    if step == 1:
        return series
    return RoleSeries(series.timestamps[::step], series.values[::step], series.fields)


def break_gaps(x: np.ndarray, y: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN wherever samples are further apart than the stream's gap limit (or three
    times the typical spacing after decimation), so a dropout is a hole in the curve rather than
    a straight line across it."""
    if len(x) < 2:
        return x, y
    dx = np.diff(x)
    limit = max(max_gap, 3.0 * float(np.median(dx)))
    holes = np.flatnonzero(dx > limit) + 1
    if not len(holes):
        return x, y
    return np.insert(x, holes, x[holes] - 1e-6), np.insert(y, holes, np.nan)


class SignalsPanel(pg.GraphicsLayoutWidget):
    """Stacked, x-linked plots of gaze, pupil, GSR and heart rate over the last ``window`` s.

    The x axis is session time (seconds since the dashboard's first sample), so trial windows keep
    their place while the view scrolls: the shaded regions and onset lines are moved only when
    the visible trials change.
    """

    def __init__(self, roles: dict, trial_duration: float, parent=None) -> None:
        super().__init__(parent=parent)
        self.trial_duration = trial_duration
        self.ci.setSpacing(2)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, str], pg.PlotCurveItem] = {}
        self._regions: dict[str, list[pg.LinearRegionItem]] = {}
        self._lines: dict[str, list[pg.InfiniteLine]] = {}
        self._shown_trials: tuple = ()
        self._slow_cache: dict[str, tuple[object, float, RoleSeries]] = {}
        self.series: dict[str, RoleSeries] = {}
        """The series drawn in the last frame, by role (the stimulus panel reuses gaze)."""
        self._absent_text: dict[str, pg.TextItem] = {}  # track → "no stream bound" caption
        self.missing_roles = sorted({t.role for tr in TRACKS for t in tr.traces} - set(roles))
        first = None
        for i, track in enumerate(TRACKS):
            plot = self.addPlot(row=i, col=0)
            names = " ".join(
                f"<span style='color:{t.colour}'>■ {t.name}</span>" for t in track.traces
            )
            title = f"{track.title}, {track.units}"
            if len(track.traces) > 1:
                title += f": {names}"
            plot.setTitle(title, size="9pt", justify="left")
            plot.showGrid(x=False, y=True, alpha=0.25)
            tidy_plot(plot, left_width=40)
            plot.disableAutoRange()
            plot.setYRange(*(track.y_range or (0.0, 1.0)), padding=0)
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            for trace in track.traces:
                # A bare curve item: PlotDataItem's extra machinery costs more than the data.
                curve = pg.PlotCurveItem(pen=pg.mkPen(trace.colour, width=1), connect="finite")
                plot.addItem(curve)
                self.curves[(track.key, trace.field)] = curve
            absent = {t.role for t in track.traces} - set(roles)
            if absent:
                self._absent_text[track.key] = text = pg.TextItem(
                    f"no stream bound to role '{', '.join(sorted(absent))}'",
                    color="#c62828",
                    anchor=(0.5, 0.5),
                )
                text.setParentItem(plot.getViewBox())
                plot.getViewBox().sigResized.connect(
                    lambda vb, t=text: t.setPos(vb.width() / 2, vb.height() / 2)
                )
            self._regions[track.key], self._lines[track.key] = [], []
            # Plain Qt items, painted in C++: pyqtgraph's LinearRegionItem and InfiniteLine
            # recompute their bounds in Python on every frame of a scrolling view (a tenth of
            # the dashboard's frame time with six trials in view).
            for _ in range(POOL):
                region = QtWidgets.QGraphicsRectItem()
                region.setPen(QtGui.QPen(QtCore.Qt.NoPen))
                region.setZValue(-100)
                region.hide()
                plot.addItem(region, ignoreBounds=True)
                pen = pg.mkPen(ONSET_COLOUR, width=1.5)
                pen.setCosmetic(True)
                line = QtWidgets.QGraphicsLineItem()
                line.setPen(pen)
                line.hide()
                plot.addItem(line, ignoreBounds=True)
                self._regions[track.key].append(region)
                self._lines[track.key].append(line)
            self.plots[track.key] = plot
        # Stimulus ids on the top plot's onset lines.
        # Stimulus ids by the onset lines of the top plot (its y range is fixed, so the labels
        # sit at a fixed height in data coordinates).
        top = self.plots[TRACKS[0].key]
        self._labels = []
        for _ in range(POOL):
            label = pg.TextItem("", color=ONSET_COLOUR, anchor=(0, 0))
            label.hide()
            top.addItem(label, ignoreBounds=True)
            self._labels.append(label)
        for key, plot in self.plots.items():
            if key != TRACKS[-1].key:
                plot.hideAxis("bottom")
        self.plots[TRACKS[-1].key].setLabel("bottom", "session time (s)")

    def update_view(
        self,
        roles: dict,
        t_end: float,
        origin: float,
        window: float,
        trials: list[TrialMark],
    ) -> int:
        """Redraw the curves for [t_end - window, t_end]; returns the points drawn."""
        t0 = t_end - window
        budget = self.points_budget()
        series: dict[str, RoleSeries] = {}
        now = time.monotonic()
        for role_name in {t.role for tr in TRACKS for t in tr.traces}:
            role = roles.get(role_name)
            if role is None:
                continue
            if role.reading.kind not in PER_SAMPLE_KINDS:
                cached = self._slow_cache.get(role_name)
                if (
                    cached is not None
                    and cached[0] is role
                    and now - cached[1] < SLOW_KINDS_PERIOD_S
                ):
                    series[role_name] = cached[2]
                    continue
                s = read_for_display(role, t0 - 1.0, t_end + 1e-9, budget)
                self._slow_cache[role_name] = (role, now, s)  # a rebound role is read anew
                series[role_name] = s
            else:
                series[role_name] = read_for_display(role, t0, t_end + 1e-9, budget)
        points = 0
        for track in TRACKS:
            caption = self._absent_text.get(track.key)
            if caption is not None:  # a role bound while running (streams dialog)
                caption.setVisible(any(t.role not in roles for t in track.traces))
            lo, hi = math.inf, -math.inf
            for trace in track.traces:
                s = series.get(trace.role)
                curve = self.curves[(track.key, trace.field)]
                if s is None or len(s) == 0:
                    curve.setData([], [])
                    continue
                y = s.column(trace.field)
                x, y_drawn = break_gaps(s.timestamps - origin, y, roles[trace.role].max_gap)
                curve.setData(x, y_drawn, skipFiniteCheck=True)  # gaps are NaN on purpose
                points += len(y)
                finite = y[np.isfinite(y)]
                if len(finite):
                    lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
            if track.y_range is None and lo <= hi:
                self._fit_y(self.plots[track.key], lo, hi)
        self.plots[TRACKS[0].key].setXRange(t0 - origin, t_end - origin, padding=0)
        self._place_trials(trials, origin)
        self.series = series
        return points

    def points_budget(self) -> int:
        """Points per curve this frame: POINTS_PER_PIXEL per pixel column of the plots, within
        [MIN_POINTS, MAX_POINTS]."""
        width = self.plots[TRACKS[0].key].getViewBox().width()
        return int(min(MAX_POINTS, max(MIN_POINTS, POINTS_PER_PIXEL * width)))

    @staticmethod
    def _fit_y(plot: pg.PlotItem, lo: float, hi: float) -> None:
        """Change the y range only when the data leaves it or fills less than half of it, so
        the axis is steady (and not re-laid out every frame)."""
        (y0, y1) = plot.getViewBox().viewRange()[1]
        span = max(hi - lo, 1e-6)
        if lo < y0 or hi > y1 or span < 0.5 * (y1 - y0):
            pad = 0.15 * span
            plot.setYRange(lo - pad, hi + pad, padding=0)

    def _place_trials(self, trials: list[TrialMark], origin: float) -> None:
        """Move the pooled regions/lines onto the visible trials (only when they change)."""
        trials = trials[-POOL:]
        # The items span the y range (plus as much again each side): not an infinite height,
        # which QPainter's fixed-point rasteriser would overflow at some zoom levels.
        y_ranges = tuple(tuple(p.getViewBox().viewRange()[1]) for p in self.plots.values())
        signature = (
            tuple((m.trial_id, m.prediction is not None, m.flagged) for m in trials),
            y_ranges,
        )
        if signature == self._shown_trials:
            return
        self._shown_trials = signature
        for key, (y0, y1) in zip(self.plots, y_ranges, strict=True):
            lo, hi = y0 - (y1 - y0), y1 + (y1 - y0)
            for i, (region, line) in enumerate(
                zip(self._regions[key], self._lines[key], strict=True)
            ):
                if i >= len(trials):
                    region.hide()
                    line.hide()
                    continue
                m = trials[i]
                x = m.onset - origin
                region.setRect(x, lo, self.trial_duration, hi - lo)
                shade = (
                    TRIAL_SHADE
                    if m.prediction is None
                    else TRIAL_SHADE_FLAGGED
                    if m.flagged
                    else TRIAL_SHADE_OK
                )
                region.setBrush(_BRUSHES[shade])
                line.setLine(x, lo, x, hi)
                region.show()
                line.show()
        y_top = TRACKS[0].y_range[1] if TRACKS[0].y_range else 1.0
        for i, label in enumerate(self._labels):
            if i < len(trials):
                label.setText(_short(trials[i].stimulus_id))
                label.setPos(trials[i].onset - origin, y_top)
                label.show()
            else:
                label.hide()


def _short(text: str, n: int = 11) -> str:
    """A stimulus id short enough not to run into the next onset's label."""
    return text if len(text) <= n else text[: n - 1] + "…"
