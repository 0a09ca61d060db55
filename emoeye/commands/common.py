"""Options and helpers shared by several commands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emoeye.errors import CliError


def add_config_arg(p: argparse.ArgumentParser) -> None:
    """``--config FILE.toml`` (see docs/configuration.md)."""
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file overriding trial, marker and role-binding settings",
    )


def load_acq_config(path: Path | None):
    """The acquisition config, or a one-line error naming the bad key."""
    from acquisition.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _seconds_text(task) -> str:
    """``12/30 s of data``; a file without a duration (one sample, no samples) has no total."""
    done = task.completed or 0.0
    if task.total is None:
        return f"{done:.0f} s of data"
    return f"{done:.0f}/{task.total:.0f} s of data"


def data_progress(quiet: bool):
    """A progress bar counting seconds of data (replay, dataset building), or, when ``quiet``,
    a null context that yields None."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class SecondsColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(_seconds_text(task))

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        SecondsColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


def add_dejitter_arg(p: argparse.ArgumentParser) -> None:
    """``--dejitter``: smooth regular streams' stamps as pyxdf does (off: stamps as live)."""
    p.add_argument(
        "--dejitter",
        action="store_true",
        help="replace regular streams' stamps by pyxdf's linear fit (default: clock sync only, "
        "the stamps the live session saw)",
    )


def print_binding(binding, out=None) -> None:
    """The role binding's lines (:meth:`~acquisition.offline_acquisition.OfflineBinding.lines`)."""
    import sys

    for line in binding.lines():
        print(line, file=out or sys.stdout)


def quiet_reader_log(args: argparse.Namespace) -> None:
    """The command prints the file's warnings itself: keep the reader's log for -v.

    ``XdfSource`` adds what it repairs while replaying to the same warnings, so its log would
    show each of them twice too.
    """
    import logging

    if not getattr(args, "verbose", False):
        for name in ("acquisition.xdf.reader", "acquisition.xdf.source"):
            logging.getLogger(name).setLevel(logging.ERROR)


def open_recording(path: Path, participant: str | None = None, dejitter: bool = False):
    """An :class:`~acquisition.xdf.source.XdfSource`, or one refusal line (exit code 2) for a
    file that is missing, unreadable or not XDF: the same line in every command."""
    from acquisition.xdf.reader import XdfError
    from acquisition.xdf.source import XdfSource

    if not path.is_file():
        raise CliError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        return XdfSource(path, participant=participant, dejitter=dejitter)
    except XdfError as exc:
        raise CliError(str(exc)) from None


@contextmanager
def atomic_write(path: Path, mode: str = "w", **kw) -> Iterator:
    """Write ``path`` through a temporary file renamed over it only when the block ends without
    an error: a command stopped half-way leaves the old file or none, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kw) as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def warm_trial_path() -> None:
    """Import what cutting a trial needs before the first onset arrives.

    scipy.signal (beat detection) and scipy.ndimage (scanpath image) are imported where they
    are used so that ``--version``, ``info`` and ``streams`` start fast; a live command imports
    them before the first cut instead (``run``: in a thread once the session has started, since
    the first window takes 5 s to fill), so the first trial's cut does not pay ~1.7 s for them.
    """
    import scipy.ndimage  # noqa: F401
    import scipy.signal  # noqa: F401
