"""``emoeye crossval``: grouped K-fold cross-validation by participant or stimulus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoeye.errors import CliError
from models.cli import (  # no torch: the parser stays light
    add_drop_branch,
    add_norms_input,
    branch_switches,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crossval",
        help="grouped K-fold cross-validation (new people or new pictures) with baselines",
        description="Train a fresh network per fold without the fold's participants (or "
        "pictures) and test on them, beside the majority, lookup, physiology and oracle "
        "baselines; leave-one-out when --folds equals the number of groups. Reports balanced "
        "accuracy as mean and 95 %% CI over folds.",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset directory")
    p.add_argument("--out", required=True, type=Path, help="folder for fold checkpoints + JSON")
    p.add_argument("--folds", type=int, default=5, help="K (default 5)")
    p.add_argument("--group", choices=("participant", "stimulus"), default="participant")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    add_drop_branch(p)
    add_norms_input(p)
    p.add_argument(
        "--backbone-weights",
        type=Path,
        default=None,
        metavar="FILE",
        help="train every fold with a frozen VGG16 stimulus backbone from this local weights file "
        "(features computed once per picture and cached; docs/models.md)",
    )
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="as for emoeye train")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.crossval import crossval, format_crossval
    from models.dataset import DatasetError, TrialDataset
    from models.network import ModelConfig

    vgg = args.backbone_weights
    try:
        ds = TrialDataset(args.data)
        cfg = ModelConfig(
            n_time=ds.n_time,
            scanpath_size=ds.scanpath_size,
            stimulus_backbone="vgg16" if vgg else "small",
            image_size=args.image_size or (224 if vgg else 64),
            use_norms=args.norms_input,
            **branch_switches(args),
        )
        del ds
        report = crossval(
            args.data,
            args.out,
            args.folds,
            args.group,
            cfg,
            seed=args.seed,
            log=None if args.json else print,
            epochs=args.epochs,
            batch_size=args.batch_size,
            patience=args.patience,
            device=args.device,
            num_threads=args.threads,
            vgg_weights=vgg,
        )
    except (DatasetError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(report, indent=2) if args.json else format_crossval(report))
    return 0
