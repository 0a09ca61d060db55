"""Continuous mode: arousal and valence as time courses with their probabilities.

One plot per head: the class probabilities of each window as a heatmap (time × rating 1..7,
darker = more probable), and the expected value as a line over it. Windows are placed at their
end (``onset + duration``: the newest sample the model saw), in seconds of the session's clock
like the signals panel. Records without a prediction (no usable data, an error) leave a gap.
"""

from __future__ import annotations

import numpy as np

from gui.qt import pg
from gui.style import AROUSAL_COLOUR, VALENCE_COLOUR, tidy_plot

HISTORY_S = 90.0
"""Seconds of continuous predictions shown (at most; less while the session is younger)."""

SCALE_TICKS = [[(float(v), str(v)) for v in range(1, 8)]]


def _lut(colour: str) -> np.ndarray:
    """A 256-entry white → ``colour`` lookup table."""
    c = pg.mkColor(colour)
    end = np.array([c.red(), c.green(), c.blue()], float)
    frac = np.linspace(0.0, 1.0, 256)[:, None]
    return (255.0 + frac * (end - 255.0)).astype(np.uint8)


class ContinuousPanel(pg.GraphicsLayoutWidget):
    """Time courses of continuous-mode predictions (see the module text).

    Parameters
    ----------
    duration
        Window length (s): a prediction is drawn at ``onset + duration``.
    history
        Seconds shown.
    """

    def __init__(self, duration: float = 5.0, history: float = HISTORY_S, parent=None) -> None:
        super().__init__(parent=parent)
        self.duration = float(duration)
        self.history = float(history)
        self.ci.setSpacing(2)
        self.caption = self.ci.addLabel(
            "Continuous: waiting for the first window", row=0, col=0, colspan=2, size="9pt"
        )
        self.heads = {}
        for col, (head, colour) in enumerate(
            (("arousal", AROUSAL_COLOUR), ("valence", VALENCE_COLOUR))
        ):
            plot = self.ci.addPlot(row=1, col=col)
            tidy_plot(plot, left_width=28)
            plot.setTitle(
                f"<span style='color:{colour}'>{head}</span>: P(rating) over time, line = expected",
                size="8pt",
            )
            plot.setYRange(0.5, 7.5, padding=0)
            plot.getAxis("left").setTicks(SCALE_TICKS)
            plot.showGrid(x=True, y=True, alpha=0.15)
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(_lut(colour))
            image.setLevels((0.0, 1.0))
            plot.addItem(image)
            line = plot.plot(pen=pg.mkPen("#212121", width=2))
            plot.setLabel("bottom", "window end, session time (s)")
            self.heads[head] = (plot, image, line)
        self.heads["valence"][0].setXLink(self.heads["arousal"][0])
        self._version = -1
        self.shown = 0
        """Windows drawn in the last update (tests read it)."""

    def update_view(self, log, origin: float, t_end: float) -> None:
        """Redraw from ``log.continuous`` (:class:`gui.timeline.TrialLog`) when it changed.

        Parameters
        ----------
        log
            The dashboard's trial log.
        origin
            The session clock's zero (s), as the signals panel's.
        t_end
            Newest data time: the right edge.
        """
        if log.continuous_version == self._version:
            return
        self._version = log.continuous_version
        items = [p for p in log.continuous if p.onset + self.duration >= t_end - self.history]
        if not items:
            return
        ends = np.array([p.onset + self.duration for p in items]) - origin
        ok = np.array([p.status == "predicted" for p in items])
        # Columns as wide as the step between windows.
        step = float(np.median(np.diff(ends))) if len(ends) > 1 else 1.0
        x1 = float(t_end - origin)
        x0 = max(x1 - self.history, ends[0] - step / 2)  # no empty past before the first
        for head in ("arousal", "valence"):
            plot, image, line = self.heads[head]
            probs = np.array([getattr(p, f"{head}_probs") for p in items], float)
            probs[~ok] = 0.0  # no prediction: a blank column
            expected = np.array([getattr(p, head) for p in items], float)
            expected[~ok] = np.nan
            image.setImage(probs.T, autoLevels=False)
            image.setRect(pg.QtCore.QRectF(ends[0] - step / 2, 0.5, step * len(ends), 7.0))
            line.setData(ends, expected, connect="finite")
            plot.setXRange(x0, max(x1, x0 + 10.0), padding=0)
        last = items[-1]
        stim = last.stimulus_id or "no stimulus (neutral embedding)"
        if last.status == "predicted":
            now = f"arousal <b>{last.arousal:.1f}</b> · valence <b>{last.valence:.1f}</b>"
        else:
            now = f"not predicted: {last.error}"
        self.caption.setText(f"Continuous: window {last.trial_id} · {stim} · {now}", size="9pt")
        self.shown = len(items)
