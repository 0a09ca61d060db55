"""Colours and small formatting helpers shared by the panels."""

from __future__ import annotations

import math

STATE_COLOURS = {
    "ok": "#2e7d32",
    "connecting": "#546e7a",
    "stalled": "#ef6c00",
    "lost": "#c62828",
    "error": "#ad1457",
    "stopped": "#757575",
    "missing": "#c62828",
}
"""Stream state → text colour in the health table."""

ROLE_COLOURS = {
    "x": "#1565c0",
    "y": "#ef6c00",
    "pupil": "#6a1b9a",
    "gsr": "#00838f",
    "hr": "#c62828",
}
"""Signal → curve colour."""

AROUSAL_COLOUR = "#d84315"
VALENCE_COLOUR = "#1565c0"
FLAGGED_COLOUR = "#9e9e9e"
# Trial windows are shaded in opaque pale colours behind the curves (cheaper to paint than alpha).
TRIAL_SHADE = "#fff3cd"  # prediction not in yet
TRIAL_SHADE_OK = "#e3f2e4"
TRIAL_SHADE_FLAGGED = "#e6e6e6"
ONSET_COLOUR = "#ff8f00"
BANNER_STYLE = (
    "QLabel { background: #c62828; color: white; font-weight: bold; padding: 6px; "
    "border-radius: 3px; }"
)
REC_STYLE = "QLabel { color: #c62828; font-weight: bold; }"


def quality_colour(score: float, flagged: bool) -> str:
    """Bar colour of a trial's quality: grey when flagged, else green/amber/red by score."""
    if flagged:
        return FLAGGED_COLOUR
    if score >= 0.8:
        return "#43a047"
    if score >= 0.5:
        return "#fb8c00"
    return "#e53935"


def fmt(value: float, digits: int = 1, unit: str = "") -> str:
    """A number for a table cell; an em dash when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


def tick_font(points: int = 8):
    """The font of axis tick labels (small, so a 1366×768 screen fits every panel)."""
    from gui.qt import QtGui

    font = QtGui.QFont()
    font.setPointSize(points)
    return font


def tidy_plot(plot, left_width: int | None = None) -> None:
    """Common look of a dashboard plot: small tick labels, no mouse panning, no context menu."""
    font = tick_font()
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setStyle(tickFont=font, tickTextOffset=3)
        axis.label.setFont(font)
    # Axes are redrawn whenever anything in their view changes; a pixmap cache makes that a blit
    # unless the axis itself changed.
    from gui.qt import QtWidgets

    for name in ("left", "bottom"):
        plot.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)
    for name in ("left", "bottom", "right", "top"):
        # Units are in the labels; an automatic SI prefix re-lays out the label (HTML) on every
        # range change, i.e. every frame of a scrolling plot.
        plot.getAxis(name).enableAutoSIPrefix(False)
    if left_width is not None:
        plot.getAxis("left").setWidth(left_width)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
