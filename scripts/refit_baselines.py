"""Refit a checkpoint's baselines (majority, lookup, physiology and, on simulated data, ceiling
regressions) with today's feature code on the dataset it was trained on, leaving the network as
it is.

A checkpoint stores its physiology regression beside the version of the feature code it was fitted
on; ``emoeye evaluate`` leaves a regression of another version out (its weights mean nothing on
other features). This brings such a checkpoint up to date without retraining:

    emoeye dataset build --simulate --participants 30 --trials 160 --seed 1 --stimulus-seed 1 \\
        --stimuli-count 120 --out data/sim-default
    python scripts/refit_baselines.py models/default_model data/sim-default
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory (config.json)")
    parser.add_argument("data", type=Path, help="the dataset it was trained on")
    args = parser.parse_args()
    from models.train import refit_baselines

    try:
        baselines = refit_baselines(args.checkpoint, args.data)
    except (ValueError, OSError, KeyError) as exc:
        print(f"refit_baselines: error: {exc}", file=sys.stderr)
        return 2
    print(f"refitted on feature code v{baselines['physiology_features']}: {args.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
