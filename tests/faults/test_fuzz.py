"""Fuzzing: the marker parser and aligner on arbitrary marker values, the XDF reader on random
and mutated bytes. Nothing may raise but the reader's documented :class:`XdfError`."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.aligner import TrialAligner
from acquisition.markers import MarkerParser, Onset, Rating
from acquisition.sim.faults import MAGIC, corrupt_chunk, flip_bytes, truncate
from acquisition.streams import StreamSpec
from acquisition.trials.types import TrialSpec
from acquisition.xdf.reader import XdfError, read_xdf
from acquisition.xdf.source import XdfSource
from acquisition.xdf.writer import write_streams

pytestmark = pytest.mark.timeout(60)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
values = st.one_of(
    st.text(max_size=300),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(np.int32, st.integers(-(2**31), 2**31 - 1)),
    st.builds(np.float32, st.floats(width=32)),
    st.booleans(),
    st.none(),
    st.binary(max_size=50),
    st.sampled_from(
        ["onset:coffee", "stim=moon", "rating: arousal=3; valence=9", "rating arousal=1 valence=7"]
    ),
)


@FUZZ
@given(value=values)
def test_marker_parser_never_raises(value):
    for parser in (MarkerParser(), MarkerParser(int_codes={1: "coffee"}, ignore="fix")):
        meaning = parser.parse(value)
        assert meaning is None or isinstance(meaning, Onset | Rating)
        if isinstance(meaning, Onset):
            assert meaning.stimulus_id


@FUZZ
@given(
    items=st.lists(
        st.tuples(st.floats(allow_nan=True, allow_infinity=True, width=64), values), max_size=60
    )
)
def test_aligner_accounts_for_every_marker(items):
    logging.getLogger("acquisition").setLevel(logging.ERROR)
    aligner = TrialAligner(TrialSpec(required_roles=()), {}, lambda _r: np.inf)
    ts = np.array([t for t, _ in items], dtype=np.float64)
    vals = np.empty((len(items), 1), dtype=object)
    for i, (_, v) in enumerate(items):
        vals[i, 0] = v
    aligner.add_markers(ts, vals)
    events = aligner.poll(0.0) + aligner.flush()
    s = aligner.stats
    accounted = (
        s.onsets + s.duplicates + s.ignored + s.ratings_attached + s.ratings_orphaned
        + sum(s.dropped.values())
    )  # fmt: skip
    assert s.markers == len(items) == accounted, s
    assert s.unknown_markers == aligner.parser.unknown_total <= s.ignored
    assert s.trials_cut == s.onsets == sum(hasattr(e, "trial") for e in events)


@pytest.fixture(scope="module")
def xdf_bytes(tmp_path_factory) -> bytes:
    gaze = StreamSpec("Gaze", "Gaze", 3, 100.0, "float32", "gz-fuzz", ("x", "y", "p"))
    mark = StreamSpec("Mk", "Markers", 1, 0.0, "string", "mk-fuzz")
    n = 600
    tg = 100 + np.arange(n) / 100
    vg = np.random.default_rng(0).random((n, 3)).astype(np.float32)
    tm = 100 + np.arange(0.5, 6, 1.0)
    vm = np.array([[f"onset:m{i}"] for i in range(len(tm))], dtype=object)
    path = tmp_path_factory.mktemp("fuzz") / "base.xdf"
    write_streams(path, [(gaze, tg, vg), (mark, tm, vm)], chunk_seconds=0.5)
    return path.read_bytes()


def _read_all(path, blocks: bool = True) -> None:
    """Read as every consumer does: the reader, then (``blocks``) the offline source's blocks."""
    try:
        f = read_xdf(path)
    except XdfError:
        return
    for s in f.streams:
        assert len(s.values()) == len(s.timestamps)
    if not blocks:
        return
    src = XdfSource(path)
    for _ in src.iter_blocks(1.0):
        pass


@FUZZ
@given(data=st.binary(max_size=2000), magic=st.booleans())
def test_xdf_reader_on_random_bytes(tmp_path_factory, data, magic):
    path = tmp_path_factory.mktemp("rnd") / "r.xdf"
    path.write_bytes((MAGIC if magic else b"") + data)
    _read_all(path)


MUTATED = dict(
    seed=st.integers(0, 2**32 - 1),
    how=st.sampled_from(["truncate", "chunk", "flip", "both"]),
    n=st.integers(1, 40),
)


@settings(max_examples=150, deadline=None)
@given(**MUTATED)
def test_xdf_reader_on_mutated_files(tmp_path_factory, xdf_bytes, seed, how, n):
    _mutated(tmp_path_factory, xdf_bytes, seed, how, n, blocks=False)


@settings(max_examples=150, deadline=None)
@given(**MUTATED)
def test_xdf_source_blocks_on_mutated_files(tmp_path_factory, xdf_bytes, seed, how, n):
    _mutated(tmp_path_factory, xdf_bytes, seed, how, n, blocks=True)


def _mutated(tmp_path_factory, xdf_bytes, seed, how, n, blocks):
    rng = np.random.default_rng(seed)
    data = xdf_bytes
    if how in ("chunk", "both"):
        data = corrupt_chunk(data, rng, n_bytes=n)
    if how == "flip":
        data = flip_bytes(data, rng, n)
    if how in ("truncate", "both"):
        data = truncate(data, int(rng.integers(0, len(data))))
    path = tmp_path_factory.mktemp("mut") / "m.xdf"
    path.write_bytes(data)
    _read_all(path, blocks)
