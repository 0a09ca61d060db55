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
