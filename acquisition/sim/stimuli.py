"""Simulated pictures: a seeded generator of fresh stimulus sets, and where fixations land.

A generated set stands in for a normed picture set (IAPS, OASIS, NAPS): every picture has a
normative arousal and valence (1..7), and part of each norm is *visible* in the picture, as it is
in real photographs (warm, saturated, cluttered, high-contrast pictures tend to be arousing;
bright, green-blue, rounded ones pleasant), while the rest is content the pixels do not show.

Per picture ``k`` of set ``seed`` four standard-normal factors are drawn: ``va``, ``vv`` (visible)
and ``ha``, ``hv`` (hidden). With ``w = VISIBLE_SHARE``::

    norm_arousal = 4 + 1.3 * (sqrt(w) * va + sqrt(1 - w) * ha)      clipped to 1.5..6.5
    norm_valence = 4 + 1.3 * (sqrt(w) * vv + sqrt(1 - w) * hv)

and the picture is drawn from ``va`` and ``vv`` only (plus nuisance randomness):

* colour: hue from red-purple (unpleasant) to green-yellow (pleasant) with ``vv``; saturation and
  contrast rise with ``va``; pleasant pictures are brighter;
* layout: the number and size of objects rise with ``va`` (clutter); pleasant pictures hold round
  shapes, unpleasant ones sharp, spiky polygons;
* texture: a high-frequency grating whose amplitude and frequency rise with ``va``.

Generated ids are ``gen<seed>-<k>`` (``gen7-03``): the id alone regenerates the picture, so
datasets, checkpoints and catalogues need no image files. :class:`SimCatalogue` serves them beside
the bundled photos.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from acquisition.stimulus_catalogue import (
    Stimulus,
    StimulusCatalogue,
    UnknownStimulusError,
    default_catalogue,
)

VISIBLE_SHARE = 0.5
"""Share of each norm's variance that the picture's visible content carries."""

NORM_SD = 1.3
"""Spread of the generated norms around the scale's middle (4)."""

DEFAULT_SET_SIZE = 40
"""Pictures in a generated set unless asked otherwise."""

RENDER_SIZE = 256
"""Side at which generated pictures are drawn before resizing."""

SALIENCY_SIZE = 64
"""Side of the saliency map fixations are drawn from."""

_GEN_ID = re.compile(r"^gen(\d+)-(\d+)$")


@dataclass(frozen=True)
class GeneratedStimulus:
    """One generated picture: its id, norms and the factors it was drawn from."""

    id: str
    seed: int
    index: int
    arousal: float
    valence: float
    visible_arousal: float
    visible_valence: float


def generated_id(seed: int, index: int) -> str:
    """Id of picture ``index`` of generated set ``seed``."""
    return f"gen{int(seed)}-{int(index):02d}"


def parse_generated_id(stimulus_id: str) -> tuple[int, int] | None:
    """``(seed, index)`` of a generated id, None for any other id."""
    m = _GEN_ID.match(str(stimulus_id))
    return (int(m.group(1)), int(m.group(2))) if m else None


def generated_stimulus(seed: int, index: int) -> GeneratedStimulus:
    """Norms and factors of one generated picture (depends only on seed and index)."""
    rng = np.random.default_rng([int(seed), 7001, int(index)])
    va, vv, ha, hv = rng.normal(0.0, 1.0, 4)
    w = math.sqrt(VISIBLE_SHARE)
    h = math.sqrt(1.0 - VISIBLE_SHARE)
    a = float(np.clip(4.0 + NORM_SD * (w * va + h * ha), 1.5, 6.5))
    v = float(np.clip(4.0 + NORM_SD * (w * vv + h * hv), 1.5, 6.5))
    return GeneratedStimulus(generated_id(seed, index), seed, index, a, v, float(va), float(vv))


def generate_set(seed: int, n: int = DEFAULT_SET_SIZE) -> list[GeneratedStimulus]:
    """A fresh stimulus set of ``n`` pictures drawn from ``seed``."""
    if n < 1:
        raise ValueError("a generated stimulus set needs at least one picture")
    return [generated_stimulus(seed, k) for k in range(n)]


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return int(r * 255), int(g * 255), int(b * 255)


@lru_cache(maxsize=512)
def _render(seed: int, index: int) -> np.ndarray:
    """The picture at RENDER_SIZE, uint8 (H, W, 3)."""
    g = generated_stimulus(seed, index)
    rng = np.random.default_rng([seed, 7002, index])
    a = 1.0 / (1.0 + math.exp(-1.2 * g.visible_arousal))  # 0..1
    v = 1.0 / (1.0 + math.exp(-1.2 * g.visible_valence))
    size = RENDER_SIZE
    # Colour: hue red-purple (0.9) -> green-yellow (0.25) with valence; nuisance jitter.
    hue = 0.9 + 0.35 * v + rng.normal(0, 0.04)
    sat = 0.25 + 0.6 * a
    bright = 0.35 + 0.45 * v
    bg = _hsv_to_rgb(hue + 0.5 * rng.uniform(-0.1, 0.1), 0.6 * sat, bright * 0.8)
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    # Layout: clutter and object size with arousal; round (pleasant) or spiky (unpleasant) shapes.
    n_obj = int(round(2 + 10 * a + rng.uniform(0, 2)))
    for _ in range(n_obj):
        cx, cy = rng.uniform(0.1, 0.9, 2) * size
        r = size * (0.05 + 0.12 * a) * rng.uniform(0.6, 1.4)
        colour = _hsv_to_rgb(hue + rng.normal(0, 0.05), sat, min(1.0, bright + 0.3 * a))
        if rng.uniform() < v:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        else:
            k = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * np.pi, 2 * k))
            rad = np.where(np.arange(2 * k) % 2 == 0, r * 1.3, r * 0.4)
            pts = [
                (cx + q * math.cos(t), cy + q * math.sin(t)) for q, t in zip(rad, ang, strict=True)
            ]
            draw.polygon(pts, fill=colour)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    # Texture: a grating whose amplitude and frequency rise with arousal.
    yy, xx = np.mgrid[0:size, 0:size] / size
    theta = rng.uniform(0, np.pi)
    freq = 6 + 30 * a
    grating = np.sin(2 * np.pi * freq * (xx * math.cos(theta) + yy * math.sin(theta)))
    arr = arr + (0.03 + 0.15 * a) * grating[..., None]
    # Contrast around the mean rises with arousal.
    mean = arr.mean(axis=(0, 1), keepdims=True)
    arr = mean + (0.7 + 0.6 * a) * (arr - mean)
    return (np.clip(arr, 0, 1) * 255).astype(np.uint8)


@lru_cache(maxsize=1024)
def render(stimulus_id: str, size: int = 64) -> np.ndarray:
    """RGB float32 (3, size, size) in 0..1 of a generated id (read-only)."""
    parsed = parse_generated_id(stimulus_id)
    if parsed is None:
        raise UnknownStimulusError(f"{stimulus_id!r} is not a generated stimulus id")
    img = Image.fromarray(_render(*parsed))
    if size != RENDER_SIZE:
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.ascontiguousarray((np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1))
    arr.setflags(write=False)
    return arr


class SimCatalogue:
    """The bundled photos (or a :class:`StimulusCatalogue`) plus every generated id.

    Same interface as :class:`~acquisition.stimulus_catalogue.StimulusCatalogue`: ``ids``, ``in``,
    ``get``, ``image``, ``image_hwc``. ``ids`` lists the base catalogue's ids and the generated
    sets named in ``sets`` (seed -> size).
    """

    def __init__(
        self, base: StimulusCatalogue | None = None, sets: dict[int, int] | None = None
    ) -> None:
        self.base = base if base is not None else default_catalogue()
        self.sets = dict(sets or {})

    @property
    def ids(self) -> list[str]:
        gen = [generated_id(s, k) for s, n in sorted(self.sets.items()) for k in range(n)]
        return [*self.base.ids, *gen]

    def __contains__(self, stimulus_id: object) -> bool:
        return stimulus_id in self.base or parse_generated_id(str(stimulus_id)) is not None

    def get(self, stimulus_id: str) -> Stimulus:
        parsed = parse_generated_id(stimulus_id)
        if parsed is None:
            return self.base.get(stimulus_id)
        g = generated_stimulus(*parsed)
        return Stimulus(g.id, Path(f"<generated>/{g.id}"), g.arousal, g.valence)

    def image(self, stimulus_id: str, size: int = 64) -> np.ndarray:
        if parse_generated_id(stimulus_id) is None:
            return self.base.image(stimulus_id, size)
        return render(stimulus_id, size)

    def image_hwc(self, stimulus_id: str, size: int = 256) -> np.ndarray:
        if parse_generated_id(stimulus_id) is None:
            return self.base.image_hwc(stimulus_id, size)
        return (render(stimulus_id, size).transpose(1, 2, 0) * 255).astype(np.uint8)


@lru_cache(maxsize=1)
def sim_catalogue() -> SimCatalogue:
    """The bundled photos plus generated ids (cached)."""
    return SimCatalogue()


@lru_cache(maxsize=256)
def saliency_map(stimulus_id: str, size: int = SALIENCY_SIZE) -> np.ndarray:
    """Probability map (size, size) of where fixations land: blurred gradient magnitude of the
    picture with a mild centre bias (rows top to bottom)."""
    img = sim_catalogue().image(stimulus_id, size).mean(axis=0)
    smooth = ndimage.gaussian_filter(img, 1.0)
    grad = np.hypot(ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1))
    sal = ndimage.gaussian_filter(grad, size / 20)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    centre = np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / (2 * 0.25**2))
    sal = sal / (sal.max() + 1e-9) * centre + 0.02
    sal = sal / sal.sum()
    sal.setflags(write=False)
    return sal
