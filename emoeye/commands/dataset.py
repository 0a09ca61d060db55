"""``emoeye dataset build``: training data from XDF recordings or from the simulator.

Both paths cut trials with :meth:`acquisition.core.Acquisition.run_offline`, the same code that
cuts them live, and write every *rated* trial with :class:`models.dataset.DatasetWriter`.
Trials without ratings are skipped and counted; trials without usable data for a required role
(``trial.min_coverage``) and onsets whose cut failed are left out too, counted, and recorded
with their reason in ``meta.json`` and ``skipped.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from emoeye.commands.common import (
    add_config_arg,
    add_dejitter_arg,
    data_progress,
    load_acq_config,
    open_recording,
    print_binding,
    quiet_reader_log,
)
from emoeye.commands.simulate import add_stimulus_args
from emoeye.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from acquisition.lsl.presets import DEVICE_SETS

    p = sub.add_parser(
        "dataset",
        help="build a training dataset from XDF recordings or the simulator",
        description="Turn sessions with rating markers into the training dataset format.",
    )
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    b = dsub.add_parser(
        "build",
        help="cut rated trials from XDF files (or a simulated experiment) into a dataset folder",
        description="Cut a trial at every stimulus onset of each recording (same trial code as "
        "live), attach the rating markers that follow and write every rated trial to --out. "
        "Participants come from --participant-map, else the file's metadata, else the file name. "
        "With --simulate, the simulator's experiment is cut instead of files (no XDF needed).",
    )
    b.add_argument("files", nargs="*", type=Path, metavar="FILE.xdf", help="recordings")
    b.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    add_config_arg(b)
    add_dejitter_arg(b)
    b.add_argument(
        "--participant-map",
        default=None,
        metavar="CSV|FILE=P,...",
        help="participant of each file: a CSV with columns file,participant, or "
        "'rec1.xdf=P01,rec2.xdf=P02' (file names or paths)",
    )
    b.add_argument(
        "--simulate", action="store_true", help="build from the simulator instead of files"
    )
    b.add_argument("--participants", type=int, default=4, help="--simulate: participants")
    b.add_argument("--trials", type=int, default=None, help="--simulate: trials per participant")
    b.add_argument("--seed", type=int, default=0, help="--simulate: random seed")
    add_stimulus_args(b, "--simulate: ")
    b.add_argument("--isi", type=float, default=8.0, help="--simulate: onset-to-onset interval, s")
    b.add_argument(
        "--device-set",
        choices=sorted(DEVICE_SETS),
        default="gazepoint",
        help="--simulate: device set (see emoeye simulate; default gazepoint)",
    )
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    b.add_argument(
        "--block-seconds", type=float, default=1.0, help="data seconds fed per step (default 1)"
    )
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run)
    p.set_defaults(func=lambda args: _no_action(p))


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def parse_participant_map(text: str | None) -> dict[str, str]:
    """File → participant from a CSV file (columns ``file,participant``) or ``F=P,...`` text.

    Keys are kept as given and also by file name, so either matches.
    """
    if not text:
        return {}
    out: dict[str, str] = {}
    path = Path(text)
    if path.suffix.lower() == ".csv" or (path.is_file() and "=" not in text):
        if not path.is_file():
            raise CliError(f"--participant-map: {path} does not exist")
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or not {"file", "participant"} <= set(rows[0]):
            raise CliError(f"--participant-map: {path} needs columns 'file' and 'participant'")
        pairs = [(r["file"].strip(), r["participant"].strip()) for r in rows]
    else:
        pairs = []
        for item in text.split(","):
            if "=" not in item:
                raise CliError(
                    f"--participant-map: expected FILE=PARTICIPANT, got {item!r} "
                    "(or give a .csv with columns file,participant)"
                )
            f, p = item.split("=", 1)
            pairs.append((f.strip(), p.strip()))
    for f, p in pairs:
        out[f] = p
        out[Path(f).name] = p
    return out


def _participant_schedule(text: str | None) -> list[tuple[float, str]]:
    """``"P01@0.0;P02@123.0"`` (written by record_simulation) → sorted (start, participant)."""
    out = []
    for item in (text or "").split(";"):
        if "@" in item:
            pid, start = item.rsplit("@", 1)
            try:
                out.append((float(start), pid.strip()))
            except ValueError:
                continue
    return sorted(out)


def _schedule_lookup(schedule: list[tuple[float, str]], default: str) -> Callable[[float], str]:
    import bisect

    starts = [s for s, _ in schedule]

    def lookup(t: float) -> str:
        i = bisect.bisect_right(starts, t) - 1
        return schedule[max(i, 0)][1] if schedule else default

    return lookup


def cut_rated_trials(
    source,
    config,
    add: Callable[[object], None],
    participant_of: Callable[[float], str | None] | None = None,
    block_seconds: float = 1.0,
    progress: Callable[[float], None] | None = None,
    skip: Callable[[object, str], None] | None = None,
) -> dict:
    """Cut every trial of an offline source and hand each *rated* one to ``add``.

    Parameters
    ----------
    source
        An offline source (``.streams``, ``.iter_blocks``).
    config
        The :class:`~acquisition.config.AcquisitionConfig`.
    add
        Called with each rated :class:`~acquisition.trials.types.Trial`, once its rating is attached.
    participant_of
        Participant id of a trial from its onset time (overrides ``trial.participant``).
    block_seconds
        Data seconds fed per step.
    progress
        Called with the data seconds done after each block.
    skip
        Called with each trial left out for no usable data (``"no_data"``) and each onset's
        :class:`~acquisition.trials.types.TrialError` (``"failed"``); neither reaches ``add``.

    Returns
    -------
    dict
        ``trials`` cut, ``written``, ``unrated``, ``incomplete``, ``no_data``, ``failed``,
        ``aligner`` stats, ``marker_problems`` (one line, '' when none), ``notes`` and the
        bound roles.

    Raises
    ------
    acquisition.offline_acquisition.UnboundSourceError
        A required role (or markers) has no stream in the source (one line saying why).
    """
    from acquisition.aligner import RatingEvent, TrialEvent
    from acquisition.offline_acquisition import bind_offline, offline_acquisition
    from acquisition.xdf.source import ProgressSource

    binding = bind_offline(source, config)
    acq = offline_acquisition(source, config, "", binding)
    plan = binding.plan
    t0 = getattr(source, "t_start", None)
    if t0 is None:
        t0 = getattr(source, "start_time", 0.0)
    feed = ProgressSource(source, float(t0), progress) if progress is not None else source
    waiting: dict[str, object] = {}  # cut, not yet rated (insertion = onset order)
    unrated = 0
    horizon = acq.aligner.rating_window + 10.0  # a rating later than this cannot attach
    written = 0
    cut = 0
    incomplete = 0
    left_out: Counter[str] = Counter()
    per_participant: Counter[str] = Counter()

    def emit(trial) -> None:
        nonlocal written
        if participant_of is not None:
            pid = participant_of(trial.onset)
            if pid is not None:
                trial.participant = pid
        add(trial)
        written += 1
        per_participant[str(trial.participant)] += 1

    def leave_out(item, kind: str) -> None:
        if participant_of is not None and (pid := participant_of(item.onset)) is not None:
            item.participant = pid
        left_out[kind] += 1
        if skip is not None:
            skip(item, kind)

    for event in acq.run_offline(feed, block_seconds):
        if isinstance(event, TrialEvent):
            if event.error is not None:  # the cut failed: a record, never a training trial
                leave_out(event.error, "failed")
                continue
            cut += 1
            trial = event.trial
            if not trial.quality.complete:
                incomplete += 1
            if not trial.predictable:
                leave_out(trial, "no_data")
                continue
            if trial.ratings is not None:
                emit(trial)
            else:
                waiting[trial.trial_id] = trial
            while waiting:  # give up on trials whose rating can no longer come (bounded memory)
                oldest = next(iter(waiting.values()))
                if trial.onset - oldest.onset <= horizon:
                    break
                del waiting[oldest.trial_id]
                unrated += 1
        elif isinstance(event, RatingEvent):
            trial = waiting.pop(event.trial_id, None)
            if trial is not None:
                emit(trial)
    return {
        "trials": cut,
        "written": written,
        "unrated": unrated + len(waiting),
        "incomplete": incomplete,
        "no_data": left_out["no_data"],
        "failed": left_out["failed"],
        "participants": dict(per_participant),
        "aligner": acq.aligner.stats.to_dict(),
        "marker_problems": acq.aligner.stats.marker_problems(),
        "notes": list(binding.notes),
        "roles": {role: c.spec.name for role, c in plan.roles.items()},
    }


def run(args: argparse.Namespace) -> int:
    quiet_reader_log(args)
    from acquisition.offline_acquisition import UnboundSourceError, bind_offline

    config = load_acq_config(args.config)
    if args.simulate and args.files:
        raise CliError("give either FILE.xdf arguments or --simulate, not both")
    if not args.simulate and not args.files:
        raise CliError("nothing to build from: give FILE.xdf arguments or --simulate")
    try:
        from models.dataset import DatasetWriter
    except ImportError as exc:
        raise CliError(f"the dataset writer (models.dataset) is unavailable: {exc}") from None

    started = time.perf_counter()
    report: dict = {"out": str(args.out), "sources": []}
    if args.simulate:
        sources = [_simulated(args)]
        described: dict | list = {
            "simulator": {
                "device_set": args.device_set,
                "participants": args.participants,
                "trials": args.trials,
                "seed": args.seed,
                "isi": args.isi,
                "stimulus_seed": args.stimulus_seed,
                "n_stimuli": args.stimuli_count if args.stimulus_seed is not None else None,
            }
        }
    else:
        pmap = parse_participant_map(args.participant_map)
        sources = [_recording(path, pmap, args.dejitter) for path in args.files]
        described = {"xdf": [str(p) for p in args.files]}
    try:
        writer = DatasetWriter(args.out, source=described, overwrite=args.overwrite)
    except FileExistsError as exc:
        raise CliError(f"{exc} (--overwrite replaces it)") from None
    totals: Counter[str] = Counter()
    quiet = args.quiet or args.json
    # Closed (meta.json "complete") only when every source went through: a crash or Ctrl-C
    # leaves the shards written so far and a meta.json that says incomplete, or none.
    with data_progress(quiet) as bar:
        for label, make, participant_of in sources:
            try:
                source = make()
            except CliError as exc:
                report["sources"].append({"source": label, "error": str(exc)})
                continue
            duration = float(getattr(source, "duration", 0.0) or 0.0)
            if not quiet:
                print(f"{label}:")
                print_binding(bind_offline(source, config))
            update = None
            if bar is not None:
                task = bar.add_task(label, total=duration or None)

                def update(done: float, task=task) -> None:
                    bar.update(task, completed=done)

            entry: dict = {"source": label, "duration_s": round(duration, 1)}
            try:
                oracle = _oracle_lookup(source)
                norms = getattr(source, "stimulus_norms", None)
                if callable(norms):
                    writer.stimulus_norms.update(norms())
                stats = cut_rated_trials(
                    source,
                    config,
                    lambda trial, oracle=oracle: writer.add(trial, *oracle(trial)),
                    participant_of(source),
                    args.block_seconds,
                    update,
                    skip=writer.skip,
                )
            except UnboundSourceError as exc:
                entry["error"] = str(exc)
                report["sources"].append(entry)
                continue
            entry.update(stats)
            entry["warnings"] = list(getattr(source, "warnings", []))
            report["sources"].append(entry)
            for key in ("trials", "written", "unrated", "incomplete", "no_data", "failed"):
                totals[key] += stats[key]
    if totals["written"]:
        writer.close()  # else no meta.json at all: nothing there claims to be a dataset
    report.update(totals)
    report["wall_s"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(json.dumps(report, default=str))
    else:
        _print_report(report)
    if not totals["written"]:
        # Refused input (no usable recording, no rated trial), not an internal error.
        print("emoeye: no rated trials were written", flush=True)
        return 2
    return 0


def _oracle_lookup(source) -> Callable[[object], tuple[tuple[int, int] | None, dict | None]]:
    """Ground truth of a trial when the source is the simulator: the oracle's classes (0-based)
    and the felt state and picture norms (see models.dataset.TRUTH_FIELDS)."""
    truth = getattr(source, "ground_truth", None)
    if not callable(truth):
        return lambda trial: (None, None)
    keys = ("felt_arousal", "felt_valence", "norm_arousal", "norm_valence")
    by_onset = {
        round(g["onset"], 6): (
            (g["oracle_arousal"] - 1, g["oracle_valence"] - 1),
            {k: g[k] for k in keys if k in g},
        )
        for g in truth()
    }
    return lambda trial: by_onset.get(round(trial.onset, 6), (None, None))


def _simulated(args: argparse.Namespace):
    from emoeye.commands.simulate import make_simulation

    def make():
        return make_simulation(args)

    label = f"simulated {args.device_set} x{args.participants} (seed {args.seed})"
    if args.stimulus_seed is not None:
        label += f", generated pictures (stimulus seed {args.stimulus_seed})"
    return label, make, lambda sim: sim.participant_of


def _recording(path: Path, pmap: dict[str, str], dejitter: bool = False):
    def make():
        return open_recording(path, dejitter=dejitter)

    def participant_of(source) -> Callable[[float], str]:
        mapped = pmap.get(str(path)) or pmap.get(path.name)
        if mapped:
            return lambda t: mapped
        schedule = _participant_schedule(source.file.header_value("participant_schedule"))
        if schedule:
            return _schedule_lookup(schedule, path.stem)
        pid = source.participant or path.stem
        return lambda t: pid

    return str(path), make, participant_of


def _print_report(report: dict) -> None:
    for entry in report["sources"]:
        print(f"{entry['source']}:")
        if "error" in entry:
            print(f"  SKIPPED: {entry['error']}")
            continue
        print(
            f"  {entry['trials']} trial(s) cut, {entry['written']} written, "
            f"{entry['unrated']} without ratings skipped, {entry['incomplete']} incomplete, "
            f"{entry['no_data']} without usable data left out, {entry['failed']} failed cut(s)"
        )
        if entry.get("participants"):
            print(
                "  participants: "
                + ", ".join(f"{p} ({n})" for p, n in sorted(entry["participants"].items()))
            )
        if entry.get("marker_problems"):
            print(f"  {entry['marker_problems']}")
        for note in entry.get("notes", []):
            print(f"  {note}")
        for w in entry.get("warnings", []):
            print(f"  warning: {w}")
    left_out = report.get("no_data", 0) + report.get("failed", 0)
    print(
        f"dataset {report['out']}: {report.get('written', 0)} trial(s) written "
        f"({report.get('unrated', 0)} unrated skipped"
        + (
            f", {report.get('no_data', 0)} without usable data and {report.get('failed', 0)} "
            f"failed left out, see {Path(report['out']) / 'skipped.csv'}"
            if left_out
            else ""
        )
        + f") in {report['wall_s']:.1f} s"
    )
