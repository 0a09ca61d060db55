"""The full-screen presenter window: start screen, fixation, picture, SAM ratings, breaks.

Onset stamping: the picture is painted in ``paintEvent``; a zero-delay timer queued there runs
once Qt has flushed the painted frame to the window system (the flush follows the paint in the
same event), and that is when the onset is stamped (``pylsl.local_clock()``) and the marker sent
with that stamp. ``paint_to_stamp_ms`` in the log is the time from the end of the paint to the
stamp. On a real monitor the frame is scanned out at the next vertical refresh after the flush;
docs/presenter.md gives the offsets measured under Xvfb.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pylsl

from gui.presenter.plan import (
    ABORT_MARKER,
    PlannedTrial,
    TrialLog,
    TrialRecord,
    onset_marker,
    rating_marker,
)
from gui.presenter.sam import draw_manikin
from gui.qt import QtCore, QtGui, QtWidgets

log = logging.getLogger(__name__)

BACKGROUND = QtGui.QColor(0, 0, 0)
RATING_BACKGROUND = QtGui.QColor(225, 225, 225)
PAINT_FALLBACK_S = 0.5
"""If no paint comes this long after a picture is due (hidden window), the onset is stamped
anyway and the row says so (``status`` ends in ``-unpainted``)."""

QUESTIONS = {
    "arousal": ("How calm or excited do you feel?", "calm", "excited"),
    "valence": ("How unpleasant or pleasant do you feel?", "unpleasant", "pleasant"),
}


@dataclass
class PresenterConfig:
    """What a session presents.

    Parameters
    ----------
    trials
        The trial plan (:func:`gui.presenter.plan.plan_trials`).
    duration
        Seconds each picture stays up.
    rating
        ``"sam"`` (manikins), ``"slider"`` (a line clicked anywhere) or ``"none"``.
    points
        Rating values offered (keys 1..n answer points[0..n-1]).
    break_every
        A break screen after every this many trials (0: none).
    auto_rate
        (arousal, valence) answered automatically, and start and break screens pass by
        themselves: for tests and dry runs.
    participant
        Written in every log row.
    """

    trials: list[PlannedTrial]
    duration: float = 5.0
    rating: str = "sam"
    points: tuple[float, ...] = (1, 2, 3, 4, 5, 6, 7)
    break_every: int = 0
    auto_rate: tuple[float, float] | None = None
    participant: str = ""
    auto_delay: float = 0.15


class PresenterWindow(QtWidgets.QWidget):
    """The presenter. ``send(text, stamp)`` publishes a marker; ``trial_log`` gets one row per
    trial. ``finished`` is emitted once, with True when every trial ran and False on abort."""

    finished = QtCore.Signal(bool)
    onset_shown = QtCore.Signal(float)

    def __init__(
        self,
        config: PresenterConfig,
        trial_log: TrialLog,
        send: Callable[[str, float], None],
        status_text: Callable[[], str] | None = None,
    ) -> None:
        super().__init__()
        self.config, self.log, self._send = config, trial_log, send
        self._status_text = status_text
        self.state = "start"
        self.index = 0  # trials begun
        self.row: TrialRecord | None = None
        self.dimension = "arousal"
        self.done: bool | None = None
        self._pixmap: QtGui.QPixmap | None = None
        self._stamp_due = False
        self._painted_at = 0.0
        self._rating_shown_at = 0.0
        self._hover: int | None = None
        self._timer = self._precise_timer()
        self._fallback = self._precise_timer()
        self._fallback.timeout.connect(lambda: self._stamp(painted=False))
        self.setWindowTitle("EmoEye presenter")
        self.setCursor(QtCore.Qt.BlankCursor)
        self.setMouseTracking(True)
        self.setFocusPolicy(QtCore.Qt.StrongFocus)
        if config.auto_rate is not None:
            QtCore.QTimer.singleShot(int(config.auto_delay * 1000), self.begin)

    # -- flow ------------------------------------------------------------------------------

    def begin(self) -> None:
        """Leave the start or break screen: the next trial's fixation."""
        if self.state not in ("start", "break"):
            return
        self.state = "between"
        self._next_trial()

    def abort(self) -> None:
        """Stop now: the current trial is logged as aborted, the abort marker sent."""
        if self.done is not None:
            return
        self._timer.stop()
        self._fallback.stop()
        if self.row is not None and self.row.status not in ("done", "unrated"):
            self.row.status = "aborted"
        self._send(ABORT_MARKER, pylsl.local_clock())
        self.log.flush()
        self._finish(False)

    def _next_trial(self) -> None:
        cfg = self.config
        if self.index >= len(cfg.trials):
            self._finish(True)
            return
        due = cfg.break_every and self.index and self.index % cfg.break_every == 0
        if due and self.state != "break-done":
            self._set_state("break")
            self.setCursor(QtCore.Qt.ArrowCursor)
            if cfg.auto_rate is not None:
                self._schedule(cfg.auto_delay, self._end_break)
            return
        planned = cfg.trials[self.index]
        self.index += 1
        self.row = TrialRecord(
            cfg.participant,
            planned.index,
            planned.picture.id,
            planned.picture.path.name,
            round(planned.fixation, 4),
            status="fixation",
        )
        self.log.add(self.row)
        self.setCursor(QtCore.Qt.BlankCursor)
        self._set_state("fixation")
        # Decode and scale during the fixation, so the picture's paint is one blit.
        self._pixmap = self._letterboxed(planned.picture.path)
        self._schedule(planned.fixation, self._show_picture)

    def _end_break(self) -> None:
        if self.state == "break":
            self.state = "break-done"
            self._next_trial()

    def _show_picture(self) -> None:
        self._stamp_due = True
        self._set_state("picture")
        self._fallback.start(int(PAINT_FALLBACK_S * 1000))

    def _stamp(self, painted: bool = True) -> None:
        """The picture's frame has gone to the window system: stamp and send the onset."""
        if not self._stamp_due or self.row is None:
            return
        self._stamp_due = False
        self._fallback.stop()
        # Wait until the window system has processed the frame (on X11 a round trip to the
        # server after the buffered image request), so the stamp is not early.
        QtGui.QGuiApplication.sync()
        now = pylsl.local_clock()
        self._send(onset_marker(self.row.stimulus), now)
        self.row.onset = now
        if painted:
            self.row.paint_to_stamp_ms = round((now - self._painted_at) * 1000, 3)
        self.row.status = "shown" if painted else "shown-unpainted"
        self.onset_shown.emit(now)
        self._schedule(self.config.duration, self._end_picture)

    def _end_picture(self) -> None:
        assert self.row is not None
        self.row.shown_s = round(pylsl.local_clock() - self.row.onset, 4)
        if self.config.rating == "none":
            self._end_trial("unrated")
            return
        self._ask("arousal")

    def _ask(self, dimension: str) -> None:
        self.dimension = dimension
        self._hover = None
        self.setCursor(QtCore.Qt.ArrowCursor)
        self._set_state("rating")
        self._rating_shown_at = pylsl.local_clock()
        if self.config.auto_rate is not None:
            value = self.config.auto_rate[0 if dimension == "arousal" else 1]
            self._schedule(self.config.auto_delay, lambda: self.answer(value))

    def answer(self, value: float) -> None:
        """The participant's answer to the rating on screen."""
        if self.state != "rating" or self.row is None:
            return
        rt = round(pylsl.local_clock() - self._rating_shown_at, 4)
        if self.dimension == "arousal":
            self.row.arousal, self.row.rt_arousal_s = value, rt
            self._ask("valence")
            return
        self.row.valence, self.row.rt_valence_s = value, rt
        self._send(rating_marker(self.row.arousal, value), pylsl.local_clock())
        self._end_trial("done")

    def _end_trial(self, status: str) -> None:
        assert self.row is not None
        self.row.status = status if self.row.status == "shown" else f"{status}-unpainted"
        self.log.flush()
        self.state = "between"
        self._next_trial()

    def _finish(self, complete: bool) -> None:
        self.done = complete
        self._set_state("end")
        self.finished.emit(complete)

    # -- Qt --------------------------------------------------------------------------------

    def _precise_timer(self) -> QtCore.QTimer:
        timer = QtCore.QTimer(self)
        timer.setSingleShot(True)
        timer.setTimerType(QtCore.Qt.PreciseTimer)
        return timer

    def _schedule(self, seconds: float, slot: Callable[[], None]) -> None:
        with contextlib.suppress(TypeError):  # nothing connected yet
            self._timer.timeout.disconnect()
        self._timer.timeout.connect(slot)
        self._timer.start(max(0, round(seconds * 1000)))

    def _set_state(self, state: str) -> None:
        self.state = state
        self.update()

    def _letterboxed(self, path) -> QtGui.QPixmap:
        """The picture scaled to fit the window with its aspect ratio kept (bars, no stretch)."""
        image = QtGui.QImage(str(path))
        if image.isNull():
            log.warning("picture %s could not be decoded; a blank frame is shown", path)
            image = QtGui.QImage(16, 16, QtGui.QImage.Format_RGB32)
            image.fill(QtGui.QColor(128, 128, 128))
        scaled = image.scaled(
            self.size(), QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation
        )
        return QtGui.QPixmap.fromImage(scaled)

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QtGui.QPainter(self)
        try:
            getattr(self, f"_paint_{self.state.replace('-', '_')}", self._paint_blank)(painter)
        finally:
            painter.end()
        if self.state == "picture" and self._stamp_due:
            self._painted_at = pylsl.local_clock()
            # Queued behind this paint's flush to the window system.
            QtCore.QTimer.singleShot(0, self._stamp)

    def _paint_blank(self, p: QtGui.QPainter) -> None:
        p.fillRect(self.rect(), BACKGROUND)

    def _paint_fixation(self, p: QtGui.QPainter) -> None:
        p.fillRect(self.rect(), BACKGROUND)
        c = self.rect().center()
        arm = max(8, min(self.width(), self.height()) // 40)
        p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), max(2, arm // 4)))
        p.drawLine(c.x() - arm, c.y(), c.x() + arm, c.y())
        p.drawLine(c.x(), c.y() - arm, c.x(), c.y() + arm)

    def _paint_picture(self, p: QtGui.QPainter) -> None:
        p.fillRect(self.rect(), BACKGROUND)
        if self._pixmap is not None:
            x = (self.width() - self._pixmap.width()) // 2
            y = (self.height() - self._pixmap.height()) // 2
            p.drawPixmap(x, y, self._pixmap)

    def _message(self, p: QtGui.QPainter, title: str, lines: list[str]) -> None:
        p.fillRect(self.rect(), BACKGROUND)
        p.setPen(QtGui.QColor(235, 235, 235))
        font = p.font()
        font.setPixelSize(max(14, self.height() // 22))
        p.setFont(font)
        r = self.rect().adjusted(40, 0, -40, -self.height() // 2)
        p.drawText(r, QtCore.Qt.AlignHCenter | QtCore.Qt.AlignBottom, title)
        font.setPixelSize(max(11, self.height() // 40))
        p.setFont(font)
        r = self.rect().adjusted(40, self.height() // 2 + 20, -40, 0)
        p.drawText(r, QtCore.Qt.AlignHCenter | QtCore.Qt.AlignTop, "\n".join(lines))

    def _paint_start(self, p: QtGui.QPainter) -> None:
        n = len(self.config.trials)
        lines = [f"{n} picture{'s' * (n != 1)}. Press SPACE to start, ESC to quit."]
        if self._status_text is not None:
            lines.append(self._status_text())
        self._message(p, "Please wait for the experimenter", lines)

    def _paint_break(self, p: QtGui.QPainter) -> None:
        done = self.index
        self._message(
            p,
            "Break",
            [f"{done} of {len(self.config.trials)} done. Press SPACE to continue."],
        )

    def _paint_end(self, p: QtGui.QPainter) -> None:
        self._message(p, "Thank you" if self.done else "Session stopped", [])

    def _choice_rects(self) -> list[QtCore.QRectF]:
        n = len(self.config.points)
        w, h = self.width(), self.height()
        cell = min(w * 0.9 / n, h * 0.45 / 1.4)
        x0 = (w - cell * n) / 2
        y0 = h * 0.3
        return [QtCore.QRectF(x0 + i * cell, y0, cell, cell * 1.4) for i in range(n)]

    def _slider_line(self) -> tuple[float, float, float]:
        return self.width() * 0.15, self.width() * 0.85, self.height() * 0.55

    def _paint_rating(self, p: QtGui.QPainter) -> None:
        p.fillRect(self.rect(), RATING_BACKGROUND)
        question, low, high = QUESTIONS[self.dimension]
        p.setPen(QtGui.QColor(20, 20, 20))
        font = p.font()
        font.setPixelSize(max(14, self.height() // 24))
        p.setFont(font)
        top = QtCore.QRectF(0, self.height() * 0.08, self.width(), self.height() * 0.12)
        p.drawText(top, QtCore.Qt.AlignCenter, question)
        font.setPixelSize(max(11, self.height() // 40))
        p.setFont(font)
        points = self.config.points
        if self.config.rating == "sam":
            rects = self._choice_rects()
            for i, r in enumerate(rects):
                level = i / (len(points) - 1)
                draw_manikin(p, r.adjusted(4, 4, -4, -4), self.dimension, level, i == self._hover)
                p.setPen(QtGui.QColor(20, 20, 20))
                num = QtCore.QRectF(r.left(), r.bottom() + 4, r.width(), r.height() * 0.2)
                p.drawText(num, QtCore.Qt.AlignHCenter | QtCore.Qt.AlignTop, str(i + 1))
            y = rects[0].bottom() + rects[0].height() * 0.25
            left, right = rects[0].left(), rects[-1].right()
        else:
            left, right, y0 = self._slider_line()
            p.setPen(QtGui.QPen(QtGui.QColor(20, 20, 20), 4))
            p.drawLine(QtCore.QPointF(left, y0), QtCore.QPointF(right, y0))
            for i in range(len(points)):
                x = left + (right - left) * i / (len(points) - 1)
                p.drawLine(QtCore.QPointF(x, y0 - 12), QtCore.QPointF(x, y0 + 12))
                p.drawText(
                    QtCore.QRectF(x - 30, y0 + 16, 60, 30), QtCore.Qt.AlignCenter, str(i + 1)
                )
            y = y0 + 50
        band = QtCore.QRectF(left, y, right - left, self.height() * 0.06)
        p.drawText(band, QtCore.Qt.AlignLeft | QtCore.Qt.AlignVCenter, low)
        p.drawText(band, QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter, high)
        hint = QtCore.QRectF(0, self.height() * 0.88, self.width(), self.height() * 0.08)
        p.drawText(hint, QtCore.Qt.AlignCenter, f"Press 1–{len(points)} or click")

    def _value_at(self, pos: QtCore.QPointF) -> tuple[int | None, float | None]:
        """(choice index, value) under the mouse, or (None, None)."""
        points = self.config.points
        if self.config.rating == "sam":
            for i, r in enumerate(self._choice_rects()):
                if r.contains(pos):
                    return i, points[i]
            return None, None
        left, right, y0 = self._slider_line()
        if abs(pos.y() - y0) > 40 or not left - 20 <= pos.x() <= right + 20:
            return None, None
        frac = min(max((pos.x() - left) / (right - left), 0.0), 1.0)
        value = round(points[0] + frac * (points[-1] - points[0]), 1)
        return None, value

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 (Qt API)
        key = event.key()
        if key == QtCore.Qt.Key_Escape:
            self.abort()
        elif key in (QtCore.Qt.Key_Space, QtCore.Qt.Key_Return, QtCore.Qt.Key_Enter):
            if self.state == "start":
                self.begin()
            elif self.state == "break":
                self._end_break()
            elif self.state == "end":
                self.close()
        elif self.state == "rating" and QtCore.Qt.Key_1 <= key <= QtCore.Qt.Key_9:
            i = key - QtCore.Qt.Key_1
            if i < len(self.config.points):
                self.answer(self.config.points[i])
        else:
            super().keyPressEvent(event)

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self.state == "rating" and self.config.rating == "sam":
            hover, _ = self._value_at(QtCore.QPointF(event.pos()))
            if hover != self._hover:
                self._hover = hover
                self.update()

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self.state == "rating":
            _, value = self._value_at(QtCore.QPointF(event.pos()))
            if value is not None:
                self.answer(value)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if self.done is None:
            self.abort()
        super().closeEvent(event)
