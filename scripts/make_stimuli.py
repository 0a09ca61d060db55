"""Regenerate the bundled stimulus photos from scikit-image's bundled samples (no download).

Run: ``python scripts/make_stimuli.py``. Writes 256x256 JPEGs and ``stimuli.json`` into
``acquisition/stimuli/``. The latent arousal/valence values are the simulator's ground truth
(1..7), set by hand to be plausible for each picture and to cover the plane.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import skimage.data as data
from PIL import Image

# name -> (arousal, valence) on 1..7
LATENT = {
    "astronaut": (5.0, 5.5),
    "camera": (3.0, 4.0),
    "chelsea": (3.5, 6.0),
    "coffee": (2.5, 5.5),
    "rocket": (6.5, 5.0),
    "coins": (2.0, 4.5),
    "moon": (2.0, 3.5),
    "clock": (3.0, 3.0),
    "hubble_deep_field": (4.0, 6.0),
    "immunohistochemistry": (5.5, 2.5),
    "retina": (6.0, 2.0),
    "stereo_motorcycle": (6.0, 4.5),
    "colorwheel": (4.5, 6.5),
    "brick": (1.5, 3.0),
    "grass": (2.0, 5.0),
    "gravel": (3.5, 2.0),
}


def _square_rgb(image: np.ndarray, size: int = 256) -> Image.Image:
    if isinstance(image, tuple):
        image = image[0]
    if image.dtype != np.uint8:
        image = (255 * (image.astype(float) / max(float(image.max()), 1e-9))).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    return Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "acquisition" / "stimuli"
    out.mkdir(parents=True, exist_ok=True)
    catalogue = []
    for name, (arousal, valence) in LATENT.items():
        img = _square_rgb(getattr(data, name)())
        img.save(out / f"{name}.jpg", quality=85)
        catalogue.append(
            {"id": name, "file": f"{name}.jpg", "arousal": arousal, "valence": valence}
        )
    (out / "stimuli.json").write_text(json.dumps({"stimuli": catalogue}, indent=1) + "\n")
    print(f"wrote {len(catalogue)} stimuli to {out}")


if __name__ == "__main__":
    main()
