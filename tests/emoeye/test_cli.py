"""The command line: help, clear one-line errors, missing roles."""

import subprocess
import sys

import pytest

from emoeye.cli import COMMANDS, build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    registered = build_parser()._subparsers._group_actions[0].choices
    for name in registered:
        assert name in text
    assert {"streams", "simulate", "trials"} <= set(registered) <= set(COMMANDS) | {"dataset"}


@pytest.mark.parametrize("command", ["streams", "simulate", "trials"])
def test_command_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: emoeye " + command in capsys.readouterr().out


def test_bad_config_is_one_line_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[trial]\nduration = -1\n")
    assert main(["streams", "--config", str(cfg), "--timeout", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["emoeye: error: config key 'trial.duration': expected a number > 0, got -1"]


@pytest.mark.lsl
def test_streams_names_missing_roles(capsys):
    # Nothing is streaming in this test's LSL session: every role is reported missing.
    assert main(["streams", "--timeout", "0.3"]) == 1
    out = capsys.readouterr().out
    assert "Missing role(s): gaze, gsr, hr, markers" in out


def test_console_script_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "emoeye", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("emoeye ")


def test_refusals_are_library_errors_not_internal_ones():
    from acquisition.config import ConfigError
    from acquisition.xdf.reader import XdfError
    from emoeye.cli import refusal
    from models.dataset import DatasetError

    for exc in (ConfigError("x"), XdfError("x"), DatasetError("x")):
        assert refusal(exc)
    for exc in (RuntimeError("x"), ValueError("x"), KeyError("x")):
        assert not refusal(exc)


def test_internal_error_exits_1_with_its_traceback(tmp_path):
    # A directory where a file is expected is refused (2); a crash inside is exit 1.
    code = (
        "import sys; from emoeye import cli; from emoeye.commands import info; "
        "info.describe = lambda *a: 1 / 0; "
        f"sys.exit(cli.main(['info', {str(tmp_path / 'x.xdf')!r}]))"
    )
    from acquisition.xdf.writer import XdfWriter

    with XdfWriter(tmp_path / "x.xdf"):
        pass
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "ZeroDivisionError" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "emoeye", "info", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        proc.returncode == 2 and proc.stderr.strip() == f"emoeye: error: {tmp_path} is not a file"
    )


def test_replay_line_of_an_onset_whose_cut_failed_gives_its_error():
    """`replay --fast` prints one line per onset; a failed cut's row has no coverage (it used to
    raise KeyError: 'coverage' and end the replay)."""
    from types import SimpleNamespace

    from emoeye.commands.replay import _row_of_record
    from emoeye.commands.trials import format_trial

    record = SimpleNamespace(
        trial_id="P01-3",
        participant="P01",
        stimulus_id="coffee",
        onset=12.5,
        error="ValueError: cut failed",
    )
    line = format_trial(_row_of_record(record))
    assert "P01-3" in line and "coffee" in line
    assert "[FAILED] ValueError: cut failed" in line


def test_a_console_run_skips_the_last_garbage_collection(monkeypatch, capsys):
    """Run from the console script (no argv given), a command freezes the heap before the
    process ends: its last collection took 0.9-1.2 s after a replay. Called with argv (tests,
    notebooks), the caller's process is left as it was."""
    import gc
    from pathlib import Path

    rec = Path(__file__).parents[1] / "data" / "xdf" / "formats.xdf"
    assert gc.get_freeze_count() == 0
    assert main(["info", str(rec)]) == 0
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(sys, "argv", ["emoeye", "info", str(rec)])
    try:
        assert main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    capsys.readouterr()
