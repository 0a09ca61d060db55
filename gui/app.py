"""Running the dashboard: ``run_dashboard(session)`` from the CLI, ``DashboardWindow`` in tests."""

from __future__ import annotations

import signal
import sys

from gui.qt import QtCore, QtWidgets
from gui.session import DashboardSession
from gui.window import DashboardWindow

__all__ = ["DashboardWindow", "run_dashboard"]


_APP = None
"""The QApplication :func:`run_dashboard` made or found (kept alive until the process ends)."""


def run_dashboard(
    session: DashboardSession,
    seconds: float | None = None,
    window_seconds: float = 20.0,
) -> int:
    """Show the dashboard for ``session`` until the window is closed (or for ``seconds``).

    The session must already be running (acquisition and inference are the caller's to start
    and stop); the dashboard only reads it.

    Parameters
    ----------
    session
        See :class:`gui.session.DashboardSession`.
    seconds
        Close the window after this long (None: run until closed, or Ctrl-C).
    window_seconds
        Seconds of signal shown at first.

    Returns
    -------
    int
        0 when the window closed normally.
    """
    global _APP
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    # Held for the life of the process: a QApplication made here would otherwise be destroyed
    # when this function returns, before its own QTimer/QEventLoop locals and while the caller
    # still holds Qt and pyqtgraph objects (a native crash at teardown).
    _APP = app
    app.setApplicationName("EmoEye Live")
    window = DashboardWindow(session, window_seconds=window_seconds)
    # PyQt5 calls qFatal (abort) on an exception escaping any slot while sys.excepthook is
    # Python's own; with a hook of ours it calls the hook and goes on.
    previous_hook = sys.excepthook

    def on_slot_exception(kind, exc, tb) -> None:
        if isinstance(exc, Exception):
            window.slot_failed("a dashboard slot", exc.with_traceback(tb))
        else:  # KeyboardInterrupt and the like: close as Ctrl-C does
            window.close()

    sys.excepthook = on_slot_exception
    loop = QtCore.QEventLoop()
    window.closed.connect(loop.quit)
    window.show()
    if seconds is not None:
        QtCore.QTimer.singleShot(max(int(seconds * 1000), 0), window.close)
    # Qt's loop keeps Python from seeing Ctrl-C; a short timer lets the handler run.
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QtCore.QTimer()
    stop_requested = getattr(session, "stop_requested", None)  # LiveSession: set by SIGTERM

    def check() -> None:
        try:
            if stop_requested is not None and stop_requested.is_set():
                window.close()
        except Exception as exc:
            window.slot_failed("the stop check", exc)

    wake.timeout.connect(check)
    wake.start(200)
    try:
        loop.exec_() if hasattr(loop, "exec_") else loop.exec()
    finally:
        sys.excepthook = previous_hook
        wake.stop()
        signal.signal(signal.SIGINT, previous)
        window.close()
        # Let Qt delete the window (and its plot items) rather than Python's collector.
        window.deleteLater()
        wake.deleteLater()
        loop.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
        app.processEvents()
    return 0
