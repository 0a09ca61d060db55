import threading

import numpy as np
import pytest

from acquisition.ringbuffer import RingBuffer


def _fill(buf: RingBuffer, n: int, start: int = 0, chunk: int = 7) -> None:
    for i in range(start, start + n, chunk):
        k = min(chunk, start + n - i)
        ts = np.arange(i, i + k, dtype=float)
        buf.write(ts, np.column_stack([ts, -ts]))


def test_read_range_before_wrap():
    buf = RingBuffer(100, 2)
    _fill(buf, 50)
    ts, vals = buf.read(10, 20)
    assert ts.tolist() == list(range(10, 20))
    assert np.array_equal(vals[:, 1], -ts)


def test_read_range_across_wrap_and_overwrite():
    buf = RingBuffer(64, 2)
    _fill(buf, 200)
    assert len(buf) == 64 and buf.count == 200
    ts, _ = buf.read(150, 170)
    assert ts.tolist() == list(range(150, 170))
    ts, _ = buf.read(0, 1000)  # only what is held
    assert ts.tolist() == list(range(136, 200))
    assert buf.first_timestamp == 136 and buf.last_timestamp == 199


def test_chunk_larger_than_capacity_keeps_newest():
    buf = RingBuffer(10, 1)
    ts = np.arange(25, dtype=float)
    buf.write(ts, ts[:, None])
    assert buf.count == 25
    assert buf.read(-1, 100)[0].tolist() == list(range(15, 25))


def test_read_since_reports_overwritten():
    buf = RingBuffer(16, 2)
    _fill(buf, 10)
    ts, _, seq = buf.read_since(0)
    assert len(ts) == 10 and seq == 10
    _fill(buf, 30, start=10)
    ts, _, seq2 = buf.read_since(seq)
    assert seq2 == 40 and len(ts) == 16  # 14 overwritten: caller sees seq2 - seq > len(ts)


def test_empty_reads():
    buf = RingBuffer(8, 3)
    ts, vals = buf.read(0, 10)
    assert ts.shape == (0,) and vals.shape == (0, 3)
    assert buf.last_timestamp == -np.inf


def test_string_buffer():
    buf = RingBuffer(8, 1, dtype=object)
    buf.write(np.array([1.0, 2.0]), np.array([["a"], ["b"]], dtype=object))
    assert buf.read(0, 3)[1][:, 0].tolist() == ["a", "b"]


@pytest.mark.timeout(30)
def test_concurrent_reader_sees_consistent_ranges():
    buf = RingBuffer(1000, 2)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set() and i < 200_000:
            ts = np.arange(i, i + 50, dtype=float)
            buf.write(ts, np.column_stack([ts, ts * 2]))
            i += 50

    t = threading.Thread(target=writer)
    t.start()
    bad = 0
    for _ in range(2000):
        end = buf.last_timestamp
        ts, vals = buf.read(end - 300, end)
        if len(ts) and (np.any(np.diff(ts) != 1) or np.any(vals[:, 1] != 2 * ts)):
            bad += 1
    stop.set()
    t.join()
    assert bad == 0
