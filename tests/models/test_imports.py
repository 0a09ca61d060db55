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
    """checkpoint builds the network; the network's VGG16 backbone (models.backbone) reads its
    weights file through models.weights, not through the checkpoint module."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "models"

    def imports(name: str) -> set[str | None]:
        tree = ast.parse((root / name).read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}

    net, backbone = imports("network.py"), imports("backbone.py")
    assert "models.checkpoint" not in net and "models.backbone" in net
    assert "models.checkpoint" not in backbone and "models.weights" in backbone


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
