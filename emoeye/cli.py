"""The ``emoeye`` command line: one subcommand per module in :mod:`emoeye.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from emoeye import __version__
from emoeye.errors import CliError

COMMANDS = (
    "demo",
    "streams",
    "simulate",
    "trials",
    "run",
    "info",
    "replay",
    "dataset",
    "train",
    "evaluate",
    "export",
    "batch",
    "report",
)
"""Subcommand modules in emoeye.commands, in --help order (a missing module is skipped)."""


REFUSALS = (
    ("acquisition.config", "ConfigError"),
    ("acquisition.core", "MissingRoleError"),
    ("acquisition.offline_acquisition", "UnboundSourceError"),
    ("acquisition.xdf.reader", "XdfError"),
    ("acquisition.xdf.recorder", "RecorderUnavailable"),
    ("models.dataset", "DatasetError"),
    ("models.checkpoint", "CheckpointError"),
    ("inference.worker", "DeviceUnavailableError"),
)
"""Library errors that mean a refused input (bad file, dataset, checkpoint, config, device):
exit 2 with their one-line message in every command. Anything else is an internal error
(exit 1, with its traceback)."""


def refusal(exc: BaseException) -> bool:
    """True when ``exc`` is one of :data:`REFUSALS` (only modules already imported can have
    raised one, so nothing is imported here)."""
    for module, name in REFUSALS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="emoeye",
        description=(
            "EmoEye Live: see how a participant feels about each picture while the session runs. "
            "Eye tracking, GSR and heart rate over LSL are cut into 5-s trials at each stimulus "
            "onset and a multimodal network predicts arousal and valence (1-7)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"emoeye {__version__}")
    parser.add_argument(
        "--lsl-scope",
        choices=("machine", "site"),
        default=os.environ.get("EMOEYE_LSL_SCOPE", "machine"),
        help="where LSL streams are looked for: this computer only (default) or the lab network "
        "(env EMOEYE_LSL_SCOPE; ignored when LSLAPICFG names your own liblsl config)",
    )
    parser.add_argument(
        "--lsl-session",
        default=os.environ.get("EMOEYE_LSL_SESSION", "default"),
        help="LSL session id: only streams of the same session are visible (default: 'default')",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"emoeye.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"emoeye.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emoeye`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # liblsl reads its configuration once: fix session and scope before any stream exists.
    from acquisition.lsl.config import use_lsl_config

    args.lsl_config_written = use_lsl_config(args.lsl_session, args.lsl_scope)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"emoeye: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not refusal(exc):
            raise  # an internal error: exit 1 with the traceback
        text = getattr(exc, "summary", None) or str(exc).strip() or type(exc).__name__
        message = text.splitlines()[0]
        print(f"emoeye: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
