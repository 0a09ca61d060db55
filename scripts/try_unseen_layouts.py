"""Try EmoEye as a new lab would: device layouts no preset describes, a config written from
docs/configuration.md, and ``emoeye run --headless`` started before the devices.

The devices are real LSL outlets in this process:

* ``NeonTracker`` (Gaze, 600 Hz): six *unlabelled* channels x_left, y_left, x_right, y_right,
  pupil_left, pupil_right, NaN during blinks; bound by a ``[roles.gaze]`` rule with 0-based
  column indices;
* ``E4_Gsr`` (GSR, 4 Hz, one channel labelled ``EDA``), ``E4_Bvp`` (BVP, 64 Hz) and ``E4_Hr``
  (HR, 1 Hz, one channel labelled ``hr``), all three stamped in Unix-epoch seconds;
* ``ExpMarkers`` (string): ``image_onset|stim=img_003.jpg`` and ``rating|arousal=5|valence=3``,
  parsed with the config's regexes; the pictures folder holds ``img_001.jpg`` ...

``--no-gsr`` leaves the GSR device out and requires only gaze and heart rate (a lab without a GSR
sensor). The first onset is sent one second after the streams appear. The script prints one JSON
object: onsets sent, records logged by status, onset error against the marker stamps, ratings
and pictures attached, flagged trials and why.

Usage: ``python scripts/try_unseen_layouts.py [--onsets 20] [--gap 6.5] [--no-gsr]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acquisition.lsl.config import use_lsl_config  # noqa: E402

SESSION = f"unseen-{uuid.uuid4().hex[:8]}"
use_lsl_config(SESSION, "machine")  # before pylsl loads: our own LSL session

import pylsl  # noqa: E402

CONFIG = """\
[trial]
required_roles = {required}

[markers]
onset = '^image_onset\\|stim=(?P<stimulus>[^|]+)$'
rating = '^rating\\|arousal=(?P<arousal>\\d+)\\|valence=(?P<valence>\\d+)$'

[stimuli]
folder = "{folder}"

[roles.gaze]
name = "NeonTracker.*"
kind = "gaze"
columns = {{ x_left = 0, y_left = 1, x_right = 2, y_right = 3, pupil_left = 4, pupil_right = 5 }}
"""


def outlet(name: str, type_: str, n: int, rate: float, labels=(), fmt=pylsl.cf_float32):
    info = pylsl.StreamInfo(name, type_, n, rate, fmt, f"{name}-{uuid.uuid4().hex[:8]}")
    if labels:
        chans = info.desc().append_child("channels")
        for label in labels:
            chans.append_child("channel").append_child_value("label", label)
    return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)


class Devices:
    """Regular streams pushed every 20 ms from a thread; E4 streams stamped in Unix time."""

    def __init__(self, gsr: bool) -> None:
        self.streams = {
            "gaze": (outlet("NeonTracker", "Gaze", 6, 600.0), 600.0, False),
            "bvp": (outlet("E4_Bvp", "BVP", 1, 64.0), 64.0, True),
            "hr": (outlet("E4_Hr", "HR", 1, 1.0, ("hr",)), 1.0, True),
        }
        if gsr:
            self.streams["gsr"] = (outlet("E4_Gsr", "GSR", 1, 4.0, ("EDA",)), 4.0, True)
        self.onsets: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def values(self, key: str, t: np.ndarray) -> np.ndarray:
        if key == "gaze":
            x = 0.5 + 0.2 * np.sin(t / 1.7)
            y = 0.5 + 0.15 * np.cos(t / 2.3)
            pupil = 3.5 + 0.3 * np.sin(t / 5)
            v = np.c_[x, y, x + 0.01, y, pupil, pupil + 0.1]
            v[np.mod(t, 4.0) < 0.15] = np.nan  # blinks
            return v
        if key == "bvp":
            phase = np.mod(t, 60 / 72) - 30 / 72
            return np.exp(-0.5 * (phase / 0.08) ** 2)[:, None]
        if key == "hr":
            return (72 + 3 * np.sin(t / 7))[:, None]
        scr = sum(0.4 * np.exp(-np.clip(t - o - 2, 0, None) / 3) * (t > o + 2) for o in self.onsets)
        return (2.0 + 0.05 * np.sin(t / 11) + scr)[:, None]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        start = pylsl.local_clock()
        sent = dict.fromkeys(self.streams, 0)
        epoch = time.time() - pylsl.local_clock()
        while not self._stop.wait(0.02):
            now = pylsl.local_clock()
            for key, (out, rate, unix) in self.streams.items():
                due = int((now - start) * rate)
                if due <= sent[key]:
                    continue
                t = start + np.arange(sent[key], due) / rate
                sent[key] = due
                stamps = t + epoch if unix else t
                out.push_chunk(self.values(key, t).astype(np.float32), stamps.tolist())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onsets", type=int, default=20)
    parser.add_argument("--gap", type=float, default=6.5, help="seconds between onsets")
    parser.add_argument("--no-gsr", action="store_true", help="no GSR device, not required")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="emoeye-unseen-"))
    pictures = work / "pictures"
    pictures.mkdir()
    bundled = sorted((ROOT / "acquisition" / "stimuli").glob("*.jpg"))
    for i, src in enumerate(bundled, 1):
        shutil.copy(src, pictures / f"img_{i:03d}.jpg")
    required = '["gaze", "hr"]' if args.no_gsr else '["gaze", "gsr", "hr"]'
    cfg = work / "lab.toml"
    cfg.write_text(CONFIG.format(required=required, folder=pictures))
    log = work / "predictions.jsonl"
    seconds = 8 + args.onsets * args.gap + 10
    cmd = [sys.executable, "-m", "emoeye", "--lsl-session", SESSION, "run", "--headless"]
    cmd += ["--config", str(cfg), "--log", str(log), "--seconds", f"{seconds:.0f}", "--wait", "60"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LSLAPICFG", None)  # the command writes its own for --lsl-session
    run = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    looking = threading.Event()

    def read_output() -> None:
        for line in run.stdout:
            lines.append(line.rstrip())
            if "waiting for streams" in line:
                looking.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    # The experimenter starts `emoeye run`, sees it waiting, then starts the devices: liblsl
    # gives a new inlet no samples sent before it connected.
    looking.wait(120.0)

    devices = Devices(gsr=not args.no_gsr)
    markers = outlet("ExpMarkers", "Markers", 1, 0.0, fmt=pylsl.cf_string)
    devices.start()
    time.sleep(1.0)  # the first onset one second after the streams appear
    sent: list[tuple[float, str, int, int]] = []
    rng = np.random.default_rng(0)
    for i in range(args.onsets):
        stim = f"img_{i % len(bundled) + 1:03d}.jpg"
        t = pylsl.local_clock()
        markers.push_sample([f"image_onset|stim={stim}"], t)
        devices.onsets.append(t)
        a, v = (int(x) for x in rng.integers(1, 8, 2))
        time.sleep(5.5)
        markers.push_sample([f"rating|arousal={a}|valence={v}"], pylsl.local_clock())
        sent.append((t, stim, a, v))
        time.sleep(max(0.0, args.gap - 5.5))
    run.wait(timeout=seconds + 120)
    reader.join(5.0)
    out = "\n".join(lines)
    devices.stop()
    del markers, devices

    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    trials = [r for r in records if r.get("event") in ("prediction", "error", "no_data")]
    ratings = {r["trial_id"]: r for r in records if r.get("event") == "rating"}
    by_onset = {t: [r for r in trials if abs(r["onset"] - t) < 0.5] for t, *_ in sent}
    errors_ms = [abs(rs[0]["onset"] - t) * 1000 for t, rs in by_onset.items() if rs]
    matched = [(t, stim, a, v, by_onset[t][0]) for t, stim, a, v in sent if by_onset[t]]
    rated = sum(
        1
        for _, _, a, v, r in matched
        if (g := ratings.get(r["trial_id"])) and (g["arousal"], g["valence"]) == (a, v)
    )
    unknown_pictures = sum(
        any("unknown stimulus" in n for n in r.get("quality", {}).get("notes", []))
        for *_, r in matched
    )
    status: dict[str, int] = {}
    for r in trials:
        status[r.get("status", "?")] = status.get(r.get("status", "?"), 0) + 1
    result = {
        "layout": "no-gsr (gaze + hr required)" if args.no_gsr else "e4 + 6-channel gaze",
        "onsets_sent": len(sent),
        "records": len(trials),
        "onsets_with_exactly_one_record": sum(len(rs) == 1 for rs in by_onset.values()),
        "onsets_without_record": [i for i, (t, *_) in enumerate(sent) if not by_onset[t]],
        "no_data_onsets": [
            i
            for i, (t, *_) in enumerate(sent)
            if by_onset[t] and by_onset[t][0]["status"] != "predicted"
        ],
        "status": status,
        "onset_error_ms_max": round(max(errors_ms), 3) if errors_ms else None,
        "ratings_attached": rated,
        "unknown_pictures": unknown_pictures,
        "flagged": sum(bool(r.get("flagged")) for *_, r in matched),
        "flag_reasons": sorted({r.get("flag_reason", "") for *_, r in matched} - {""}),
        "run_exit_code": run.returncode,
        "run_tail": out.strip().splitlines()[-3:],
        "run_output": out.strip().splitlines() if os.environ.get("UNSEEN_VERBOSE") else [],
    }
    print(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
