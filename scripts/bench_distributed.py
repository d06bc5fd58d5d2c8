"""One process against N multi_worker processes on this machine: wall time and test accuracy.

    .venv/bin/python scripts/bench_distributed.py --model lstm --workers 2 --train-limit 20000 --epochs 1

Both runs use params.yaml with the overrides given here and the same global
batch (``train.<model>.batch_size``); the workers talk over 127.0.0.1 only.
"wall s" is process start to exit (the slowest worker), "fit s" the
training stage's own ``train_seconds``. On one machine the workers share its
cores, so this measures the cost of the collective all-reduce rather than a
speed-up; across machines each worker brings its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.distribute import local_tf_configs  # noqa: E402


def launch(params: Path, out: Path, tf_config: str | None, model: str):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = tf_config
    args = [sys.executable, "-m", "pipeline.train", model, "--params", str(params)]
    for d in ("models", "metrics", "plots"):
        args += [f"--{d}", str(out / d)]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run(params: Path, out: Path, workers: int, model: str, timeout: float) -> dict:
    configs = local_tf_configs(workers) if workers > 1 else [None]
    t0 = time.perf_counter()
    procs = [launch(params, out / f"w{i}", cfg, model) for i, cfg in enumerate(configs)]
    try:
        errs = [p.communicate(timeout=timeout)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    wall = time.perf_counter() - t0
    for p, err in zip(procs, errs):
        if p.returncode:
            sys.exit(f"a training process failed ({p.returncode}):\n{err[-2000:]}")
    metrics = json.loads((out / "w0" / "metrics" / "train" / f"{model}.json").read_text())
    return {"workers": workers, "wall_s": wall, **metrics}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--model", default="lstm", choices=["lstm", "gru", "cnn_lstm"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=20000, help="training samples (data.train_limit)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--units", type=int, default=None, help="override train.<model>.units")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["data"]["train_limit"] = args.train_limit
    base["train"][args.model].update({"epochs": args.epochs, **({"units": args.units} if args.units else {})})
    with tempfile.TemporaryDirectory(prefix="rnnx-dist-") as tmp:
        rows = []
        for kind, workers in (("none", 1), ("multi_worker", args.workers)):
            params = Path(tmp) / f"params.{kind}.yaml"
            params.write_text(yaml.safe_dump({**base, "train": {**base["train"], "distribute": kind}}))
            rows.append(run(params, Path(tmp) / kind, workers, args.model, args.timeout))
    cfg = base["train"][args.model]
    print(f"{args.model}: {rows[0]['n_train']} training samples, {args.epochs} epoch(s), global batch "
          f"{cfg.get('batch_size')}, units {cfg.get('units')}; {os.cpu_count()} cores on this machine")
    print(f"{'workers':>7} {'replicas':>8} {'wall s':>8} {'fit s':>8} {'test acc':>9}")
    for r in rows:
        print(f"{r['workers']:>7} {r['replicas']:>8} {r['wall_s']:>8.1f} {r['train_seconds']:>8.1f} "
              f"{r['test_accuracy']:>9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
