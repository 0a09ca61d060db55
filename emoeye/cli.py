"""The ``emoeye`` command line: one subcommand per module in :mod:`emoeye.commands`."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import importlib
import logging
import os
import signal
import sys
import threading

from emoeye import __version__
from emoeye.environ import environ
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
    "evaluate-continuous",
    "present",
    "crossval",
    "export",
    "batch",
    "report",
    "features",
)
"""Subcommands in --help order; each is a module of emoeye.commands (``-`` read as ``_``; a
missing module is skipped)."""


QT_COMMANDS = ("run", "demo", "present")
"""Commands that may open Qt windows: their process ends as Python usually ends it."""


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


GLOBAL_OPTIONS_WITH_VALUE = ("--lsl-scope", "--lsl-session")
"""Top-level options that take a value (skipped when looking for the subcommand in argv)."""


def requested_command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (before any other word), or None.

    Lets :func:`build_parser` register only that command: each command module's parser
    may import what its choices need (presets, numpy), and ``emoeye --version`` or
    ``emoeye info`` should not pay for all of them (start-up budget).
    """
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if word.startswith("-"):
            if word in ("--version", "-h", "--help"):
                return None
            i += 1
            continue
        return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand, or only the one named ``only``."""
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
    for name in COMMANDS if only is None else (only,):
        try:
            module_name = f"emoeye.commands.{name.replace('-', '_')}"
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emoeye`` console script."""
    # Any native crash (Qt, liblsl, torch) prints every thread's stack on stderr; `run` points
    # it at its run folder instead.
    if not faulthandler.is_enabled():
        with contextlib.suppress(AttributeError, ValueError, OSError):  # stderr without a fd
            faulthandler.enable(all_threads=True)
    words = sys.argv[1:] if argv is None else argv
    if "--version" in words[:1]:
        print(f"emoeye {__version__}")  # nothing else to build or import
        return 0
    parser = build_parser(requested_command(words))
    args = parser.parse_args(words)
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
    from models.cli import backbone_flag_environ

    try:
        # A flag that travels as an environment variable (to worker processes too) holds for
        # this command only: in-process callers (tests, notebooks) get theirs back.
        with environ(backbone_flag_environ(args)):
            rc = int(args.func(args) or 0)
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
    live = args.command in ("run", "demo")
    if live and argv is None and threading.current_thread() is threading.main_thread():
        # The session is stopped and summed up: a late Ctrl-C (a second press while a quick
        # stop had already finished) must not turn the clean exit into an interrupted one.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if argv is None and args.command not in QT_COMMANDS:
        # The process ends next, and its last garbage collection walked every object torch,
        # neurokit2 or distributed had made: 0.9-1.2 s after a replay, a fifth of a short
        # one. Nothing is left to collect that matters (outputs are closed); interpreter
        # teardown and atexit handlers still run. Qt's commands keep the usual exit.
        gc.freeze()
    return rc


if __name__ == "__main__":
    sys.exit(main())
