"""Panels of the optional roles, shown only when they are bound (docs/modalities.md).

- :class:`EegPanel`: theta / alpha / beta power of the newest seconds of EEG (mean over the
  electrodes without a fault, dB re 1 µV²) as bars, and frontal alpha asymmetry over time.
- :class:`FacePanel`: the most active action units over the shown window.

Both read the role's ring buffer at most :data:`UPDATE_PERIOD_S` apart (a Welch estimate of 32
channels is not a per-frame job).
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

from acquisition.trials.modalities import ASYMMETRY_PAIRS, BANDS, channel_faults, welch
from gui.qt import pg
from gui.style import tidy_plot

UPDATE_PERIOD_S = 0.5
"""Seconds between re-reads of the buffers."""

EEG_SECONDS = 2.0
"""Newest EEG seconds the band powers are estimated from."""

TOP_AUS = 5
"""Action units drawn in the face panel (the most active over the window)."""

BAND_COLOURS = ("#5e35b1", "#2e7d32", "#ef6c00")
AU_COLOURS = ("#c62828", "#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00")


class EegPanel(pg.GraphicsLayoutWidget):
    """Band powers of the newest EEG and the frontal alpha asymmetry over time, side by side
    (the panel lives in a short strip under the others)."""

    ROLE_TITLE = "EEG"

    def __init__(self, history: int = 240) -> None:
        super().__init__()
        self.setBackground("w")
        self.bars_plot = self.addPlot(title="EEG band power, dB", row=0, col=0)
        tidy_plot(self.bars_plot, 30)
        ticks = [list(enumerate(BANDS))]
        self.bars_plot.getAxis("bottom").setTicks(ticks)
        self.bars = pg.BarGraphItem(
            x=np.arange(len(BANDS)), height=np.zeros(len(BANDS)), width=0.6, brushes=BAND_COLOURS
        )
        self.bars_plot.addItem(self.bars)
        self.asym_plot = self.addPlot(title="Frontal alpha asymmetry", row=0, col=1)
        tidy_plot(self.asym_plot, 30)
        self.ci.layout.setColumnStretchFactor(0, 1)
        self.ci.layout.setColumnStretchFactor(1, 3)
        self.asym_plot.setLabel("bottom", "s ago")
        self.asym_curve = self.asym_plot.plot(pen=pg.mkPen("#37474f", width=1.5))
        self.asym_plot.addLine(y=0.0, pen=pg.mkPen("#bdbdbd"))
        self.history: deque[tuple[float, float]] = deque(maxlen=history)
        self.powers: dict[str, float] = {b: math.nan for b in BANDS}
        """Band → the shown power (dB)."""
        self.asymmetry = math.nan
        self.pair = ""
        self.excluded: dict[str, str] = {}
        self._last = -math.inf

    def update_view(self, role, force: bool = False) -> bool:
        """Re-read the EEG role (a bound reader with ``latest`` and ``spec``); True when the
        view changed."""
        now = time.monotonic()
        if role is None or (not force and now - self._last < UPDATE_PERIOD_S):
            return False
        self._last = now
        series = role.latest(EEG_SECONDS)
        fs = float(role.spec.nominal_srate) or (
            1.0 / np.median(np.diff(series.timestamps)) if len(series) > 2 else 0.0
        )
        if len(series) < max(int(fs), 8) or fs <= 0:
            return False
        faults = channel_faults(series.values)
        self.excluded = {n: w for n, w in zip(series.fields, faults, strict=True) if w}
        keep = [j for j, w in enumerate(faults) if w is None]
        if not keep:
            return False
        f, p = welch(np.nan_to_num(series.values[:, keep].T), fs)
        df = float(f[1] - f[0]) if len(f) > 1 else 1.0
        names = [series.fields[j].lower() for j in keep]
        alpha = None
        for k, (band, (lo, hi)) in enumerate(BANDS.items()):
            power = p[:, (f >= lo) & (f < hi)].sum(axis=1) * df
            self.powers[band] = float(10 * np.log10(max(power.mean(), 1e-12)))
            if k == 1:
                alpha = power
        self.bars.setOpts(height=[self.powers[b] for b in BANDS])
        self.asymmetry, self.pair = math.nan, ""
        for right, left in ASYMMETRY_PAIRS:
            if right.lower() in names and left.lower() in names:
                r, l_ = names.index(right.lower()), names.index(left.lower())
                self.asymmetry = float(np.log(alpha[r] + 1e-12) - np.log(alpha[l_] + 1e-12))
                self.pair = f"{right}/{left}"
                break
        t = float(series.timestamps[-1])
        if math.isfinite(self.asymmetry):
            self.history.append((t, self.asymmetry))
        if self.history:
            ts, vs = np.array(self.history).T
            self.asym_curve.setData(ts - t, vs)
        title = "Frontal alpha asymmetry" + (
            f" ln {self.pair.replace('/', 'α − ln ')}α = {self.asymmetry:+.2f}"
            if self.pair
            else " (no frontal pair)"
        )
        if self.excluded:
            title += f" · excluded {', '.join(self.excluded)}"
        self.asym_plot.setTitle(title)
        return True


class FacePanel(pg.PlotWidget):
    """The most active action units over the shown window, one curve each."""

    ROLE_TITLE = "Face"

    def __init__(self) -> None:
        super().__init__(title="Facial action units (top 5)")
        self.setBackground("w")
        tidy_plot(self.getPlotItem(), 38)
        self.setLabel("bottom", "s ago")
        # One row of labels: stacked, five of them hid the curves in the strip's height.
        self.legend = self.getPlotItem().addLegend(
            offset=(4, 1), labelTextSize="7pt", colCount=TOP_AUS
        )
        self.curves = [
            self.plot(pen=pg.mkPen(c, width=1.5), name=f"AU{i}")
            for i, c in enumerate(AU_COLOURS[:TOP_AUS])
        ]
        self.top: list[str] = []
        """The units drawn, most active first."""
        self.tracked = math.nan
        """Share of frames with successful tracking over the window."""
        self._last = -math.inf

    def update_view(self, role, seconds: float, force: bool = False) -> bool:
        """Re-read the face role over the newest ``seconds``; True when the view changed."""
        now = time.monotonic()
        if role is None or (not force and now - self._last < UPDATE_PERIOD_S):
            return False
        self._last = now
        series = role.latest(seconds)
        if len(series) == 0:
            return False
        valid = series.column("valid") > 0.5
        self.tracked = float(valid.mean())
        aus = [f for f in series.fields if f != "valid"]
        vals = series.values[:, : len(aus)]
        with np.errstate(invalid="ignore"):
            activity = np.where(valid[:, None], vals, 0.0).sum(axis=0) / max(valid.sum(), 1)
        order = np.argsort(-activity)[:TOP_AUS]
        self.top = [aus[j] for j in order]
        t = series.timestamps - series.timestamps[-1]
        self.legend.clear()
        for curve, j in zip(self.curves, order, strict=False):
            curve.setData(t, vals[:, j], connect="finite")
            self.legend.addItem(curve, aus[j])
        for curve in self.curves[len(order) :]:
            curve.setData([], [])
        self.setTitle(f"Facial action units (top {len(order)}) · tracked {self.tracked:.0%}")
        return True
