"""``emoeye report``: a self-contained HTML page of a simulated session."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import record_simulation
from emoeye.cli import main

BROWSERS = (
    "chromium",
    "chromium-headless-shell",
    "chromium-browser",
    "google-chrome",
    "headless_shell",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("report")
    sim = Simulation(SimulationConfig(n_trials=3, isi=7.0, lead_in=1.5, seed=5, participants=1,
                                      source_tag="rep"))  # fmt: skip
    record_simulation(sim, d / "s.xdf", progress=False)
    assert main(["report", str(d / "s.xdf"), "--out", str(d / "report.html")]) == 0
    return d / "report.html"


@pytest.mark.timeout(180)
def test_report_is_self_contained_with_every_plot(report):
    page = report.read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    # rating vs prediction, quality/health, and one figure per trial
    assert len(sources) == 2 + 3
    for s in sources:
        img = Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1])))
        assert img.width > 200 and np.asarray(img.convert("L")).std() > 5  # not blank
    for heading in ("Marker problems", "Rating against prediction", "Quality and stream health",
                    "Trials"):  # fmt: skip
        assert heading in page
    assert page.count("<tr>") == 1 + 3  # header and one row per trial


@pytest.mark.timeout(180)
@pytest.mark.browser
@pytest.mark.skipif(not any(shutil.which(b) for b in BROWSERS), reason="no Chromium installed")
def test_report_renders_in_a_real_browser(report, tmp_path):
    browser = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1200,2400", report.as_uri()],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    img = np.asarray(Image.open(shot).convert("RGB"))
    # The plots rendered: many distinct colours, not a blank page or a broken-image icon.
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200
