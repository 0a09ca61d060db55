"""The picture presenter: plan and log without Qt, the window offscreen, and the command over
real LSL with a pylsl inlet parsing its markers with the project's default parser."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pylsl
import pytest
from PIL import Image

from acquisition.markers import MarkerParser, Onset, Rating
from gui.presenter.plan import (
    ABORT_MARKER,
    COLUMNS,
    Picture,
    PresenterError,
    TrialLog,
    TrialRecord,
    list_pictures,
    onset_marker,
    parse_isi,
    plan_trials,
    rating_marker,
    scale_points,
)

COLOURS = {"red_wide": (1024, 400, (220, 30, 30)), "green_tall": (300, 600, (30, 220, 30))}


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """Two pictures of different shapes, one wide and one tall."""
    folder = tmp_path / "pics"
    folder.mkdir()
    for name, (w, h, colour) in COLOURS.items():
        Image.new("RGB", (w, h), colour).save(folder / f"{name}.png")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# -- plan and log ------------------------------------------------------------------------------


def test_list_pictures_refuses_bad_folders(tmp_path: Path, pictures: Path) -> None:
    assert [p.id for p in list_pictures(pictures)] == ["green_tall", "red_wide"]
    with pytest.raises(PresenterError, match="does not exist"):
        list_pictures(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    with pytest.raises(PresenterError, match="has no pictures"):
        list_pictures(tmp_path / "empty")
    Image.new("RGB", (4, 4)).save(pictures / "a b.png")
    with pytest.raises(PresenterError, match="cannot travel in an onset marker"):
        list_pictures(pictures)
    (pictures / "a b.png").unlink()
    Image.new("RGB", (4, 4)).save(pictures / "RED_WIDE.jpg")
    with pytest.raises(PresenterError, match="same stimulus id"):
        list_pictures(pictures)
    (pictures / "RED_WIDE.jpg").unlink()
    with pytest.raises(PresenterError, match="cannot be read"):
        list_pictures(pictures, readable=lambda p: p.stem != "red_wide")


def test_plan_is_seeded_complete_per_pass_and_jittered() -> None:
    pics = [Picture(f"p{i}", Path(f"p{i}.png")) for i in range(5)]
    a = plan_trials(pics, 12, "random", (1.0, 2.0), seed=3)
    b = plan_trials(pics, 12, "random", (1.0, 2.0), seed=3)
    assert [t.picture.id for t in a] == [t.picture.id for t in b]
    assert [t.index for t in a] == list(range(1, 13))
    assert sorted(t.picture.id for t in a[:5]) == [p.id for p in pics]  # every picture per pass
    assert sorted(t.picture.id for t in a[5:10]) == [p.id for p in pics]
    assert all(1.0 <= t.fixation <= 2.0 for t in a)
    assert len({round(t.fixation, 6) for t in a}) > 1
    fixed = plan_trials(pics, None, "fixed", (1.5, 1.5))
    assert [t.picture.id for t in fixed] == [p.id for p in pics]
    assert {t.fixation for t in fixed} == {1.5}
    with pytest.raises(PresenterError):
        plan_trials(pics, 0)


def test_options_parse_and_refuse() -> None:
    assert parse_isi("1-2") == (1.0, 2.0)
    assert parse_isi("0.5") == (0.5, 0.5)
    for bad in ("2-1", "x", "-1"):
        with pytest.raises(PresenterError):
            parse_isi(bad)
    assert scale_points((1, 7)) == [1, 2, 3, 4, 5, 6, 7]
    for bad in ((1, 12), (1.5, 7), (7, 1)):
        with pytest.raises(PresenterError):
            scale_points(bad)


def test_marker_texts_parse_with_the_default_parser() -> None:
    parser = MarkerParser()
    assert parser.parse(onset_marker("beach_01")) == Onset("beach_01")
    assert parser.parse(rating_marker(6, 2.5)) == Rating(6.0, 2.5)
    assert parser.parse(ABORT_MARKER) is None and parser.unknown_total == 0  # skipped silently


def test_trial_log_is_rewritten_whole(tmp_path: Path) -> None:
    log = TrialLog(tmp_path / "sub" / "log.csv")
    assert read_csv(log.path) == [] and log.path.read_text().strip() == ",".join(COLUMNS)
    row = TrialRecord("P1", 1, "x", "x.png", 1.2)
    log.add(row)
    row.onset, row.arousal, row.status = 12.5, 4.0, "done"
    log.flush()
    (got,) = read_csv(log.path)
    assert got["onset"] == "12.5" and got["arousal"] == "4" and got["valence"] == ""
    assert got["status"] == "done" and got["participant"] == "P1"
    assert not list(tmp_path.glob("sub/.*tmp"))


# -- the window, offscreen --------------------------------------------------------------------


def make_window(pictures: Path, tmp_path: Path, **kw):
    from gui.presenter import PresenterConfig, PresenterWindow

    trials = plan_trials(list_pictures(pictures), None, "fixed", (0.05, 0.05))
    sent: list[tuple[str, float]] = []
    cfg = PresenterConfig(trials=trials, duration=kw.pop("duration", 0.2), **kw)
    window = PresenterWindow(cfg, TrialLog(tmp_path / "log.csv"), lambda t, s: sent.append((t, s)))
    window.resize(800, 600)
    window.show()
    return window, sent


def test_keyboard_and_mouse_answers_letterboxed_pictures(qtbot, pictures, tmp_path) -> None:
    from gui.qt import QtCore

    window, sent = make_window(pictures, tmp_path)
    qtbot.addWidget(window)
    grabs = {}
    window.onset_shown.connect(lambda _t: grabs.setdefault(window.row.stimulus, window.grab()))
    assert window.state == "start"
    qtbot.keyClick(window, QtCore.Qt.Key_Space)
    for _ in range(2):  # trial 1 by keyboard, trial 2 by mouse
        qtbot.waitUntil(lambda: window.state == "rating", timeout=5000)
        if window.index == 1:
            qtbot.keyClick(window, QtCore.Qt.Key_3)
            qtbot.keyClick(window, QtCore.Qt.Key_9)  # off the 1-7 scale: ignored
            qtbot.waitUntil(lambda: window.dimension == "valence")
            qtbot.keyClick(window, QtCore.Qt.Key_6)
        else:
            rects = window._choice_rects()
            qtbot.mouseClick(window, QtCore.Qt.LeftButton, pos=rects[6].center().toPoint())
            qtbot.waitUntil(lambda: window.dimension == "valence")
            qtbot.mouseClick(window, QtCore.Qt.LeftButton, pos=rects[0].center().toPoint())
    qtbot.waitUntil(lambda: window.done is True, timeout=5000)
    texts = [t for t, _ in sent]
    assert texts == [
        "onset:green_tall",
        "rating:arousal=3;valence=6",
        "onset:red_wide",
        "rating:arousal=7;valence=1",
    ]
    rows = read_csv(tmp_path / "log.csv")
    assert [r["status"] for r in rows] == ["done", "done"]
    assert float(rows[0]["onset"]) == pytest.approx(sent[0][1], abs=1e-6)
    assert float(rows[0]["rt_arousal_s"]) > 0 and float(rows[1]["shown_s"]) >= 0.2
    # Letterboxed, not stretched: the tall picture keeps 1:2 in an 800x600 window, the wide one
    # fills the width with black bars above and below.
    tall, wide = grabs["green_tall"].toImage(), grabs["red_wide"].toImage()
    ratio = tall.devicePixelRatio()

    def colour(img, x, y):  # noqa: E306
        c = img.pixelColor(int(x * ratio), int(y * ratio))
        return c.red(), c.green(), c.blue()

    assert colour(tall, 400, 300) == (30, 220, 30)
    assert colour(tall, 400 - 160, 300) == (0, 0, 0)  # 300 px wide picture: bars at the sides
    assert colour(tall, 400 - 140, 300) == (30, 220, 30)
    assert colour(wide, 400, 300) == (220, 30, 30)
    assert colour(wide, 400, 300 - 165) == (0, 0, 0)  # 800x312: bars above and below
    assert colour(wide, 400, 300 - 145) == (220, 30, 30)


def test_start_screen_waits_and_slider_takes_clicks(qtbot, pictures, tmp_path) -> None:
    from gui.qt import QtCore

    window, sent = make_window(pictures, tmp_path, rating="slider", duration=0.1)
    qtbot.addWidget(window)
    qtbot.wait(400)
    assert window.state == "start" and sent == []  # nothing runs before the experimenter
    qtbot.keyClick(window, QtCore.Qt.Key_Return)
    for _ in range(2):
        qtbot.waitUntil(lambda: window.state == "rating", timeout=5000)
        left, right, y = window._slider_line()
        mid = QtCore.QPoint(round((left + right) / 2), round(y))
        qtbot.mouseClick(window, QtCore.Qt.LeftButton, pos=QtCore.QPoint(5, 5))  # off the line
        assert window.dimension == "arousal"
        qtbot.mouseClick(window, QtCore.Qt.LeftButton, pos=mid)
        qtbot.waitUntil(lambda: window.dimension == "valence")
        qtbot.mouseClick(window, QtCore.Qt.LeftButton, pos=QtCore.QPoint(round(right), round(y)))
        qtbot.waitUntil(lambda: window.state != "rating" or window.dimension == "arousal")
    qtbot.waitUntil(lambda: window.done is True, timeout=5000)
    assert [t for t, _ in sent if t.startswith("rating")] == ["rating:arousal=4;valence=7"] * 2


def test_escape_aborts_with_marker_and_closed_log(qtbot, pictures, tmp_path) -> None:
    from gui.qt import QtCore

    window, sent = make_window(pictures, tmp_path, duration=30.0)
    qtbot.addWidget(window)
    qtbot.keyClick(window, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: window.state == "picture" and bool(sent), timeout=5000)
    qtbot.keyClick(window, QtCore.Qt.Key_Escape)
    assert window.done is False and window.state == "end"
    assert [t for t, _ in sent] == ["onset:green_tall", ABORT_MARKER]
    rows = read_csv(tmp_path / "log.csv")
    assert [(r["stimulus"], r["status"]) for r in rows] == [("green_tall", "aborted")]
    assert rows[0]["onset"] and not rows[0]["arousal"]


def test_breaks_and_no_rating(qtbot, pictures, tmp_path) -> None:
    from gui.qt import QtCore

    window, sent = make_window(pictures, tmp_path, rating="none", break_every=1)
    qtbot.addWidget(window)
    qtbot.keyClick(window, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: window.state == "break", timeout=5000)
    assert [t for t, _ in sent] == ["onset:green_tall"]
    qtbot.wait(300)
    assert window.state == "break"  # waits for the participant
    qtbot.keyClick(window, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: window.done is True, timeout=5000)
    assert [t for t, _ in sent] == ["onset:green_tall", "onset:red_wide"]
    assert [r["status"] for r in read_csv(tmp_path / "log.csv")] == ["unrated", "unrated"]


# -- the command over real LSL ----------------------------------------------------------------


def present(pictures: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen(
        [sys.executable, "-m", "emoeye", "present", str(pictures), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_present_sends_markers_that_parse_and_agree_with_the_log(
    pictures: Path, tmp_path: Path, uid: str
) -> None:
    log = tmp_path / "present.csv"
    args = ("--duration", "0.3", "--isi", "0.1-0.3", "--auto-rate", "2,6", "--trials", "4")
    proc = present(pictures, *args, "--name", uid, "--log", str(log), "--seed", "7")
    try:
        (info,) = pylsl.resolve_byprop("name", uid, 1, 30)
        inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)
        inlet.open_stream(timeout=10)
        got: list[tuple[str, float]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(t.startswith("rating") for t, _ in got) < 4:
            sample, stamp = inlet.pull_sample(timeout=0.5)
            if sample is not None:
                got.append((sample[0], stamp))
        out, err = proc.communicate(timeout=30)
        del inlet
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "finished: 4 of 4 pictures shown, 4 rated" in out
    parser = MarkerParser()
    parsed = [(parser.parse(t), s) for t, s in got]
    onsets = [(m.stimulus_id, s) for m, s in parsed if isinstance(m, Onset)]
    ratings = [(m, s) for m, s in parsed if isinstance(m, Rating)]
    assert parser.unknown_total == 0
    assert [r for r, _ in ratings] == [Rating(2.0, 6.0)] * 4
    rows = read_csv(log)
    assert [(r["stimulus"], float(r["onset"])) for r in rows] == [
        (sid, pytest.approx(s, abs=2e-6)) for sid, s in onsets
    ]
    assert {r["stimulus"] for r in rows} == set(COLOURS)  # both pictures, seeded order
    for (_, onset), (_, rated), row in zip(onsets, ratings, rows, strict=True):
        assert rated > onset + 0.3  # the rating comes after the picture
        assert float(row["arousal"]) == 2 and float(row["valence"]) == 6
        assert 0 <= float(row["paint_to_stamp_ms"]) < 100


def test_present_without_receiver_logs_everything(pictures: Path, tmp_path: Path, qtbot) -> None:
    """No inlet at all: the window runs, a real outlet sends into the void, the log is full."""
    from gui.presenter import PresenterConfig, PresenterWindow

    outlet = pylsl.StreamOutlet(
        pylsl.StreamInfo("nobody", "Markers", 1, 0, pylsl.cf_string, os.urandom(8).hex())
    )
    trials = plan_trials(list_pictures(pictures), 3, "random", (0.05, 0.1), seed=1)
    cfg = PresenterConfig(trials=trials, duration=0.1, auto_rate=(5, 3), auto_delay=0.05)
    window = PresenterWindow(
        cfg, TrialLog(tmp_path / "log.csv"), lambda t, s: outlet.push_sample([t], s)
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.done is True, timeout=20000)
    rows = read_csv(tmp_path / "log.csv")
    assert [r["status"] for r in rows] == ["done"] * 3
    assert all(not math.isnan(float(r["onset"])) for r in rows)
    assert not outlet.have_consumers()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "0"], "--duration 0: expected seconds > 0"),
        (["--scale", "1", "12"], "at most 9 points"),
        (["--auto-rate", "9,1"], "outside the scale"),
        (["--isi", "2-1"], "--isi '2-1'"),
        (["--screen", "5"], "--screen 5"),
    ],
)
def test_present_refuses_bad_options_with_one_line(
    pictures: Path, tmp_path: Path, capsys, argv, message
) -> None:
    from emoeye.cli import main

    log = tmp_path / "log.csv"
    assert main(["present", str(pictures), "--log", str(log), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err
    assert err.startswith("emoeye: error:") and not log.exists()


def test_present_refuses_empty_or_unreadable_folder_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    for folder, message in (
        ("empty", f"picture folder {tmp_path / 'empty'} has no pictures (.jpg, .jpeg, .png, .bmp)"),
        ("broken", f"picture {tmp_path / 'broken' / 'a.png'} cannot be read as an image"),
    ):
        proc = present(tmp_path / folder)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and out == ""
        assert err.strip().splitlines() == [f"emoeye: error: {message}"]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_onset_stamp_against_the_frame_under_xvfb(tmp_path: Path) -> None:
    """An observer polling the X server sees each picture within a few ms of its stamp."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 640x480x24", sys.executable, "-m"]
    proc = subprocess.run(
        [*cmd, "gui.presenter.measure", "--trials", "6"],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6 of 6 onsets seen by the observer" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("stamp error"))
    median = float(line.split("median ")[1].split(",")[0])
    assert abs(median) < 20  # ms; 0 when the stamp falls between the observer's polls


# -- PsychoPy integration (PsychoPy itself is not needed) -------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def marker_functions(source: str) -> dict:
    """The ``*_marker`` functions defined in ``source``, compiled on their own."""
    tree = ast.parse(source)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.endswith("_marker")]
    namespace: dict = {}
    exec(compile(ast.Module(body=defs, type_ignores=[]), "<snippet>", "exec"), namespace)
    return {d.name: namespace[d.name] for d in defs}


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.DOTALL)


def test_psychopy_snippets_send_markers_the_parser_reads() -> None:
    doc = (ROOT / "docs" / "psychopy.md").read_text()
    blocks = python_blocks(doc)
    assert len(blocks) >= 5
    for block in blocks:
        ast.parse(block)  # every snippet is valid Python
    sources = [b for b in blocks if "def onset_marker" in b]
    sources.append((ROOT / "examples" / "psychopy_pictures.py").read_text())
    assert len(sources) == 3  # Builder's Begin Experiment, the Coder snippet, the example
    for source in sources:
        funcs = marker_functions(source)
        parser = MarkerParser()
        assert parser.parse(funcs["onset_marker"]("beach_01")) == Onset("beach_01")
        # Builder/PsychoPy sliders give floats or ints; both must parse.
        assert parser.parse(funcs["rating_marker"](6.0, 2)) == Rating(6.0, 2.0)
        assert parser.parse(funcs["rating_marker"](3.5, 7.0)) == Rating(3.5, 7.0)
        assert parser.unknown_total == 0
    # Onsets go out on the flip that shows the picture, in every snippet that sends them.
    for source in [*blocks, sources[-1]]:
        for line in source.splitlines():
            if "onset_marker(" in line and "def " not in line:
                assert "win.callOnFlip(" in line, line


def test_psychopy_example_runs_without_psychopy_until_it_shows_something(tmp_path) -> None:
    """The example imports PsychoPy only in main(): importing it (and its refusal of an empty
    folder) works where PsychoPy is not installed."""
    spec = importlib.util.spec_from_file_location(
        "psychopy_pictures", ROOT / "examples" / "psychopy_pictures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.onset_marker("x") == "onset:x"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "psychopy_pictures.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and f"no pictures in {tmp_path}" in proc.stderr


# -- a whole session: emoeye present and emoeye run -------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model with the default architecture (the bundled one may not exist)."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.network import EmoEyeNet
    from models.preprocess import NormStats

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("present-ckpt") / "model"
    return save_checkpoint(out, EmoEyeNet().eval(), NormStats.identity())


@pytest.mark.timeout(240)
def test_present_with_emoeye_run_end_to_end(
    pictures: Path, tmp_path: Path, uid: str, checkpoint: Path
) -> None:
    """Simulated Gazepoint devices, ``emoeye run`` bound to the presenter's marker stream by
    name, ``emoeye present --auto-rate``: every presented picture is predicted, with the
    presenter's onset and stimulus, and its rating is logged."""
    from acquisition.sim.simulator import Simulation, SimulationConfig
    from acquisition.xdf.player import LslPlayer

    sim = Simulation(
        SimulationConfig(device_set="gazepoint", n_trials=20, isi=8, lead_in=1.0, source_tag=uid)
    )
    gaze = next(s for s in sim.streams if s.type == "Gaze")
    config = tmp_path / "session.toml"
    lines = []
    for role in ("gaze", "gsr", "hr"):
        lines += [f"[roles.{role}]", f'source_id = "{gaze.source_id}"', 'preset = "gazepoint"']
    lines += ["[roles.markers]", f'name = "{uid}"', 'preset = "psychopy"']
    lines += ["[stimuli]", f'folder = "{pictures}"']
    config.write_text("\n".join(lines) + "\n")
    run_log, present_log = tmp_path / "run.jsonl", tmp_path / "present.csv"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    cmd = [sys.executable, "-m", "emoeye", "run", "--headless", "--no-outlet", "--wait", "90"]
    cmd += ["--checkpoint", str(checkpoint), "--config", str(config), "--log", str(run_log)]
    player = LslPlayer(sim, speed=1.0).start()
    runner = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    presenter = None
    try:
        args = ("--duration", "5", "--isi", "0.5", "--auto-rate", "3,5", "--trials", "2")
        presenter = present(pictures, *args, "--name", uid, "--log", str(present_log))
        p_out, p_err = presenter.communicate(timeout=150)
        assert presenter.returncode == 0, p_err
        deadline = time.monotonic() + 30  # the second trial's prediction follows its window
        while time.monotonic() < deadline:
            text = run_log.read_text() if run_log.exists() else ""
            if text.count('"event": "rating"') >= 2:
                break
            time.sleep(0.5)
        runner.send_signal(signal.SIGINT)
        r_out, r_err = runner.communicate(timeout=60)
    finally:
        for proc in (runner, presenter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        player.close()
    records = [json.loads(x) for x in run_log.read_text().splitlines()]
    preds = [r for r in records if r["event"] in ("prediction", "no_data", "error")]
    ratings = {r["trial_id"]: r for r in records if r["event"] == "rating"}
    rows = read_csv(present_log)
    assert [r["status"] for r in rows] == ["done", "done"], p_out
    assert [p["stimulus_id"] for p in preds] == [r["stimulus"] for r in rows], r_out + r_err
    for pred, row in zip(preds, rows, strict=True):
        assert pred["event"] == "prediction", pred
        assert pred["onset"] == pytest.approx(float(row["onset"]), abs=0.005)
        assert 1 <= pred["arousal"] <= 7 and 1 <= pred["valence"] <= 7
        rating = ratings[pred["trial_id"]]
        assert (rating["arousal"], rating["valence"]) == (3.0, 5.0)
