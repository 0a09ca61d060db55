"""neurokit2, imported on first use (it costs seconds) and quiet about short signals."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


def nk():
    """The neurokit2 module."""
    import neurokit2

    return neurokit2


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence neurokit2's warnings about short or low-rate signals (the table says what was
    computed and what not).

    ``catch_warnings`` swaps the process-wide filters: feature code runs in one thread, and the
    only other thread that can run meanwhile (the model's worker under ``--predict``) changes no
    filters, so at worst one of its warnings goes unshown while neurokit2 runs."""
    with warnings.catch_warnings(), __import__("numpy").errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
