"""The health table widens a column when a new value does not fit, and only then."""

from __future__ import annotations

from gui.panels.health import COLUMNS, HealthTable
from gui.qt import QtGui


def test_a_column_widens_for_text_that_does_not_fit(qtbot):
    table = HealthTable()
    qtbot.addWidget(table)
    table.resize(1300, 160)
    table.show()
    col = [c for c, _ in COLUMNS].index("Samples")
    before = table.columnWidth(col)
    table._set(0, col, "12")
    assert table.columnWidth(col) == before  # fits: no re-measuring
    wide = "123,456,789,012,345"
    table._set(0, col, wide, "#ef6c00")
    needed = QtGui.QFontMetrics(table._bold).horizontalAdvance(wide)
    assert table.columnWidth(col) >= needed > before
