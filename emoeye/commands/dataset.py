"""``emoeye dataset build``: training data from XDF recordings or from the simulator.

Both paths cut trials with :meth:`acquisition.core.Acquisition.run_offline`, the same code that
cuts them live, and write every *rated* trial with :class:`models.dataset.DatasetWriter`.
Recordings are checked first (:func:`plan_recordings`): each needs its participant from the map
(:mod:`models.sessions`), its behavioural file must match its onsets (:mod:`models.behaviour`) and
norms (:mod:`models.norms`) must cover its pictures; a refusal writes nothing.
Trials without ratings are skipped and counted; trials without usable data for a required role
(``trial.min_coverage``) and onsets whose cut failed are left out too, counted, and recorded
with their reason in ``meta.json`` and ``skipped.csv``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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
        "live), attach its ratings (rating markers in the file and/or a behavioural CSV) and write "
        "every rated trial to --out. Real recordings need a participant map (--participants "
        "map.csv); ids are never guessed from file names. With --simulate, the simulator's "
        "experiment is cut instead of files (no XDF needed).",
    )
    b.add_argument("files", nargs="*", type=Path, metavar="FILE.xdf", help="recordings")
    b.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    add_config_arg(b)
    add_dejitter_arg(b)
    b.add_argument(
        "--participants",
        default=None,
        metavar="MAP.csv|N",
        help="with FILE.xdf: the participant map, a CSV with columns file,participant and "
        "optionally session and behaviour (required for real recordings; a simulator's recording "
        "names its own); with --simulate: the number of participants (default 4)",
    )
    b.add_argument(
        "--participant-map",
        default=None,
        metavar="CSV|FILE=P,...",
        help="the participant map as --participants, or inline 'rec1.xdf=P01,rec2.xdf=P02'",
    )
    b.add_argument(
        "--behaviour",
        "--behavior",
        action="append",
        type=Path,
        default=[],
        metavar="CSV",
        help="behavioural data file (PsychoPy CSV: stimulus, ratings, optional onset and trial "
        "order) of each FILE.xdf, in the same order (repeat per file); or a behaviour column "
        "in the participant map",
    )
    b.add_argument(
        "--behaviour-columns",
        default=None,
        metavar="ROLE=COL,...",
        help="column names of the behavioural file: stimulus, arousal, valence, onset, order "
        "(defaults try PsychoPy-like names, docs/models.md)",
    )
    b.add_argument(
        "--scale",
        nargs=2,
        type=float,
        default=None,
        metavar=("LOW", "HIGH"),
        help="the rating scale of the ratings (e.g. 1 9 for SAM); binned onto the model's 7 "
        "classes in equal-width bins (docs/models.md); a rating outside it is refused "
        "(default: the config's markers.scale, 1 7)",
    )
    b.add_argument(
        "--norms",
        type=Path,
        default=None,
        metavar="CSV",
        help="normative picture ratings (OASIS, IAPS, NAPS or id,valence,arousal; default: the "
        "config's [stimuli] norms)",
    )
    b.add_argument(
        "--norms-scale",
        nargs=2,
        type=float,
        default=None,
        metavar=("LOW", "HIGH"),
        help="the norms' scale when the table does not say it (a plain id,valence,arousal table)",
    )
    b.add_argument(
        "--simulate", action="store_true", help="build from the simulator instead of files"
    )
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
    ratings_of: Callable[[float], object] | None = None,
    id_prefix: str = "",
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
    ratings_of
        Ratings of a trial from its onset time (a behavioural file, see
        :mod:`models.behaviour`), attached when the trial has no in-stream rating yet
        (the two were checked to agree beforehand).
    id_prefix
        Put before every trial id (``"P01-2-"``: unique over a participant's sessions).

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
        trial.trial_id = id_prefix + str(trial.trial_id)
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
        item.trial_id = id_prefix + str(item.trial_id)
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
            if trial.ratings is None and ratings_of is not None:
                trial.ratings = ratings_of(trial.onset)
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
    if args.simulate:
        args.participants = _participant_count(args.participants)
        for flag, value in (
            ("--participant-map", args.participant_map),
            ("--behaviour", args.behaviour),
            ("--norms", args.norms),
            ("--scale", args.scale),
        ):
            if value:
                raise CliError(
                    f"{flag} is for recordings; the simulator knows its participants, ratings "
                    "and pictures"
                )
    elif args.scale is not None:
        from dataclasses import replace

        from acquisition.trials.scale import ScaleError, check_scale

        try:
            scale = check_scale(*args.scale, what="--scale")
        except ScaleError as exc:
            raise CliError(str(exc)) from None
        config.markers = replace(config.markers, scale=scale)  # in-stream ratings alike
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
        plans = plan_recordings(args, config)
        sources = [_recording(plan, args.dejitter) for plan in plans]
        described = {"xdf": [str(p) for p in args.files]}
        if args.behaviour or any(p.behaviour for p in plans):
            described["behaviour"] = [str(p.behaviour) if p.behaviour else None for p in plans]
        described["scale"] = list(config.markers.scale)
        if plans and plans[0].norms is not None:
            described["norms"] = {"file": str(plans[0].norms.path), "format": plans[0].norms.format,
                                  "scale": list(plans[0].norms.scale)}  # fmt: skip
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
                plan = getattr(participant_of, "plan", None)
                if plan is not None and plan.shown_norms:
                    writer.stimulus_norms.update(plan.shown_norms)
                    oracle = _norms_truth(plan.shown_norms)
                stats = cut_rated_trials(
                    source,
                    config,
                    lambda trial, oracle=oracle: writer.add(trial, *oracle(trial)),
                    participant_of(source),
                    args.block_seconds,
                    update,
                    skip=writer.skip,
                    ratings_of=plan.ratings_of if plan is not None else None,
                    id_prefix=plan.id_prefix if plan is not None else "",
                )
                if plan is not None and plan.notes:
                    stats["notes"] = list(stats["notes"]) + plan.notes
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
    and the felt state, picture norms and response amplitudes (see models.dataset.TRUTH_FIELDS)."""
    from models.dataset import TRUTH_FIELDS

    truth = getattr(source, "ground_truth", None)
    if not callable(truth):
        return lambda trial: (None, None)
    keys = TRUTH_FIELDS
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


def _participant_count(value: str | None) -> int:
    if value is None:
        return 4
    try:
        n = int(value)
    except ValueError:
        raise CliError(
            f"--participants: with --simulate, a number of participants, not {value!r}"
        ) from None
    if n < 1:
        raise CliError("--participants must be >= 1")
    return n


@dataclass
class RecordingPlan:
    """What the look-ahead found for one recording before anything is written."""

    path: Path
    participant: str | None = None
    session: str | None = None
    behaviour: Path | None = None
    ratings: dict[float, object] = field(default_factory=dict)
    norms: object = None
    shown_norms: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def id_prefix(self) -> str:
        """Trial ids unique over a person's sessions: ``P01-2-`` (the session, else the file)."""
        if self.participant is None:
            return ""
        return f"{self.participant}-{self.session or self.path.stem}-"

    def ratings_of(self, onset: float):
        return self.ratings.get(round(float(onset), 6))


def plan_recordings(args: argparse.Namespace, config) -> list[RecordingPlan]:
    """Check every recording before a trial is written: its participant (from the map; a
    simulator's recording names its own), its behavioural file matched to its onsets, in-stream
    ratings against the file and the declared scale, and norms for every picture it shows.

    Raises
    ------
    CliError
        One line naming the recording, row or trial at fault.
    """
    from acquisition.onsets import recording_onsets
    from models.behaviour import (
        BehaviourError,
        merge_ratings,
        parse_columns,
        read_behaviour,
    )
    from models.norms import read_norms
    from models.sessions import read_session_map

    given = [t for t in (args.participants, args.participant_map) if t]
    if args.participants and args.participants.strip().isdigit():
        raise CliError(
            f"--participants {args.participants}: with FILE.xdf it is the participant map "
            "(a CSV with columns file,participant[,session]), not a count"
        )
    if len(given) > 1:
        raise CliError("give the participant map once: --participants or --participant-map")
    strict = args.scale is not None
    scale = tuple(config.markers.scale)
    try:
        smap = read_session_map(given[0]) if given else None
        columns = parse_columns(args.behaviour_columns)
        norms_path = args.norms or config.stimulus_norms
        norms_scale = tuple(args.norms_scale) if args.norms_scale else config.norms_scale
        norms = read_norms(norms_path, norms_scale) if norms_path else None
    except BehaviourError as exc:
        raise CliError(str(exc)) from None
    if args.behaviour and len(args.behaviour) != len(args.files):
        raise CliError(
            f"--behaviour: {len(args.behaviour)} file(s) for {len(args.files)} recording(s); give "
            "one per FILE.xdf, in the same order (or a behaviour column in the participant map)"
        )
    plans = []
    for i, path in enumerate(args.files):
        entry = smap.lookup(path) if smap is not None else None
        plan = RecordingPlan(path, norms=norms)
        if entry is not None:
            plan.participant, plan.session = entry.participant, entry.session
            plan.behaviour = entry.behaviour
        if args.behaviour:
            if plan.behaviour is not None:
                raise CliError(
                    f"{path}: a behavioural file from both --behaviour and the participant map"
                )
            plan.behaviour = args.behaviour[i]
        plans.append(plan)
        needs_look = entry is None or plan.behaviour is not None or strict or norms is not None
        if not needs_look:
            continue
        try:
            source = open_recording(path, dejitter=args.dejitter)
        except CliError:
            continue  # the build reports the unreadable file in its own line
        if entry is None and not source.file.header_value("participant_schedule"):
            raise CliError(str(_map_refusal(smap, path)))  # a simulator's file names its own
        try:
            onsets = recording_onsets(source, config)
            if onsets is None:
                continue  # no marker stream: the build says so in its own line
            behaviour = read_behaviour(plan.behaviour, columns, scale) if plan.behaviour else None
            merged = merge_ratings(onsets, behaviour, str(path), scale, strict)
            if norms is not None:
                plan.shown_norms = norms.for_stimuli((o.stimulus for o in onsets), str(path))
                plan.notes.append(
                    f"norms: {len(plan.shown_norms)} shown picture(s) from {norms.path} "
                    f"({norms.format}, scale {norms.scale[0]:g}..{norms.scale[1]:g}); "
                    f"{len(norms.values) - len(plan.shown_norms)} of its {len(norms.values)} "
                    "id(s) not shown in this recording"
                )
        except BehaviourError as exc:
            raise CliError(str(exc)) from None
        plan.ratings = {
            round(o.onset, 6): r for o, r in zip(onsets, merged.ratings, strict=True) if r
        }
        if behaviour is not None:
            plan.notes.append(
                f"ratings: {merged.from_file} trial(s) from {behaviour.path}, "
                f"{merged.from_markers} from rating markers only ({merged.agreeing} in both, "
                f"agreeing); {behaviour.unrated} row(s) without both ratings; "
                f"{behaviour.non_trial_rows} row(s) without a stimulus are no trials"
            )
        del source
    return plans


def _map_refusal(smap, path: Path) -> Exception:
    from models.sessions import SessionMap, SessionMapError

    if smap is None:
        return SessionMapError(
            f"{path} needs a participant map (--participants map.csv with columns "
            "file,participant[,session]); participant ids of real recordings are never "
            "guessed from file names"
        )
    assert isinstance(smap, SessionMap)
    try:
        smap.require(path)
    except SessionMapError as exc:
        return exc
    return SessionMapError(f"{path} is not in the participant map")


def _norms_truth(shown: dict[str, tuple[float, float]]):
    """Per-trial ``norm_arousal``/``norm_valence`` (model axis) for recordings with norms."""

    def truth(trial) -> tuple[None, dict | None]:
        pair = shown.get(str(trial.stimulus_id))
        if pair is None:
            return None, None
        return None, {"norm_arousal": pair[0], "norm_valence": pair[1]}

    return truth


def _recording(plan: RecordingPlan, dejitter: bool = False):
    path = plan.path

    def make():
        return open_recording(path, dejitter=dejitter)

    def participant_of(source) -> Callable[[float], str]:
        if plan.participant is not None:
            return lambda t: plan.participant
        # Only a simulator's recording gets here (checked by plan_recordings): its schedule.
        schedule = _participant_schedule(source.file.header_value("participant_schedule"))
        if schedule:
            return _schedule_lookup(schedule, path.stem)
        raise CliError(str(_map_refusal(None, path)))

    participant_of.plan = plan  # type: ignore[attr-defined]
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
