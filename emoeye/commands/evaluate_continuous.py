"""``emoeye evaluate-continuous``: continuous-mode predictions against an annotation stream."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate-continuous",
        help="compare continuous-mode predictions with a continuous rating (annotation) stream",
        description="For each recording: the continuous-mode predictions (from --predictions, "
        "the log of `emoeye replay --fast --continuous` or `emoeye run --continuous`, or "
        "computed here with the model) against the file's annotation stream (a 2-axis slider "
        "or joystick, type Annotation, channels arousal and valence, as in CASE or "
        "CEAP-360VR): concordance correlation coefficient, RMSE and the best lag within "
        "±--max-lag seconds (docs/continuous.md).",
    )
    p.add_argument("files", type=Path, nargs="+", metavar="FILE.xdf", help="recordings")
    p.add_argument(
        "--predictions",
        type=Path,
        action="append",
        default=None,
        metavar="LOG",
        help="predictions log (JSONL or CSV) of a file, once per file in the same order "
        "(default: predict each file here, continuous mode, --step)",
    )
    p.add_argument("--step", type=float, default=1.0, help="seconds between windows (default 1)")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="model checkpoint (default: bundled model)"
    )
    p.add_argument("--annotation", default=None, help="name of the annotation stream")
    p.add_argument(
        "--max-lag", type=float, default=10.0, help="lags searched, ± seconds (default 10)"
    )
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    p.set_defaults(func=run)


def _predict(source, args, config):
    """Window ends and (n, 2) predictions of one file, computed with the model."""
    import numpy as np

    from emoeye.session import predict_offline

    result = predict_offline(
        source, config, args.checkpoint, continuous_step=args.step, block_seconds=1.0
    )
    preds = [p for p in result["predictions"] if p.mode == "continuous" and p.status == "predicted"]
    if not preds:
        raise CliError(f"{source.path}: no continuous window could be predicted")
    ends = np.array([p.onset for p in preds]) + config.trial.duration
    return ends, np.array([[p.arousal, p.valence] for p in preds])


def run(args: argparse.Namespace) -> int:
    from emoeye.commands.common import load_acq_config, open_recording
    from emoeye.commands.run import continuous_step
    from emoeye.continuous import (
        ContinuousEvalError,
        evaluate,
        find_annotation,
        read_predictions,
    )

    config = load_acq_config(getattr(args, "config", None))
    args.continuous = True
    continuous_step(args, config)  # refuses a step below the grid period
    if args.max_lag < 0:
        raise CliError("--max-lag must be >= 0")
    logs = args.predictions or []
    if logs and len(logs) != len(args.files):
        raise CliError(
            f"--predictions given {len(logs)} time(s) for {len(args.files)} file(s): "
            "give one log per file, in the same order, or none"
        )
    results = []
    for i, path in enumerate(args.files):
        source = open_recording(path)
        try:
            ann_t, ann_v = find_annotation(source, args.annotation)
            if logs:
                ends, predicted = read_predictions(logs[i], config.trial.duration)
            else:
                ends, predicted = _predict(source, args, config)
        except ContinuousEvalError as exc:
            raise CliError(str(exc)) from None
        out = evaluate(ends, predicted, ann_t, ann_v, config.trial.duration, args.max_lag)
        results.append({"file": str(path), **out})
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
        return 0
    for r in results:
        print(f"{r['file']}: {r['windows']} window(s)")
        for head in ("arousal", "valence"):
            h = r[head]
            print(
                f"  {head:8s} CCC {_f(h['ccc'])}  RMSE {_f(h['rmse'])}  r {_f(h['pearson'])}  "
                f"best lag {h['best_lag']:+g} s (r {_f(h['r_at_best_lag'])}, "
                f"CCC {_f(h['ccc_at_best_lag'])})"
            )
    return 0


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
