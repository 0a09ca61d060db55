"""Start-up budget: heavy libraries are imported only by the commands that use them.

``emoeye --version`` must answer in < 0.3 s, ``emoeye info`` on a small file in < 0.5 s and
``emoeye streams --timeout 0.5`` in < 1.5 s (issue 16). Wall-clock limits are flaky on a shared
machine, so this guards what decides them: which modules a fresh interpreter ends up holding.
Each check runs in its own interpreter (``sys.modules`` of this one is polluted by other tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HEAVY = ("torch", "PyQt5", "PyQt6", "PySide6", "pyqtgraph", "matplotlib", "scipy.signal", "pyxdf")
"""Each costs 0.3-3 s to import; none is needed to build the parser or describe a file."""

NOT_FOR_VERSION = (*HEAVY, "numpy", "pylsl", "acquisition")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=90, check=True
    )
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_version_imports_nothing_heavy():
    mods = _modules_after(
        "import contextlib, io\nfrom emoeye.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--version'])"
    )
    assert _loaded(mods, NOT_FOR_VERSION) == []


def test_full_parser_imports_nothing_heavy():
    """``emoeye --help`` registers every command: no registration may pull a heavy library."""
    mods = _modules_after("from emoeye.cli import build_parser\nbuild_parser()")
    assert _loaded(mods, HEAVY) == []


def test_only_the_named_command_is_registered():
    from emoeye.cli import build_parser, requested_command

    assert requested_command(["--lsl-session", "info", "streams", "-x"]) == "streams"
    assert requested_command(["-v", "info", "f.xdf"]) == "info"
    assert requested_command(["--version"]) is None
    assert requested_command(["nonsense"]) is None
    choices = build_parser("info")._subparsers._group_actions[0].choices
    assert list(choices) == ["info"]


def test_info_on_a_small_file_imports_no_model_gui_or_filters(tmp_path: Path):
    from acquisition.streams import StreamSpec
    from acquisition.xdf.writer import XdfWriter

    path = tmp_path / "small.xdf"
    with XdfWriter(path) as w:
        sid = w.add_stream(StreamSpec("Gaze", "Gaze", 3, 100.0, "float32", "gz-1", ("x", "y", "p")))
        w.write_samples(sid, np.arange(50) / 100, np.ones((50, 3)))
    mods = _modules_after(
        "import contextlib, io\nfrom emoeye.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    main(['info', {str(path)!r}])"
    )
    assert "acquisition.xdf.reader" in mods  # the probe did describe the file
    # pyxdf is used here (clock sync); the model, the GUI and the trial filters are not, nor
    # PIL (pictures), numpy.ma (25 ms, imported by np.median's first call) or the trial
    # cutting (describing a file only binds its streams).
    unused = (
        *(n for n in HEAVY if n != "pyxdf"),
        *("scipy.ndimage", "PIL", "numpy.ma", "acquisition.core", "acquisition.aligner"),
    )
    assert _loaded(mods, unused) == []


def test_replay_refuses_an_unbindable_file_before_loading_the_model(tmp_path: Path):
    from acquisition.xdf.writer import XdfWriter

    path = tmp_path / "nothing.xdf"
    with XdfWriter(path):
        pass  # a header and no stream: nothing to replay
    mods = _modules_after(
        "import contextlib, io, sys\nfrom emoeye.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        f"    code = main(['replay', {str(path)!r}, '--quiet'])\n"
        "assert code == 2 and 'missing role' in err.getvalue(), (code, err.getvalue())"
    )
    assert "torch" not in mods


@pytest.mark.parametrize("command", ["streams", "trials", "simulate", "replay", "dataset"])
def test_command_parsers_import_no_model_or_gui(command: str):
    mods = _modules_after(f"from emoeye.cli import build_parser\nbuild_parser({command!r})")
    assert _loaded(mods, HEAVY) == []


def test_parser_branch_names_match_the_network():
    from models import cli
    from models.network import BRANCHES

    assert cli.BRANCHES == BRANCHES
