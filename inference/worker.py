"""The inference worker: complete trials in, :class:`~inference.prediction.Prediction` out.

One thread owns the model. It is fed by a bounded queue of trials that the session's polling
thread fills as trials are cut, plus stimulus "embed" jobs raised at each onset (the stimulus
branch only needs the picture, so it runs while the 5-s window is still open and only the
time-series and scanpath branches remain when the trial closes). Nothing here ever runs model
code in the acquisition (LSL inlet) threads, and nothing is lost silently: a trial pushed out of
a full queue is counted, logged and written to the sinks as a ``skipped`` record; a model error
(or any error while predicting) gives a record with ``status="failed"``, ``error`` set and
uniform probabilities; a trial without usable data for a required role (see
``TrialSpec.min_coverage``) is never fed to the model and gives a ``status="no_data"`` record; an
onset whose cut failed (a :class:`~acquisition.trials.types.TrialError`) gives a ``failed``
record too; a sink error is counted. Every trial handed in ends as exactly one record.

Offline use (replay, benchmarks) calls :meth:`InferenceWorker.embed` and
:meth:`InferenceWorker.process` directly in the caller's thread: the same code path, no queue.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acquisition.reporting import FailureLog, is_milestone
from acquisition.trials.types import Trial, TrialError
from inference.prediction import Prediction
from inference.sinks import Publisher, Sink
from models.preprocess import prepare_inputs

log = logging.getLogger(__name__)

_QUIET_TRACING = threading.Lock()
"""Held while a worker traces or optimises its model with warnings silenced.
``warnings.catch_warnings`` swaps the process-wide filters: two workers starting at once (two
sessions in one process) interleaved their swaps, so one restored the other's "ignore" too
early (a TracerWarning leaked out) or for good (every later warning hidden)."""

DEVICES = ("auto", "cpu", "cuda")


class DeviceUnavailableError(RuntimeError):
    """The requested torch device cannot be used here; the message says what is available."""


def resolve_device(requested: str = "auto") -> str:
    """The torch device to run on.

    Parameters
    ----------
    requested
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    str
        A device string torch accepts.

    Raises
    ------
    DeviceUnavailableError
        CUDA was asked for explicitly but torch sees no CUDA device (an explicit request is
        not silently downgraded: the user would read CPU timings as GPU ones).
    """
    req = (requested or "auto").strip().lower()
    if req == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if req == "cpu":
        return "cpu"
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            raise DeviceUnavailableError(
                f"device {requested!r} requested but torch ({torch.__version__}, {build}) sees no "
                "CUDA GPU; use --device cpu or --device auto"
            )
        index = req.partition(":")[2]
        if index and int(index) >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
        return req
    raise DeviceUnavailableError(f"unknown device {requested!r}; use auto, cpu or cuda")


@dataclass
class WorkerConfig:
    """How the worker runs.

    Attributes
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` (see :func:`resolve_device`).
    num_threads
        ``torch.set_num_threads`` for the process (it is process-wide). 1 by default: one trial
        gains nothing from more, and on a 2-core machine the LSL inlet threads and the dashboard
        need the other core. None leaves torch's setting alone.
    queue_size
        Trials waiting at most; a new trial beyond it pushes the oldest out (reported).
    quality_threshold
        Trials whose ``quality.score`` is below it are predicted and flagged, never dropped.
    embedding_cache
        Stimulus embeddings kept (least recently used are evicted).
    warm_up
        Dummy predictions run before the first trial (lazy initialisation costs ~10x a trial).
    trace
        Run the trial branches through a ``torch.jit.trace`` of the model (checked against the
        eager model at warm-up; eager is used when tracing fails or differs). Eager PyTorch
        releases and re-takes the GIL around every op, so a busy Python thread (the dashboard)
        stretches a 4 ms trial to 12+ ms; the traced graph runs in C++ in one go.
    optimize
        Also freeze the traced graph and run ``torch.jit.optimize_for_inference`` on it
        (batch norm folded into the convolutions, oneDNN kernels on CPU): the forward falls from
        about 5.6 to 1.7 ms on the 2-core box. Checked against eager like the trace; the plain
        trace is used when it fails or differs.
    """

    device: str = "auto"
    num_threads: int | None = 1
    queue_size: int = 32
    quality_threshold: float = 0.5
    embedding_cache: int = 128
    warm_up: int = 3
    trace: bool = True
    optimize: bool = True


@dataclass
class WorkerStats:
    """Counters of the worker (read by the headless view, the dashboard and the CLI summary).

    Every trial handed in is one of ``predicted`` (the model ran), ``failed`` (its cut or its
    prediction raised: an error record), ``no_data`` (a required role without usable data:
    never fed to the model) or ``overflowed`` (pushed out of a full queue). ``errors`` counts
    the model's own failures among ``failed``; ``flagged`` the predictions that were flagged.
    Continuous-mode windows are counted apart, by status, in ``continuous`` (so the trial
    counters stay one per onset).
    """

    submitted: int = 0
    predicted: int = 0
    flagged: int = 0
    errors: int = 0
    failed: int = 0
    no_data: int = 0
    overflowed: int = 0
    continuous: dict = field(default_factory=dict)
    unknown_stimuli: int = 0
    embeds_at_onset: int = 0
    embeds_late: int = 0
    queue_depth: int = 0
    queue_depth_max: int = 0
    sink_errors: int = 0
    warm_up_ms: float = float("nan")
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000), repr=False)
    embed_ms: deque = field(default_factory=lambda: deque(maxlen=500), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, with latency percentiles of recent trials (cut → published)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("latencies_ms", "embed_ms")}
        out["continuous"] = dict(self.continuous)
        lat = np.asarray(self.latencies_ms, dtype=float)
        out["warm_up_ms"] = None if math.isnan(self.warm_up_ms) else round(self.warm_up_ms, 2)
        out["latency_ms"] = (
            {
                "p50": round(float(np.percentile(lat, 50)), 3),
                "p99": round(float(np.percentile(lat, 99)), 3),
                "max": round(float(lat.max()), 3),
                "n": int(lat.size),
            }
            if lat.size
            else None
        )
        emb = np.asarray(self.embed_ms, dtype=float)
        out["embed_ms_p50"] = round(float(np.median(emb)), 3) if emb.size else None
        return out


class _Jobs:
    """Bounded trial queue plus a small queue of onset "embed" jobs, one condition for both.

    Embed jobs are served first (they are due long before their trial closes) and never block
    nor evict trials; a trial put into a full queue evicts the *oldest* waiting trial, which is
    returned to the caller to report.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("queue_size must be >= 1")
        self.maxsize = maxsize
        self._trials: deque[tuple[Trial | TrialError, float]] = deque()
        self._embeds: deque[str] = deque(maxlen=64)
        self._cond = threading.Condition()
        self.closed = False

    def put_trial(self, trial: Trial | TrialError, stamp: float) -> Trial | TrialError | None:
        with self._cond:
            evicted = None
            if len(self._trials) >= self.maxsize:
                evicted = self._trials.popleft()[0]
            self._trials.append((trial, stamp))
            self._cond.notify()
            return evicted

    def put_embed(self, stimulus_id: str) -> None:
        with self._cond:
            if stimulus_id not in self._embeds:
                self._embeds.append(stimulus_id)
                self._cond.notify()

    def get(self, timeout: float) -> tuple[str, Any] | None:
        """("embed", id), ("trial", (trial, stamp)), or None on timeout / closed and empty."""
        with self._cond:
            if not (self._embeds or self._trials or self.closed):
                self._cond.wait(timeout)
            if self._embeds:
                return "embed", self._embeds.popleft()
            if self._trials:
                return "trial", self._trials.popleft()
            return None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._trials)

    def empty(self) -> bool:
        with self._cond:
            return not (self._trials or self._embeds)


class _TracedForward(torch.nn.Module):
    """``model(timeseries, scanpath, stimulus_embedding=...)`` with positional tensors only
    (what ``torch.jit.trace`` needs)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        timeseries: torch.Tensor,
        scanpath: torch.Tensor,
        embedding: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(timeseries, scanpath, stimulus_embedding=embedding)


def uniform_probs(n: int = 7) -> np.ndarray:
    """Uniform class probabilities (what an error or a skipped trial carries)."""
    return np.full(n, 1.0 / n, dtype=np.float32)


class InferenceWorker:
    """Turns cut trials into predictions on one thread that owns the model.

    Parameters
    ----------
    predictor
        A loaded :class:`models.predictor.Predictor` (anything with ``predict``,
        ``embed_stimulus``, ``config`` and ``uses_stimulus``); None loads ``checkpoint``.
    checkpoint
        Checkpoint directory when ``predictor`` is None; None = the bundled default model.
    config
        Device, threads, queue size, quality threshold (see :class:`WorkerConfig`).
    sinks
        Where predictions go (LSL outlet, store, logs); see :mod:`inference.sinks`.
    catalogue
        Stimulus images by id (``image(id, size)``, ``__contains__``); the bundled one when None.
    norms
        For a model trained with the pictures' norms: a norms table (the config's
        ``[stimuli] norms``, :func:`models.norms.read_norms`), consulted before the catalogue's
        own norms; a picture neither knows is predicted with its norms masked and flagged.

    Examples
    --------
    >>> worker = InferenceWorker(sinks=[StoreSink(store)])       # doctest: +SKIP
    >>> worker.start()
    >>> aligner.onset_listeners.append(worker.on_onset)
    >>> worker.submit(trial)                                     # when it is cut
    >>> worker.stop()                                            # drains: every trial predicted
    """

    def __init__(
        self,
        predictor: Any = None,
        checkpoint: str | Path | None = None,
        config: WorkerConfig | None = None,
        sinks: Iterable[Sink] = (),
        catalogue: Any = None,
        norms: Any = None,
    ) -> None:
        self.config = config or WorkerConfig()
        if predictor is None:
            from models.predictor import Predictor

            self.device = resolve_device(self.config.device)
            predictor = Predictor(checkpoint, self.device, num_threads=self.config.num_threads)
        else:
            self.device = str(getattr(predictor, "device", "cpu"))
            if self.config.num_threads is not None:
                torch.set_num_threads(max(1, int(self.config.num_threads)))
        self.predictor = predictor
        self.n_classes = int(getattr(predictor.config, "n_classes", 7))
        if catalogue is None:
            from acquisition.stimulus_catalogue import default_catalogue

            catalogue = default_catalogue()
        self.catalogue = catalogue
        if getattr(predictor, "uses_norms", False):
            # The session's table (else the predictor's own), then the session's pictures.
            predictor.set_norms(norms if norms is not None else predictor.norm_table, catalogue)
        self.publisher = sinks if isinstance(sinks, Publisher) else Publisher(list(sinks))
        self.stats = WorkerStats()
        self._jobs = _Jobs(self.config.queue_size)
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._neutral: Any = None
        self._traced: Any = None
        self.fast_path = "eager"
        """How the model runs: ``eager``, ``traced`` or ``optimized`` (set at warm-up)."""
        self._cache_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        """Set once the model is warmed up (the thread is about to take trials)."""
        self.busy = threading.Event()
        """Set while the thread works on a job (embedding or trial)."""
        self.error: BaseException | None = None
        """An unexpected error that ended the worker thread (model errors do not)."""
        self.failures = FailureLog(log)
        """Repeated failures, logged with a traceback once and then at milestones."""

    # ------------------------------------------------------------------ feeding

    def on_onset(self, trial_id: str, onset: float, stimulus_id: str) -> None:
        """Onset listener for :attr:`acquisition.aligner.TrialAligner.onset_listeners`.

        Only queues an embed job: it runs in the thread that polls the aligner.
        """
        if self.predictor.uses_stimulus and stimulus_id not in self._cache:
            self._jobs.put_embed(stimulus_id)

    def submit(self, trial: Trial | TrialError) -> bool:
        """Queue a cut trial for prediction, or an onset's error record for publishing (never
        blocks; error records keep their place among the trials).

        Returns
        -------
        bool
            False when the queue was full and the oldest waiting trial was pushed out (it is
            counted in ``stats.overflowed`` and written to the sinks as a ``skipped`` record).
        """
        now = time.perf_counter()
        if isinstance(trial, Trial) and math.isnan(trial.cut_time):
            trial.cut_time = now
        if self._jobs.closed:
            # Stopped already (a trial cut after stop()): predict it here rather than lose it.
            self.process(trial)
            return True
        self.stats.submitted += 1
        evicted = self._jobs.put_trial(trial, now)
        depth = len(self._jobs)
        self.stats.queue_depth = depth
        self.stats.queue_depth_max = max(self.stats.queue_depth_max, depth)
        if evicted is not None:
            self._skip(evicted, f"inference queue full ({self.config.queue_size} trials waiting)")
            return False
        return True

    def _skip(self, trial: Trial | TrialError, reason: str) -> None:
        self.stats.overflowed += 1
        n = self.stats.overflowed
        # Every skip is a record in the sinks; the terminal gets the 1st, 10th, 100th...
        if n == 1:
            log.warning(
                "trial %s not predicted: %s; inference is slower than trials arrive, the "
                "oldest waiting trial is skipped (counted, logged as 'skipped')",
                trial.trial_id, reason,
            )  # fmt: skip
        elif is_milestone(n):
            log.warning("trial %s not predicted: %s (%d skipped so far)", trial.trial_id, reason, n)
        self.publisher.record(
            {
                "event": "skipped",
                "trial_id": trial.trial_id,
                "onset": round(trial.onset, 6),
                "stimulus_id": trial.stimulus_id,
                "participant": trial.participant,
                "reason": reason,
                "mode": getattr(trial, "mode", "trial"),
            }
        )

    # ------------------------------------------------------------------ model work

    def warm_up(self) -> float:
        """Prepare the fast path and run dummy predictions, so the first trial does not pay for
        lazy initialisation.

        Returns the last call's milliseconds.
        """
        n = self.config.warm_up
        if self.config.trace and self._traced is None:
            self._traced = self._trace()
        ms = float(self.predictor.warm_up(n)) if n > 0 else 0.0
        if self._traced is not None:
            for _ in range(max(1, n)):
                t0 = time.perf_counter()
                self._traced(*self._dummy_inputs())
                ms = (time.perf_counter() - t0) * 1e3
        self.stats.warm_up_ms = ms
        return ms

    def _dummy_inputs(self) -> tuple:
        cfg = self.predictor.config
        dev = self.predictor.device
        ts = torch.zeros((1, cfg.channels, cfg.n_time), device=dev)
        sp = torch.zeros(
            (1, cfg.scanpath_channels, cfg.scanpath_size, cfg.scanpath_size), device=dev
        )
        if not self.predictor.uses_stimulus:
            return ts, sp
        return ts, sp, self._neutral_embedding() + 0.1

    def _trace(self) -> Any:
        """A traced (B=1) forward of the predictor's model, or None (then eager is used)."""
        model = getattr(self.predictor, "model", None)
        if not isinstance(model, torch.nn.Module) or not hasattr(self.predictor, "stats"):
            return None
        if getattr(getattr(model, "config", None), "roles", ()):
            return None  # EEG / face inputs vary per trial (present or masked): eager
        if getattr(getattr(model, "config", None), "use_norms", False):
            return None  # the pictures' norms (known or masked) go through the Predictor: eager
        wrapper = _TracedForward(model).eval()
        inputs = self._dummy_inputs()
        try:
            with _QUIET_TRACING, warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent branches
                traced = torch.jit.trace(wrapper, inputs, check_trace=False)
            self._check_against_eager(wrapper, traced, inputs)
        except Exception as exc:  # an exotic model: eager is correct, just slower under load
            log.info("model not traced (%s); running eager", exc)
            return None
        self.fast_path = "traced"
        if not self.config.optimize:
            return traced
        try:
            with _QUIET_TRACING, warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                optimized = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
            self._check_against_eager(wrapper, optimized, inputs)
        except Exception as exc:  # a build without oneDNN, say: the plain trace is correct
            log.info("traced model not optimised (%s); running the plain trace", exc)
            return traced
        self.fast_path = "optimized"
        return optimized

    @staticmethod
    def _check_against_eager(wrapper: torch.nn.Module, fast: Any, inputs: tuple) -> None:
        """Raise when ``fast`` gives logits more than 1e-4 away from the eager model's, on
        random inputs of the traced shapes (zeros would leave most weights untested)."""
        gen = torch.Generator().manual_seed(0)
        inputs = tuple(torch.rand(x.shape, generator=gen).to(x.device) for x in inputs)
        with torch.inference_mode():
            ref, got = wrapper(*inputs), fast(*inputs)
        diff = max(float((a - b).abs().max()) for a, b in zip(ref, got, strict=True))
        if not diff < 1e-4:
            raise ValueError(f"fast path differs from eager by {diff:g}")

    def _predict(self, trial: Trial, emb: Any) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n,), (n,) of one trial: traced fast path or the Predictor."""
        if self._traced is None:
            pa, pv = self.predictor.predict([trial], None if emb is None else [emb])
            return np.asarray(pa[0], np.float64), np.asarray(pv[0], np.float64)
        cfg = self.predictor.config
        inputs = prepare_inputs(trial, self.predictor.stats, cfg.n_time, cfg.scanpath_size)
        dev = self.predictor.device
        args = [inputs.timeseries.to(dev), inputs.scanpath.to(dev)]
        if emb is not None:
            args.append(emb.reshape(1, -1).to(dev))
        with torch.inference_mode():
            la, lv = self._traced(*args)
            # One transfer, softmax of 2x7 values in numpy: every torch call re-takes the GIL.
            logits = torch.cat([la, lv]).float().cpu().numpy().astype(np.float64)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        return probs[0], probs[1]

    def _neutral_embedding(self) -> Any:
        if self._neutral is None:
            cfg = self.predictor.config
            size = int(getattr(cfg, "image_size", 64))
            ref = self.predictor.embed_stimulus(np.zeros((3, size, size), np.float32))
            self._neutral = torch.zeros_like(ref)
        return self._neutral

    def prepare(self, stimulus_id: str) -> None:
        """Embed a stimulus now, at its onset, unless cached (the worker thread's embed job;
        offline callers use it as their onset listener)."""
        if self.predictor.uses_stimulus and stimulus_id not in self._cache:
            self.embed(stimulus_id)
            self.stats.embeds_at_onset += 1

    def embed(self, stimulus_id: str) -> tuple[Any, str | None]:
        """The stimulus embedding (cached, LRU) and a note when it is a neutral stand-in.

        Unknown ids or unreadable images give a zero embedding and a note (the trial is then
        flagged), never an exception.
        """
        if not self.predictor.uses_stimulus:
            return None, None
        if not stimulus_id:  # a continuous window with no onset before it: by design, no note
            return self._neutral_embedding(), None
        with self._cache_lock:
            hit = self._cache.get(stimulus_id)
            if hit is not None:
                self._cache.move_to_end(stimulus_id)
                return hit
        note = None
        t0 = time.perf_counter()
        if stimulus_id not in self.catalogue:
            self.stats.unknown_stimuli += 1
            note = f"unknown stimulus {stimulus_id!r}: neutral stimulus embedding"
            emb = self._neutral_embedding()
        else:
            try:
                size = int(getattr(self.predictor.config, "image_size", 64))
                image = self.catalogue.image(stimulus_id, size=size)
                emb = self.predictor.embed_stimulus(image)
                self.stats.embed_ms.append((time.perf_counter() - t0) * 1e3)
            except Exception as exc:  # unreadable picture: predict without it, say so
                note = f"stimulus {stimulus_id!r} could not be embedded ({exc}): neutral embedding"
                log.warning("%s", note)
                emb = self._neutral_embedding()
        with self._cache_lock:
            self._cache[stimulus_id] = (emb, note)
            while len(self._cache) > max(1, self.config.embedding_cache):
                self._cache.popitem(last=False)
        return emb, note

    def process(self, trial: Trial | TrialError, taken: float | None = None) -> Prediction:
        """Predict one trial and publish the record; never raises for the trial's sake.

        A trial without usable data gives a ``no_data`` record without running the model; an
        error record (a cut that failed) or any exception while predicting gives a ``failed``
        record (uniform probabilities, ``error`` set). Exactly one record is published.

        Parameters
        ----------
        trial
            A cut trial (``cut_time`` stamps the start of the latency figures), or the error
            record of an onset whose cut failed.
        taken
            ``perf_counter()`` when the worker took it off the queue (now when None).
        """
        taken = time.perf_counter() if taken is None else taken
        cut = getattr(trial, "cut_time", math.nan)
        cut = cut if not math.isnan(cut) else taken
        try:
            if isinstance(trial, TrialError):
                prediction, done = self._failed(trial, None, cut, taken), None
            elif not trial.predictable:
                prediction, done = self._no_data(trial, cut, taken), None
            else:
                prediction, done = self._predicted(trial, cut, taken)
        except Exception as exc:  # quality figures or the record itself raised
            self.failures.report(exc, "predict", trial.trial_id)
            error = TrialError.from_exception(
                exc, "predict", trial.trial_id, trial.onset, trial.stimulus_id, trial.participant,
                mode=trial.mode,
            )  # fmt: skip
            prediction, done = self._failed(error, None, cut, taken), None
        self._publish(prediction, cut, done or time.perf_counter())
        return prediction

    def _predicted(self, trial: Trial, cut: float, taken: float) -> tuple[Prediction, float | None]:
        """Run the model on a trial: its prediction and when the model was done (a model error
        gives a ``failed`` record and None)."""
        reasons: list[str] = []
        cached = not trial.stimulus_id or trial.stimulus_id in self._cache
        t_embed = t_model = time.perf_counter()
        try:
            emb, note = self.embed(trial.stimulus_id)
            if note:
                reasons.append(note)
            t_model = time.perf_counter()
            pa, pv = self._predict(trial, emb)
            role_notes = getattr(self.predictor, "role_notes", None)
            if role_notes is not None:  # optional roles (docs/modalities.md)
                flags, notes = role_notes(trial)
                reasons.extend(flags)
                trial.quality.notes.extend(n for n in notes if n not in trial.quality.notes)
            if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(pv))):
                raise FloatingPointError("the model returned non-finite probabilities")
        except Exception as exc:  # one bad trial must not stop the session
            self.stats.errors += 1
            self.failures.report(exc, "predict", trial.trial_id)
            error = TrialError.from_exception(
                exc, "predict", trial.trial_id, trial.onset, trial.stimulus_id, trial.participant,
                mode=trial.mode,
            )  # fmt: skip
            return self._failed(error, trial, cut, taken), None
        t_done = time.perf_counter()
        if self.predictor.uses_stimulus and not cached:
            self.stats.embeds_late += 1
        score = trial.quality.score
        threshold = self.config.quality_threshold
        if score < threshold:
            causes = ", ".join(trial.quality.causes(threshold))
            reasons.insert(
                0, f"quality {score:.2f} < {threshold:g}" + (f" ({causes})" if causes else "")
            )
        prediction = Prediction(
            trial_id=trial.trial_id,
            onset=float(trial.onset),
            stimulus_id=trial.stimulus_id,
            arousal_probs=pa,
            valence_probs=pv,
            participant=trial.participant,
            quality=trial.quality.to_dict(),
            flagged=bool(reasons),
            flag_reason="; ".join(reasons),
            latency_ms={
                "queue": (taken - cut) * 1e3,
                "embed": (t_model - t_embed) * 1e3,
                "model": (t_done - t_model) * 1e3,
            },
            mode=trial.mode,
        )
        return prediction, t_done

    def _no_data(self, trial: Trial, cut: float, taken: float) -> Prediction:
        """The record of a trial whose required roles lack usable data (model not run)."""
        reason = "no usable data: " + "; ".join(trial.quality.unusable)
        return self._record(trial, "no_data", reason, trial.quality.to_dict(), cut, taken)

    def _failed(
        self, error: TrialError, trial: Trial | None, cut: float, taken: float
    ) -> Prediction:
        """The record of an onset whose cut or prediction failed."""
        quality: dict = {}
        if trial is not None:
            try:
                quality = trial.quality.to_dict()
            except Exception:  # the quality itself may be what failed
                quality = {}
        return self._record(error, "failed", error.reason, quality, cut, taken)

    def _record(
        self,
        item: Trial | TrialError,
        status: str,
        reason: str,
        quality: dict,
        cut: float,
        taken: float,
    ) -> Prediction:
        uniform = uniform_probs(self.n_classes).astype(np.float64)
        return Prediction(
            trial_id=str(item.trial_id),
            onset=float(item.onset),
            stimulus_id=str(item.stimulus_id),
            arousal_probs=uniform,
            valence_probs=uniform.copy(),
            participant=item.participant,
            quality=quality,
            flagged=True,
            flag_reason=reason,
            latency_ms={"queue": (taken - cut) * 1e3, "embed": 0.0, "model": 0.0},
            error=reason,
            status=status,
            mode=getattr(item, "mode", "trial"),
        )

    def _publish(self, prediction: Prediction, cut: float, done: float) -> None:
        """Hand the record to the sinks and count it by status."""
        self.publisher.publish(prediction, cut, done)
        if prediction.mode == "continuous":
            self.stats.continuous[prediction.status] = (
                self.stats.continuous.get(prediction.status, 0) + 1
            )
            if prediction.status == "predicted":
                self.stats.latencies_ms.append(prediction.latency_ms["total"])
        elif prediction.status == "predicted":
            self.stats.predicted += 1
            self.stats.flagged += prediction.flagged
            self.stats.latencies_ms.append(prediction.latency_ms["total"])
        elif prediction.status == "no_data":
            self.stats.no_data += 1
        else:
            self.stats.failed += 1
        self.stats.sink_errors = self.publisher.errors

    def record(self, record: dict) -> None:
        """Write a non-prediction record (e.g. a rating) to the log sinks, in order."""
        self.publisher.record(record)

    # ------------------------------------------------------------------ thread

    def start(self) -> InferenceWorker:
        """Start the worker thread (it warms the model up first); returns self."""
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            try:
                self.warm_up()
            except Exception as exc:  # a model that cannot run at all: errors per trial say so
                log.error("model warm-up failed: %s", exc)
            self.ready.set()
            while True:
                job = self._jobs.get(timeout=0.2)
                if job is None:
                    if self._jobs.closed and self._jobs.empty():
                        break
                    continue
                kind, item = job
                self.busy.set()
                try:
                    if kind == "embed":
                        self.prepare(item)
                    else:
                        trial, _stamp = item
                        self.stats.queue_depth = len(self._jobs)
                        self.process(trial, time.perf_counter())
                finally:
                    self.busy.clear()
        except BaseException as exc:  # reported through stop() and .error, never silent
            self.error = exc
            log.exception("inference worker died")
        finally:
            self.ready.set()

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Trials queued and not yet taken."""
        return len(self._jobs)

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop taking new work and wait until every queued trial is predicted and published.

        Returns True when the queue drained in time. Trials submitted after this are predicted
        in the submitting thread, so none is lost. The sinks are *not* closed here (the session
        owns them; see :meth:`close`).
        """
        self._jobs.close()
        drained = True
        if self._thread is not None:
            self._thread.join(timeout)
            drained = not self._thread.is_alive()
        if not drained:
            log.error("inference worker did not drain within %s s", timeout)
            return False
        # Never started, or died: predict what is still queued here rather than lose it.
        while (job := self._jobs.get(0)) is not None:
            if job[0] == "trial":
                self.process(job[1][0])
        return self.error is None

    def close(self) -> None:
        """Stop (draining) and close the sinks."""
        self.stop()
        self.publisher.close()
        self.stats.sink_errors = self.publisher.errors
