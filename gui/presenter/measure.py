"""Measure the onset stamp against the picture's appearance on an X server (Xvfb).

Run ``xvfb-run -a -s "-screen 0 1280x720x24" python -m gui.presenter.measure``. A second
process (the observer) polls the screen's centre pixel through the X server as fast as it can
and notes, on the LSL clock, when each picture's colour first appears there. The presenter
runs auto-rated trials of plain-coloured pictures; for each onset the offset is

    appeared - stamp   (ms; negative: the frame was on the server before the stamp)

with the observer's polling period as its resolution. On a monitor the frame is scanned out at
the next vertical refresh after it reaches the server, which Xvfb does not model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def observe(out: Path, seconds: float, ready: Path) -> None:
    """Poll the screen's centre pixel; at each change write ``[t_before, t_seen, [r, g, b]]``:
    the colour appeared between the previous poll and this one (LSL clock)."""
    import pylsl

    from gui.qt import QtWidgets

    app = QtWidgets.QApplication(sys.argv[:1])
    screen = app.primaryScreen()
    geo = screen.geometry()
    cx, cy = geo.width() // 2, geo.height() // 2
    changes, periods, last, prev_t = [], [], None, None
    ready.write_text("ready")
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (out.parent / "stop").exists():
        img = screen.grabWindow(0, cx, cy, 1, 1).toImage()
        t = pylsl.local_clock()
        c = img.pixelColor(0, 0)
        rgb = (c.red(), c.green(), c.blue())
        if prev_t is not None:
            periods.append(t - prev_t)
        if rgb != last:
            changes.append([prev_t if prev_t is not None else t, t, list(rgb)])
            last = rgb
        prev_t = t
    out.write_text(json.dumps({"changes": changes, "period_ms": 1000 * statistics.median(periods)}))


def colours(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct bright colours, none of them the black of the fixation screen."""
    return [(40 + (i * 53) % 200, 40 + (i * 97) % 200, 40 + (i * 31) % 200) for i in range(n)]


def measure(n: int, workdir: Path) -> dict:
    """Run ``n`` trials with an observer; the offsets in ms and the log's paint→stamp times."""
    from PIL import Image

    from gui.presenter import PresenterConfig, PresenterWindow, TrialLog
    from gui.presenter.plan import list_pictures, plan_trials
    from gui.qt import QtWidgets

    pics = workdir / "pics"
    pics.mkdir()
    cols = colours(n)
    for i, c in enumerate(cols):
        Image.new("RGB", (400, 300), c).save(pics / f"c{i:02d}.png")
    ready, obs_out = workdir / "ready", workdir / "observer.json"
    observer = subprocess.Popen(
        [sys.executable, "-m", "gui.presenter.measure", "--observe", str(obs_out),
         "--ready", str(ready), "--seconds", str(20 + 1.5 * n)],
    )  # fmt: skip
    while not ready.exists():
        if observer.poll() is not None:
            raise RuntimeError("the observer did not start")
        time.sleep(0.05)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    trials = plan_trials(list_pictures(pics), None, "fixed", (0.25, 0.45), seed=1)
    cfg = PresenterConfig(trials=trials, duration=0.3, auto_rate=(4, 4), auto_delay=0.1)
    log = TrialLog(workdir / "log.csv")
    window = PresenterWindow(cfg, log, lambda _t, _s: None)
    window.finished.connect(lambda _ok: app.quit())
    window.setGeometry(app.primaryScreen().geometry())
    window.showFullScreen()
    app.exec_()
    (workdir / "stop").write_text("stop")
    observer.wait(timeout=30)
    data = json.loads(obs_out.read_text())
    offsets, errors, gaps = [], [], []
    for row, colour in zip(log.rows, cols, strict=True):
        seen = [(t0, t1) for t0, t1, rgb in data["changes"] if tuple(rgb) == colour]
        if seen:
            t0, t1 = seen[0]
            offsets.append(1000 * (t1 - row.onset))
            gaps.append(1000 * (t1 - t0))
            # The frame appeared in (t0, t1]: a stamp inside that window is exact.
            errors.append(1000 * (max(t0 - row.onset, 0.0) + min(t1 - row.onset, 0.0)))
    return {
        "trials": n,
        "matched": len(offsets),
        "offset_ms": offsets,
        "error_ms": errors,
        "gap_ms": gaps,
        "observer_period_ms": data["period_ms"],
        "paint_to_stamp_ms": [r.paint_to_stamp_ms for r in log.rows],
    }


def summary(values: list[float]) -> str:
    q = statistics.quantiles(values, n=20) if len(values) > 1 else values * 19
    return (
        f"median {statistics.median(values):+.2f}, 5-95% {q[0]:+.2f}..{q[-1]:+.2f}, "
        f"range {min(values):+.2f}..{max(values):+.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--observe", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--ready", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.observe is not None:
        observe(args.observe, args.seconds, args.ready)
        return 0
    if not os.environ.get("DISPLAY"):
        p.error("needs an X display: run it under xvfb-run")
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.trials, Path(tmp))
    print(f"platform xcb, DISPLAY {os.environ['DISPLAY']}: {result['matched']} of "
          f"{result['trials']} onsets seen by the observer (polling every "
          f"{result['observer_period_ms']:.2f} ms)")  # fmt: skip
    print(f"first seen - stamp (ms): {summary(result['offset_ms'])}")
    print(f"observer gap around the change (ms): {summary(result['gap_ms'])}")
    print(f"stamp error, 0 inside the gap (ms): {summary(result['error_ms'])}")
    print(f"paint end -> stamp (ms): {summary(result['paint_to_stamp_ms'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
