"""Screenshots of the presenter for the docs: ``xvfb-run -a python -m gui.presenter.screenshots
docs/img`` writes presenter-picture.png, presenter-sam-arousal.png, presenter-sam-valence.png
and presenter-slider.png (drawn at 960x540, saved 720 wide, the photo 360; a bundled picture of a different aspect ratio)."""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

from gui.presenter.plan import TrialLog, list_pictures, plan_trials
from gui.presenter.window import PresenterConfig, PresenterWindow
from gui.qt import QtCore, QtWidgets

SIZE = (960, 540)
SAVED_WIDTH = 720


def shoot(out: Path, picture: str = "chelsea.jpg") -> list[Path]:
    """Render the screens into ``out``; returns the files written."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(str(resources.files("acquisition") / "stimuli"))
    pics = [p for p in list_pictures(folder) if p.path.name == picture]
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for rating in ("sam", "slider"):
            cfg = PresenterConfig(plan_trials(pics, 1, "fixed", (0.0, 0.0)), rating=rating)
            window = PresenterWindow(cfg, TrialLog(Path(tmp) / "log.csv"), lambda _t, _s: None)
            window.resize(*SIZE)
            window.show()
            app.processEvents()
            shots = {"start": window.grab()} if rating == "sam" else {}
            window.begin()
            window._show_picture()  # skip the fixation's timer
            app.processEvents()
            if rating == "sam":
                shots["picture"] = window.grab()
                window._ask("arousal")
                window._hover = 5
                shots["sam-arousal"] = window.grab()
                window._ask("valence")
                window._hover = 1
                shots["sam-valence"] = window.grab()
            else:
                window._ask("valence")
                shots["slider"] = window.grab()
            for name, pixmap in shots.items():
                path = out / f"presenter-{name}.png"
                width = (
                    SAVED_WIDTH // 2 if name == "picture" else SAVED_WIDTH
                )  # a photo: keep it small
                small = pixmap.scaledToWidth(width, QtCore.Qt.SmoothTransformation)
                small.save(str(path))
                written.append(path)
            window.abort()
            window.close()
    return written


if __name__ == "__main__":
    for path in shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")):
        print(path)
