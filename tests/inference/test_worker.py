"""The inference worker without LSL: queue, device choice, flags, errors, draining stop."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from inference.prediction import PredictionStore
from inference.sinks import JsonlSink, Sink, StoreSink
from inference.worker import (
    DeviceUnavailableError,
    InferenceWorker,
    WorkerConfig,
    resolve_device,
)


class Wrapped:
    """A predictor that delegates to a real one, optionally slow or failing on some trials."""

    def __init__(self, inner, delay: float = 0.0, fail_on: set[str] = frozenset()) -> None:
        self.inner, self.delay, self.fail_on = inner, delay, set(fail_on)
        self.config, self.uses_stimulus, self.device = inner.config, inner.uses_stimulus, "cpu"
        self.embed_threads: list[str] = []

    def embed_stimulus(self, image):
        self.embed_threads.append(threading.current_thread().name)
        return self.inner.embed_stimulus(image)

    def predict(self, trials, embeddings=None):
        if self.delay:
            time.sleep(self.delay)
        if any(t.trial_id in self.fail_on for t in trials):
            raise RuntimeError("boom")
        return self.inner.predict(trials, embeddings)

    def warm_up(self, n: int = 3) -> float:
        return self.inner.warm_up(n)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def make_worker(predictor, tmp_path=None, **cfg):
    store = PredictionStore()
    sinks = [StoreSink(store)]
    if tmp_path is not None:
        sinks.append(JsonlSink(tmp_path / "p.jsonl"))
    worker = InferenceWorker(predictor, config=WorkerConfig(**cfg), sinks=sinks)
    return worker, store


def test_predicts_every_trial_with_latency_breakdown(predictor, trials, tmp_path):
    worker, store = make_worker(predictor, tmp_path)
    worker.start()
    assert worker.ready.wait(30)
    for t in trials[:4]:
        worker.submit(t)
    assert worker.stop()
    worker.publisher.close()
    assert [p.trial_id for p in store.latest(10)] == [t.trial_id for t in trials[:4]]
    for p in store.latest(10):
        assert set(p.latency_ms) == {"queue", "embed", "model", "publish", "total"}
        assert p.latency_ms["total"] >= p.latency_ms["model"] > 0
        assert np.isclose(p.arousal_probs.sum(), 1, atol=1e-4) and p.error is None
        assert not p.flagged
    lines = read_jsonl(tmp_path / "p.jsonl")
    assert [r["trial_id"] for r in lines if r["event"] == "prediction"] == [
        t.trial_id for t in trials[:4]
    ]
    stats = worker.stats.to_dict()
    assert stats["predicted"] == 4 and stats["latency_ms"]["n"] == 4


def test_queue_is_bounded_and_overflow_is_reported(predictor, trials, tmp_path):
    worker, store = make_worker(predictor, tmp_path, queue_size=2)
    # Not started: nothing drains the queue, so the third and fourth trials overflow it.
    results = [worker.submit(t) for t in trials[:4]]
    assert results == [True, True, False, False]
    assert worker.pending == 2
    assert worker.stats.overflowed == 2 and worker.stats.queue_depth_max == 2
    worker.start()
    assert worker.stop()
    worker.publisher.close()
    # The oldest waiting trials were pushed out and reported; the newest were predicted.
    assert [p.trial_id for p in store.latest(10)] == [trials[2].trial_id, trials[3].trial_id]
    records = read_jsonl(tmp_path / "p.jsonl")
    skipped = [r for r in records if r["event"] == "skipped"]
    assert [r["trial_id"] for r in skipped] == [trials[0].trial_id, trials[1].trial_id]
    assert "queue full" in skipped[0]["reason"]
    # Every trial is accounted for: predicted or skipped, none lost.
    assert worker.stats.predicted + worker.stats.overflowed == 4


def test_device_auto_is_cpu_without_cuda_and_cuda_request_fails_clearly(monkeypatch, checkpoint):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(DeviceUnavailableError, match="no CUDA GPU.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(DeviceUnavailableError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(DeviceUnavailableError):
        InferenceWorker(checkpoint=checkpoint, config=WorkerConfig(device="cuda"))
    worker = InferenceWorker(checkpoint=checkpoint, config=WorkerConfig(device="auto"))
    assert worker.device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(DeviceUnavailableError, match="only 1 CUDA"):
        resolve_device("cuda:3")


def test_low_quality_is_predicted_and_flagged(predictor, trials):
    low, good = trials[0], trials[1]
    low.quality.coverage = {"gaze": 0.3, "gsr": 1.0, "hr": 1.0}
    assert low.quality.score < 0.5
    worker, store = make_worker(predictor)
    a, b = worker.process(low), worker.process(good)
    assert a.flagged and a.flag_reason.startswith("quality 0.30 < 0.5") and a.error is None
    assert not b.flagged
    assert worker.stats.flagged == 1 and store.count == 2
    relaxed, _ = make_worker(predictor, quality_threshold=0.2)
    assert not relaxed.process(low).flagged


def test_model_error_on_one_trial_gives_error_prediction_and_worker_goes_on(
    predictor, trials, tmp_path
):
    bad = trials[1].trial_id
    worker, store = make_worker(Wrapped(predictor, fail_on={bad}), tmp_path)
    worker.start()
    for t in trials[:3]:
        worker.submit(t)
    assert worker.stop()
    worker.publisher.close()
    preds = {p.trial_id: p for p in store.latest(10)}
    assert len(preds) == 3 and worker.error is None
    err = preds[bad]
    # An error record, not a prediction: the reason names the stage and the exception type.
    assert err.status == "failed" and err.error == "predict failed: RuntimeError: boom"
    assert err.flagged and err.flag_reason == err.error
    np.testing.assert_allclose(err.arousal_probs, np.full(7, 1 / 7), rtol=1e-6)
    assert preds[trials[2].trial_id].error is None
    assert preds[trials[2].trial_id].status == "predicted"
    st = worker.stats
    assert st.errors == 1 and st.failed == 1 and st.predicted == 2
    logged = [r for r in read_jsonl(tmp_path / "p.jsonl") if r["trial_id"] == bad]
    assert [r["event"] for r in logged] == ["error"]
    assert logged[0]["error"] == "predict failed: RuntimeError: boom"
    assert logged[0]["status"] == "failed"


def test_stop_drains_every_queued_trial(predictor, trials, tmp_path):
    worker, store = make_worker(Wrapped(predictor, delay=0.03), tmp_path, queue_size=32)
    worker.start()
    for t in trials:
        worker.submit(t)
    assert worker.pending > 0  # still working when stop() is called
    assert worker.stop(timeout=30)
    worker.publisher.close()
    assert store.count == len(trials) and worker.stats.overflowed == 0
    logged = [r["trial_id"] for r in read_jsonl(tmp_path / "p.jsonl")]
    assert logged == [t.trial_id for t in trials]
    # A trial cut after stop() is still predicted (in the caller's thread), not lost.
    extra = trials[0]
    extra.trial_id = "late"
    assert worker.submit(extra) and store.latest(1)[0].trial_id == "late"


def test_onset_embeds_in_the_worker_thread_and_caches(predictor, trials):
    wrapped = Wrapped(predictor)
    worker, _ = make_worker(wrapped, embedding_cache=2, warm_up=0)
    worker.start()
    assert worker.ready.wait(30)
    t = trials[0]
    worker.on_onset(t.trial_id, t.onset, t.stimulus_id)
    deadline = time.monotonic() + 10
    while worker.stats.embeds_at_onset < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wrapped.embed_threads == ["inference-worker"]
    worker.submit(t)
    assert worker.stop()
    p = worker.publisher.sinks[0].store.latest(1)[0]
    assert worker.stats.embeds_late == 0 and p.latency_ms["embed"] < p.latency_ms["total"]
    # LRU: a third stimulus evicts the least recently used one.
    others = [s for s in worker.catalogue.ids if s != t.stimulus_id][:2]
    for sid in others:
        worker.embed(sid)
    assert t.stimulus_id not in worker._cache and len(worker._cache) == 2


def test_unknown_stimulus_gets_neutral_embedding_and_flag(predictor, trials):
    worker, _ = make_worker(predictor)
    t = trials[0]
    t.stimulus_id = "no-such-picture"
    p = worker.process(t)
    assert p.error is None and p.flagged and "unknown stimulus 'no-such-picture'" in p.flag_reason
    assert worker.stats.unknown_stimuli == 1
    emb, note = worker.embed("no-such-picture")
    assert float(emb.abs().sum()) == 0.0 and note


def test_broken_sink_is_counted_and_others_still_get_predictions(predictor, trials):
    class Broken(Sink):
        name = "broken"
        stage = "publish"

        def write(self, prediction):
            raise OSError("disk full")

    store = PredictionStore()
    broken = Broken()
    worker = InferenceWorker(predictor, config=WorkerConfig(), sinks=[broken, StoreSink(store)])
    worker.process(trials[0])
    worker.process(trials[1])
    assert store.count == 2 and broken.errors == 2 and worker.stats.sink_errors == 2
    assert broken.last_error == "OSError: disk full"


def test_traced_fast_path_matches_the_predictor(predictor, trials):
    traced, _ = make_worker(predictor, warm_up=1)
    traced.warm_up()
    assert traced.fast_path == "optimized"  # the default architecture traces and optimises
    plain, _ = make_worker(predictor, optimize=False, warm_up=1)
    plain.warm_up()
    assert plain.fast_path == "traced"
    eager, _ = make_worker(predictor, trace=False, warm_up=1)
    eager.warm_up()
    assert eager._traced is None and eager.fast_path == "eager"
    for t in trials[:4]:
        a, b, c = traced.process(t), eager.process(t), plain.process(t)
        np.testing.assert_allclose(a.arousal_probs, b.arousal_probs, atol=1e-5)
        np.testing.assert_allclose(a.valence_probs, b.valence_probs, atol=1e-5)
        np.testing.assert_allclose(c.arousal_probs, b.arousal_probs, atol=1e-5)
        pa, pv = predictor.predict([t])
        np.testing.assert_allclose(a.arousal_probs, pa[0], atol=1e-5)
        np.testing.assert_allclose(a.valence_probs, pv[0], atol=1e-5)
    # A predictor without a plain torch model (or a failing trace) falls back to eager.
    wrapped, _ = make_worker(Wrapped(predictor), warm_up=1)
    wrapped.warm_up()
    assert wrapped._traced is None and wrapped.process(trials[0]).error is None
    assert wrapped.fast_path == "eager"


def test_f09_inference_slower_than_trials_arrive_and_one_model_error(
    predictor, trials, tmp_path, caplog
):
    """Fault 9: trials arrive ten times faster than the model runs, and the model fails on one
    trial. The worker goes on; every trial ends as one record (predicted or skipped)."""
    bad = trials[-1].trial_id  # the last one is never pushed out: it reaches the model
    slow = Wrapped(predictor, delay=0.2, fail_on={bad})
    worker, store = make_worker(slow, tmp_path, queue_size=3)
    worker.start()
    assert worker.ready.wait(30)
    for t in trials:
        worker.submit(t)
        time.sleep(0.02)
    assert worker.stop()
    worker.publisher.close()
    assert worker.error is None
    records = [r for r in read_jsonl(tmp_path / "p.jsonl") if r["event"] != "session_end"]
    by_trial = {r["trial_id"]: r["event"] for r in records}
    assert len(records) == len(by_trial) == len(trials), records  # one record per trial
    st = worker.stats
    assert st.predicted + st.failed + st.overflowed == len(trials) and st.overflowed >= 3
    assert store.count == st.predicted + st.failed
    assert by_trial[bad] == "error" and st.errors == st.failed == 1
    err = {p.trial_id: p for p in store.latest(100)}[bad]
    assert err.error == "predict failed: RuntimeError: boom" and err.flagged
    # Reported, not spammed: the first skip explains, later ones are counted.
    skips = [r for r in caplog.records if "not predicted" in r.getMessage()]
    assert skips and "slower than trials arrive" in skips[0].getMessage()
    assert len(skips) <= 2


class Counting(Wrapped):
    """Counts the trials the model was asked about."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.seen: list[str] = []

    def predict(self, trials, embeddings=None):
        self.seen += [t.trial_id for t in trials]
        return super().predict(trials, embeddings)


def test_trial_without_usable_data_is_a_record_never_fed_to_the_model(predictor, trials, tmp_path):
    empty = trials[0]
    empty.quality.unusable = ["gsr: usable data 0.00 < min_coverage 0.5"]
    counting = Counting(predictor)
    worker, store = make_worker(counting, tmp_path, trace=False)
    a, b = worker.process(empty), worker.process(trials[1])
    worker.publisher.close()
    assert counting.seen == [trials[1].trial_id]  # the empty trial never reached the model
    assert a.status == "no_data" and a.flagged and b.status == "predicted"
    assert a.error == "no usable data: gsr: usable data 0.00 < min_coverage 0.5"
    st = worker.stats
    assert (st.predicted, st.no_data, st.failed, st.errors) == (1, 1, 0, 0)
    assert store.count == 2
    events = [(r["event"], r["trial_id"]) for r in read_jsonl(tmp_path / "p.jsonl")]
    assert events == [("no_data", empty.trial_id), ("prediction", trials[1].trial_id)]


def test_cut_error_record_is_published_in_order_with_trials(predictor, trials, tmp_path):
    from acquisition.trials.types import TrialError

    error = TrialError.from_exception(
        KeyError("stream 'E4_Hr' has no channel ''"), "cut", "P01-2", 12.5, "img_022.jpg", "P01"
    )
    assert error.reason == "cut failed: KeyError: \"stream 'E4_Hr' has no channel ''\""
    worker, store = make_worker(predictor, tmp_path)
    worker.start()
    worker.submit(trials[0])
    worker.submit(error)
    worker.submit(trials[2])
    assert worker.stop()
    worker.publisher.close()
    records = read_jsonl(tmp_path / "p.jsonl")
    assert [r["event"] for r in records] == ["prediction", "error", "prediction"]
    assert records[1]["error"] == error.reason and records[1]["status"] == "failed"
    assert records[1]["onset"] == 12.5 and records[1]["stimulus_id"] == "img_022.jpg"
    assert worker.stats.failed == 1 and worker.stats.errors == 0  # not a model error
    assert [p.status for p in store.latest(3)] == ["predicted", "failed", "predicted"]


def test_quality_that_raises_gives_an_error_record(predictor, trials, monkeypatch, caplog):
    from acquisition.trials.types import TrialQuality

    def broken(self):
        raise ValueError("bad coverage")

    worker, store = make_worker(predictor)
    monkeypatch.setattr(TrialQuality, "score", property(broken))
    records = [worker.process(t) for t in trials[:12]]
    assert [p.status for p in records] == ["failed"] * 12 and store.count == 12
    assert records[0].error == "predict failed: ValueError: bad coverage"
    # A repeated error: its traceback once, then a line at the 10th.
    logged = [r for r in caplog.records if "bad coverage" in r.getMessage()]
    assert len(logged) == 2 and logged[0].exc_info and not logged[1].exc_info
    assert "10 such predict failures" in logged[1].getMessage()


def test_low_quality_flag_names_each_cause(predictor, trials):
    t = trials[0]
    t.quality.coverage = {"gaze": 0.3, "gsr": 0.4, "hr": 1.0}
    t.quality.gaze_valid = 0.9
    worker, _ = make_worker(predictor)
    p = worker.process(t)
    assert p.flag_reason.startswith("quality 0.27 < 0.5 (gaze coverage 0.30, gsr coverage 0.40)")


@pytest.mark.timeout(300)
def test_workers_tracing_at_once_leave_the_warning_filters_as_they_were(predictor):
    """Tracing silences warnings by swapping the process-wide filters; workers that start at the
    same moment (two sessions in one process) must not restore each other's swap."""
    import warnings

    workers = [make_worker(predictor, warm_up=1)[0] for _ in range(4)]
    before = list(warnings.filters)
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def trace(w) -> None:
        try:
            barrier.wait(timeout=30)
            w._traced = w._trace()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inside = list(warnings.filters)
        threads = [threading.Thread(target=trace, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert list(warnings.filters) == inside
    assert not errors and all(w.fast_path == "optimized" for w in workers)
    assert not [w for w in caught if "Tracer" in type(w.message).__name__]
    assert list(warnings.filters) == before
