"""The Qt dashboard (pyqtgraph over PyQt5)."""
