"""``emoeye train`` and ``emoeye evaluate``: parsers and commands, wired in by ``emoeye.cli``.

Usage from the application shell::

    sub = parser.add_subparsers(dest="command")
    add_train_parser(sub)       # sets func=cmd_train
    add_evaluate_parser(sub)    # sets func=cmd_evaluate
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

BRANCHES = ("timeseries", "scanpath", "stimulus")
"""As :data:`models.network.BRANCHES`; not imported from there so that building the parser does
not import torch."""


def _add_branch_flags(p: argparse.ArgumentParser, verb: str) -> None:
    for b in BRANCHES:
        p.add_argument(f"--no-{b}", action="store_true", help=f"{verb} the {b} branch")


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on an argparse subparsers object; returns the new parser."""
    p = subparsers.add_parser(
        "train",
        help="train a model on a dataset directory",
        description="Train EmoEyeNet on a dataset (see `emoeye dataset build`) and write a "
        "checkpoint directory (model.safetensors, config.json, training_curve.png).",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset directory")
    p.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    p.add_argument(
        "--model",
        choices=("emoeye", "tiny-emotionet"),
        default="emoeye",
        help="emoeye: the multimodal network; tiny-emotionet: one 1-D convolution over the "
        "action units to continuous arousal/valence (needs a dataset with the face role; uses "
        "--epochs (default 600 for it), --lr (3e-3), --seed; docs/modalities.md)",
    )
    p.add_argument("--epochs", type=int, default=None, help="default 30 (tiny-emotionet: 600)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    p.add_argument("--patience", type=int, default=6, help="early-stopping patience (epochs)")
    p.add_argument("--gamma", type=float, default=3.0, help="focal-loss gamma (0 = cross-entropy)")
    p.add_argument(
        "--balance",
        choices=("both", "sampler", "subset", "weights", "none"),
        default="both",
        help="joint-class sampler and/or balanced class weights (see docs/models.md)",
    )
    p.add_argument(
        "--augment", action="store_true", help="response-gain / gaze-offset augmentation"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--stimuli", type=Path, default=None, help="folder of stimulus images (default: bundled)"
    )
    p.add_argument(
        "--backbone-weights",
        "--vgg16",
        dest="backbone_weights",
        type=Path,
        default=None,
        metavar="FILE",
        help="use a frozen VGG16 stimulus backbone with these local torchvision-layout weights "
        "(.safetensors or .pth); features are cached per picture, only a head trains, and the "
        "checkpoint records the file's sha256 (docs/models.md)",
    )
    p.add_argument(
        "--hold-out-stimuli",
        type=float,
        default=0.2,
        metavar="FRACTION",
        help="share of pictures never trained on, for the stimulus/both protocols (default 0.2; "
        "needs at least 5 pictures; 0 = train on all)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="PX",
        help="side of the stimulus image fed to the stimulus branch (default 64; 224 for VGG16, "
        "the size its weights were trained at)",
    )
    p.add_argument(
        "--ts-summary",
        action="store_true",
        help="add per-channel window statistics to the time-series branch (docs/models.md)",
    )
    add_norms_input(p)
    p.add_argument(
        "--no-role-summary",
        action="store_true",
        help="EEG and face branches without their per-trial summaries beside the learned "
        "embeddings (the layout before them; docs/modalities.md)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_branch_flags(p, "leave out")
    add_drop_branch(p)
    p.set_defaults(func=cmd_train)
    return p


def add_norms_input(p: argparse.ArgumentParser) -> None:
    """``--norms-input``: the network takes the picture's norms (see docs/models.md)."""
    p.add_argument(
        "--norms-input",
        action="store_true",
        help="feed the picture's normative arousal/valence (and a known flag) to the network; "
        "needs a dataset with norms; at run time they come from [stimuli] norms or the "
        "catalogue, and a picture without norms is predicted with the flag 0 and flagged",
    )


def add_drop_branch(p: argparse.ArgumentParser) -> None:
    """``--drop-branch`` (repeatable): train without a branch (see :func:`branch_switches`)."""
    p.add_argument(
        "--drop-branch",
        action="append",
        choices=(*BRANCHES, "eeg", "face"),
        default=[],
        help="train without this branch (an ablation by retraining; repeatable)",
    )


def branch_switches(args: argparse.Namespace) -> dict[str, bool]:
    """``use_<branch>`` switches from ``--no-<branch>`` and ``--drop-branch`` flags."""
    dropped = set(getattr(args, "drop_branch", None) or [])
    return {f"use_{b}": not (getattr(args, f"no_{b}", False) or b in dropped) for b in BRANCHES}


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on an argparse subparsers object; returns the new parser."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset directory",
        description="Balanced accuracy, macro-F1, MAE and ECE per head beside the majority, "
        "picture-lookup, physiology-feature and (simulated data) oracle baselines, with 95 %% "
        "bootstrap CIs over participants and a per-participant table. --protocol picks new "
        "people, new pictures or both; --split auto/test works only on the training dataset.",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset directory")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint directory (default: bundled)"
    )
    p.add_argument("--out", type=Path, default=None, help="write evaluation JSON + PNG here")
    p.add_argument(
        "--split",
        choices=("auto", "test", "all"),
        default="auto",
        help="without --protocol: the checkpoint's test trials (auto/test; only on the dataset it "
        "was trained on) or all trials",
    )
    p.add_argument(
        "--protocol",
        choices=("participant", "stimulus", "both"),
        default=None,
        help="new people (pictures seen in training), new pictures (people seen in training), or "
        "both at once",
    )
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the CIs")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--stimuli", type=Path, default=None, help="folder of stimulus images (default: bundled)"
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    add_backbone_flag(p)
    p.add_argument(
        "--norms",
        type=Path,
        default=None,
        metavar="CSV",
        help="normative picture ratings (OASIS, IAPS, NAPS or id,valence,arousal): the lookup "
        "baseline for pictures the training never showed (default: the dataset's own norms)",
    )
    p.add_argument(
        "--norms-scale",
        nargs=2,
        type=float,
        default=None,
        metavar=("LOW", "HIGH"),
        help="the norms' scale when the table does not say it",
    )
    _add_branch_flags(p, "ablate (zero the features of)")
    p.set_defaults(func=cmd_evaluate)
    return p


def add_backbone_flag(p: argparse.ArgumentParser) -> None:
    """``--backbone-weights FILE`` for commands that load a checkpoint (see
    :func:`backbone_flag_environ`)."""
    p.add_argument(
        "--backbone-weights",
        type=Path,
        default=None,
        metavar="FILE",
        help="a VGG16 checkpoint's backbone weights file (default: $EMOEYE_BACKBONE_WEIGHTS, "
        "else the file recorded at training); its sha256 must match the checkpoint's",
    )


ENV_WEIGHTS = "EMOEYE_BACKBONE_WEIGHTS"
"""As :data:`models.backbone.ENV_WEIGHTS`; not imported from there (it imports torch)."""


def backbone_flag_environ(args: argparse.Namespace) -> dict[str, str | None]:
    """``--backbone-weights FILE`` as ``{"EMOEYE_BACKBONE_WEIGHTS": FILE}``, the variable every
    checkpoint load (:func:`models.checkpoint.load_checkpoint`) consults, worker processes
    included; ``{}`` without the flag. ``emoeye.cli.main`` sets it for the command's run only."""
    if getattr(args, "backbone_weights", None) is None:
        return {}
    return {ENV_WEIGHTS: str(args.backbone_weights)}


def _catalogue(folder: Path | None) -> Any:
    if folder is None:
        return None
    from acquisition.sim.stimuli import SimCatalogue
    from acquisition.stimulus_catalogue import StimulusCatalogue

    return SimCatalogue(StimulusCatalogue(folder))


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``emoeye train``; returns the exit status."""
    from emoeye.errors import CliError
    from models.dataset import DatasetError, TrialDataset

    if getattr(args, "model", "emoeye") == "tiny-emotionet":
        from models.tiny_emotionet import TinyEmotioNetError, train_tiny

        try:
            result = train_tiny(
                args.data,
                args.out,
                epochs=args.epochs or 600,
                lr=args.lr if args.lr != 2e-3 else 3e-3,
                seed=args.seed,
                log=None if not args.no_progress else print,
            )
        except (DatasetError, TinyEmotioNetError) as exc:
            raise CliError(str(exc)) from None
        print(json.dumps({"checkpoint": result["checkpoint"], "test": result["test"]}))
        return 0

    from models.network import ModelConfig
    from models.train import train

    try:
        ds = TrialDataset(args.data)
        cfg = ModelConfig(
            n_time=ds.n_time,
            scanpath_size=ds.scanpath_size,
            stimulus_backbone="vgg16" if args.backbone_weights else "small",
            ts_summary=getattr(args, "ts_summary", False),
            role_summary=not getattr(args, "no_role_summary", False),
            image_size=args.image_size or (224 if args.backbone_weights else 64),
            use_norms=bool(getattr(args, "norms_input", False)),
            **branch_switches(args),
            # The optional roles' branches: built when the dataset holds the role.
            **{f"use_{r}": r in ds.roles and r not in (args.drop_branch or []) for r in ds.roles},
        )
    except (DatasetError, ValueError) as exc:
        raise CliError(str(exc)) from None
    del ds
    result = train(
        args.data,
        args.out,
        cfg,
        hold_out_stimuli=args.hold_out_stimuli,
        epochs=args.epochs or 30,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        patience=args.patience,
        gamma=args.gamma,
        balance=args.balance,
        augment=getattr(args, "augment", False),
        catalogue=_catalogue(args.stimuli),
        vgg_weights=args.backbone_weights,
        num_threads=args.threads,
        log=None if not args.no_progress else print,
    )
    print(json.dumps({"checkpoint": str(result.checkpoint), "test": result.info["test"]}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``emoeye evaluate``; returns the exit status."""
    from emoeye.errors import CliError
    from models.checkpoint import CheckpointError
    from models.dataset import DatasetError
    from models.evaluate import (
        EvaluationError,
        evaluate_checkpoint,
        format_comparison,
        format_report,
    )

    if args.checkpoint is not None:
        from models.tiny_emotionet import TinyEmotioNetError, evaluate_tiny, is_tiny_checkpoint

        if is_tiny_checkpoint(args.checkpoint):
            try:
                report = evaluate_tiny(args.checkpoint, args.data, args.out)
            except (DatasetError, TinyEmotioNetError) as exc:
                raise CliError(str(exc)) from None
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                m = report["metrics"]
                print(
                    f"{report['trials']} trials, {report['participants']} participants "
                    f"(tiny-emotionet, continuous): arousal r {m['arousal']['r']:+.2f} "
                    f"RMSE {m['arousal']['rmse']:.2f}; valence r {m['valence']['r']:+.2f} "
                    f"RMSE {m['valence']['rmse']:.2f}"
                )
                if "filters_png" in report:
                    print(f"filters plotted to {report['filters_png']}")
            return 0
    ablate = [b for b in BRANCHES if getattr(args, f"no_{b}", False)]
    norms = None
    if getattr(args, "norms", None) is not None:
        from models.norms import NormsError, read_norms

        try:
            norms = read_norms(args.norms, tuple(args.norms_scale) if args.norms_scale else None)
        except NormsError as exc:
            raise CliError(str(exc)) from None
    try:
        report = evaluate_checkpoint(
            args.checkpoint,
            args.data,
            args.out,
            split=args.split,
            ablate=ablate,
            device=args.device,
            catalogue=_catalogue(args.stimuli),
            protocol=args.protocol,
            n_boot=args.bootstrap,
            norms=norms,
        )
    except (EvaluationError, DatasetError, CheckpointError) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        what = (
            f"protocol {report['protocol']}" if report["protocol"] else f"{report['split']} split"
        )
        print(
            f"{report['trials']} trials, {report['participants']} participants ({what}); "
            f"ablated: {', '.join(ablate) or 'none'}"
        )
        print(format_report(report))
        print(format_comparison(report))
        if args.out is not None:
            print(f"report written to {args.out}")
    return 0
