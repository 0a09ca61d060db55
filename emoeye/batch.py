"""Running a single-file command over many recordings: local processes or a Dask cluster.

Each file is one task: the ordinary command line (``emoeye replay FILE --fast ...``,
``emoeye export bids FILE ...``, ``emoeye dataset build FILE ...``) run by :func:`run_one` inside
a worker process, so a batch writes exactly what the single-file commands write. A task never
raises: a damaged file becomes a ``failed`` row with its reason, and the batch goes on.

Executors: ``jobs == 1`` runs in this process; ``jobs > 1`` a :class:`ProcessPoolExecutor`
(spawned workers: no forked LSL or torch threads); ``scheduler="local:N"`` a Dask
``LocalCluster`` of N single-threaded worker processes; any other ``scheduler`` is the address of
an existing Dask scheduler (``tcp://host:8786``), whose workers must see the same paths.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import io
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from emoeye.environ import environ

COMMANDS = {"replay": (), "export": ("bids",), "dataset": ("build",), "features": ()}
"""Batchable commands and the action word each needs."""

MANIFEST = "batch-manifest.json"


class BatchError(ValueError):
    """A refused batch (no inputs, unknown command, an input that cannot be read)."""


@dataclass
class Task:
    """One file of a batch: the command line to run and where its outputs go."""

    file: str
    argv: list[str]
    outputs: list[str] = field(default_factory=list)
    """Output paths known before running (replay's table, a dataset folder)."""


@dataclass
class Outcome:
    """What became of one file."""

    file: str
    status: str  # ok, failed, skipped
    reason: str = ""
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    wall_s: float = 0.0
    pid: int = 0
    max_rss_mb: float = 0.0
    size: int = 0
    mtime_ns: int = 0
    warnings: list[str] = field(default_factory=list)
    """What was wrong with a file that still went through (cut off, clock resets)."""
    started: float = 0.0
    """Unix time the task began in its worker (0 when it did not run)."""


# ---------------------------------------------------------------- inputs


def expand_inputs(items: Iterable[str]) -> list[Path]:
    """Recordings named by the inputs: an ``.xdf`` file, a directory (every ``*.xdf`` below it),
    a glob pattern, or a list file (one path a line, ``#`` comments; relative to the list).

    Returns sorted, de-duplicated paths. Raises :class:`BatchError` for an input that names
    nothing.
    """
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            hits = sorted(q for q in p.rglob("*") if q.suffix.lower() in (".xdf", ".xdfz"))
        elif p.is_file() and p.suffix.lower() in (".xdf", ".xdfz"):
            hits = [p]
        elif p.is_file():  # a list file
            hits = []
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    q = Path(line)
                    hits.append(q if q.is_absolute() else p.parent / q)
        elif any(c in item for c in "*?["):
            hits = sorted(Path(h) for h in glob.glob(item, recursive=True))
        else:
            raise BatchError(f"{item}: no such file, directory or glob match")
        if not hits:
            raise BatchError(f"{item}: names no recordings")
        found += hits
    return sorted(dict.fromkeys(found), key=str)


def output_names(files: list[Path]) -> dict[Path, str]:
    """A distinct output name per file: its stem, or for stems that repeat, the path's parts
    below the common folder joined by ``_``."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    common = Path(os.path.commonpath([str(f.resolve().parent) for f in files])) if files else None
    out = {}
    for f in files:
        if stems[f.stem] == 1:
            out[f] = f.stem
        else:
            rel = f.resolve().with_suffix("").relative_to(common)
            out[f] = "_".join(rel.parts)
    return out


def make_tasks(command: str, files: list[Path], out: Path, extra: list[str]) -> list[Task]:
    """The single-file command line of every file.

    - ``replay``: ``replay FILE --fast --quiet --json --out OUT/<name>.csv EXTRA``;
    - ``export bids``: ``export bids FILE --out OUT --json EXTRA`` (one dataset);
    - ``dataset build``: ``dataset build FILE --out OUT/<name> --json --quiet --overwrite EXTRA``;
    - ``features``: ``features FILE --out OUT/<name>.csv --json EXTRA``.
    """
    # Absolute paths: a Dask worker on another machine runs in another folder.
    files = [f.absolute() for f in files]
    out = Path(out).absolute()
    names = output_names(files)
    tasks = []
    for f in files:
        if command == "replay":
            table = out / f"{names[f]}.csv"
            argv = ["replay", str(f), "--fast", "--quiet", "--json", "--out", str(table), *extra]
            tasks.append(Task(str(f), argv, [str(table)]))
        elif command == "export":
            argv = ["export", "bids", str(f), "--out", str(out), "--json", *extra]
            tasks.append(Task(str(f), argv))
        elif command == "dataset":
            folder = out / names[f]
            argv = ["dataset", "build", str(f), "--out", str(folder), "--json", "--quiet",
                    "--overwrite", *extra]  # fmt: skip
            tasks.append(Task(str(f), argv, [str(folder)]))
        elif command == "features":
            table = out / f"{names[f]}.csv"
            argv = ["features", str(f), "--out", str(table), "--json", *extra]
            tasks.append(Task(str(f), argv, [str(table)]))
        else:
            raise BatchError(f"unknown batch command {command!r}; known: {', '.join(COMMANDS)}")
    return tasks


# ---------------------------------------------------------------- one task (in a worker)


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


def run_one(task: Task) -> Outcome:
    """Run one file's command line in this process; never raises.

    Returns
    -------
    Outcome
        ``ok`` with the outputs and seconds of data, or ``failed`` with one line of reason (the
        command's error line, or the exception).
    """
    from emoeye.cli import main

    started = time.perf_counter()
    started_at = time.time()
    out, err = io.StringIO(), io.StringIO()
    try:
        st = os.stat(task.file)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime = 0, 0
    outcome = Outcome(
        task.file, "failed", size=size, mtime_ns=mtime, pid=os.getpid(), started=started_at
    )
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(task.argv))
    except SystemExit as exc:  # argparse refusing an option
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:  # an internal error in one file must not end the batch
        code = None
        outcome.reason = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    report = _last_json(out.getvalue())
    errors = [s.get("error") for s in report.get("sources", []) if s.get("error")]
    if code == 0 and not errors:
        outcome.status = "ok"
        outcome.outputs = list(task.outputs) or _outputs_of(report)
    elif not outcome.reason:
        lines = [ln for ln in err.getvalue().strip().splitlines() if ln.strip()]
        text = errors[0] if errors else (lines[-1] if lines else f"exit code {code}")
        outcome.reason = text.removeprefix("emoeye: error: ")
    outcome.warnings = [str(w) for w in report.get("warnings", [])]
    outcome.warnings += [str(n) for r in report.get("recordings", []) for n in r.get("notes", [])]
    outcome.seconds = float(
        report.get("seconds") or sum(s.get("duration_s", 0.0) for s in report.get("sources", []))
    )
    outcome.wall_s = round(time.perf_counter() - started, 3)
    outcome.max_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return outcome


def _outputs_of(report: dict) -> list[str]:
    out = report.get("out")
    files = [f for r in report.get("recordings", []) for f in r.get("files", [])]
    return [str(Path(out) / f) for f in files] if out else []


# ---------------------------------------------------------------- re-runs


def load_manifest(path: Path) -> dict[str, dict]:
    """File → its row in a previous run's manifest (empty when there is none)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return {row["file"]: row for row in data.get("files", []) if "file" in row}


def already_done(task: Task, previous: dict[str, dict]) -> Outcome | None:
    """The previous outcome when the file is unchanged and every output it wrote is there."""
    row = previous.get(task.file)
    if not row or row.get("status") not in ("ok", "skipped") or not row.get("outputs"):
        return None
    try:
        st = os.stat(task.file)
    except OSError:
        return None
    if (st.st_size, st.st_mtime_ns) != (row.get("size"), row.get("mtime_ns")):
        return None
    if not all(Path(p).exists() for p in row["outputs"]):
        return None
    known = {k: row[k] for k in Outcome.__dataclass_fields__ if k in row}
    return Outcome(**{**known, "status": "skipped", "wall_s": 0.0})


# ---------------------------------------------------------------- executors


WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
"""Thread pools of one in every worker process, on local processes and on a ``LocalCluster``
alike (Dask's nanny sets the same): N workers on N cores, no oversubscription."""

LOCAL_CLUSTER_CONFIG = {
    # The statistical profiler samples every thread's stack each 10 ms with the GIL held; a
    # task here is one long Python call, so it only slows it down (measured with the defaults:
    # 0.09-0.74 s of CPU on the worker's event-loop thread per 1-s replay task, more under load).
    "distributed.worker.profile.enabled": False,
    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 also freezes glibc's mmap threshold at
    # 128 KiB: every larger numpy temporary is then a fresh mmap, about 20 times the page
    # faults of a plain process (30,000 vs 1,500 per 10-min replay).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # Coarser housekeeping: the defaults (20 ms tick, 100 ms memory monitor, 500 ms system
    # monitor) suit many short tasks, not one task per file taking seconds.
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    # The scheduler hands a task to a worker only when it has a free thread (queuing), so
    # there is nothing to steal; stealing's periodic pass only costs the coordinator CPU.
    "distributed.scheduler.work-stealing": False,
}
"""Dask settings for ``--scheduler local:N``; a lab's own cluster keeps its configuration
(docs/batch.md suggests the same settings for its workers)."""


def worker_start_method() -> str:
    """How ``--scheduler local:N`` starts its worker processes: ``fork`` on Linux when this
    process has not loaded torch or liblsl, else Dask's default, ``spawn``.

    A forked worker starts with ``distributed`` already imported: the cluster is up about 0.5 s
    sooner than with fresh interpreters that import it again (0.45 s each), on every batch. The
    batch command's own process holds only the scheduler's event loop when it forks (its thread
    is the one that forks). A process that has run torch (its OpenMP pool) or pylsl (liblsl's
    threads) is not forked: its children could inherit locks held by threads they do not have.
    macOS is never forked (its system libraries are not fork-safe), and neither is Python 3.12
    or later, which deprecates forking a process that runs threads (the event loop's)."""
    if sys.platform != "linux" or sys.version_info >= (3, 12):
        return "spawn"
    if "torch" in sys.modules or "pylsl" in sys.modules:
        return "spawn"
    return "fork"


def _exit_now() -> None:
    """End this worker process at once: flush its standard streams and ``os._exit(0)``.

    A worker has nothing left to save once its last result is handed back (each task closes its
    outputs), but a normal interpreter exit tears down every module it imported: 0.4 s with
    neurokit2, over a second with torch as well, paid at the end of every batch."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _exit_now_at_exit() -> None:
    """Pool-worker initializer: when this worker exits normally (the pool's shutdown), it ends
    with :func:`_exit_now`. A worker that crashes or is killed never reaches ``atexit``."""
    atexit.register(_exit_now)


def _fast_exit_plugin():  # -> distributed.WorkerPlugin
    """A worker plugin for our own ``LocalCluster``: once the worker has closed (its plugins are
    torn down as it closes), its process ends with :func:`_exit_now`."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class FastExit(WorkerPlugin):
        name = "emoeye-fast-exit"

        def teardown(self, worker) -> None:  # noqa: ANN001 - distributed.Worker
            _exit_now_at_exit()

    return FastExit()


def _largest_first(tasks: list[Task]) -> list[Task]:
    """Biggest inputs first, so that the last task to start is a short one and no worker waits
    long for another at the end (the results are put back in input order)."""

    def size(t: Task) -> int:
        try:
            return os.stat(t.file).st_size
        except OSError:
            return 0

    return sorted(tasks, key=size, reverse=True)


def _run_local(tasks: list[Task], jobs: int) -> Iterator[Outcome]:
    if jobs <= 1:
        for t in tasks:
            yield run_one(t)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_exit_now_at_exit
    ) as pool:
        # The workers are spawned on the first submit and inherit the environment then.
        with environ(WORKER_ENV):
            futures = {pool.submit(run_one, t): t for t in _largest_first(tasks)}
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # a worker that died (killed, out of memory)
                t = futures[fut]
                yield Outcome(t.file, "failed", f"worker died: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _dask_logs_follow_root() -> Iterator[None]:
    """distributed's loggers at this process's level (WARNING; INFO with ``-v``) while a batch
    runs, as they were after. distributed sets them to INFO when imported, so every batch
    printed 30-70 lines about starting and stopping its scheduler, nannies and workers (the
    forked workers inherit the level too)."""
    log = logging.getLogger("distributed")
    saved = log.level
    log.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        log.setLevel(saved)


def _run_dask(tasks: list[Task], scheduler: str) -> Iterator[Outcome]:
    try:
        import dask.config
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BatchError(
            "--scheduler needs Dask distributed: pip install 'emoeye[batch]' (dask[distributed])"
        ) from None
    with _dask_logs_follow_root():
        cluster = None
        if scheduler.startswith("local:"):
            try:
                n = int(scheduler.split(":", 1)[1])
            except ValueError:
                raise BatchError(f"--scheduler {scheduler}: expected local:N") from None
            # The nanny writes its pre-spawn variables into this process's environment before it
            # spawns a worker; environ() puts ours back afterwards.
            ours = {
                k: os.environ.get(k)
                for k in (*WORKER_ENV, "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")
            }
            config = {
                **LOCAL_CLUSTER_CONFIG,
                "distributed.worker.multiprocessing-method": worker_start_method(),
            }
            with dask.config.set(config), environ(ours):
                # dashboard_address None meant port 8787: a second batch on the machine (or a
                # lab's own cluster there) got "Port 8787 is already in use" on stderr. ":0" is
                # any free port, and the scheduler's HTTP server is not what a batch is for.
                cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
                client = Client(cluster)
            client.register_plugin(_fast_exit_plugin())
        else:
            try:
                client = Client(scheduler, timeout="20s")
            except OSError as exc:
                raise BatchError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            ordered = _largest_first(tasks)
            # Keys of impure tasks are random, so the order they run in is set by priority.
            futures = [
                client.submit(run_one, t, pure=False, priority=len(ordered) - i)
                for i, t in enumerate(ordered)
            ]
            by_key = {f.key: t for f, t in zip(futures, ordered, strict=True)}
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except Exception as exc:
                    t = by_key[fut.key]
                    yield Outcome(t.file, "failed", f"worker failed: {type(exc).__name__}: {exc}")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def run_batch(
    tasks: list[Task],
    jobs: int = 1,
    scheduler: str | None = None,
    previous: dict[str, dict] | None = None,
    force: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every task (skipping those done before unless ``force``); outcomes in input order."""
    outcomes: dict[str, Outcome] = {}
    todo = []
    for t in tasks:
        done = None if force else already_done(t, previous or {})
        if done is not None:
            outcomes[t.file] = done
            if on_outcome is not None:
                on_outcome(done)
        else:
            todo.append(t)
    if todo:
        stream = _run_dask(todo, scheduler) if scheduler else _run_local(todo, jobs)
        for o in stream:
            outcomes[o.file] = o
            if on_outcome is not None:
                on_outcome(o)
    return [outcomes[t.file] for t in tasks]


def write_manifest(path: Path, command: list[str], outcomes: list[Outcome], extra: dict) -> None:
    """The batch's JSON manifest: every file's status, reason, outputs, seconds, worker."""
    from emoeye.commands.common import atomic_write

    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "skipped", "failed")}
    data = {"command": command, **extra, "counts": counts, "files": [asdict(o) for o in outcomes]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(path)) as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def summary_lines(outcomes: list[Outcome]) -> list[str]:
    """The summary table: one line per failed file, then the counts."""
    failed = [o for o in outcomes if o.status == "failed"]
    lines = []
    if failed:
        width = max(len(Path(o.file).name) for o in failed)
        lines.append(f"{'failed file':{width}s}  reason")
        lines += [f"{Path(o.file).name:{width}s}  {o.reason}" for o in failed]
    warned = [o for o in outcomes if o.status == "ok" and o.warnings]
    if warned:
        lines.append("done, with problems (see the manifest):")
        lines += [f"  {Path(o.file).name}: {o.warnings[0]}" for o in warned]
    ok = sum(o.status == "ok" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    seconds = sum(o.seconds for o in outcomes if o.status == "ok")
    lines.append(
        f"{len(outcomes)} file(s): {ok} done, {skipped} skipped (done before), "
        f"{len(failed)} failed; {seconds:.0f} s of data processed"
    )
    return lines


__all__ = [
    "BatchError",
    "Outcome",
    "Task",
    "expand_inputs",
    "make_tasks",
    "run_batch",
    "run_one",
    "summary_lines",
    "write_manifest",
]
