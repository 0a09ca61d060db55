"""Prediction sinks: JSONL and CSV logs, the LSL outlet's layout, stage order."""

from __future__ import annotations

import csv
import json

import numpy as np
import pylsl
import pytest

from inference.prediction import Prediction
from inference.sinks import (
    CSV_COLUMNS,
    IDS_OUTLET_NAME,
    OUTLET_NAME,
    OUTLET_TYPE,
    CsvSink,
    JsonlSink,
    LslPredictionSink,
    Publisher,
    Sink,
    log_sink_for,
    outlet_labels,
)


def make_prediction(trial_id: str = "P01-1", onset: float = 12.5) -> Prediction:
    pa = np.array([0.05, 0.05, 0.1, 0.2, 0.4, 0.1, 0.1])
    pv = np.array([0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05])
    return Prediction(
        trial_id,
        onset,
        "coffee",
        pa,
        pv,
        participant="P01",
        quality={"score": 0.42},
        flagged=True,
        flag_reason="quality 0.42 < 0.5",
        latency_ms={"queue": 0.1, "embed": 0.0, "model": 4.0},
    )


def test_jsonl_and_csv_logs(tmp_path):
    jl, cs = JsonlSink(tmp_path / "p.jsonl"), CsvSink(tmp_path / "p.csv")
    pub = Publisher([jl, cs])
    pub.record({"event": "session", "mode": "test"})
    pub.publish(make_prediction(), cut=0.0, done=0.0)
    pub.record({"event": "rating", "trial_id": "P01-1", "arousal": 5, "valence": 2})
    pub.record({"event": "skipped", "trial_id": "P01-2", "reason": "inference queue full"})
    # Lines are on disk before close (flushed per line).
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["event"] for r in lines] == ["session", "prediction", "rating", "skipped"]
    pred = lines[1]
    assert pred["arousal_class"] == 5 and pred["valence_class"] == 1 and pred["flagged"]
    assert set(pred["latency_ms"]) == {"queue", "embed", "model", "publish", "total"}
    pub.close()
    # Appending keeps one header.
    cs2 = CsvSink(tmp_path / "p.csv")
    cs2.write(make_prediction("P01-3"))
    cs2.close()
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["event"] for r in rows] == ["prediction", "rating", "skipped", "prediction"]
    assert rows[0]["p_arousal_5"] == "0.40000" and rows[0]["flagged"] == "1"
    assert rows[1]["rated_arousal"] == "5" and rows[2]["reason"] == "inference queue full"
    assert isinstance(log_sink_for(tmp_path / "x.csv"), CsvSink)
    assert isinstance(log_sink_for(tmp_path / "x.jsonl"), JsonlSink)


def test_stage_order_and_latency_stamp():
    seen = []

    class Probe(Sink):
        def __init__(self, name, stage):
            super().__init__()
            self.name, self.stage = name, stage

        def write(self, p):
            seen.append((self.name, "total" in p.latency_ms))

    pub = Publisher([Probe("log", "log"), Probe("store", "store"), Probe("lsl", "publish")])
    pub.publish(make_prediction(), cut=0.0, done=0.0)
    # The outlet goes first and is what "published" means; store and logs see the total.
    assert seen == [("lsl", False), ("store", True), ("log", True)]


@pytest.mark.lsl
@pytest.mark.timeout(60)
def test_lsl_outlet_layout_and_samples(uid):
    sink = LslPredictionSink(source_id=f"pred-{uid}", meta={"device": "cpu"})
    found = pylsl.resolve_byprop("source_id", f"pred-{uid}", minimum=1, timeout=5.0)
    ids = pylsl.resolve_byprop("source_id", f"pred-{uid}-ids", minimum=1, timeout=5.0)
    inlet = pylsl.StreamInlet(found[0])
    ids_inlet = pylsl.StreamInlet(ids[0])
    try:
        info = inlet.info(timeout=5.0)
        assert info.name() == OUTLET_NAME and info.type() == OUTLET_TYPE
        assert info.nominal_srate() == pylsl.IRREGULAR_RATE
        assert info.channel_format() == pylsl.cf_float32
        labels = []
        ch = info.desc().child("channels").child("channel")
        while not ch.empty():
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        assert tuple(labels) == outlet_labels() and len(labels) == 23
        assert ids[0].name() == IDS_OUTLET_NAME
        inlet.open_stream(timeout=5.0)
        ids_inlet.open_stream(timeout=5.0)
        p = make_prediction(onset=1234.5)
        Publisher([sink]).publish(p, cut=0.0, done=0.0)
        sample, stamp = inlet.pull_sample(timeout=5.0)
        text, stamp_ids = ids_inlet.pull_sample(timeout=5.0)
        assert stamp == pytest.approx(1234.5) and stamp_ids == pytest.approx(1234.5)
        row = dict(zip(labels, sample, strict=True))
        assert row["arousal"] == pytest.approx(p.arousal, abs=1e-5)
        assert row["arousal_class"] == 5 and row["valence_class"] == 1
        assert row["p_arousal_5"] == pytest.approx(0.4) and row["flagged"] == 1
        assert row["quality"] == pytest.approx(0.42) and row["sequence"] == 1
        assert row["latency_ms"] == pytest.approx(4.1, abs=1e-3)
        meta = json.loads(text[0])
        assert meta["trial_id"] == "P01-1" and meta["sequence"] == 1
    finally:
        del inlet, ids_inlet  # inlets before outlets
        sink.close()
