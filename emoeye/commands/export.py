"""``emoeye export bids``: recordings as a BIDS 1.11 dataset (see :mod:`emoeye.bids`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoeye.commands.common import (
    add_config_arg,
    add_dejitter_arg,
    load_acq_config,
    quiet_reader_log,
)
from emoeye.errors import CliError


def _pair(text: str, kind=float) -> tuple:
    try:
        a, b = (kind(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two numbers like 1920,1080, got {text!r}"
        ) from None
    return a, b


def _mains(text: str) -> int:
    """50 or 60 (Hz): the only mains frequencies there are."""
    if text.strip() not in ("50", "60"):
        raise argparse.ArgumentTypeError(f"expected 50 or 60 (Hz), got {text!r}")
    return int(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export recordings to a standard format (BIDS)",
        description="Export XDF recordings. 'export bids' writes a BIDS 1.11 dataset: eye "
        "tracking per eye, skin conductance, heart signals, facial action units and continuous "
        "ratings as physio files, EEG as BrainVision (with pybv), one events row per trial with "
        "the rating and the model's prediction, and the pictures shown.",
    )
    fmt = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    b = fmt.add_parser("bids", help="a BIDS 1.11 dataset", description=__doc__)
    b.add_argument("files", nargs="+", type=Path, metavar="FILE.xdf", help="the recordings")
    b.add_argument("--out", type=Path, required=True, help="dataset folder (created or added to)")
    b.add_argument("--task", required=True, help="BIDS task label (letters and digits)")
    b.add_argument(
        "--participants",
        type=Path,
        default=None,
        metavar="MAP.csv",
        help="CSV with columns file,participant[,session]: ids for recordings (default: the "
        "participant in each file's header)",
    )
    b.add_argument(
        "--sessions",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="one session label per FILE, in order (when a participant has several recordings)",
    )
    b.add_argument("--name", default=None, help="dataset name in dataset_description.json")
    b.add_argument("--screen-resolution", type=lambda t: _pair(t, int), default=None,
                   metavar="W,H", help="stimulus screen in pixels")  # fmt: skip
    b.add_argument("--screen-size", type=_pair, default=None, metavar="W,H",
                   help="stimulus screen's width and height in metres")  # fmt: skip
    b.add_argument("--screen-distance", type=float, default=None, metavar="M",
                   help="eye-to-screen distance in metres")  # fmt: skip
    b.add_argument("--power-line-frequency", type=_mains, default=None, metavar="HZ",
                   help="mains frequency where the EEG was recorded, 50 or 60 (eeg.json)")  # fmt: skip
    b.add_argument("--eeg-reference", default=None, metavar="TEXT",
                   help="EEG reference, e.g. Cz or 'linked mastoids' (eeg.json)")  # fmt: skip
    b.add_argument("--checkpoint", type=Path, default=None, help="model (default: bundled)")
    b.add_argument("--no-model", action="store_true", help="no predictions in the events")
    b.add_argument("--validate", action="store_true", help="run the official BIDS validator after")
    b.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    add_config_arg(b)
    add_dejitter_arg(b)
    b.set_defaults(func=run)


def options_of(args: argparse.Namespace):
    """The :class:`~emoeye.bids.ExportOptions` of parsed arguments."""
    from emoeye.bids import ExportOptions, Screen

    return ExportOptions(
        task=args.task,
        config=load_acq_config(args.config),
        checkpoint=args.checkpoint,
        use_model=not args.no_model,
        screen=Screen(args.screen_resolution, args.screen_size, args.screen_distance),
        dejitter=args.dejitter,
        power_line_hz=args.power_line_frequency,
        eeg_reference=args.eeg_reference,
    )


def plan(args: argparse.Namespace) -> list[tuple[Path, str | None, str | None]]:
    """(file, participant, session) per recording; refuses bad labels before anything is
    written."""
    from emoeye.bids import check_label, lookup_map, read_participants_map

    check_label("task", args.task)
    if args.sessions is not None and len(args.sessions) != len(args.files):
        raise CliError(
            f"--sessions gives {len(args.sessions)} label(s) for {len(args.files)} file(s)"
        )
    mapping = read_participants_map(args.participants) if args.participants else {}
    out = []
    for i, path in enumerate(args.files):
        entry = lookup_map(mapping, path) if mapping else None
        participant, session = entry if entry else (None, None)
        if args.sessions is not None:
            session = args.sessions[i]
        if participant:
            check_label("participant", participant)
        if session:
            check_label("session", session)
        out.append((path, participant, session))
    return out


def run(args: argparse.Namespace) -> int:
    from emoeye.bids import BidsError, export_recording, finalize_dataset, validate

    quiet_reader_log(args)
    try:
        jobs = plan(args)
        options = options_of(args)
        summaries = []
        seen: dict[tuple, Path] = {}
        for path, participant, session in jobs:
            for s in export_recording(path, args.out, options, participant, session, force=False):
                key = (s["participant"], s["session"])
                if key in seen:
                    raise BidsError(
                        f"{path} and {seen[key]} are both sub-{s['participant']}"
                        + (f" ses-{s['session']}" if s["session"] else "")
                        + ": give each a session (--sessions or a session column in the map)"
                    )
                seen[key] = path
                summaries.append(s)
                if not args.json:
                    report_recording(s)
        finalize_dataset(args.out, args.name)
    except BidsError as exc:
        raise CliError(str(exc)) from None
    result = {
        "out": str(args.out),
        "recordings": summaries,
        "seconds": round(sum(s["seconds"] for s in summaries), 3),
    }
    code = 0
    if args.validate:
        try:
            report = validate(args.out)
        except BidsError as exc:
            raise CliError(str(exc)) from None
        result["validation"] = {k: len(report[k]) for k in ("errors", "warnings")}
        if not args.json:
            for code_, where, msg in report["errors"]:
                print(f"  BIDS error {code_} {where}: {msg.splitlines()[0] if msg else ''}")
            print(
                f"BIDS validator: {len(report['errors'])} error(s), "
                f"{len(report['warnings'])} warning(s)"
            )
        code = 1 if report["errors"] else 0
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(f"BIDS dataset written to {args.out}: {len(summaries)} recording(s)")
    return code


def report_recording(s: dict) -> None:
    """The lines printed for one exported recording."""
    ses = f" ses-{s['session']}" if s["session"] else ""
    print(
        f"{s['source']} -> sub-{s['participant']}{ses}: {len(s['files'])} file(s), "
        f"{s['trials']} trial(s), {s['predictions']} prediction(s)"
    )
    if s["missing"]:
        print(f"  missing: {', '.join(s['missing'])} (exported what the recording has)")
    for note in s["notes"]:
        if not note.startswith("role "):
            print(f"  {note}")
