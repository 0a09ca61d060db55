"""Training benchmark: throughput of the default model in trials/s (train and eval) and the
single-trial inference latency, on a dataset directory or on synthetic trials.

Prints one JSON object as its last line: trials_per_s_train, trials_per_s_eval, device, params,
threads, predict_ms_p50/p99 (one trial, cached stimulus embedding, 1 thread), embed_ms.

    python bench/training.py                      # synthetic, 8 participants x 100 trials
    python bench/training.py --data data/sim --device cuda --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from models.dataset import TrialDataset  # noqa: E402
from models.evaluate import predict_dataset  # noqa: E402
from models.network import count_parameters  # noqa: E402
from models.predictor import Predictor  # noqa: E402
from models.synthetic import write_synthetic_dataset  # noqa: E402
from models.train import resolve_device, train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="dataset directory (default: synthetic)")
    p.add_argument("--participants", type=int, default=8, help="synthetic participants")
    p.add_argument("--trials", type=int, default=100, help="synthetic trials per participant")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--latency-trials", type=int, default=300)
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    dev = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="emoeye-bench-") as tmp:
        data = args.data
        if data is None:
            data = write_synthetic_dataset(
                Path(tmp) / "ds",
                n_participants=args.participants,
                trials_per_participant=args.trials,
                seed=0,
            )
        result = train(
            data,
            Path(tmp) / "ckpt",
            epochs=args.epochs,
            batch_size=args.batch_size,
            device=str(dev),
            progress=False,
            patience=args.epochs + 1,
        )
        # Evaluation throughput: batched inference over every labelled trial, data loading included.
        pred = Predictor(result.checkpoint, device=str(dev), num_threads=None)
        ds = TrialDataset(data, pred.stats, image_size=pred.config.image_size)
        idx = ds.labelled()
        predict_dataset(pred.model, ds, idx[:256], device=dev)  # warm-up
        t0 = time.perf_counter()
        predict_dataset(pred.model, ds, idx, batch_size=256, device=dev)
        eval_tps = len(idx) / (time.perf_counter() - t0)
        # Single-trial latency as the live worker sees it: 1 thread, embedding cached at onset.
        torch.set_num_threads(1)
        cpu = Predictor(result.checkpoint, device="cpu", num_threads=1)
        cpu.warm_up(5)
        b = ds.arrays(idx[: args.latency_trials], ("signals", "baseline", "scanpath"))
        sids = ds.stimulus_ids[idx[: args.latency_trials]]
        t0 = time.perf_counter()
        embs = [cpu.embedding_for(str(s)) for s in np.unique(sids)]
        embed_ms = (time.perf_counter() - t0) * 1e3 / max(len(embs), 1)
        times = []
        for i in range(len(sids)):
            emb = cpu.embedding_for(str(sids[i]))
            t0 = time.perf_counter()
            cpu.predict(
                (b["signals"][i], b["baseline"][i], b["scanpath"][i].astype(np.float32)), emb
            )
            times.append((time.perf_counter() - t0) * 1e3)
        size = (result.checkpoint / "model.safetensors").stat().st_size
    out = {
        "bench": "training",
        "data": str(args.data) if args.data else f"synthetic {args.participants}x{args.trials}",
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": threads,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "params": count_parameters(pred.model),
        "model_bytes": size,
        "trials_per_s_train": round(result.trials_per_s, 1),
        "trials_per_s_eval": round(eval_tps, 1),
        "predict_ms_p50": round(float(np.percentile(times, 50)), 3),
        "predict_ms_p99": round(float(np.percentile(times, 99)), 3),
        "embed_ms": round(embed_ms, 3),
        "test_macro_f1": round(result.test_report["macro_f1_mean"], 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
