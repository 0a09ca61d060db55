"""``emoeye batch COMMAND ...``: one command over many recordings (see :mod:`emoeye.batch`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from emoeye.errors import CliError

BATCH_OPTIONS = {
    "--out": 1,
    "--jobs": 1,
    "--scheduler": 1,
    "--manifest": 1,
    "--force": 0,
    "--quiet": 0,
}
"""Options batch itself takes (with their value counts); the rest go to the command."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="run replay, features, export bids or dataset build over many recordings",
        description="Run a single-file command over a directory, a glob or a list file of XDF "
        "recordings, on local processes (--jobs N) or a Dask cluster (--scheduler ADDRESS, or "
        "local:N). Each file's outputs are those of the single-file command. Files that fail "
        "are listed with their reason; the batch goes on. A re-run skips files done before "
        "(unchanged, outputs present) unless --force. Options the batch does not know go to "
        "the command (e.g. --no-model, --task emotion, --config lab.toml).",
        usage="emoeye batch {replay,features,export bids,dataset build} INPUT... --out DIR "
        "[--jobs N | --scheduler ADDRESS|local:N] [--force] [--manifest FILE] [--quiet] "
        "[command options]",
    )
    p.add_argument("command", choices=("replay", "features", "export", "dataset"),
                   help="the command")  # fmt: skip
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _command_actions(command: str, action: str | None) -> dict[str, object]:
    """Option string → argparse action of the batched command's own parser."""
    from emoeye.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    if action:
        sub = sub._subparsers._group_actions[0].choices[action]
    return {s: a for a in sub._actions for s in a.option_strings}


def split_args(command: str, rest: list[str]) -> tuple[list[str], dict, list[str]]:
    """(inputs, batch options, options for the command) from the words after ``batch CMD``."""
    from emoeye.batch import COMMANDS

    rest = list(rest)
    action = None
    if COMMANDS[command]:
        if not rest or rest[0] not in COMMANDS[command]:
            raise CliError(f"batch {command}: expected '{command} {COMMANDS[command][0]}'")
        action = rest.pop(0)
    actions = _command_actions(command, action)
    inputs: list[str] = []
    opts: dict = {}
    extra: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        name, eq, value = word.partition("=")
        if word == "--":
            i += 1
            continue
        if name in BATCH_OPTIONS:
            if BATCH_OPTIONS[name] == 0:
                opts[name] = True
                i += 1
                continue
            if not eq:
                if i + 1 >= len(rest):
                    raise CliError(f"batch: {name} needs a value")
                value = rest[i + 1]
                i += 1
            opts[name] = value
            i += 1
        elif word.startswith("-") and len(word) > 1:
            act = actions.get(name)
            if act is None:
                raise CliError(f"batch {command}: unknown option {name}")
            extra.append(word)
            i += 1
            if eq or act.nargs == 0:
                continue
            n = {None: 1, "?": 1}.get(act.nargs, act.nargs)
            if isinstance(n, int):
                extra += rest[i : i + n]
                i += n
            else:  # nargs + or *: the words up to the next option
                while i < len(rest) and not rest[i].startswith("-"):
                    extra.append(rest[i])
                    i += 1
        else:
            inputs.append(word)
            i += 1
    if "--sessions" in extra:
        raise CliError("batch export bids: give sessions in the --participants map, not --sessions")
    return inputs, opts, extra


def run(args: argparse.Namespace) -> int:
    from emoeye.batch import (
        MANIFEST,
        BatchError,
        expand_inputs,
        load_manifest,
        make_tasks,
        summary_lines,
        write_manifest,
    )

    inputs, opts, extra = split_args(args.command, args.rest)
    if not inputs:
        raise CliError("batch: give the recordings (files, a directory, a glob or a list file)")
    if "--out" not in opts:
        raise CliError("batch: --out DIR is required")
    out = Path(opts["--out"])
    try:
        jobs = int(opts.get("--jobs", 1))
    except ValueError:
        raise CliError(f"--jobs: expected a number, got {opts['--jobs']!r}") from None
    if jobs < 1:
        raise CliError("--jobs must be >= 1")
    scheduler = opts.get("--scheduler")
    try:
        files = expand_inputs(inputs)
        tasks = make_tasks(args.command, files, out, extra)
    except BatchError as exc:
        raise CliError(str(exc)) from None
    default_manifest = (
        out / "sourcedata" / "emoeye" / MANIFEST if args.command == "export" else out / MANIFEST
    )
    manifest = Path(opts.get("--manifest") or default_manifest)
    previous = load_manifest(manifest)
    out.mkdir(parents=True, exist_ok=True)
    quiet = bool(opts.get("--quiet"))
    started = time.perf_counter()
    try:
        outcomes = _run_with_progress(tasks, jobs, scheduler, previous, "--force" in opts, quiet)
    except BatchError as exc:
        raise CliError(str(exc)) from None
    if args.command == "export":  # the dataset files, once, from every sub-* folder
        from emoeye.bids import finalize_dataset

        name = extra[extra.index("--name") + 1] if "--name" in extra else None
        finalize_dataset(out, name)
    wall = round(time.perf_counter() - started, 2)
    write_manifest(
        manifest,
        ["batch", args.command, *args.rest],
        outcomes,
        {"jobs": jobs, "scheduler": scheduler, "wall_s": wall, **_cpu_seconds()},
    )
    for line in summary_lines(outcomes):
        print(line)
    print(f"manifest: {manifest} ({wall:.1f} s)")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds of this process (the batch's coordinator: for ``local:N`` also the Dask
    scheduler and nannies) and of its finished child processes (local workers, LocalCluster
    workers; a remote cluster's workers are not counted)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "coordinator_cpu_s": round(own.ru_utime + own.ru_stime, 2),
        "workers_cpu_s": round(children.ru_utime + children.ru_stime, 2),
    }


def _run_with_progress(tasks, jobs, scheduler, previous, force, quiet):
    from emoeye.batch import run_batch

    if quiet:
        return run_batch(tasks, jobs, scheduler, previous, force)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    seconds = [0.0]
    with Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files, {task.fields[data]:.0f} s of data"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("batch", total=len(tasks), data=0.0)

        def step(outcome) -> None:
            if outcome.status == "ok":
                seconds[0] += outcome.seconds
            bar.update(task, advance=1, data=seconds[0])

        return run_batch(tasks, jobs, scheduler, previous, force, on_outcome=step)
