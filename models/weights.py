"""Reading weight files safely: safetensors (framing checked first) or torch zip state dicts
through ``torch.load(weights_only=True)``; pickles are never opened.

Used by :mod:`models.checkpoint` (whole checkpoints) and :mod:`models.network` (VGG16 weights),
which therefore do not import each other.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import torch

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".ckpt", ".bin")


class CheckpointError(ValueError):
    """A checkpoint (or weights file) that cannot, or must not, be loaded."""


def _looks_like_pickle(head: bytes) -> bool:
    # Protocol 2+ pickles start with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and head[1] <= 5


def _check_safetensors(path: Path) -> None:
    """Validate the safetensors framing before handing the file to the library."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if _looks_like_pickle(head):
            raise CheckpointError(f"{path} is a pickle, not safetensors; refusing to unpickle it")
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated ({size} bytes): not a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8 or n > 100 << 20:
            raise CheckpointError(
                f"{path} is truncated or corrupt: header of {n} bytes in a file of {size}"
            )
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is corrupt: unreadable safetensors header") from exc
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise CheckpointError(
            f"{path} is truncated: the header promises {8 + n + end} bytes, the file has {size}"
        )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``'d state dict (``.pt``/``.pth``).

    ``.pt`` files are read with ``torch.load(weights_only=True)`` and must be torch's zip format;
    other pickle files are refused unopened.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path} looks like a pickle file ({suffix}); pickles can run code when loaded and "
            "are never opened. Convert it to safetensors or a torch.save'd state dict (.pt)"
        )
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        _check_safetensors(path)
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is corrupt: {exc}") from exc
    if suffix in (".pt", ".pth"):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path} is not a torch zip archive (a bare or legacy pickle); refusing to "
                "unpickle it. Re-save it with torch.save(state_dict) or as safetensors"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ...
            raise CheckpointError(
                f"{path} could not be loaded as plain tensors (weights_only=True): {exc}"
            ) from exc
        if (
            isinstance(state, dict)
            and "state_dict" in state
            and isinstance(state["state_dict"], dict)
        ):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise CheckpointError(f"{path} does not hold a state dict of tensors")
        return state
    raise CheckpointError(f"{path}: unknown weights format {suffix!r} (use .safetensors or .pt)")
