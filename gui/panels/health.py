"""Stream health per role: bound stream, state, rates, lag, gaps, clock."""

from __future__ import annotations

from acquisition.lsl.presets import ROLES
from gui.qt import QtCore, QtGui, QtWidgets
from gui.style import STATE_COLOURS, fmt

ROW_HEIGHT = 20
COLUMNS = (
    ("Role", "The role the stream plays"),
    ("Stream", "The bound LSL stream (name and type)"),
    ("State", "ok / stalled (no data > 1 s) / lost (> 5 s) / error / connecting"),
    ("Rate Hz", "Nominal rate → measured rate over the last 2 s (irregular: measured only)"),
    ("Lag ms", "Arrival time minus the newest sample's timestamp"),
    ("Samples", "Samples received"),
    ("Gaps", "Times the stream resumed after a stall"),
    ("Clock offs. ms", "Clock offset to the sender (LSL time correction)"),
    ("Jumps", "Clock jumps detected and corrected (U = Unix-epoch stamps corrected)"),
    ("Last event", "The newest thing worth knowing about this stream"),
)


class HealthTable(QtWidgets.QTableWidget):
    """One row per role; a missing role is a red row that says so.

    Parameters
    ----------
    extra
        Optional roles bound in this session (``eeg``, ``face``): a row each after the core
        roles (docs/modalities.md).
    """

    def __init__(self, parent=None, extra: tuple[str, ...] | list[str] = ()) -> None:
        self.roles = (*ROLES, *extra)
        super().__init__(len(self.roles), len(COLUMNS), parent)
        self.setHorizontalHeaderLabels([c for c, _ in COLUMNS])
        for i, (_, tip) in enumerate(COLUMNS):
            self.horizontalHeaderItem(i).setToolTip(tip)
        self.verticalHeader().hide()
        self.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.setSelectionMode(QtWidgets.QAbstractItemView.NoSelection)
        self.setFocusPolicy(QtCore.Qt.NoFocus)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        header = self.horizontalHeader()
        # Columns fit their text, but are widened only when a new text does not fit:
        # ResizeToContents measures every cell again on each change (about 5 ms, four times a
        # second, on the GUI thread — late frames in the plots).
        header.setSectionResizeMode(QtWidgets.QHeaderView.Interactive)
        header.setSectionResizeMode(len(COLUMNS) - 1, QtWidgets.QHeaderView.Stretch)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self._bold = QtGui.QFont()
        self._bold.setBold(True)
        for r in range(len(self.roles)):
            for c in range(len(COLUMNS)):
                self.setItem(r, c, QtWidgets.QTableWidgetItem(""))
        self.states: dict[str, str] = {}
        """Role → state shown (``missing`` for an unbound role); read by tests."""
        self.resizeColumnsToContents()

    def _set(self, row: int, col: int, text: str, colour: str | None = None, tip: str = "") -> None:
        item = self.item(row, col)
        changed = item.text() != text
        if changed:
            item.setText(text)
        if tip and item.toolTip() != tip:
            item.setToolTip(tip)
        if colour is not None:
            item.setForeground(QtGui.QBrush(QtGui.QColor(colour)))
            item.setFont(self._bold)
        if changed and col < len(COLUMNS) - 1 and self._too_narrow(col, text):
            self.resizeColumnToContents(col)

    def _too_narrow(self, col: int, text: str) -> bool:
        """True when ``text`` (bold, the widest font a cell uses) overflows column ``col``."""
        needed = QtGui.QFontMetrics(self._bold).horizontalAdvance(text) + 12  # cell padding
        return needed > self.columnWidth(col)

    def update_view(self, plan, health: dict, required: tuple[str, ...]) -> None:
        """Refresh every row from the binding plan and the streams' health records."""
        for row, role in enumerate(self.roles):
            self._set(row, 0, role)
            cand = plan.roles.get(role)
            if cand is None:
                need = "required" if role in required else "optional"
                self.states[role] = "missing"
                self._set(row, 1, f"— no stream ({need}) —", STATE_COLOURS["missing"])
                self._set(row, 2, "MISSING", STATE_COLOURS["missing"])
                for col in range(3, len(COLUMNS) - 1):
                    self._set(row, col, "")
                self._set(
                    row, len(COLUMNS) - 1, "no visible stream matches this role; see Streams…"
                )
                continue
            spec = cand.spec
            h = health.get(spec.key)
            self._set(row, 1, f"{spec.name} ({spec.type})", tip=f"{spec.describe()}\n{cand.why}")
            if h is None:
                self.states[role] = "unknown"
                self._set(row, 2, "?")
                continue
            state = h.state.value
            self.states[role] = state
            self._set(row, 2, state, STATE_COLOURS.get(state, "#000000"))
            nominal = "irregular" if h.nominal_srate <= 0 else f"{h.nominal_srate:g}"
            self._set(row, 3, f"{nominal} → {fmt(h.measured_srate, 1)}")
            self._set(row, 4, fmt(h.lag * 1000.0 if h.lag == h.lag else float("nan"), 1))
            self._set(row, 5, f"{h.samples:,}")
            self._set(row, 6, str(h.gaps), "#ef6c00" if h.gaps else None)
            self._set(row, 7, fmt(h.clock_offset * 1000.0, 2))
            jumps = f"{h.clock_jumps}{' U' if h.unix_epoch else ''}"
            self._set(row, 8, jumps, "#ef6c00" if h.clock_jumps or h.unix_epoch else None)
            events = "\n".join(h.events[-8:])
            self._set(row, 9, h.message or "", tip=events or "nothing to report")

    def preferred_height(self) -> int:
        """Height that shows every row without scrolling."""
        header = self.fontMetrics().height() + 12
        return header + ROW_HEIGHT * len(self.roles) + 6
