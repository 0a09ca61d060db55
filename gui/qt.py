"""The one place the dashboard imports Qt: pyqtgraph's binding, pinned to PyQt5 unless the user
chose another with ``PYQTGRAPH_QT_LIB`` (Qt6 bindings also work)."""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PyQt5")

import pyqtgraph as pg  # noqa: E402
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets  # noqa: E402

pg.setConfigOptions(antialias=False, background="w", foreground="k")

__all__ = ["QtCore", "QtGui", "QtWidgets", "pg"]
