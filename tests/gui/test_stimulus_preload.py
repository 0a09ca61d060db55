"""The stimulus panel decodes a catalogue that fits its cache before the first onset."""

from __future__ import annotations

import shutil

from acquisition.stimulus_catalogue import StimulusCatalogue
from gui.panels.stimulus import IMAGE_CACHE, IMAGE_SIZE, StimulusPanel


def test_a_catalogue_that_fits_is_decoded_in_the_background(qtbot):
    catalogue = StimulusCatalogue()
    assert len(catalogue.ids) <= IMAGE_CACHE
    panel = StimulusPanel(catalogue, trial_duration=5.0)
    qtbot.addWidget(panel)
    assert panel.preloader is not None
    panel.preloader.join(30)
    assert sorted(panel._cache) == sorted(catalogue.ids)
    first = catalogue.ids[0]
    assert panel._cache[first].shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert panel._image(first) is panel._cache[first]  # the onset finds it decoded


def test_a_larger_catalogue_is_decoded_on_first_show(qtbot, tmp_path):
    src = StimulusCatalogue().get(StimulusCatalogue().ids[0]).path
    for i in range(IMAGE_CACHE + 1):
        shutil.copy(src, tmp_path / f"extra_{i}.jpg")
    catalogue = StimulusCatalogue(tmp_path)
    panel = StimulusPanel(catalogue, trial_duration=5.0)
    qtbot.addWidget(panel)
    assert panel.preloader is None and not panel._cache
    assert panel._image("extra_3") is not None and list(panel._cache) == ["extra_3"]
