"""Where predictions go: an LSL outlet (so LabRecorder records them beside the raw data), the
in-memory store the dashboard reads, and JSONL / CSV logs.

A sink never raises into the worker: :class:`Publisher` catches, counts and logs each failure
and goes on with the other sinks. Sinks are called in stages so the latency figure means what
it says: the LSL outlet first ("published": another program can see it), then the store (the
dashboard), then the logs on disk, each line flushed as it is written.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from inference.prediction import Prediction, PredictionStore

log = logging.getLogger(__name__)

OUTLET_NAME = "EmoEye-Predictions"
OUTLET_TYPE = "EmoEyePredictions"
IDS_OUTLET_NAME = "EmoEye-PredictionIds"
IDS_OUTLET_TYPE = "EmoEyePredictionIds"
STAGES = ("publish", "store", "log")


def outlet_labels(n_classes: int = 7) -> tuple[str, ...]:
    """Channel labels of the ``EmoEye-Predictions`` outlet, in order (docs/inference.md)."""
    return (
        "arousal",
        "valence",
        "arousal_class",
        "valence_class",
        *(f"p_arousal_{i}" for i in range(1, n_classes + 1)),
        *(f"p_valence_{i}" for i in range(1, n_classes + 1)),
        "quality",
        "flagged",
        "error",
        "latency_ms",
        "sequence",
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class Sink:
    """A prediction sink.

    Attributes
    ----------
    stage
        ``"publish"`` (visible to other programs), ``"store"`` (in-process readers) or ``"log"``
        (files); the publisher calls stages in that order.
    errors
        Failures so far (counted by the publisher).
    """

    name = "sink"
    stage = "log"

    def __init__(self) -> None:
        self.errors = 0
        self.last_error: str | None = None

    def write(self, prediction: Prediction) -> None:
        """Take one prediction."""

    def write_record(self, record: dict) -> None:
        """Take a non-prediction record (``event``: ``rating``, ``skipped``, ``session``...).

        Only log sinks keep these; the default ignores them.
        """

    def close(self) -> None:
        """Release the sink's resources (files, outlets)."""


class StoreSink(Sink):
    """Appends predictions to a :class:`~inference.prediction.PredictionStore`."""

    name = "store"
    stage = "store"

    def __init__(self, store: PredictionStore) -> None:
        super().__init__()
        self.store = store

    def write(self, prediction: Prediction) -> None:
        self.store.add(prediction)


class CallbackSink(Sink):
    """Calls ``fn(prediction)`` for each prediction (in the worker's thread: keep it short)."""

    name = "callback"
    stage = "store"

    def __init__(self, fn: Callable[[Prediction], Any]) -> None:
        super().__init__()
        self.fn = fn

    def write(self, prediction: Prediction) -> None:
        self.fn(prediction)


class JsonlSink(Sink):
    """One JSON object per line, flushed as written; appends to an existing file.

    Prediction lines are ``{"event": "prediction", **Prediction.to_dict()}``; records that hold
    no prediction have ``"event": "error"`` (cut or prediction failed) or ``"no_data"`` (a
    required role without usable data), with ``error`` saying why; other records (ratings,
    skipped trials, the session header) carry their own ``event``.
    """

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self.lines = 0

    def _line(self, obj: dict) -> None:
        self._fh.write(json.dumps(obj, default=_json_default) + "\n")
        self._fh.flush()  # a crash loses at most the line being written
        self.lines += 1

    def write(self, prediction: Prediction) -> None:
        self._line({"event": prediction.event, **prediction.to_dict()})

    def write_record(self, record: dict) -> None:
        self._line(record)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


CSV_COLUMNS = (
    "event",
    "trial_id",
    "onset",
    "stimulus_id",
    "participant",
    "arousal",
    "valence",
    "arousal_class",
    "valence_class",
    *(f"p_arousal_{i}" for i in range(1, 8)),
    *(f"p_valence_{i}" for i in range(1, 8)),
    "quality",
    "flagged",
    "flag_reason",
    "error",
    "latency_total_ms",
    "latency_model_ms",
    "rated_arousal",
    "rated_valence",
    "reason",
    "mode",
)
"""Columns of the CSV log (7-class probabilities; other class counts fill what fits)."""


class CsvSink(Sink):
    """One CSV row per prediction (and per rating / skipped trial), flushed as written.

    ``event`` is ``prediction``, ``error`` or ``no_data`` for trial records (``reason`` and
    ``error`` then say why), ``rating`` or ``skipped`` for the others; ``mode`` is ``trial`` or
    ``continuous`` on trial records.

    Appends to an existing file; the header is written when the file is new or empty.
    """

    name = "csv"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        columns = CSV_COLUMNS
        if not new:  # appending: keep the file's own header (an older one lacks ``mode``)
            with self.path.open(newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), None)
            columns = tuple(header) if header else CSV_COLUMNS
        self._fh = self.path.open("a", newline="", encoding="utf-8")
        self._w = csv.DictWriter(self._fh, columns, extrasaction="ignore")
        if new:
            self._w.writeheader()
            self._fh.flush()
        self.rows = 0

    def _row(self, row: dict) -> None:
        self._w.writerow(row)
        self._fh.flush()
        self.rows += 1

    def write(self, prediction: Prediction) -> None:
        p = prediction
        row: dict[str, Any] = {
            "event": p.event,
            "trial_id": p.trial_id,
            "onset": f"{p.onset:.6f}",
            "stimulus_id": p.stimulus_id,
            "participant": p.participant or "",
            "arousal": f"{p.arousal:.4f}",
            "valence": f"{p.valence:.4f}",
            "arousal_class": p.arousal_class,
            "valence_class": p.valence_class,
            "quality": p.quality.get("score", ""),
            "flagged": int(p.flagged),
            "flag_reason": p.flag_reason,
            "error": p.error or "",
            "reason": p.error or "",
            "latency_total_ms": f"{p.latency_ms.get('total', float('nan')):.3f}",
            "latency_model_ms": f"{p.latency_ms.get('model', float('nan')):.3f}",
            "mode": p.mode,
        }
        for i, v in enumerate(p.arousal_probs[:7], 1):
            row[f"p_arousal_{i}"] = f"{float(v):.5f}"
        for i, v in enumerate(p.valence_probs[:7], 1):
            row[f"p_valence_{i}"] = f"{float(v):.5f}"
        self._row(row)

    def write_record(self, record: dict) -> None:
        event = record.get("event")
        if event not in ("rating", "skipped"):
            return  # the session header has no row shape
        row = {k: record.get(k, "") for k in ("event", "trial_id", "stimulus_id", "participant")}
        row["onset"] = record.get("onset", "")
        row["reason"] = record.get("reason", "")
        if event == "rating":
            row["rated_arousal"] = record.get("arousal", "")
            row["rated_valence"] = record.get("valence", "")
        self._row(row)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class LslPredictionSink(Sink):
    """The ``EmoEye-Predictions`` LSL outlet, and ``EmoEye-PredictionIds`` beside it.

    ``EmoEye-Predictions``: type ``EmoEyePredictions``, irregular rate, float32 channels
    :func:`outlet_labels`. ``EmoEye-PredictionIds``: type ``EmoEyePredictionIds``, one string
    channel holding a JSON object (``trial_id``, ``stimulus_id``, ``participant``,
    ``sequence``, ``flag_reason``, ``error``, ``status``, ``mode``). Both samples of a
    prediction carry the same timestamp: the trial's onset (a continuous window's start) on
    this machine's LSL clock, so a recording lines each
    prediction up with the stimulus it describes (how late it came is the ``latency_ms``
    channel). ``sequence`` pairs the two samples.

    Parameters
    ----------
    n_classes
        Classes per head (the model's).
    source_id
        Source id of the numeric outlet (the ids outlet appends ``-ids``); a fresh uuid-based
        one when None.
    name
        Outlet name (the ids outlet is ``EmoEye-PredictionIds`` unless ``name`` differs, then
        ``<name>-Ids``).
    meta
        Extra facts written into the stream description (model path, device...).
    """

    name = "lsl"
    stage = "publish"

    def __init__(
        self,
        n_classes: int = 7,
        source_id: str | None = None,
        name: str = OUTLET_NAME,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        import pylsl

        self._pylsl = pylsl
        self.labels = outlet_labels(n_classes)
        self.n_classes = n_classes
        self.source_id = source_id or f"emoeye-predictions-{uuid.uuid4().hex[:12]}"
        self.ids_source_id = f"{self.source_id}-ids"
        self.stream_name = name
        self.ids_name = IDS_OUTLET_NAME if name == OUTLET_NAME else f"{name}-Ids"
        info = pylsl.StreamInfo(
            name,
            OUTLET_TYPE,
            len(self.labels),
            pylsl.IRREGULAR_RATE,
            pylsl.cf_float32,
            self.source_id,
        )
        desc = info.desc()
        desc.append_child_value("manufacturer", "EmoEye Live")
        channels = desc.append_child("channels")
        for label in self.labels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("type", "prediction")
        about = desc.append_child("emoeye")
        about.append_child_value("timestamp", "trial onset (LSL clock)")
        about.append_child_value("ids_stream", self.ids_name)
        for key, value in (meta or {}).items():
            about.append_child_value(str(key), str(value))
        self.outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=360)
        ids = pylsl.StreamInfo(
            self.ids_name,
            IDS_OUTLET_TYPE,
            1,
            pylsl.IRREGULAR_RATE,
            pylsl.cf_string,
            self.ids_source_id,
        )
        ids.desc().append_child_value("manufacturer", "EmoEye Live")
        ids.desc().append_child("channels").append_child("channel").append_child_value(
            "label", "prediction_json"
        )
        self.ids_outlet = pylsl.StreamOutlet(ids, chunk_size=1, max_buffered=360)
        self._sequence = 0
        self.pushed = 0

    def sample(self, p: Prediction, sequence: int) -> list[float]:
        """The numeric sample of a prediction (order of :func:`outlet_labels`)."""
        n = self.n_classes
        pa = np.resize(np.asarray(p.arousal_probs, np.float64), n)
        pv = np.resize(np.asarray(p.valence_probs, np.float64), n)
        lat = p.latency_ms
        # Pushed before the publish stamp: then "total" is not known yet, cut → model end is.
        latency = lat.get(
            "total", lat.get("queue", 0.0) + lat.get("embed", 0.0) + lat.get("model", 0.0)
        )
        return [
            p.arousal,
            p.valence,
            float(p.arousal_class),
            float(p.valence_class),
            *pa.tolist(),
            *pv.tolist(),
            float(p.quality.get("score", float("nan"))),
            float(p.flagged),
            float(p.error is not None),
            float(latency),
            float(sequence),
        ]

    def write(self, prediction: Prediction) -> None:
        self._sequence += 1
        seq = self._sequence
        stamp = prediction.onset if math.isfinite(prediction.onset) else self._pylsl.local_clock()
        self.outlet.push_sample(self.sample(prediction, seq), stamp)
        self.ids_outlet.push_sample(
            [
                json.dumps(
                    {
                        "trial_id": prediction.trial_id,
                        "stimulus_id": prediction.stimulus_id,
                        "participant": prediction.participant,
                        "sequence": seq,
                        "flag_reason": prediction.flag_reason,
                        "error": prediction.error,
                        "status": prediction.status,
                        "mode": prediction.mode,
                    }
                )
            ],
            stamp,
        )
        self.pushed += 1

    def close(self) -> None:
        # Outlets go when the last reference does; drop ours (inlets on them must be gone).
        self.outlet = None
        self.ids_outlet = None


class Publisher:
    """Calls every sink in stage order, stamps the latency, never raises.

    Parameters
    ----------
    sinks
        The sinks; more can be added with :meth:`add` (before predictions flow).
    """

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self.sinks: list[Sink] = []
        self.errors = 0
        self._lock = threading.Lock()
        for s in sinks:
            self.add(s)

    def add(self, sink: Sink) -> Sink:
        """Add a sink; returns it."""
        with self._lock:
            self.sinks.append(sink)
            self.sinks.sort(key=lambda s: STAGES.index(getattr(s, "stage", "log")))
        return sink

    def _call(self, sink: Sink, method: str, arg: Any) -> None:
        try:
            getattr(sink, method)(arg)
        except Exception as exc:  # a broken sink must not stop predictions reaching the others
            sink.errors = getattr(sink, "errors", 0) + 1
            sink.last_error = f"{type(exc).__name__}: {exc}"
            self.errors += 1
            if sink.errors <= 3 or sink.errors % 100 == 0:
                log.error(
                    "prediction sink %s failed (%d so far): %s",
                    getattr(sink, "name", sink),
                    sink.errors,
                    sink.last_error,
                )

    def publish(self, prediction: Prediction, cut: float, done: float) -> None:
        """Hand ``prediction`` to every sink.

        ``latency_ms["publish"]`` (model done → outlet pushed) and ``["total"]`` (trial cut →
        outlet pushed) are filled in after the ``publish`` stage, before the store and logs see
        the prediction.

        Parameters
        ----------
        cut, done
            ``time.perf_counter()`` stamps of the trial's cut and of the model's end.
        """
        with self._lock:
            stamped = False
            for sink in self.sinks:
                if not stamped and sink.stage != "publish":
                    self._stamp(prediction, cut, done)
                    stamped = True
                self._call(sink, "write", prediction)
            if not stamped:
                self._stamp(prediction, cut, done)

    @staticmethod
    def _stamp(prediction: Prediction, cut: float, done: float) -> None:
        now = time.perf_counter()
        prediction.latency_ms["publish"] = (now - done) * 1e3
        prediction.latency_ms["total"] = (now - cut) * 1e3

    def record(self, record: dict) -> None:
        """Hand a non-prediction record to every sink (logs keep it)."""
        record.setdefault("time", datetime.now(UTC).isoformat(timespec="milliseconds"))
        with self._lock:
            for sink in self.sinks:
                self._call(sink, "write_record", record)

    def close(self) -> None:
        """Close every sink (errors counted, not raised)."""
        with self._lock:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as exc:
                    self.errors += 1
                    log.error("closing sink %s failed: %s", getattr(sink, "name", sink), exc)

    def of_type(self, kind: type) -> list[Sink]:
        """The sinks that are instances of ``kind``."""
        return [s for s in self.sinks if isinstance(s, kind)]


def log_sink_for(path: str | Path) -> Sink:
    """A log sink chosen by suffix: ``.csv`` → :class:`CsvSink`, anything else JSONL."""
    path = Path(path)
    return CsvSink(path) if path.suffix.lower() == ".csv" else JsonlSink(path)


__all__ = [
    "CSV_COLUMNS",
    "IDS_OUTLET_NAME",
    "OUTLET_NAME",
    "OUTLET_TYPE",
    "CallbackSink",
    "CsvSink",
    "JsonlSink",
    "LslPredictionSink",
    "Publisher",
    "Sink",
    "StoreSink",
    "log_sink_for",
    "outlet_labels",
]
