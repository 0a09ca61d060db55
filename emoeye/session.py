"""A live session: LSL streams → trials → the inference worker → sinks (outlet, store, logs).

:class:`LiveSession` wires :func:`emoeye.live.open_live` (inlet threads, buffers, the trial
aligner), an :class:`~inference.worker.InferenceWorker` and its sinks, and moves events between
them on one polling thread. :func:`predict_offline` runs an offline source (simulation, XDF)
through the same worker and sinks as fast as the CPU allows (``emoeye replay --fast``).

Threads of a live session: one per LSL inlet (pull + ring-buffer write only), the polling thread
(markers → trials, onsets → embed jobs, trials → the worker queue, ratings → the logs) and the
worker (the model, the sinks). The dashboard or the headless view only read.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acquisition.aligner import RatingEvent, TrialEvent
from acquisition.config import AcquisitionConfig
from acquisition.reporting import FailureLog
from acquisition.trials.types import TrialError
from emoeye.errors import as_cli_error
from inference.prediction import Prediction, PredictionStore
from inference.sinks import (
    CallbackSink,
    CsvSink,
    LslPredictionSink,
    Publisher,
    Sink,
    StoreSink,
    log_sink_for,
)
from inference.worker import InferenceWorker, WorkerConfig

log = logging.getLogger(__name__)


@dataclass
class SessionConfig:
    """What a session runs beside acquisition.

    Attributes
    ----------
    checkpoint
        Model checkpoint directory; None = the bundled default model.
    device, num_threads, queue_size, quality_threshold
        Passed to :class:`~inference.worker.WorkerConfig`.
    log_path
        JSONL predictions log (None: none; ``emoeye run`` always sets one).
    csv_path
        CSV predictions log (optional).
    outlet
        Publish predictions on the ``EmoEye-Predictions`` LSL outlet.
    outlet_source_id
        Source id of that outlet (a fresh uuid-based one when None).
    wait
        Seconds to wait for the streams every required role needs.
    record_path
        Record every stream the session reads (and its prediction outlets) to this XDF file,
        from before the first inlet opens, so the file holds every trial the session cuts.
    record_backend
        XDF recorder back end: ``"emoeye"`` (the default: crash-safe, flushed every second) or
        ``"labrecorder"`` (LabRecorder's engine; writes nothing to disk until stopped, cannot add
        streams later, so it starts only once the roles are bound and may miss early onsets).
    continuous_step
        Continuous mode: also predict the last window every this many seconds, with or without
        markers (docs/continuous.md); None: trial mode only.
    continuous_checkpoint
        A model trained for continuous use: it predicts the windows (in a worker of its own)
        while ``checkpoint`` predicts the trials. None: ``checkpoint`` predicts both.
    switch_interval
        ``sys.setswitchinterval`` while the session runs (restored on stop); None leaves it.
        CPython's 5 ms lets a busy Python thread (the dashboard) hold the GIL that long each
        time the worker or an inlet thread wants it back; 1 ms bounds that wait.
    """

    checkpoint: Path | str | None = None
    device: str = "auto"
    num_threads: int | None = 1
    queue_size: int = 32
    quality_threshold: float = 0.5
    log_path: Path | str | None = None
    csv_path: Path | str | None = None
    outlet: bool = True
    outlet_source_id: str | None = None
    wait: float = 10.0
    record_path: Path | str | None = None
    record_backend: str | None = None
    continuous_step: float | None = None
    continuous_checkpoint: Path | str | None = None
    switch_interval: float | None = 0.001

    def worker_config(self) -> WorkerConfig:
        """The worker's part of it."""
        return WorkerConfig(
            device=self.device,
            num_threads=self.num_threads,
            queue_size=self.queue_size,
            quality_threshold=self.quality_threshold,
        )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def rating_record(event: RatingEvent | TrialEvent) -> dict | None:
    """The log record of a trial's rating: one that attached after the cut (``RatingEvent``) or
    one that came before the window closed (on the cut trial); None when the trial has none."""
    if isinstance(event, TrialEvent):
        item = event.trial if event.trial is not None else event.error
        r, trial_id = item.ratings, item.trial_id
        if r is None:
            return None
    else:
        r, trial_id = event.ratings, event.trial_id
    return {
        "event": "rating",
        "trial_id": trial_id,
        "arousal": r.arousal,
        "valence": r.valence,
        "scale_min": r.scale_min,
        "scale_max": r.scale_max,
        "timestamp": r.timestamp,
    }


class LiveSession:
    """Live acquisition, inference and prediction sinks for one session.

    Parameters
    ----------
    config
        Acquisition configuration (roles, trial spec, markers, participant, stimuli folder).
    session
        Model, device, logs, outlet (see :class:`SessionConfig`).
    live
        A :class:`~acquisition.lsl.live.LiveAcquisition` not yet started (tests); by default
        :meth:`start` opens one with :func:`emoeye.live.open_live`, waiting for the streams.
    predictor
        An already loaded predictor (skips loading ``session.checkpoint``).
    say
        Where progress messages go (``print`` by default).

    Attributes
    ----------
    live
        The live input (None until :meth:`start`).
    store
        :class:`~inference.prediction.PredictionStore` the dashboard and headless view read.
    catalogue
        The stimulus catalogue (the acquisition core's once started).
    worker
        The :class:`~inference.worker.InferenceWorker`.
    publisher
        Its sinks.

    Examples
    --------
    >>> session = LiveSession(load_config(None), SessionConfig(log_path="p.jsonl"))  # doctest: +SKIP
    >>> session.start()
    >>> ...                        # session.store fills as trials close
    >>> session.stop()             # pending trials cut, queue drained, log closed
    """

    def __init__(
        self,
        config: AcquisitionConfig | None = None,
        session: SessionConfig | None = None,
        live: Any = None,
        predictor: Any = None,
        say: Callable[[str], Any] = print,
    ) -> None:
        self.config = config or AcquisitionConfig()
        self.session = session or SessionConfig()
        self.say = say
        self.live = live
        self.store = PredictionStore()
        self.catalogue = live.core.catalogue if live is not None else None
        self.publisher = Publisher([StoreSink(self.store)])
        # The model first: a bad checkpoint or device fails before any stream is touched.
        self.worker = InferenceWorker(
            predictor,
            self.session.checkpoint,
            self.session.worker_config(),
            self.publisher,
            catalogue=self.catalogue,
            norms=norms_table(self.config),
        )
        self.window_worker = _window_worker(
            self.session.continuous_checkpoint,
            self.worker,
            self.session.worker_config(),
            self.publisher,
            self.catalogue,
        )
        """The worker of the continuous model (None: :attr:`worker` predicts windows too)."""
        self.outlet: LslPredictionSink | None = None
        if self.session.outlet:
            self.outlet = LslPredictionSink(
                self.worker.n_classes,
                self.session.outlet_source_id,
                meta={"device": self.worker.device, "checkpoint": self.checkpoint_name},
            )
            self.publisher.add(self.outlet)
        self.log_path = Path(self.session.log_path) if self.session.log_path else None
        if self.log_path is not None:
            self.publisher.add(log_sink_for(self.log_path))
        if self.session.csv_path:
            self.publisher.add(CsvSink(self.session.csv_path))
        self.trials_cut = 0
        self.windows_cut = 0
        """Continuous-mode windows cut (not counted in ``trials_cut``)."""
        self.ratings = 0
        self.last_trial = None
        """The newest cut trial (the headless view shows it)."""
        self.poll_errors = 0
        self.failures = FailureLog(log)
        """Failures of the polling thread (logged with a traceback once, then at milestones)."""
        self.started_at: float | None = None
        self.stop_requested = threading.Event()
        """Set by SIGTERM (see :meth:`install_signal_handlers`) or :meth:`request_stop`."""
        self._halt = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock = threading.RLock()
        self._stopped = False
        self._recorder = None
        self._switch_interval: float | None = None
        self.summary: dict | None = None

    @property
    def checkpoint_name(self) -> str:
        """The checkpoint the model was loaded from."""
        meta = getattr(self.worker.predictor, "meta", None) or {}
        return str(meta.get("path", self.session.checkpoint or "bundled"))

    # ------------------------------------------------------------------ lifecycle

    def start(self, prefetched: list | None = None) -> LiveSession:
        """Start the worker, open the streams, and start moving trials; returns self.

        ``prefetched``: streams already found (:class:`~emoeye.live.StreamPrefetch`), used
        instead of a first look when the session opens its own input.
        """
        with self._lock:
            if self._poller is not None:
                raise RuntimeError("session already started")
            if self.session.switch_interval is not None:
                self._switch_interval = sys.getswitchinterval()
                sys.setswitchinterval(self.session.switch_interval)
            self.worker.start()
            if self.window_worker is not None:
                self.window_worker.start()
            try:
                if self.live is None:
                    from emoeye.live import open_live

                    self.live = open_live(
                        self.config,
                        self.session.wait,
                        log=self.say,
                        before_start=self._pre_start,
                        prefetched=prefetched,
                        markers_required=self.session.continuous_step is None,
                    )
                else:
                    self._pre_start(self.live)
                    self.live.start()
                    self.live.wait_connected(10.0)
            except BaseException:  # no streams (or Ctrl-C while waiting): release the rest
                self.stop()
                raise
            self.catalogue = self.live.core.catalogue
            self.worker.catalogue = self.catalogue
            self.live.core.aligner.onset_listeners.append(self.worker.on_onset)
            if self.window_worker is not None:
                self.window_worker.catalogue = self.catalogue
                self.live.core.aligner.onset_listeners.append(self.window_worker.on_onset)
            self.worker.record(
                {
                    "event": "session",
                    "started": _now_iso(),
                    "mode": "live",
                    "checkpoint": self.checkpoint_name,
                    "device": self.worker.device,
                    "quality_threshold": self.session.quality_threshold,
                    "participant": self.config.participant,
                    "roles": {r: c.spec.name for r, c in list(self.live.plan.roles.items())},
                    "outlet": None if self.outlet is None else self.outlet.stream_name,
                    "continuous_step": self.session.continuous_step,
                    "continuous_checkpoint": _model_path(self.window_worker),
                }
            )
            if self._recorder is not None and self._recorder.recording:
                self._announce_recording()  # started before the first inlet opened
            elif self.session.record_path is not None and self._records_late:
                try:
                    self.start_recording(self.session.record_path)
                except BaseException:
                    self.stop()
                    raise
            self.started_at = time.monotonic()
            self._poller = threading.Thread(target=self._poll, name="session-poll", daemon=True)
            self._poller.start()
        return self

    def _poll(self) -> None:
        while not self._halt.is_set():
            try:
                self.live.run(self._on_event, self._halt)  # flushes pending trials at the end
                return
            except Exception as exc:  # a marker or buffer bug must not end the session
                self.poll_errors += 1
                self.failures.report(exc, "session polling")
                self._halt.wait(0.1)
        try:  # halted while recovering: still cut what is pending
            for event in self.live.core.flush():
                self._on_event(event)
        except Exception:
            log.exception("flushing pending trials failed")

    def _on_event(self, event: Any) -> None:
        """Hand an event on; never raises, so no later event of the same poll is lost."""
        if isinstance(event, TrialEvent):
            item = event.trial if event.trial is not None else event.error
            window = item.mode == "continuous"
            worker = self.window_worker if window and self.window_worker else self.worker
            hand_on(event, worker, self.failures)
            if window:
                self.windows_cut += 1
                return  # a window has no rating of its own
            if event.trial is not None:
                self.trials_cut += 1
                self.last_trial = event.trial
        try:
            record = rating_record(event)
            if record is not None:
                self.ratings += 1
                self.worker.record(record)
        except Exception as exc:
            self.failures.report(exc, "rating record")

    def request_stop(self) -> None:
        """Ask a blocking :meth:`wait` to return (safe from signal handlers)."""
        self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM → :meth:`request_stop` (main thread only; Ctrl-C stays KeyboardInterrupt)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.request_stop())

    def wait(self, seconds: float | None = None) -> None:
        """Block until ``seconds`` have passed or a stop is requested (None: until requested)."""
        deadline = None if not seconds else time.monotonic() + seconds
        while not self.stop_requested.is_set():
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return
            self.stop_requested.wait(left)

    def stop(self, timeout: float = 30.0) -> dict:
        """Cut pending trials, drain the worker, close the logs and outlet; returns a summary.

        Safe to call more than once (later calls return the first summary).
        """
        with self._lock:
            if self._stopped:
                return self.summary or {}
            self._stopped = True
            self._halt.set()
            if self._poller is not None:
                self._poller.join(timeout)
            if self.live is not None:
                self.live.stop()
            drained = self.worker.stop(timeout)
            if self.window_worker is not None:
                drained = self.window_worker.stop(timeout) and drained
            recording = None
            if self._recorder is not None:
                try:
                    recording = self.stop_recording()
                except Exception as exc:
                    log.error("stopping the recording failed: %s", exc)
            self.summary = self.stats()
            self.summary["drained"] = drained
            if recording is not None:
                self.summary["recording"] = recording
            self.worker.record({"event": "session_end", "ended": _now_iso(), **self.summary})
            self.publisher.close()
            if self._switch_interval is not None:
                sys.setswitchinterval(self._switch_interval)
            return self.summary

    def stats(self) -> dict:
        """Counters of the session: what became of the onsets (``onsets``, ``trials_cut``,
        ``trials_predicted``, ``trials_failed``, ``trials_no_data``, ``trials_skipped``),
        worker, aligner, streams."""
        onsets = self.live.core.aligner.stats.onsets if self.live is not None else 0
        out: dict[str, Any] = {
            "seconds": round(time.monotonic() - self.started_at, 2) if self.started_at else 0.0,
            **_trial_counts(onsets, self.worker),
            "trials_cut": self.trials_cut,
            "windows_cut": self.windows_cut,
            "ratings": self.ratings,
            "predictions": self.store.count,
            "poll_errors": self.poll_errors,
            "worker": self.worker.stats.to_dict(),
            "sink_errors": {s.name: s.errors for s in self.publisher.sinks if s.errors},
        }
        if self.window_worker is not None:  # the windows' counters where readers look for them
            out["window_worker"] = self.window_worker.stats.to_dict()
            out["worker"]["continuous"] = dict(self.window_worker.stats.continuous)
        if self.live is not None:
            out["aligner"] = self.live.core.aligner.stats.to_dict()
            if self.live.core.continuous is not None:
                out["continuous"] = self.live.core.continuous.stats()
            out["streams"] = {h.name: h.to_dict() for h in self.live.health.values()}
        return out

    def __enter__(self) -> LiveSession:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ binding

    def rebind(self, role: str, stream_key: str) -> str:
        """Bind ``role`` to another stream visible at start (the dashboard's streams dialog).

        See :meth:`acquisition.lsl.live.LiveAcquisition.rebind_role`; the change goes to the
        predictions log as a ``rebind`` record. Raises ``RebindError`` (a ``ValueError``) with
        the reason when the stream cannot play the role.
        """
        with self._lock:
            if self.live is None:
                raise RuntimeError("start the session before rebinding")
            line = self.live.rebind_role(role, stream_key)
        self.worker.record({"event": "rebind", "role": role, "stream": stream_key, "note": line})
        self.say(line)
        return line

    # ------------------------------------------------------------------ recording

    @property
    def recording(self) -> Path | None:
        """The XDF file being recorded, or None."""
        rec = self._recorder
        return rec.path if rec is not None and rec.recording else None

    def _pre_start(self, live: Any) -> None:
        """Before the first inlet opens: start ``session.record_path``'s recording (its log
        record follows the session's). LabRecorder's engine cannot add the streams that appear
        later, so with it the recording starts once the roles are bound (:meth:`start`)."""
        if self.session.continuous_step is not None:
            # A few windows of backlog at most: after a stall the newest windows matter.
            live.core.enable_continuous(self.session.continuous_step, max_backlog=4)
        live.stream_listeners.append(self._record_new_stream)
        if self.session.record_path is not None and not self._records_late:
            self.start_recording(self.session.record_path, live=live, announce=False)

    @property
    def _records_late(self) -> bool:
        return self.session.record_backend == "labrecorder"

    def _record_new_stream(self, info: Any) -> None:
        """A stream bound after start joins the recording before its inlet opens."""
        rec = self._recorder
        if rec is not None and rec.recording:
            rec.add(info)

    def start_recording(self, path: Path | str, live: Any = None, announce: bool = True) -> Path:
        """Record every stream the session saw, plus its prediction outlets, to an XDF file.

        Uses :class:`acquisition.xdf.recorder.Recorder` with ``session.record_backend`` (ours,
        crash-safe, by default). Streams bound later join the file as they appear.
        """
        from acquisition.xdf.recorder import Recorder

        with self._lock:
            live = live if live is not None else self.live
            if live is None:
                raise RuntimeError("start the session before recording")
            if self._recorder is not None and self._recorder.recording:
                raise RuntimeError(f"already recording to {self._recorder.path}")
            backend = self.session.record_backend or "emoeye"
            own = set()
            if self.outlet is not None:
                own = {self.outlet.source_id, self.outlet.ids_source_id}
            # Discovery may have seen our own outlets too; they are added once below.
            infos = [i for i in live.infos.values() if i.source_id() not in own]
            if self.outlet is not None:
                import pylsl

                for sid in (self.outlet.source_id, self.outlet.ids_source_id):
                    found = pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=2.0)
                    infos += found[:1]  # a stream can be answered twice (one per interface)
            self._recorder = Recorder(path, streams=infos, backend=backend).start()
            if announce:
                self._announce_recording()
            return Path(path)

    def _announce_recording(self) -> None:
        rec = self._recorder
        self.worker.record({"event": "recording", "path": str(rec.path), "backend": rec.backend})
        self.say(f"recording to {rec.path} ({rec.backend})")

    def stop_recording(self) -> dict | None:
        """Stop the recording (footers written, file closed); returns its summary."""
        with self._lock:
            rec, self._recorder = self._recorder, None
            if rec is None or not rec.recording:
                return None
            summary = rec.stop()
            self.worker.record({"event": "recording_stopped", **summary})
            return summary


def hand_on(event: TrialEvent, worker: InferenceWorker, failures: FailureLog) -> None:
    """Give an onset's event to the worker (its trial to predict, or its error record to
    publish). When that raises, the onset's error record is published here instead: every
    onset ends as one record whatever fails."""
    item = event.trial if event.trial is not None else event.error
    try:
        worker.submit(item)
    except Exception as exc:
        failures.report(exc, "session", item.trial_id)
        worker.process(
            TrialError.from_exception(
                exc,
                "session",
                item.trial_id,
                item.onset,
                item.stimulus_id,
                item.participant,
                mode=item.mode,
            )  # fmt: skip
        )


def summary_line(summary: dict) -> str:
    """One line of what became of a session's onsets (``emoeye run`` prints it at the end)."""
    w = summary.get("worker", {})
    lat = w.get("latency_ms") or {}
    latency = f"; latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms" if lat else ""
    return (
        f"stopped: {summary.get('onsets', 0)} onset(s), {summary.get('trials_cut', 0)} trial(s) "
        f"cut; {w.get('predicted', 0)} predicted ({w.get('flagged', 0)} flagged), "
        f"{w.get('failed', 0)} failed ({w.get('errors', 0)} model error(s)), "
        f"{w.get('no_data', 0)} without usable data, {w.get('overflowed', 0)} skipped{latency}"
        + _continuous_part(summary)
    )


def _continuous_part(summary: dict) -> str:
    """``; continuous: N window(s) (...)`` when the session ran in continuous mode."""
    c = summary.get("continuous")
    if not c:
        return ""
    by = (summary.get("worker") or {}).get("continuous") or {}
    detail = ", ".join(f"{n} {k}" for k, n in sorted(by.items()))
    return (
        f"; continuous every {c['step']:g} s: {c['cut']} window(s)"
        + (f" ({detail})" if detail else "")
        + (f", {c['skipped']} skipped (backlog)" if c.get("skipped") else "")
    )


def predict_offline(
    source: Any,
    config: AcquisitionConfig | None = None,
    checkpoint: Path | str | None = None,
    log_path: Path | str | None = None,
    *,
    csv_path: Path | str | None = None,
    device: str = "auto",
    quality_threshold: float = 0.5,
    num_threads: int | None = 1,
    block_seconds: float = 1.0,
    on_trial: Callable[[Any], Any] | None = None,
    on_prediction: Callable[[Prediction], Any] | None = None,
    predictor: Any = None,
    sinks: list[Sink] | None = None,
    continuous_step: float | None = None,
    continuous_checkpoint: Path | str | None = None,
) -> dict:
    """Cut every trial of an offline source and predict it, as fast as the CPU allows.

    The same :class:`~inference.worker.InferenceWorker` code as live (embedding at onset,
    flags, error predictions), run in the caller's thread: trial order is data order and no
    trial can overflow a queue.

    Parameters
    ----------
    source
        An offline source (``.streams``, ``.iter_blocks(block_seconds)``): a simulation or
        :class:`~acquisition.xdf.source.XdfSource`.
    config
        Acquisition configuration (defaults).
    checkpoint
        Model checkpoint directory; None = the bundled default model.
    log_path
        Predictions log: ``.csv`` → CSV, anything else JSONL (ratings as separate records).
    csv_path
        An additional CSV log.
    device, quality_threshold, num_threads
        As in :class:`~inference.worker.WorkerConfig`.
    block_seconds
        Data seconds fed per step.
    on_trial
        Called with each trial as it is cut (before its prediction).
    on_prediction
        Called with each prediction as it is made.
    predictor
        An already loaded predictor (skips loading ``checkpoint``).
    sinks
        More sinks (e.g. a :class:`~inference.sinks.StoreSink`).
    continuous_step
        Continuous mode: also predict the last window every this many seconds of data, with or
        without markers (``on_trial`` still sees trials only).
    continuous_checkpoint
        A model trained for continuous use, to predict the windows (``checkpoint`` then
        predicts the trials only).

    Returns
    -------
    dict
        ``predictions`` (list of :class:`~inference.prediction.Prediction`, data order,
        continuous windows included: see ``mode``), ``aligner`` (its stats), ``worker`` (its
        stats), ``device``, ``checkpoint``, and in continuous mode ``continuous`` (window
        counters).

    Raises
    ------
    CliError
        A required role has no stream in the source (the message lists what is there).
    """
    from acquisition.offline_acquisition import UnboundSourceError, offline_acquisition

    config = config or AcquisitionConfig()
    with as_cli_error(UnboundSourceError):
        acq = offline_acquisition(
            source, config, "predict", require_markers=continuous_step is None
        )
    if continuous_step is not None:
        acq.enable_continuous(continuous_step)
    predictions: list[Prediction] = []
    publisher = Publisher([CallbackSink(predictions.append), *(sinks or [])])
    if on_prediction is not None:
        publisher.add(CallbackSink(on_prediction))
    if log_path is not None:
        publisher.add(log_sink_for(log_path))
    if csv_path is not None:
        publisher.add(CsvSink(csv_path))
    worker = InferenceWorker(
        predictor,
        checkpoint,
        WorkerConfig(
            device=device,
            num_threads=num_threads,
            quality_threshold=quality_threshold,
        ),
        publisher,
        catalogue=acq.catalogue,
        norms=norms_table(config),
    )
    window_worker = _window_worker(
        continuous_checkpoint if continuous_step is not None else None,
        worker,
        worker.config,
        publisher,
        acq.catalogue,
    )
    meta = getattr(worker.predictor, "meta", None) or {}
    worker.warm_up()
    if window_worker is not None:
        window_worker.warm_up()
    worker.record(
        {
            "event": "session",
            "started": _now_iso(),
            "mode": "offline",
            "source": str(getattr(source, "path", type(source).__name__)),
            "checkpoint": str(meta.get("path", checkpoint or "bundled")),
            "device": worker.device,
            "quality_threshold": quality_threshold,
            "continuous_step": continuous_step,
            "continuous_checkpoint": _model_path(window_worker),
        }
    )
    for w in (worker, window_worker):
        if w is not None and w.predictor.uses_stimulus:
            acq.aligner.onset_listeners.append(lambda _tid, _t, sid, w=w: w.prepare(sid))
    try:
        for event in acq.run_offline(source, block_seconds):
            if isinstance(event, TrialEvent):
                item = event.trial if event.trial is not None else event.error
                if on_trial is not None and event.trial is not None and item.mode == "trial":
                    on_trial(event.trial)
                if item.mode == "continuous" and window_worker is not None:
                    window_worker.process(item)
                else:
                    worker.process(item)
            record = rating_record(event)
            if record is not None:
                worker.record(record)
        worker.record(
            {
                "event": "session_end",
                "ended": _now_iso(),
                **_trial_counts(acq.aligner.stats.onsets, worker),
                "aligner": acq.aligner.stats.to_dict(),
                "worker": worker.stats.to_dict(),
                **({"continuous": acq.continuous.stats()} if acq.continuous else {}),
            }
        )
    finally:
        publisher.close()
    out = {
        "predictions": predictions,
        **_trial_counts(acq.aligner.stats.onsets, worker),
        "aligner": acq.aligner.stats.to_dict(),
        "worker": worker.stats.to_dict(),
        "device": worker.device,
        "checkpoint": str(meta.get("path", checkpoint or "bundled")),
    }
    if acq.continuous is not None:
        out["continuous"] = acq.continuous.stats()
    if window_worker is not None:
        out["window_worker"] = window_worker.stats.to_dict()
        out["worker"]["continuous"] = dict(window_worker.stats.continuous)
        out["continuous_checkpoint"] = _model_path(window_worker)
    return out


def norms_table(config: AcquisitionConfig) -> Any:
    """The config's ``[stimuli] norms`` table (:func:`models.norms.read_norms`), or None when
    none is set; an unreadable table is refused in one line (:class:`~emoeye.errors.CliError`).
    A model trained with norms (``--norms-input``) looks pictures up in it before the
    catalogue's own norms; any other model ignores it."""
    path = getattr(config, "stimulus_norms", None)
    if path is None:
        return None
    from models.norms import NormsError, read_norms

    with as_cli_error(NormsError):
        return read_norms(path, getattr(config, "norms_scale", None))


def _window_worker(
    checkpoint: Path | str | None,
    main: InferenceWorker,
    config: WorkerConfig,
    publisher: Publisher,
    catalogue: Any,
) -> InferenceWorker | None:
    """The worker of a model trained for continuous use (None when none is given). It
    publishes through the same sinks; its classes must match the main model's (one outlet)."""
    if checkpoint is None:
        return None
    from models.tiny_emotionet import TinyClassPredictor, is_tiny_checkpoint

    # A Tiny-EmotioNet (action units -> continuous affect) serves windows without a picture.
    predictor = (
        TinyClassPredictor(checkpoint, main.n_classes) if is_tiny_checkpoint(checkpoint) else None
    )
    table = getattr(main.predictor, "norm_table", None)  # the trial model's [stimuli] norms
    worker = InferenceWorker(
        predictor, checkpoint, config, publisher, catalogue=catalogue, norms=table
    )
    if worker.n_classes != main.n_classes:
        from models.checkpoint import CheckpointError

        raise CheckpointError(
            f"continuous model {checkpoint} has {worker.n_classes} classes per head, the "
            f"trial model {main.n_classes}: both must match (one outlet, one log format)"
        )
    return worker


def _model_path(worker: InferenceWorker | None) -> str | None:
    if worker is None:
        return None
    return str((getattr(worker.predictor, "meta", None) or {}).get("path", "?"))


def _trial_counts(onsets: int, worker: InferenceWorker) -> dict[str, int]:
    """What became of the onsets: the summary's and ``session_end``'s trial counters."""
    w = worker.stats
    return {
        "onsets": onsets,
        "trials_predicted": w.predicted,
        "trials_failed": w.failed,
        "trials_no_data": w.no_data,
        "trials_skipped": w.overflowed,
    }


__all__ = [
    "LiveSession",
    "SessionConfig",
    "hand_on",
    "predict_offline",
    "rating_record",
    "summary_line",
]
