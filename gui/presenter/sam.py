"""Self-Assessment Manikin figures drawn with QPainter (no third-party images).

Valence: the face goes from a frown (unpleasant, left) to a smile (pleasant, right).
Arousal: eyes go from closed to wide open and a burst in the belly grows from a dot to a large
star (calm, left → excited, right). ``level`` is 0..1 along the scale.
"""

from __future__ import annotations

import math

from gui.qt import QtCore, QtGui

INK = QtGui.QColor(20, 20, 20)
FILL = QtGui.QColor(250, 250, 250)


def draw_manikin(
    painter: QtGui.QPainter, rect: QtCore.QRectF, kind: str, level: float, selected: bool = False
) -> None:
    """Draw one manikin of ``kind`` (``"arousal"`` or ``"valence"``) at ``level`` (0..1) in
    ``rect``; ``selected`` draws a highlight behind it."""
    painter.save()
    painter.setRenderHint(QtGui.QPainter.Antialiasing, True)
    # Work in a 100 x 140 box centred in rect, keeping the aspect ratio.
    s = min(rect.width() / 100.0, rect.height() / 140.0)
    painter.translate(rect.center().x() - 50 * s, rect.center().y() - 70 * s)
    painter.scale(s, s)
    if selected:
        painter.setPen(QtCore.Qt.NoPen)
        painter.setBrush(QtGui.QColor(255, 214, 102))
        painter.drawRoundedRect(QtCore.QRectF(2, 2, 96, 136), 10, 10)
    pen = QtGui.QPen(INK, 3.0)
    pen.setJoinStyle(QtCore.Qt.RoundJoin)
    pen.setCapStyle(QtCore.Qt.RoundCap)
    painter.setPen(pen)
    painter.setBrush(FILL)
    # Body: a rounded torso, arms and legs, drawn as one outline.
    body = QtGui.QPainterPath()
    body.moveTo(34, 58)
    body.lineTo(16, 86)  # left arm
    body.lineTo(24, 90)
    body.lineTo(36, 72)
    body.lineTo(36, 100)
    body.lineTo(30, 132)  # left leg
    body.lineTo(44, 132)
    body.lineTo(50, 106)
    body.lineTo(56, 132)  # right leg
    body.lineTo(70, 132)
    body.lineTo(64, 100)
    body.lineTo(64, 72)
    body.lineTo(76, 90)  # right arm
    body.lineTo(84, 86)
    body.lineTo(66, 58)
    body.closeSubpath()
    painter.drawPath(body)
    painter.drawEllipse(QtCore.QPointF(50, 34), 22, 24)  # head
    level = min(max(level, 0.0), 1.0)
    if kind == "valence":
        _valence_face(painter, level)
    elif kind == "arousal":
        _arousal_face(painter, level)
        _burst(painter, level)
    else:
        raise ValueError(f"manikin kind {kind!r}: expected arousal or valence")
    painter.restore()


def _valence_face(painter: QtGui.QPainter, level: float) -> None:
    painter.setBrush(INK)
    painter.drawEllipse(QtCore.QPointF(42, 29), 2.5, 2.5)
    painter.drawEllipse(QtCore.QPointF(58, 29), 2.5, 2.5)
    painter.setBrush(QtCore.Qt.NoBrush)
    bend = (level - 0.5) * 16.0  # negative: frown, positive: smile
    mouth = QtGui.QPainterPath(QtCore.QPointF(40, 44))
    mouth.quadTo(QtCore.QPointF(50, 44 + bend), QtCore.QPointF(60, 44))
    painter.drawPath(mouth)


def _arousal_face(painter: QtGui.QPainter, level: float) -> None:
    open_ = 0.5 + 4.5 * level  # eye height: closed slit to wide open
    painter.setBrush(INK if level > 0.15 else QtCore.Qt.NoBrush)
    for x in (42, 58):
        painter.drawEllipse(QtCore.QPointF(x, 29), 3.0 + level, open_)
    painter.setBrush(QtCore.Qt.NoBrush)
    painter.drawEllipse(QtCore.QPointF(50, 45), 3 + 3 * level, 1 + 4 * level)  # mouth


def _burst(painter: QtGui.QPainter, level: float) -> None:
    """The star in the belly: its size and spikes grow with arousal."""
    centre = QtCore.QPointF(50, 84)
    if level < 0.05:
        painter.setBrush(INK)
        painter.drawEllipse(centre, 1.5, 1.5)
        return
    spikes = 5 + round(5 * level)
    outer, inner = 5 + 17 * level, 3 + 6 * level
    star = QtGui.QPolygonF()
    for i in range(2 * spikes):
        r = outer if i % 2 == 0 else inner
        a = math.pi * i / spikes - math.pi / 2
        star.append(QtCore.QPointF(centre.x() + r * math.cos(a), centre.y() + r * math.sin(a)))
    painter.setBrush(QtGui.QColor(230, 60, 40))
    painter.drawPolygon(star)
