"""Fault 7: damaged XDF files, met the way an analyst meets them — ``emoeye replay --fast`` and
``emoeye dataset build`` on a recording cut off at random bytes, with a corrupted chunk in the
middle, with a stream that holds no samples, without a marker stream, with megabyte header
strings.

Each run must either predict every trial whose window survived (the intact recording's onsets
whose marker and whole window, baseline included, are still in the damaged file) and say once
what is wrong, or stop with exit code 2 and one line naming what is missing and what the file
holds. Never a traceback, a hang, or a warning repeated per block.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fault_rig import record

from acquisition.sim.faults import chunk_table, corrupt_chunk, truncate
from acquisition.sim.simulator import Simulation, SimulationConfig
from acquisition.streams import StreamSpec
from acquisition.trials.types import TrialSpec
from acquisition.xdf.reader import TAG_SAMPLES, TAG_STREAM_HEADER, XdfError, read_xdf
from acquisition.xdf.writer import record_simulation, varlen, write_streams
from emoeye.cli import main

pytestmark = pytest.mark.timeout(120)

WINDOW = TrialSpec()
"""The default trial: 1 s of baseline before the onset, 5 s after it."""
ERROR = "emoeye: error: "
WARNING = "  file warning: "
HUGE = 2 << 20
"""A 2 MB header string."""


# --------------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class Recording:
    """The intact recording every damaged file is made from."""

    path: Path
    onsets: list[float]
    streams: list[tuple[StreamSpec, np.ndarray, np.ndarray]]
    """(spec, timestamps, values) of each stream, as read back."""

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def samples(self) -> int:
        return sum(len(ts) for _, ts, _ in self.streams)


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """Four trials of the gazepoint device set (Gazepoint 60 Hz + PsychoPy markers), 30 s."""
    sim = Simulation(
        SimulationConfig(
            device_set="gazepoint", n_trials=4, isi=7.0, lead_in=1.5, seed=7, source_tag="f07"
        )
    )
    path = tmp_path_factory.mktemp("f07") / "intact.xdf"
    record_simulation(sim, path, progress=False)
    f = read_xdf(path)
    assert not f.warnings, f.warnings
    streams = [(s.spec, s.timestamps, s.values()) for s in f.streams]
    return Recording(path, [g["onset"] for g in sim.ground_truth()], streams)


def rewrite(path: Path, streams: list[tuple[StreamSpec, np.ndarray, np.ndarray]]) -> Path:
    """The streams written again (1-s chunks in time order, footers), as a recorder would."""
    write_streams(path, streams, metadata={"participant": "P01"})
    return path


def stream_of(rec: Recording, kind: str) -> tuple[StreamSpec, np.ndarray, np.ndarray]:
    """The recording's stream of this type (``"Gaze"`` or ``"Markers"``)."""
    (found,) = [s for s in rec.streams if s[0].type == kind]
    return found


def emptied(stream: tuple[StreamSpec, np.ndarray, np.ndarray]):
    """The same stream, declared but without a single sample."""
    spec, _, values = stream
    return spec, np.zeros(0), values[:0]


# --------------------------------------------------------------------------- the analyst's view


@dataclass
class Outcome:
    """What ``emoeye replay --fast`` showed for one file."""

    rc: int
    out: str
    err: str
    logged: list[str]
    """Log records of WARNING and above (on a terminal they are printed beside the output)."""
    rows: list[dict]
    """The ``--out`` table (empty when the command stopped)."""
    wall_s: float

    @property
    def warnings(self) -> list[str]:
        """The file's problems as printed."""
        return [x[len(WARNING) :] for x in self.out.splitlines() if x.startswith(WARNING)]

    @property
    def seconds(self) -> float:
        """Data seconds the summary says were replayed."""
        return float(re.search(r"^replayed (\S+) s in ", self.out, re.M).group(1))

    @property
    def predicted(self) -> list[float]:
        """Onsets of the trials that got a prediction."""
        return [float(r["onset"]) for r in self.rows if r["pred_arousal"]]


def replay(path: Path, checkpoint: Path, capsys, caplog, *extra: str) -> Outcome:
    """``emoeye replay FILE --fast --checkpoint CKPT --quiet --out TABLE`` in-process."""
    table = path.with_suffix(".csv")
    table.unlink(missing_ok=True)
    capsys.readouterr()
    caplog.clear()
    t0 = time.perf_counter()
    args = ["replay", str(path), "--fast", "--checkpoint", str(checkpoint), "--out", str(table)]
    rc = main([*args, *(extra or ("--quiet",))])
    wall = time.perf_counter() - t0
    cap = capsys.readouterr()
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    rows = list(csv.DictReader(table.open())) if table.exists() else []
    return Outcome(rc, cap.out, cap.err, logged, rows, wall)


def assert_analyst_friendly(r: Outcome) -> None:
    """Exit 0 with output or 2 with one error line; nothing said twice; quick."""
    text = r.out + r.err
    assert "Traceback" not in text, text
    assert r.rc in (0, 2), (r.rc, text)
    assert r.wall_s < 10.0, f"replay took {r.wall_s:.1f} s"
    said = Counter(r.warnings + r.logged)
    assert not [w for w, n in said.items() if n > 1], f"repeated: {said}"
    if r.rc == 2:
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(ERROR), r.err
        assert not r.predicted
    else:
        assert not r.err.strip(), r.err
        assert r.seconds < 31.0, f"a 30-s recording replayed as {r.seconds} s"  # stray stamps


def one_naming(warnings: list[str], *words: str) -> str:
    """The single warning containing every word (fails when none or several do)."""
    hits = [w for w in warnings if all(x in w for x in words)]
    assert len(hits) == 1, (words, warnings)
    return hits[0]


# --------------------------------------------------------------------------- accounting


def surviving_onsets(path: Path, rec: Recording) -> list[float]:
    """Intact onsets whose marker and whole trial window are still in the damaged file."""
    try:
        f = read_xdf(path)
    except XdfError:
        return []
    gaze = [s for s in f.streams if s.spec.type == "Gaze" and len(s)]
    marks = [s for s in f.streams if s.spec.type == "Markers" and len(s)]
    if not gaze or not marks:
        return []
    g, m = gaze[0].timestamps, marks[0].timestamps
    half = 0.5 / gaze[0].spec.nominal_srate  # dejittered stamps may move by a fraction
    return [
        o
        for o in rec.onsets
        if np.min(np.abs(m - o)) < 1e-6
        and g[0] <= o - WINDOW.baseline + half
        and g[-1] >= o + WINDOW.duration - half
    ]


def unpredicted(survivors: list[float], predicted: list[float]) -> list[float]:
    """Surviving onsets without a prediction (the table keeps onsets to the microsecond)."""
    return [o for o in survivors if not any(abs(o - p) < 1e-5 for p in predicted)]


def silent_loss(path: Path, rec: Recording, r: Outcome) -> int:
    """Samples the damaged file lost that the analyst was not told about (no warning at all)."""
    if r.warnings or "the file reports" in r.err:
        return 0
    try:
        held = sum(len(s) for s in read_xdf(path).streams)
    except XdfError:
        return 0
    return max(0, rec.samples - held)


# --------------------------------------------------------------------------- the faults


def test_f07_intact_reference(intact, checkpoint, tmp_path, capsys, caplog):
    """The undamaged recording: every onset predicted, nothing to report."""
    r = replay(intact.path, checkpoint, capsys, caplog)
    assert_analyst_friendly(r)
    assert r.rc == 0 and not r.warnings and not r.logged
    assert unpredicted(intact.onsets, r.predicted) == []
    assert surviving_onsets(intact.path, intact) == intact.onsets


def test_f07a_truncated_at_random_offsets(intact, checkpoint, tmp_path, capsys, caplog):
    """Cut off (a crash, an interrupted copy) at seeded random bytes, and once inside the
    marker stream's header: the trials before the cut are all predicted and the cut is
    named once; without a marker stream the command stops with one line saying so."""
    data = intact.data
    rng = np.random.default_rng(7)
    offsets = sorted({int(x) for x in rng.integers(4, len(data), 6)})
    marker_header = [c for c in chunk_table(data) if c.tag == TAG_STREAM_HEADER][-1]
    offsets.append((marker_header.body + marker_header.end) // 2)
    lost_trials = lost_samples = 0
    stopped = predicted = 0
    for off in offsets:
        path = tmp_path / f"cut-{off}.xdf"
        path.write_bytes(truncate(data, off))
        r = replay(path, checkpoint, capsys, caplog)
        assert_analyst_friendly(r)
        survivors = surviving_onsets(path, intact)
        lost_trials += len(unpredicted(survivors, r.predicted))
        lost_samples += silent_loss(path, intact, r)
        if r.rc == 2:  # cut before a stream's header ended: that role has no stream
            stopped += 1
            declared = {s.spec.type for s in read_xdf(path).streams}
            line = r.err.strip()
            if "Markers" not in declared:
                assert "missing role(s):" in line and "markers" in line, line
            if "Gaze" in declared:
                assert "streams present: 'GazepointEyeTracker'" in line, line
            assert "the recording was cut off" in line, line  # the reason, on the same line
            assert survivors == []
        else:
            predicted += 1
            cut = [w for w in r.warnings if "cut off" in w]
            if cut:
                one_naming(r.warnings, "the recording was cut off")
            else:  # cut exactly between two chunks: only the missing footers tell
                one_naming(r.warnings, "no footer", "not closed cleanly")
    record("f07-truncated", samples_lost_uncounted=lost_samples, trials_lost_uncounted=lost_trials)
    assert stopped >= 1 and predicted >= 4, (stopped, predicted)
    assert lost_trials == 0 and lost_samples == 0


def test_f07b_corrupted_chunk_in_the_middle(intact, checkpoint, tmp_path, capsys, caplog):
    """32 bytes of a middle sample chunk overwritten (a bad sector), then random bytes in a
    random sample chunk (seeded): reading resumes at the next chunk (or the next boundary
    chunk when the chunk header is hit), the damage is named once, and every trial whose window
    survived is predicted."""
    data = intact.data
    middle = [c for c in chunk_table(data) if c.tag == TAG_SAMPLES]
    middle = middle[len(middle) // 2]
    smashed = bytearray(data)
    at = (middle.body + middle.end) // 2
    smashed[at : at + 32] = b"\xff" * 32
    files = {"smashed": bytes(smashed)}
    for seed in range(4):
        files[f"seed{seed}"] = corrupt_chunk(data, np.random.default_rng(seed))
    lost_trials = lost_samples = 0
    for name, damaged in files.items():
        path = tmp_path / f"corrupt-{name}.xdf"
        path.write_bytes(damaged)
        r = replay(path, checkpoint, capsys, caplog)
        assert_analyst_friendly(r)
        assert r.rc == 0, r.err
        survivors = surviving_onsets(path, intact)
        lost_trials += len(unpredicted(survivors, r.predicted))
        lost_samples += silent_loss(path, intact, r)
        if name == "smashed":
            # The chunk's length is intact: its samples before the damage are kept and reading
            # resumes at the next chunk, not at the next boundary chunk.
            skip = one_naming(r.warnings, "damaged sample chunk of", "resumes at the next chunk")
            assert f"at byte {middle.start}" in skip, skip
            assert len(survivors) >= len(intact.onsets) - 1  # at most the hit one is cut short
    record("f07-corrupted", samples_lost_uncounted=lost_samples, trials_lost_uncounted=lost_trials)
    assert lost_trials == 0 and lost_samples == 0


def test_f07c_streams_without_samples(intact, checkpoint, tmp_path, capsys, caplog):
    """A stream declared but never filled: an extra ECG stream (trials unaffected), the eye
    tracker itself (one no-data record per onset, none predicted) or the marker stream (no
    trials). Each time one warning names the empty stream."""
    gaze, marks = stream_of(intact, "Gaze"), stream_of(intact, "Markers")
    ecg = StreamSpec("PolarECG", "ECG", 1, 130.0, "float32", "ecg-f07", ("ecg",))
    cases = {
        "extra": ([gaze, marks, (ecg, np.zeros(0), np.zeros((0, 1)))], "PolarECG"),
        "gaze": ([emptied(gaze), marks], "GazepointEyeTracker"),
        "markers": ([gaze, emptied(marks)], "PsychoPyMarkers"),
    }
    lost_trials = 0
    for case, (streams, empty) in cases.items():
        path = rewrite(tmp_path / f"empty-{case}.xdf", streams)
        r = replay(path, checkpoint, capsys, caplog)
        assert_analyst_friendly(r)
        assert r.rc == 0, r.err
        assert r.warnings == [one_naming(r.warnings, f"({empty!r})", "is empty (no samples)")]
        survivors = surviving_onsets(path, intact)
        recorded = [float(r_["onset"]) for r_ in r.rows]  # a prediction or a no-data record
        lost_trials += len(unpredicted(survivors, recorded))
        if case == "extra":
            assert survivors == intact.onsets and len(r.predicted) == len(intact.onsets)
        elif case == "gaze":  # nothing to see: one no-data record per onset, never predicted
            assert r.predicted == [] and len(r.rows) == 4
            assert {(r_["quality"], r_["status"]) for r_ in r.rows} == {("0.000", "no_data")}
            assert all("gaze" in r_["reason"] for r_ in r.rows)
        else:
            assert r.rows == [] and "0 trial(s)" in r.out
    record("f07-empty-stream", samples_lost_uncounted=0, trials_lost_uncounted=lost_trials)
    assert lost_trials == 0


def test_f07d_no_marker_stream(intact, checkpoint, tmp_path, capsys, caplog):
    """A file without a marker stream: replay stops with exit 2 and one line that names the
    ``markers`` role and lists what the file holds; dataset build skips it in one line."""
    path = rewrite(tmp_path / "no-markers.xdf", [stream_of(intact, "Gaze")])
    r = replay(path, checkpoint, capsys, caplog)
    assert_analyst_friendly(r)
    assert r.rc == 2
    line = r.err.strip()
    assert line.startswith(
        f"{ERROR}cannot replay {path}: missing role(s): markers; streams present: "
        "'GazepointEyeTracker' type='Gaze' 9ch float32 60 Hz "
        "source_id='sim-gazepoint-gazepointeyetracker-f07'; why: markers: no stream looks like "
        "one; bind a stream to markers with a [roles.<role>] rule in a --config file"
    ), line
    rc = main(
        ["dataset", "build", str(path), "--out", str(tmp_path / "ds"), "--quiet",
         "--participant-map", f"{path.name}=P01"]
    )  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert rc == 2  # nothing written: a refused input, as in replay
    skipped = [x for x in out if "SKIPPED" in x]
    assert skipped == [f"  SKIPPED: {line.split(': ', 3)[-1]}"], out
    assert "Traceback" not in "\n".join(out)

    # The marker stream's header damaged (one byte of its XML): the stream is left out, the
    # eye tracker kept, and the stop line says why the markers are missing.
    data = intact.data
    header = [c for c in chunk_table(data) if c.tag == TAG_STREAM_HEADER][-1]
    at = data.index(b"<name>", header.body)
    damaged = tmp_path / "bad-marker-header.xdf"
    damaged.write_bytes(data[:at] + b"\x00" + data[at + 1 :])
    r = replay(damaged, checkpoint, capsys, caplog)
    assert_analyst_friendly(r)
    assert r.rc == 2
    line = r.err.strip()
    assert "missing role(s): markers; streams present: 'GazepointEyeTracker'" in line, line
    assert f"the file reports: unreadable header of stream 2 at byte {header.start}" in line
    record("f07-no-markers", samples_lost_uncounted=0, trials_lost_uncounted=0)


def test_f07e_huge_header_strings(intact, checkpoint, tmp_path, capsys, caplog):
    """A stream header whose <desc> holds a 2 MB string is read in linear time and bounded
    memory; a 1 MB stream name is shown shortened. Every trial is predicted either way."""
    data = intact.data
    first = [c for c in chunk_table(data) if c.tag == TAG_STREAM_HEADER][0]
    xml = data[first.body + 6 : first.end].decode()  # after the tag and the stream id
    assert "</desc>" in xml
    big = xml.replace("</desc>", "<notes>" + "x" * HUGE + "</notes></desc>").encode()
    content = data[first.body : first.body + 6] + big
    chunk = varlen(len(content)) + content
    path = tmp_path / "huge-desc.xdf"
    path.write_bytes(data[: first.start] + chunk + data[first.end :])

    tracemalloc.start()
    t0 = time.perf_counter()
    f = read_xdf(path)
    read_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not f.warnings and len(f.streams[0].header) > HUGE
    assert read_s < 2.0, f"reading a 2 MB header took {read_s:.2f} s"
    assert peak < 20 * HUGE, f"reading a 2 MB header peaked at {peak / 2**20:.0f} MB"

    r = replay(path, checkpoint, capsys, caplog)
    assert_analyst_friendly(r)
    assert r.rc == 0 and not r.warnings and len(r.out) < 5_000
    lost_trials = len(unpredicted(intact.onsets, r.predicted))

    gaze, marks = stream_of(intact, "Gaze"), stream_of(intact, "Markers")
    long_name = "GazepointEyeTracker-" + "n" * (1 << 20)
    long_gaze = (dataclasses.replace(gaze[0], name=long_name), gaze[1], gaze[2])
    path = rewrite(tmp_path / "long-name.xdf", [long_gaze, marks])
    r = replay(path, checkpoint, capsys, caplog, "--no-model")  # without --quiet: the listing
    assert_analyst_friendly(r)
    assert r.rc == 0 and not r.warnings
    assert len(r.out) < 10_000, f"{len(r.out)} characters printed"
    assert f"...({len(long_name)} chars)' (Gaze, 9 ch float32, 60 Hz): " in r.out, r.out[:500]
    assert len(r.rows) == len(intact.onsets)
    record("f07-huge-headers", samples_lost_uncounted=0, trials_lost_uncounted=lost_trials)
    assert lost_trials == 0


def test_f07_dataset_build_from_damaged_files(intact, tmp_path, capsys, caplog):
    """``dataset build`` over a cut-off file, a file without markers and one with an empty
    extra stream: every surviving rated trial is written, the bad file skipped in one line."""
    data = intact.data
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(truncate(data, int(len(data) * 0.7)))
    gaze, marks = stream_of(intact, "Gaze"), stream_of(intact, "Markers")
    no_markers = rewrite(tmp_path / "no-markers.xdf", [gaze])
    ecg = StreamSpec("PolarECG", "ECG", 1, 130.0, "float32", "ecg-f07", ("ecg",))
    extra = rewrite(tmp_path / "extra.xdf", [gaze, marks, (ecg, np.zeros(0), np.zeros((0, 1)))])
    out_dir = tmp_path / "ds"
    capsys.readouterr()
    pmap = "cut.xdf=P01,no-markers.xdf=P02,extra.xdf=P03"  # no simulator schedule: a real file
    rc = main(
        ["dataset", "build", str(cut), str(no_markers), str(extra), "--out", str(out_dir),
         "--participant-map", pmap]
    )  # fmt: skip
    text = capsys.readouterr()
    assert rc == 0 and "Traceback" not in text.out + text.err, text
    lines = text.out.splitlines()
    assert not [x for x, n in Counter(lines).items() if n > 1 and "warning" in x], lines
    skipped = [x for x in lines if "SKIPPED" in x]
    assert len(skipped) == 1 and "missing role(s): markers" in skipped[0], lines
    one_naming(lines, "warning:", "the recording was cut off")
    one_naming(lines, "warning:", "'PolarECG'", "is empty")

    # Rated trials written: the cut file's surviving onsets whose rating survived, plus all
    # of the intact-but-for-ECG file's.
    m = read_xdf(cut).by_name(marks[0].name)
    rated = {
        float(t)
        for t, v in zip(m.timestamps, m.values()[:, 0], strict=True)
        if str(v).startswith("rating")
    }
    expected_cut = [o for o in surviving_onsets(cut, intact) if any(o < t < o + 7.0 for t in rated)]
    shards = sorted(out_dir.glob("shard-*.npz"))
    written = Counter(round(float(o), 5) for p in shards for o in np.load(p)["onset"])
    expected = Counter(round(o, 5) for o in [*expected_cut, *intact.onsets])
    lost = sum((expected - written).values())
    record("f07-dataset-build", samples_lost_uncounted=0, trials_lost_uncounted=lost)
    assert lost == 0
