"""The current stimulus with the live gaze point and the current trial's scanpath over it."""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict

import numpy as np

from acquisition.lsl.reading import RoleSeries
from gui.panels.signals import read_for_display
from gui.qt import QtCore, QtWidgets, pg
from gui.style import tidy_plot

IMAGE_SIZE = 256
IMAGE_CACHE = 16
"""Pictures kept decoded (196 kB each at 256×256)."""
SCANPATH_POINTS = 400
"""At most this many scanpath points drawn per frame."""
GAZE_RECENT_S = 0.3
"""The gaze dot shows the newest valid sample this recent; older means 'gaze lost'."""


class StimulusPanel(pg.GraphicsLayoutWidget):
    """The stimulus of the newest onset, in screen coordinates (0..1, origin top-left).

    Gaze is in screen units; the picture is drawn over the whole unit square, as the scanpath
    renderer of the trial cutter assumes.
    """

    def __init__(self, catalogue, trial_duration: float, parent=None) -> None:
        super().__init__(parent=parent)
        self.catalogue = catalogue
        self.trial_duration = trial_duration
        self.plot = self.addPlot()
        self.plot.setTitle("Stimulus: waiting for the first onset", size="9pt")
        vb = self.plot.getViewBox()
        vb.invertY(True)
        tidy_plot(self.plot, left_width=34)
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.plot.setLabel("left", "y (screen 0–1)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-20)
        self.plot.addItem(self.image)
        self.placeholder = pg.TextItem("", color="#555555", anchor=(0.5, 0.5))
        self.placeholder.setPos(0.5, 0.5)
        self.plot.addItem(self.placeholder)
        self.scanpath = pg.PlotCurveItem(pen=pg.mkPen(255, 214, 0, 220, width=2), connect="finite")
        self.plot.addItem(self.scanpath)
        # The live gaze dot: a plain ellipse that ignores the view's scaling (moved each frame;
        # far cheaper than a scatter plot's setData).
        self.gaze = QtWidgets.QGraphicsEllipseItem(-8, -8, 16, 16)
        self.gaze.setFlag(QtWidgets.QGraphicsItem.ItemIgnoresTransformations)
        self.gaze.setPen(pg.mkPen("w", width=2))
        self.gaze.setBrush(pg.mkBrush(229, 57, 53, 230))
        self.gaze.hide()
        self.plot.addItem(self.gaze)
        self._title = ""
        self.plot.setLabel(
            "bottom",
            "x (0–1) · <span style='color:#c9a800'>━ this trial's scanpath</span>"
            " · <span style='color:#e53935'>● gaze now</span>",
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.preloader = self._start_preload()
        self.stimulus_id: str | None = None
        self.trial_id: str | None = None
        self.gaze_point: tuple[float, float] | None = None
        self.set_waiting()

    def _start_preload(self) -> threading.Thread | None:
        """Decode every picture in a thread when the catalogue fits the cache (the bundled 16
        do), so that a picture's first onset does not decode it on the GUI thread (a late
        frame) and the cache is full before the session runs. A larger catalogue is decoded on
        first show, as before."""
        ids = list(getattr(self.catalogue, "ids", ()))
        if not ids or len(ids) > IMAGE_CACHE:
            return None

        def preload() -> None:
            for stimulus_id in ids:
                if stimulus_id not in self._cache:
                    with contextlib.suppress(Exception):  # shown as unreadable on first use
                        self._cache[stimulus_id] = self.catalogue.image_hwc(stimulus_id, IMAGE_SIZE)

        thread = threading.Thread(target=preload, name="dashboard-preload", daemon=True)
        thread.start()
        return thread

    def set_waiting(self) -> None:
        """Grey square and a hint, before the first onset."""
        self._show(np.full((8, 8, 3), 230, dtype=np.uint8))
        self.placeholder.setText("no onset yet")

    def _show(self, img: np.ndarray) -> None:
        """Draw ``img`` over the unit square (the rect is reset: it scales with image size)."""
        self.image.setImage(img, autoLevels=False, levels=(0, 255))
        self.image.setRect(QtCore.QRectF(0, 0, 1, 1))

    def _image(self, stimulus_id: str) -> np.ndarray | None:
        img = self._cache.get(stimulus_id)
        if img is None:
            try:
                img = self.catalogue.image_hwc(stimulus_id, IMAGE_SIZE)
            except Exception:  # unknown id or unreadable file: say so on the panel
                return None
            self._cache[stimulus_id] = img
            while len(self._cache) > IMAGE_CACHE:
                self._cache.popitem(last=False)
        return img

    def update_view(
        self, last_onset, gaze_role, t_end: float, shown: RoleSeries | None = None
    ) -> None:
        """Show the newest onset's stimulus, its scanpath so far and the live gaze point.

        ``shown`` is the gaze series the signal plots drew this frame (decimated to at most
        2,000 points over the window); when it covers the trial it is reused, else gaze is read.
        """
        if last_onset is not None and last_onset[0] != self.trial_id:
            self.trial_id, _, stimulus_id = last_onset
            self.stimulus_id = stimulus_id
            img = self._image(stimulus_id)
            if img is None:
                self._show(np.full((8, 8, 3), 200, dtype=np.uint8))
                self.placeholder.setText(f"no picture for stimulus '{stimulus_id}'")
            else:
                self._show(img)
                self.placeholder.setText("")
        if last_onset is not None:
            since = t_end - last_onset[1]
            title = (
                f"<b>{last_onset[2]}</b> · trial {last_onset[0]} · "
                f"+{math.floor(max(since, 0.0)):.0f} s"
            )
            if title != self._title:  # re-laying out a title costs more than a frame's data
                self._title = title
                self.plot.setTitle(title, size="9pt")
        if gaze_role is None or not math.isfinite(t_end):
            self.scanpath.setData([], [])
            self.gaze.hide()
            self.gaze_point = None
            return
        if last_onset is not None:
            onset = last_onset[1]
            end = min(onset + self.trial_duration, t_end + 1e-9)
            if shown is not None and len(shown) and shown.timestamps[0] <= onset:
                s = shown.between(onset, end)  # already read (and decimated) for the plots
            else:
                s = read_for_display(gaze_role, onset, end, SCANPATH_POINTS)
            self.scanpath.setData(s.column("x"), s.column("y"))
        if shown is not None and len(shown) and shown.timestamps[-1] >= t_end - GAZE_RECENT_S:
            recent = shown.between(t_end - GAZE_RECENT_S, t_end + 1e-9)
        else:
            recent = read_for_display(gaze_role, t_end - GAZE_RECENT_S, t_end + 1e-9, 64)
        x, y = recent.column("x"), recent.column("y")
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if len(ok):
            self.gaze_point = (float(x[ok[-1]]), float(y[ok[-1]]))
            self.gaze.setPos(*self.gaze_point)
            self.gaze.show()
        else:
            self.gaze_point = None
            self.gaze.hide()
