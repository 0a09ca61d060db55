"""The streams dialog: what is visible, how each role is bound, and (when the session supports
it) a choice of another stream per role."""

from __future__ import annotations

from acquisition.lsl.presets import ROLES
from gui.qt import QtCore, QtWidgets
from gui.session import can_rebind

NO_REBIND_TIP = (
    "This session cannot rebind a role while it runs. To use another stream, stop and start "
    "again with a binding rule in a --config file (docs/configuration.md), or check what would "
    "bind with `emoeye streams`."
)


class StreamsDialog(QtWidgets.QDialog):
    """Per role, a combo of the visible streams that could play it (the bound one selected)."""

    def __init__(self, session, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Streams and role binding")
        self.session = session
        plan = session.live.plan
        self.rebindable = can_rebind(session)
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel(
            "Streams visible when the session started, and the stream each role reads."
            + ("" if self.rebindable else " Rebinding while running is not supported here.")
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QtWidgets.QFormLayout()
        self.combos: dict[str, QtWidgets.QComboBox] = {}
        for role in ROLES:
            combo = QtWidgets.QComboBox()
            combo.setMinimumWidth(420)
            bound = plan.roles.get(role)
            keys = []
            for cand in plan.candidates.get(role, []):
                if cand.spec.key not in keys:
                    keys.append(cand.spec.key)
                    combo.addItem(
                        f"{cand.spec.name} ({cand.spec.type}) — {cand.why}", cand.spec.key
                    )
            for spec in plan.visible:
                if spec.key not in keys:
                    keys.append(spec.key)
                    combo.addItem(f"{spec.name} ({spec.type}) — no preset for {role}", spec.key)
            if bound is None:
                combo.insertItem(0, "— none bound —", "")
                combo.setCurrentIndex(0)
            else:
                combo.setCurrentIndex(max(keys.index(bound.spec.key), 0))
            combo.setEnabled(self.rebindable)
            if not self.rebindable:
                combo.setToolTip(NO_REBIND_TIP)
            self.combos[role] = combo
            form.addRow(f"{role}:", combo)
        layout.addLayout(form)
        self.details = details = QtWidgets.QPlainTextEdit(plan.explain())
        details.setReadOnly(True)
        details.setMinimumHeight(120)
        layout.addWidget(details)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.Apply | QtWidgets.QDialogButtonBox.Close
        )
        self.apply_button = buttons.button(QtWidgets.QDialogButtonBox.Apply)
        self.apply_button.setEnabled(self.rebindable)
        if not self.rebindable:
            self.apply_button.setToolTip(NO_REBIND_TIP)
        self.apply_button.clicked.connect(self.apply)
        buttons.rejected.connect(self.reject)
        buttons.button(QtWidgets.QDialogButtonBox.Close).clicked.connect(self.reject)
        layout.addWidget(buttons)
        self.result_text = QtWidgets.QLabel("")
        self.result_text.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        layout.addWidget(self.result_text)

    def apply(self) -> None:
        """Ask the session to bind each changed role to the chosen stream."""
        if not self.rebindable:
            return
        plan = self.session.live.plan
        messages = []
        for role, combo in self.combos.items():
            key = combo.currentData()
            bound = plan.roles.get(role)
            if key and (bound is None or bound.spec.key != key):
                try:
                    self.session.rebind(role, key)
                    messages.append(f"{role} → {combo.currentText()}")
                except Exception as exc:  # the session explains why not
                    messages.append(f"{role}: {exc}")
        self.result_text.setText("\n".join(messages) or "nothing changed")
        self.details.setPlainText(plan.explain())  # the binding as it is now
        for role, combo in self.combos.items():  # a refused choice goes back to the bound one
            bound = plan.roles.get(role)
            if bound is not None and (i := combo.findData(bound.spec.key)) >= 0:
                combo.setCurrentIndex(i)
