"""``emoeye batch``: many recordings on local processes and a Dask LocalCluster, outputs
byte-identical to the single-file commands, damaged files listed and never fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.xdf.writer import record_simulation
from emoeye.batch import (
    LOCAL_CLUSTER_CONFIG,
    WORKER_ENV,
    BatchError,
    Task,
    _largest_first,
    expand_inputs,
    output_names,
)
from emoeye.cli import main
from emoeye.commands.batch import split_args
from emoeye.environ import environ


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Two short simulated recordings, one damaged past reading, one cut off after its
    headers (goes through with no trials and a warning), one that is not XDF."""
    d = tmp_path_factory.mktemp("archive")
    for k, device_set in enumerate(("gazepoint", "lab")):
        sim = Simulation(SimulationConfig(n_trials=3, isi=7.0, lead_in=1.5, seed=k,
                                          participants=1, device_set=device_set,
                                          source_tag=f"b{k}"))  # fmt: skip
        record_simulation(sim, d / f"rec{k}.xdf", progress=False)
    (d / "damaged.xdf").write_bytes(b"XDF:" + bytes(range(256)) * 4)
    (d / "cut.xdf").write_bytes((d / "rec0.xdf").read_bytes()[:2000])
    (d / "notxdf.xdf").write_text("this is not a recording\n")
    return d


def _files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(s in str(p) for s in skip)
    }


def _manifest(path: Path) -> dict[str, dict]:
    return {Path(r["file"]).name: r for r in json.loads(path.read_text())["files"]}


@pytest.mark.timeout(600)
def test_replay_on_processes_and_dask_matches_single_file_commands(archive, tmp_path, capsys):
    pytest.importorskip("distributed")
    single = tmp_path / "single"
    for name in ("rec0", "rec1"):
        assert main(["replay", str(archive / f"{name}.xdf"), "--fast", "--quiet",
                     "--out", str(single / f"{name}.csv")]) == 0  # fmt: skip
    outputs = {}
    env_keys = [*WORKER_ENV, "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED"]
    env_before = {k: os.environ.get(k) for k in env_keys}
    for how in (["--jobs", "2"], ["--scheduler", "local:2"]):
        out = tmp_path / how[1].replace(":", "")
        code = main(["batch", "replay", str(archive), "--out", str(out), "--quiet", *how])
        # the workers' variables (and Dask's nanny's) stay out of this process
        assert {k: os.environ.get(k) for k in env_keys} == env_before
        text = capsys.readouterr().out
        assert code == 1  # some files failed; the batch still finished the others
        assert "5 file(s): 3 done, 0 skipped (done before), 2 failed" in text
        assert "notxdf.xdf" in text and "not an XDF file" in text
        rows = _manifest(out / "batch-manifest.json")
        assert rows["notxdf.xdf"]["status"] == "failed"
        assert "not an XDF file" in rows["notxdf.xdf"]["reason"]
        assert rows["damaged.xdf"]["status"] == "failed" and rows["damaged.xdf"]["reason"]
        assert rows["rec0.xdf"]["status"] == "ok" and rows["rec0.xdf"]["seconds"] > 20
        assert rows["cut.xdf"]["status"] == "ok" and rows["cut.xdf"]["warnings"]
        assert "cut.xdf" in text
        data = json.loads((out / "batch-manifest.json").read_text())
        assert data["workers_cpu_s"] > 0 and data["coordinator_cpu_s"] > 0
        assert rows["rec0.xdf"]["started"] > 0 and rows["rec0.xdf"]["pid"] != os.getpid()
        outputs[how[0]] = _files(out, skip=("batch-manifest", "cut.csv"))
    assert outputs["--jobs"] == outputs["--scheduler"] == _files(single)


@pytest.mark.timeout(300)
def test_rerun_skips_done_files_and_force_redoes_them(archive, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", "replay", str(archive / "rec0.xdf"), str(archive / "notxdf.xdf"),
            "--out", str(out), "--quiet", "--no-model"]  # fmt: skip
    assert main(argv) == 1
    first = (out / "rec0.csv").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 1
    assert "1 skipped (done before), 1 failed" in capsys.readouterr().out
    assert (out / "rec0.csv").stat().st_mtime_ns == first
    assert _manifest(out / "batch-manifest.json")["rec0.xdf"]["status"] == "skipped"
    assert main([*argv, "--force"]) == 1
    assert "1 done, 0 skipped" in capsys.readouterr().out
    assert (out / "rec0.csv").stat().st_mtime_ns != first


@pytest.mark.timeout(300)
def test_batch_export_bids_matches_one_export_command(archive, tmp_path, capsys):
    files = [str(archive / "rec0.xdf"), str(archive / "rec1.xdf")]
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,participant\nrec0.xdf,A1\nrec1.xdf,B2\n")
    common = ["--task", "emotion", "--no-model", "--participants", str(mapping)]
    one = tmp_path / "one"
    assert main(["export", "bids", *files, "--out", str(one), *common]) == 0
    many = tmp_path / "many"
    assert main(["batch", "export", "bids", *files, "--out", str(many), "--jobs", "2",
                 "--quiet", *common]) == 0  # fmt: skip
    assert _files(many, skip=("sourcedata",)) == _files(one, skip=("sourcedata",))
    assert (many / "sourcedata" / "emoeye" / "batch-manifest.json").is_file()
    assert "sub-A1" in (many / "participants.tsv").read_text()


def test_inputs_from_directory_glob_and_list_file(archive, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two recordings\n{archive / 'rec0.xdf'}\n{archive / 'rec1.xdf'}\n")
    assert [p.name for p in expand_inputs([str(listing)])] == ["rec0.xdf", "rec1.xdf"]
    assert len(expand_inputs([str(archive)])) == 5
    assert [p.name for p in expand_inputs([str(archive / "rec*.xdf")])] == ["rec0.xdf", "rec1.xdf"]
    with pytest.raises(BatchError, match="nothing-here"):
        expand_inputs([str(tmp_path / "nothing-here")])
    same = [tmp_path / "a" / "s.xdf", tmp_path / "b" / "s.xdf", tmp_path / "c.xdf"]
    assert sorted(output_names(same).values()) == ["a_s", "b_s", "c"]


def test_command_options_pass_through():
    inputs, opts, extra = split_args(
        "export", ["bids", "d/", "--task", "emo", "--jobs", "3", "--no-model", "--out=x"]
    )
    assert inputs == ["d/"] and opts == {"--jobs": "3", "--out": "x"}
    assert extra == ["--task", "emo", "--no-model"]
    with pytest.raises(Exception, match="unknown option --bogus"):
        split_args("replay", ["d/", "--bogus"])


def test_local_cluster_settings_are_known_dask_keys():
    """A misspelt key would be a silent no-op: every one must exist in Dask's defaults."""
    dask_config = pytest.importorskip("dask.config")
    pytest.importorskip("distributed")
    for key, value in LOCAL_CLUSTER_CONFIG.items():
        default = dask_config.get(key, default=KeyError)
        assert default is not KeyError, key
        assert default != value, f"{key}: already Dask's default"
    with dask_config.set(LOCAL_CLUSTER_CONFIG):
        assert dask_config.get("distributed.worker.profile.enabled") is False
        assert (
            dask_config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"] is None
        )


def test_largest_files_go_first_and_environ_is_restored(tmp_path, monkeypatch):
    for name, size in (("small", 10), ("big", 1000), ("mid", 100)):
        (tmp_path / f"{name}.xdf").write_bytes(b"x" * size)
    tasks = [Task(str(tmp_path / f"{n}.xdf"), []) for n in ("small", "big", "mid", "gone")]
    assert [Path(t.file).stem for t in _largest_first(tasks)] == ["big", "mid", "small", "gone"]
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with environ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": None}):
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
        assert "OPENBLAS_NUM_THREADS" not in os.environ
    assert os.environ["OMP_NUM_THREADS"] == "4" and "MKL_NUM_THREADS" not in os.environ


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["pool", "dask"])
def test_workers_end_without_interpreter_teardown_and_keep_their_output(how):
    """A worker that exits normally ends with os._exit(0) (Python's teardown of torch and
    neurokit2 took 0.4-1.3 s at the end of each batch), after flushing what it printed."""
    if how == "dask":
        pytest.importorskip("distributed")
    arm = (
        "b._exit_now_at_exit()" if how == "pool" else "b._fast_exit_plugin().teardown(worker=None)"
    )
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stdout.write('teardown ran'))\n"
        "import emoeye.batch as b\n"
        f"{arm}\n"
        "sys.stdout.write('result kept')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "result kept"


def test_local_cluster_forks_only_a_process_without_torch_or_lsl():
    pytest.importorskip("distributed")
    code = (
        "import sys, emoeye.cli, emoeye.commands.batch\n"
        "from emoeye.batch import worker_start_method\n"
        "print(worker_start_method())\n"
        "import {mod}\n"
        "print(worker_start_method())\n"
    )
    for mod in ("torch", "pylsl"):
        proc = subprocess.run(
            [sys.executable, "-c", code.format(mod=mod)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        first = "fork" if sys.platform == "linux" and sys.version_info < (3, 12) else "spawn"
        assert proc.stdout.split() == [first, "spawn"], mod


def test_local_cluster_never_forks_on_python_3_12_or_later(monkeypatch):
    """Python 3.12 deprecates fork() in a process with threads, and the batch process runs
    distributed's event loop on one when its LocalCluster starts the workers."""
    from emoeye.batch import worker_start_method

    monkeypatch.setattr(sys, "platform", "linux")
    for mod in ("torch", "pylsl"):  # what else keeps it from forking
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    assert worker_start_method() == "fork"
    monkeypatch.setattr(sys, "version_info", (3, 12, 0, "final", 0))
    assert worker_start_method() == "spawn"


@pytest.mark.timeout(300)
def test_dask_batch_from_the_command_line_matches_single_file_commands(archive, tmp_path):
    """The command-line batch process holds no torch when its cluster starts, so on Linux its
    workers are forked (the in-process test above, run after a replay, spawns them)."""
    pytest.importorskip("distributed")
    single = tmp_path / "single"
    assert main(["replay", str(archive / "rec1.xdf"), "--fast", "--quiet",
                 "--out", str(single / "rec1.csv")]) == 0  # fmt: skip
    out = tmp_path / "dask"
    cmd = [sys.executable, "-m", "emoeye", "batch", "replay", str(archive / "rec1.xdf"),
           str(archive / "notxdf.xdf"), "--out", str(out), "--quiet", "--scheduler", "local:2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr  # notxdf.xdf failed, the batch finished
    rows = _manifest(out / "batch-manifest.json")
    assert rows["rec1.xdf"]["status"] == "ok" and rows["notxdf.xdf"]["status"] == "failed"
    assert _files(out, skip=("batch-manifest",)) == _files(single)
    assert "Traceback" not in proc.stderr
    # Dask's INFO lines (scheduler, nannies, forked workers) and its port-8787 warning stay out
    assert "distributed" not in proc.stderr and "8787" not in proc.stderr, proc.stderr
