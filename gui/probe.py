"""Can Qt start here? Asked in a child process, so Qt's abort cannot take the session with it.

When Qt's platform plugin cannot load (on Linux usually xcb, whose system libraries a fresh
install lacks), ``QApplication()`` prints "could not load the Qt platform plugin" and calls
``qFatal``, which aborts the process. :func:`probe_qt` creates the application in a child
process instead and, when it fails, says in one line which libraries are missing and the ``apt``
line that installs them. Nothing here imports Qt in this process.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

XCB_APT_PACKAGES = (
    "libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-xinerama0 "
    "libxkbcommon-x11-0 libxcb-cursor0"
)
"""The Debian/Ubuntu packages Qt's xcb platform plugin needs beyond a desktop's usual ones."""
APT_LINE = f"sudo apt install {XCB_APT_PACKAGES}"

_PROBE = (
    "import os, sys\n"
    "os.environ.setdefault('PYQTGRAPH_QT_LIB', 'PyQt5')\n"
    "from pyqtgraph.Qt import QtWidgets\n"
    "app = QtWidgets.QApplication(sys.argv[:1])\n"
    "print('platform', app.platformName())\n"
)


@dataclass
class QtProbe:
    """What :func:`probe_qt` found.

    Attributes
    ----------
    ok
        A ``QApplication`` could be created.
    platform
        The platform plugin Qt used (``xcb``, ``wayland``, ``offscreen``...) or tried.
    reason
        One line for the terminal when not ``ok``: what failed, the missing libraries, the
        ``apt`` line.
    """

    ok: bool
    platform: str
    reason: str = ""


def qt_plugin_files() -> list[Path]:
    """Qt's xcb platform plugin and its QPA library, as installed with PyQt5 (may be empty)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("PyQt5")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    patterns = ("Qt*/plugins/platforms/libqxcb.so", "Qt*/lib/libQt5XcbQpa.so*")
    return [Path(p) for pat in patterns for p in sorted(glob.glob(str(root / pat)))]


def missing_libraries(ldd_output: str) -> list[str]:
    """Library names ``ldd`` reports as ``not found``, in order, without repeats."""
    names = re.findall(r"^\s*(\S+)\s+=>\s+not found", ldd_output, flags=re.MULTILINE)
    return list(dict.fromkeys(names))


def missing_xcb_libraries() -> list[str]:
    """System libraries Qt's xcb plugin needs and cannot find (``ldd``; empty when unknown)."""
    out = []
    for path in qt_plugin_files():
        try:
            res = subprocess.run(
                ["ldd", str(path)], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        out += missing_libraries(res.stdout)
    return list(dict.fromkeys(out))


def _first_qt_line(stderr: str) -> str:
    for line in stderr.splitlines():
        line = line.strip()
        if line and not line.startswith(("Available platform", "Reinstalling")):
            return line.rstrip(".")
    return "no message"


def probe_qt(timeout: float = 20.0) -> QtProbe:
    """Try to start Qt in a child process, with this process's environment.

    Parameters
    ----------
    timeout
        Seconds the child may take (a display that does not answer counts as failure).

    Returns
    -------
    QtProbe
        ``ok`` or the one-line reason.
    """
    platform = os.environ.get("QT_QPA_PLATFORM") or (
        "xcb" if sys.platform.startswith("linux") else "default"
    )
    try:
        res = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return QtProbe(False, platform, f"Qt did not start within {timeout:g} s ({platform})")
    if res.returncode == 0 and "platform" in res.stdout:
        return QtProbe(True, res.stdout.split()[-1])
    first = _first_qt_line(res.stderr)
    missing = missing_xcb_libraries() if platform.startswith("xcb") else []
    if missing:
        why = (
            f"Qt's xcb platform plugin cannot load: missing system libraries "
            f"{', '.join(missing)}; install them with: {APT_LINE}"
        )
    else:
        why = (
            f'Qt cannot start with platform "{platform}" ({first}); if its system libraries are '
            f"missing (the usual cause on a fresh Linux): {APT_LINE}"
        )
    return QtProbe(False, platform, why)


__all__ = ["APT_LINE", "XCB_APT_PACKAGES", "QtProbe", "missing_libraries", "probe_qt"]
