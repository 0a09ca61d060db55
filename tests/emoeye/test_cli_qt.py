"""When Qt cannot start, ``emoeye run``/``demo`` say why in one line and go on in the terminal;
``--gui`` makes it an error (issue 13). Real child processes, real Qt platform plugins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gui.probe import XCB_APT_PACKAGES


def env_for(tmp_path, platform: str) -> dict[str, str]:
    env = dict(os.environ)  # LSLAPICFG: this test run's LSL session
    env.pop("WAYLAND_DISPLAY", None)
    # A display that is not there (xcb cannot connect) or a plugin that does not exist.
    env.update(QT_QPA_PLATFORM=platform, DISPLAY=":987", XDG_DATA_HOME=str(tmp_path / "data"))
    return env


@pytest.mark.timeout(60)
@pytest.mark.parametrize("platform", ["nonexistent", "xcb"])
def test_gui_flag_makes_a_failed_qt_start_an_error(tmp_path, platform):
    log = tmp_path / "run" / "predictions.jsonl"
    res = subprocess.run(
        [sys.executable, "-m", "emoeye", "run", "--gui", "--wait", "1", "--log", str(log)],
        env=env_for(tmp_path, platform),
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [x for x in res.stderr.splitlines() if x.startswith("emoeye: error:")]
    assert len(lines) == 1, res.stderr
    assert "--gui: the dashboard cannot start" in lines[0] and platform in lines[0]
    assert XCB_APT_PACKAGES in lines[0]
    assert not log.parent.exists()  # refused before the model loaded or a stream was touched


def test_gui_and_headless_exclude_each_other(capsys):
    from emoeye.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--gui", "--headless"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.lsl
@pytest.mark.timeout(120)
def test_demo_falls_back_to_the_terminal_view_in_one_line(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "emoeye", "demo", "--seconds", "9"],
        env=env_for(tmp_path, "nonexistent"),
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert res.returncode == 0, (res.stdout, res.stderr)
    out = res.stdout.splitlines()
    said = [x for x in out if "dashboard unavailable" in x]
    assert len(said) == 1, res.stdout
    assert said[0].endswith("showing the terminal view") and XCB_APT_PACKAGES in said[0]
    assert "Waiting for onsets... (Ctrl-C to stop)" in out  # the terminal view ran
    assert any(x.startswith("stopped: ") for x in out), res.stdout
