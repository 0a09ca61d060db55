"""Stimulus images by id: the bundled set, or a user folder of pictures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class UnknownStimulusError(KeyError):
    """A stimulus id that no catalogue knows."""


@dataclass(frozen=True)
class Stimulus:
    """A picture and, for the bundled set, its latent arousal/valence (1..7)."""

    id: str
    path: Path
    arousal: float = float("nan")
    valence: float = float("nan")


def _strip_suffix(name: str) -> str:
    """``"dir/img_022.JPG"`` → ``"img_022"``: the last path part without an image suffix."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in IMAGE_SUFFIXES else name


class StimulusCatalogue:
    """Stimulus id → image. The bundled photos by default; ``folder`` adds a user's pictures,
    whose file stem is the id (``folder/beach_01.png`` is ``beach_01``).

    A marker may name a stimulus by its id, by its file name (``beach_01.png``, as experiment
    scripts often send), by a path ending in it, or in another letter case: :meth:`resolve`
    tries the exact id, the exact file name, the stem, then the same case-insensitively.
    """

    def __init__(self, folder: Path | str | None = None) -> None:
        self._items: dict[str, Stimulus] = {}
        bundled = resources.files("acquisition") / "stimuli"
        meta = json.loads((bundled / "stimuli.json").read_text())
        for entry in meta["stimuli"]:
            path = Path(str(bundled / entry["file"]))
            self._items[entry["id"]] = Stimulus(
                entry["id"], path, entry["arousal"], entry["valence"]
            )
        if folder is not None:
            folder = Path(folder)
            if not folder.is_dir():
                raise FileNotFoundError(f"stimulus folder {folder} does not exist")
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    self._items[path.stem] = Stimulus(path.stem, path)
        # File names and case-folded keys, for markers that name files rather than ids.
        self._by_name: dict[str, Stimulus] = {}
        self._folded: dict[str, Stimulus] = {}
        for stim in self._items.values():
            self._by_name.setdefault(stim.path.name, stim)
        for key, stim in (*self._items.items(), *self._by_name.items()):
            self._folded.setdefault(key.casefold(), stim)

    def resolve(self, stimulus_id: object) -> Stimulus | None:
        """The stimulus a marker's id names (exact id, file name, stem, then any letter case),
        or None."""
        if not isinstance(stimulus_id, str) or not stimulus_id:
            return None
        hit = self._items.get(stimulus_id) or self._by_name.get(stimulus_id)
        if hit is not None:
            return hit
        stem = _strip_suffix(stimulus_id)
        hit = self._items.get(stem)
        if hit is not None:
            return hit
        name = stimulus_id.replace("\\", "/").rsplit("/", 1)[-1]
        for key in (stimulus_id, name, stem):
            hit = self._folded.get(key.casefold())
            if hit is not None:
                return hit
        return None

    @property
    def ids(self) -> list[str]:
        """Every known stimulus id."""
        return list(self._items)

    def __contains__(self, stimulus_id: object) -> bool:
        return self.resolve(stimulus_id) is not None

    def get(self, stimulus_id: str) -> Stimulus:
        """The stimulus (see :meth:`resolve`); raises :class:`UnknownStimulusError` naming a
        few known ids."""
        hit = self.resolve(stimulus_id)
        if hit is None:
            known = ", ".join(self.ids[:6])
            raise UnknownStimulusError(
                f"unknown stimulus id {stimulus_id!r} (known: {known}, ... {len(self._items)} in all)"
            )
        return hit

    def image(self, stimulus_id: str, size: int = 64) -> np.ndarray:
        """RGB float32 image (3, size, size) in 0..1."""
        return _load(self.get(stimulus_id).path, size)

    def image_hwc(self, stimulus_id: str, size: int = 256) -> np.ndarray:
        """RGB uint8 image (size, size, 3) for display."""
        from PIL import Image  # on first use: replay and `info` start without it

        img = Image.open(self.get(stimulus_id).path).convert("RGB").resize((size, size))
        return np.asarray(img)


@lru_cache(maxsize=256)
def _load(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = np.ascontiguousarray(arr.transpose(2, 0, 1))
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=1)
def default_catalogue() -> StimulusCatalogue:
    """The bundled catalogue (cached)."""
    return StimulusCatalogue()
