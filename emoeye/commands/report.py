"""``emoeye report FILE --out report.html``: a self-contained HTML page of one recording."""

from __future__ import annotations

import argparse
from pathlib import Path

from emoeye.commands.common import add_config_arg, atomic_write, load_acq_config, quiet_reader_log


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="an HTML page of a recording: signals, scanpaths, ratings vs predictions, quality",
        description="Replay a recording (as replay --fast) and write one self-contained HTML "
        "page (plots embedded as PNG): each trial's signals with the window shaded and its "
        "scanpath over the picture, rating against prediction, quality and stream health over "
        "time, and the marker problems.",
    )
    p.add_argument("file", type=Path, metavar="FILE.xdf", help="the recording")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--checkpoint", type=Path, default=None, help="model (default: bundled)")
    p.add_argument("--no-model", action="store_true", help="no predictions")
    p.add_argument("--max-trials", type=int, default=24, help="trials drawn (default 24)")
    add_config_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emoeye.report import build_report

    quiet_reader_log(args)
    page = build_report(
        args.file, load_acq_config(args.config), args.checkpoint, not args.no_model,
        args.max_trials,
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, encoding="utf-8") as fh:
        fh.write(page)
    print(f"report written to {args.out} ({len(page) / 1e6:.1f} MB)")
    return 0
