"""``emoeye features``: one row of per-trial features per stimulus onset (see :mod:`features`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoeye.commands.common import (
    add_config_arg,
    add_dejitter_arg,
    data_progress,
    load_acq_config,
    quiet_reader_log,
)
from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="per-trial features (EDA, heart, pupil, gaze, AOIs) of recordings as a table",
        description="Cut every trial of the recordings as replay does and write one row per "
        "stimulus onset: skin conductance (neurokit2: tonic level, SCRs starting 1-5 s after "
        "onset), heart-rate change and, from a raw ECG/PPG, neurokit2's beats and RMSSD where "
        "the window allows; pupil dilation, blinks; I-VT fixations and saccades, dwell time in "
        "areas of interest; quality per role, the rating and optionally the model's prediction. "
        "Columns: docs/features.md.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.xdf", help="the recordings")
    p.add_argument("--out", type=Path, required=True, help="the table: .csv or .parquet")
    p.add_argument("--aoi", type=Path, default=None, metavar="FILE",
                   help="areas of interest per picture (CSV or JSON; docs/features.md)")  # fmt: skip
    p.add_argument("--ivt-threshold", type=float, default=None, metavar="V",
                   help="I-VT velocity threshold in screen units/s (default 1.5)")  # fmt: skip
    p.add_argument("--predict", action="store_true",
                   help="run the model and fill the prediction columns (bundled model)")  # fmt: skip
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="model checkpoint for the predictions (implies --predict)")  # fmt: skip
    add_config_arg(p)
    add_dejitter_arg(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from features.aoi import AoiError, load_aois
    from features.gaze import VELOCITY_THRESHOLD
    from features.table import Options, columns_of, recording_features, write_table

    quiet_reader_log(args)
    if args.out.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"--out {args.out}: the table is written as .csv or .parquet")
    if args.out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CliError(
                f"--out {args.out}: Parquet needs pyarrow: pip install 'emoeye[parquet]', or write .csv"
            ) from None
    threshold = VELOCITY_THRESHOLD if args.ivt_threshold is None else args.ivt_threshold
    if not threshold > 0:
        raise CliError(f"--ivt-threshold must be > 0, got {args.ivt_threshold}")
    try:
        aois = load_aois(args.aoi) if args.aoi else None
    except AoiError as exc:
        raise CliError(str(exc)) from None
    options = Options(
        config=None,
        predict=args.predict or args.checkpoint is not None,
        checkpoint=args.checkpoint,
        aois=aois,
        threshold=threshold,
        dejitter=args.dejitter,
    )
    quiet = args.quiet or args.json
    rows: list[dict] = []
    recordings = []
    with data_progress(quiet) as bar:
        for path in args.files:
            options.config = load_acq_config(args.config)  # fresh: a recording may change it
            update = None
            if bar is not None:
                task = bar.add_task(path.name, total=None)

                def update(done: float, task=task) -> None:
                    bar.update(task, completed=done)

            rec = recording_features(path, options, update)
            if bar is not None:
                bar.remove_task(task)
            rows += rec.rows
            recordings.append(rec)
            if not quiet:
                _report(rec)
    write_table(args.out, rows, columns_of(options))
    summary = {
        "out": str(args.out),
        "rows": len(rows),
        "seconds": round(sum(r.seconds for r in recordings), 3),
        "recordings": [
            {
                "file": str(r.path),
                "rows": len(r.rows),
                "failed": sum(row["status"] == "failed" for row in r.rows),
                "no_data": sum(row["status"] == "no_data" for row in r.rows),
                "predicted": r.predicted,
                "notes": r.notes,
            }
            for r in recordings
        ],
        "warnings": [w for r in recordings for w in r.warnings],
    }
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(f"{len(rows)} trial row(s) written to {args.out}")
    return 0


def _report(rec) -> None:
    bad = {s: sum(r["status"] == s for r in rec.rows) for s in ("no_data", "failed")}
    extra = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in bad.items() if n)
    print(f"{rec.path}: {len(rec.rows)} trial(s)" + (f" ({extra})" if extra else ""))
    for note in rec.notes:
        print(f"  {note}")
    for w in rec.warnings:
        print(f"  file warning: {w}")
