"""Options and helpers shared by several commands."""

from __future__ import annotations

import argparse
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


def data_progress(quiet: bool):
    """A progress bar counting seconds of data (replay, dataset building), or, when ``quiet``,
    a null context that yields None."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s of data"),
        TimeRemainingColumn(),
        transient=True,
    )


def quiet_reader_log(args: argparse.Namespace) -> None:
    """The command prints the file's warnings itself: keep the reader's log for -v.

    ``XdfSource`` adds what it repairs while replaying to the same warnings, so its log would
    show each of them twice too.
    """
    import logging

    if not getattr(args, "verbose", False):
        for name in ("acquisition.xdf.reader", "acquisition.xdf.source"):
            logging.getLogger(name).setLevel(logging.ERROR)
