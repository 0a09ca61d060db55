"""Test-run set-up shared by every suite.

The LSL session id must be fixed before liblsl reads its configuration, so it is written here at
import time, before any test module imports pylsl.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from acquisition.lsl.config import write_lsl_config

_RUN_DIR = Path(tempfile.mkdtemp(prefix="emoeye-tests-"))
SESSION_ID = f"emoeye-test-{uuid.uuid4()}"
os.environ["LSLAPICFG"] = str(write_lsl_config(_RUN_DIR / "lsl_api.cfg", SESSION_ID, "machine"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PyQt5")

import pytest  # noqa: E402

EXAMPLE_XDF = Path(__file__).resolve().parent / "data" / "xdf" / "examples"
"""The example files of https://github.com/xdf-modules/example-files (MIT, LICENSE there)."""


@pytest.fixture(scope="session", autouse=True)
def lsl_session_id() -> str:
    """The LSL session id of this test run (streams of other runs are invisible)."""
    assert os.environ["LSLAPICFG"].startswith(str(_RUN_DIR)), "LSLAPICFG changed during the run"
    return SESSION_ID


@pytest.fixture
def uid() -> str:
    """A fresh uuid for stream names and source ids."""
    return uuid.uuid4().hex


@pytest.fixture(scope="session")
def shared_xdf_dir() -> Path:
    """The real example XDF files, kept in tests/data/xdf/examples (MIT, with their licence)."""
    assert (EXAMPLE_XDF / "minimal.xdf").is_file(), f"example XDF files missing in {EXAMPLE_XDF}"
    return EXAMPLE_XDF
