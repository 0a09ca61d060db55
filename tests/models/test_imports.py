from __future__ import annotations

import subprocess
import sys


def test_models_import_no_lsl_or_qt() -> None:
    code = (
        "import sys\n"
        "import models.network, models.preprocess, models.losses, models.balancing\n"
        "import models.dataset, models.checkpoint, models.train, models.evaluate\n"
        "import models.predictor, models.cli, models.synthetic\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('pylsl', 'PyQt5', 'PyQt6', 'PySide6', 'pyqtgraph', 'torchvision', 'sklearn')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_checkpoint_and_network_do_not_import_each_other() -> None:
    """checkpoint builds the network; network reads VGG16 files through models.weights."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / "models" / "network.py").read_text())
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "models.checkpoint" not in mods and "models.weights" in mods


def test_building_the_cli_parser_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from emoeye.cli import build_parser\n"
        "build_parser()\n"
        "assert 'torch' not in sys.modules, 'torch imported by the parser'\n"
        "import models.cli, models.network, emoeye.commands.crossval as cv\n"
        "assert models.cli.BRANCHES == models.network.BRANCHES\n"
        "assert cv.branch_switches is models.cli.branch_switches\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
