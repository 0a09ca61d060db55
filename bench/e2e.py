"""End-to-end benchmark: the device's last sample of a trial → the prediction in another program.

Three kinds of real processes talk over real LSL, in an LSL session of their own:

* this process plays the simulator (``lab`` device set) through
  :class:`~acquisition.xdf.player.LslPlayer`, with a ``SampleCounter`` channel appended to every
  regular stream; it logs the LSL time at which each sample was pushed;
* ``emoeye run --headless`` (or, with ``--with-dashboard``, the offscreen dashboard) predicts;
* a consumer process (``bench/e2e.py --consumer``) subscribed to ``EmoEye-Predictions`` logs the
  LSL time at which each prediction arrives.

A prediction's stamp is its trial onset (LSL clock); its trial window ends ``trial.duration``
later. The latency of a trial runs from the push time of the last sample inside that window,
over every bound stream (found through the counter for regular streams, by stamp for RR), to
the consumer's receipt. Two variants, reported separately:

* ``regular``: every bound data stream is regular (the RR stream is left out, heart rate comes
  from ECG/PPG);
* ``irregular``: heart rate comes from the RR-interval stream only (ECG and PPG left out), whose
  watermark holds cuts back on purpose until the next beat.

Prints one JSON line per variant and, last, a JSON object with all of them. Targets (2 cores):
headless p99 ≤ 60 ms, with the dashboard ≤ 100 ms, with ``--load 2`` ≤ 120 ms (and trial →
prediction p99 ≤ 15 ms).

Usage::

    python bench/e2e.py --seconds 60 [--variant regular|irregular|both] [--with-dashboard]
                        [--load N] [--isi 6] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
COUNTER = "SampleCounter"
TARGETS_MS = {"headless": 60.0, "dashboard": 100.0, "load": 120.0}
TRIAL_TO_PREDICTION_TARGET_MS = 15.0
LEFT_OUT = {"regular": ("RR",), "irregular": ("ECG", "PPG")}
"""Stream types left out of the lab set per variant, so that heart rate binds as intended."""


# --------------------------------------------------------------------------- device side


class CountedSource:
    """The simulation with a sample counter on every regular stream, some streams left out.

    An :class:`~acquisition.offline_acquisition.OfflineSource`: the counter is the sample's
    index in its stream since the start (float32 is exact up to 2**24 samples).
    """

    def __init__(self, sim, leave_out: tuple[str, ...]) -> None:
        self.sim = sim
        self.start_time = getattr(sim, "start_time", None)
        self.unix_epoch_keys = set(getattr(sim, "unix_epoch_keys", ()))
        self._specs = {}
        for spec in sim.streams:
            if spec.type in leave_out:
                continue
            if spec.nominal_srate > 0 and not spec.is_string:
                labels = tuple(spec.channel_labels) or tuple(
                    f"ch{i}" for i in range(spec.channel_count)
                )
                spec = dataclasses.replace(
                    spec, channel_count=spec.channel_count + 1, channel_labels=(*labels, COUNTER)
                )
            self._specs[spec.key] = spec
        self.streams = list(self._specs.values())
        self.counts = dict.fromkeys(self._specs, 0)

    def iter_blocks(self, block_seconds: float = 0.5) -> Iterator:
        from acquisition.offline_acquisition import Block
        from acquisition.streams import Chunk

        for block in self.sim.iter_blocks(block_seconds):
            chunks = []
            for c in block.chunks:
                spec = self._specs.get(c.stream.key)
                if spec is None:
                    continue
                values = c.values
                if spec.channel_count != c.stream.channel_count:
                    n = self.counts[spec.key]
                    counter = np.arange(n, n + len(values), dtype=np.float32)[:, None]
                    values = np.hstack([np.asarray(values, np.float32), counter])
                self.counts[spec.key] += len(values)
                chunks.append(Chunk(spec, c.timestamps, values, c.meta))
            yield Block(block.t_end, chunks)


def logging_player(source, **kw):
    """An LslPlayer that logs, per stream, each sample's stamp and the LSL time of its push."""
    import pylsl

    from acquisition.xdf.player import LslPlayer

    class _Player(LslPlayer):
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            self.pushes: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {
                s.key: [] for s in self.streams
            }

        def _push(self, block) -> None:
            super()._push(block)
            pushed_at = pylsl.local_clock()  # every chunk of the block is on the wire now
            for chunk in block.chunks:
                key = chunk.stream.key
                stamps = self.to_local(np.asarray(chunk.timestamps, np.float64), key)
                counter = (
                    np.asarray(chunk.values, np.float64)[:, -1]
                    if chunk.stream.channel_labels[-1:] == (COUNTER,)
                    else np.arange(len(stamps), dtype=np.float64)
                )
                self.pushes[key].append((stamps, counter, pushed_at))

    return _Player(source, **kw)


def push_log(player) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream key → (stamps, counters, push times), one entry per sample, in order."""
    out = {}
    for key, rows in player.pushes.items():
        if not rows:
            continue
        stamps = np.concatenate([r[0] for r in rows])
        counters = np.concatenate([r[1] for r in rows])
        pushed = np.concatenate([np.full(len(r[0]), r[2]) for r in rows])
        out[key] = (stamps, counters, pushed)
    return out


# --------------------------------------------------------------------------- consumer side


def consumer(out_path: Path, seconds: float) -> int:
    """Subscribe to ``EmoEye-Predictions`` and log (receipt LSL time, stamp, sequence) per line."""
    import pylsl

    deadline = time.monotonic() + seconds
    found = []
    while not found and time.monotonic() < deadline:
        found = pylsl.resolve_byprop("name", "EmoEye-Predictions", 1, 1.0)
    if not found:
        print("consumer: EmoEye-Predictions not found", file=sys.stderr)
        return 1
    inlet = pylsl.StreamInlet(found[0], max_buflen=60)
    labels = []
    ch = inlet.info(5.0).desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling()
    seq_col = labels.index("sequence") if "sequence" in labels else -1
    lat_col = labels.index("latency_ms") if "latency_ms" in labels else -1
    print("consumer: subscribed", flush=True)
    with open(out_path, "w") as fh:
        try:
            while time.monotonic() < deadline:
                sample, stamp = inlet.pull_sample(timeout=0.2)
                if sample is None:
                    continue
                received = pylsl.local_clock()
                row = {
                    "received": received,
                    "stamp": stamp,
                    "sequence": sample[seq_col],
                    "cut_to_model_ms": sample[lat_col] if lat_col >= 0 else float("nan"),
                }
                fh.write(json.dumps(row) + "\n")
                fh.flush()
        finally:
            del inlet
    return 0


# --------------------------------------------------------------------------- measurement


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, np.float64)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "max": round(float(a.max()), 2),
    }


def trial_latencies(log, received: list[dict], duration: float) -> list[tuple[float, float]]:
    """Per prediction: receipt − push time of the last sample inside its window, in ms.

    Trials whose window the player did not finish (cut when the session stopped) are left out.
    Each item is (e2e, e2e − the prediction's own cut → model figure): the second is the part
    spent before the trial was cut (inlet, watermark, the cut itself) plus the LSL delivery.
    """
    played_to = min((float(stamps[-1]) for stamps, _, _ in log.values()), default=-math.inf)
    out = []
    for row in received:
        end = row["stamp"] + duration
        if end > played_to:
            continue
        last_push = -math.inf
        for stamps, _counters, pushed in log.values():
            i = int(np.searchsorted(stamps, end, side="left")) - 1  # last stamp < window end
            if i >= 0 and stamps[i] >= row["stamp"] - 60:
                last_push = max(last_push, float(pushed[i]))
        if math.isfinite(last_push):
            e2e = (row["received"] - last_push) * 1000.0
            out.append((e2e, e2e - float(row.get("cut_to_model_ms", math.nan))))
    return out


def busy(n: int) -> list[subprocess.Popen]:
    """N processes that spin a core each (the --load of the issue)."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL)
        for _ in range(n)
    ]


def run_variant(args: argparse.Namespace, variant: str, work: Path) -> dict:
    from acquisition.config import load_config
    from acquisition.sim.simulator import Simulation, SimulationConfig

    duration = float(load_config(None).trial.duration)
    n_trials = max(int(args.seconds / args.isi) + 3, 3)
    sim = Simulation(SimulationConfig(device_set="lab", n_trials=n_trials, isi=args.isi, seed=0))
    source = CountedSource(sim, LEFT_OUT[variant])
    player = logging_player(source, block_seconds=args.block)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")
    env.pop("LSLAPICFG", None)
    cmd = [sys.executable, "-m", "emoeye", "--lsl-session", args.session, "run"]
    cmd += ["--log", str(work / f"{variant}.jsonl"), "--seconds", str(args.seconds + 60)]
    if args.with_dashboard:
        env["QT_QPA_PLATFORM"] = "offscreen"
    else:
        cmd.append("--headless")
    received_path = work / f"{variant}-received.jsonl"
    consumer_proc = subprocess.Popen(
        [sys.executable, __file__, "--consumer", str(received_path)]
        + ["--seconds", str(args.seconds + 60), "--session", args.session],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    t_spawn = time.monotonic()
    run_proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work
    )
    out_lines: list[str] = []
    bound = threading.Event()
    first_prediction: list[float] = []

    model_loaded: list[float] = []

    def read_stdout() -> None:
        for line in run_proc.stdout:
            out_lines.append(line.rstrip())
            if line.startswith("model:") and not model_loaded:
                model_loaded.append(time.monotonic() - t_spawn)
            if line.startswith("Bound roles:"):
                bound.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    err_lines: list[str] = []
    threading.Thread(target=lambda: err_lines.extend(run_proc.stderr), daemon=True).start()
    if not bound.wait(120) or consumer_proc.stdout.readline().strip() != "consumer: subscribed":
        run_proc.kill()
        consumer_proc.kill()
        raise SystemExit("e2e: run did not bind its streams:\n" + "\n".join(out_lines + err_lines))
    startup_s = time.monotonic() - t_spawn
    cpu0, wall0 = cpu_seconds(run_proc.pid), time.monotonic()
    rss0 = rss_mb(run_proc.pid)
    player.start()
    player.wait_started(10)
    t_play = time.monotonic()
    while time.monotonic() - t_play < args.seconds and player.running:
        time.sleep(0.2)
        if received_path.exists() and not first_prediction and received_path.stat().st_size:
            first_prediction.append(time.monotonic() - t_play)
    player.stop()
    player.join(5)
    time.sleep(max(2.0, args.block * 4))  # last trials: cut, predicted, delivered
    cpu1, wall1 = cpu_seconds(run_proc.pid), time.monotonic()
    rss1 = rss_mb(run_proc.pid)
    run_proc.send_signal(signal.SIGTERM)
    try:
        run_proc.wait(60)
    except subprocess.TimeoutExpired:
        run_proc.kill()
    consumer_proc.send_signal(signal.SIGTERM)
    try:
        consumer_proc.wait(10)
    except subprocess.TimeoutExpired:
        consumer_proc.kill()
    reader.join(5)
    log = push_log(player)
    player.close()
    received = []
    if received_path.exists():
        received = [json.loads(x) for x in received_path.read_text().splitlines() if x.strip()]
    end = {}
    for line in (work / f"{variant}.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("event") == "session_end":
            end = rec
    pushed_by_name = {s.name: player.samples_pushed[s.key] for s in source.streams}
    streams = end.get("streams", {})
    lost = {
        name: pushed_by_name[name] - int(h.get("samples", 0))
        for name, h in streams.items()
        if name in pushed_by_name
    }
    pairs = trial_latencies(log, received, duration)
    latencies = [e for e, _ in pairs]
    before_cut = [b for _, b in pairs if math.isfinite(b)]
    worker = end.get("worker", {})
    bound_lines = []
    if "Bound roles:" in out_lines:
        i = out_lines.index("Bound roles:") + 1
        while i < len(out_lines) and out_lines[i].startswith(" "):
            bound_lines.append(out_lines[i].strip())
            i += 1
    mode = "dashboard" if args.with_dashboard else "headless"
    target = TARGETS_MS["load"] if args.load else TARGETS_MS[mode]
    e2e = pct(latencies)
    t2p = worker.get("latency_ms") or {}
    return {
        "bench": "e2e",
        "variant": variant,
        "mode": mode,
        "load": args.load,
        "seconds": args.seconds,
        "e2e_latency_ms": e2e,
        "e2e_latencies_ms": [round(x, 1) for x in latencies],
        "push_to_cut_ms": pct(before_cut),
        "trials": int(end.get("trials_cut", 0)),
        "predictions": len(received),
        "samples_lost": int(sum(max(v, 0) for v in lost.values())),
        "samples_lost_by_stream": lost,
        "cpu_percent_one_core": round(100.0 * (cpu1 - cpu0) / max(wall1 - wall0, 1e-9), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "trial_to_prediction_ms": {k: t2p.get(k) for k in ("p50", "p99", "max") if k in t2p},
        "startup_to_model_s": round(model_loaded[0], 2) if model_loaded else None,
        "startup_to_bound_s": round(startup_s, 2),
        "first_prediction_after_play_s": round(first_prediction[0], 2)
        if first_prediction
        else None,
        "rss_mb": {"start": round(rss0, 1), "end": round(rss1, 1)},
        "bound": bound_lines,
        "run_exit": run_proc.returncode,
        "target_p99_ms": target,
        "meets_target": bool(e2e and e2e["p99"] <= target)
        and (not args.load or (t2p.get("p99") or 0) <= TRIAL_TO_PREDICTION_TARGET_MS),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="playing time per variant")
    parser.add_argument("--variant", choices=("regular", "irregular", "both"), default="both")
    parser.add_argument("--with-dashboard", action="store_true", help="offscreen dashboard")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside it")
    parser.add_argument("--isi", type=float, default=6.0, help="onset-to-onset interval, s")
    parser.add_argument("--block", type=float, default=0.05, help="device push period, s")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--session", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--consumer", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from acquisition.lsl.config import use_lsl_config

    if args.consumer is not None:
        use_lsl_config(args.session, "machine")
        sys.exit(consumer(args.consumer, args.seconds))
    args.session = f"e2e-{uuid.uuid4().hex[:8]}"
    use_lsl_config(args.session, "machine")
    variants = ("regular", "irregular") if args.variant == "both" else (args.variant,)
    load = busy(args.load)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="emoeye-e2e-") as tmp:
            for variant in variants:
                res = run_variant(args, variant, Path(tmp))
                print(json.dumps(res), flush=True)
                results.append(res)
    finally:
        for p in load:
            p.kill()
            p.wait()
    out = {"bench": "e2e", "variants": {r["variant"]: r for r in results}}
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
