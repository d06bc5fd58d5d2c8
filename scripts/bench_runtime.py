"""Benchmark the edge runtime (prints figures; not a test).

1. ``import runtime`` vs ``import tensorflow`` in fresh interpreters: wall time
   and resident memory (targets: runtime <= 0.3 s, <= 80 MB).
2. ``StreamingModel.step`` p50 latency on an LSTM stream model (target <= 10 us)
   next to a bare ``InferenceSession.run`` p50 on the same file, same threads,
   and the floor: the same session run through a pre-bound IOBinding alone;
   and what the step's thread lock costs (an uncontended acquire + release).
3. ``Model.predict`` on the LSTM full model at batch 1, T=28 against a bare
   ``InferenceSession.run`` on the same file and input (target: <= 1.05x).

    python scripts/bench_runtime.py [--model LSTM_stream.onnx] [--full-model LSTM_full.onnx]
                                    [--threads 1] [--steps 20000]

Without --model / --full-model, an untrained LSTM shaped like the pipeline's (28 x 28 rows,
128 units, 10 classes) is exported to a temporary folder first (needs the
``export`` extra; done in a subprocess so this process never loads TensorFlow).
Latencies are per call, interleaved in blocks so that both sides see the same
machine load; the figures are medians over all calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_PROBE = """
import sys, time
def rss_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
base = rss_mb()
t0 = time.perf_counter()
import {module}
dt = time.perf_counter() - t0
print({{"seconds": dt, "rss_mb": rss_mb(), "rss_delta_mb": rss_mb() - base}}.__repr__())
"""

EXPORT_LSTM = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from keras import layers
from exporters.export import export_model
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(28, 28), name="x"), layers.LSTM(128, name="lstm"),
                          layers.Dense(10, activation="softmax", name="classes")], name="lstm")
paths = export_model(model, sys.argv[1], variants=("full", "stream"), chunk=1).paths
print(paths["full"])
print(paths["stream"])
"""


def measure_import(module: str, reps: int) -> dict:
    runs = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(module=module)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300,
                             env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
        if out.returncode:
            return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
        runs.append(eval(out.stdout.strip().splitlines()[-1]))  # a dict literal we printed
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {"reps": reps}


def exported_lstm(folder: Path) -> tuple[Path, Path]:
    """(full, stream) exports of the benchmark LSTM."""
    out = subprocess.run([sys.executable, "-c", EXPORT_LSTM, str(folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise SystemExit(f"bench_runtime: could not export a benchmark LSTM (pass --model): "
                         f"{out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'failed'}")
    full, stream = out.stdout.strip().splitlines()[-2:]
    return Path(full), Path(stream)


def measure_step(model_path: Path, threads: int | None, steps: int, block: int = 500) -> dict:
    import numpy as np
    import onnxruntime as ort

    import runtime

    model = runtime.load(model_path, providers=["cpu"], threads=threads)
    if not isinstance(model, runtime.StreamingModel):
        raise SystemExit(f"bench_runtime: {model_path} is not a stream model")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    frame = rng.random((1, model.chunk) + model.features, dtype=np.float32)
    bare_frame = rng.random(frame.shape, dtype=np.float32)
    feed = {model.contract.input.name: bare_frame}
    feed.update({name: np.zeros(arr.shape, arr.dtype) for name, arr in model.state.items()})
    frame_no_time = frame[:, 0] if model.chunk == 1 else frame

    # the floor: onnxruntime alone, inputs and outputs pre-bound once (public IOBinding API)
    binding = session.io_binding()
    keep = [np.zeros(o.shape, np.float32) for o in session.run(None, feed)]
    for name, arr in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr))
    for out, arr in zip(session.get_outputs(), keep):
        binding.bind_ortvalue_output(out.name, ort.OrtValue.ortvalue_from_numpy(arr))
    run_bound = session.run_with_iobinding

    step, run = model.step, session.run
    lock = threading.Lock()

    def lock_alone():
        with lock:
            pass

    cases = {
        "bare InferenceSession.run": lambda: run(None, feed),
        "StreamingModel.step (1, chunk, features)": lambda: step(frame),
        "StreamingModel.step (1, features)": lambda: step(frame_no_time),
        "floor: pre-bound run_with_iobinding": lambda: run_bound(binding),
        "step's thread lock alone (acquire+release)": lock_alone,
    }
    return interleaved(cases, steps, block)


def measure_predict(model_path: Path, threads: int | None, calls: int, block: int = 200) -> dict:
    """Model.predict vs a bare InferenceSession.run on the same full model and input (batch 1)."""
    import numpy as np
    import onnxruntime as ort

    import runtime

    model = runtime.load(model_path, providers=["cpu"], threads=threads)
    if not isinstance(model, runtime.Model):
        raise SystemExit(f"bench_runtime: {model_path} is not a full model")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    shape = tuple(28 if d is None else d for d in model.input_shape[1:])  # T=28 when dynamic
    x = np.random.default_rng(0).random((1,) + shape, dtype=np.float32)
    feed = {model.input_name: x}
    np.testing.assert_allclose(model.predict(x), session.run(None, feed)[0], atol=1e-5)
    predict, run = model.predict, session.run
    cases = {"bare InferenceSession.run": lambda: run(None, feed), "Model.predict": lambda: predict(x)}
    result = interleaved(cases, calls, block)
    result["input_shape"] = list(x.shape)
    result["ratio"] = result["Model.predict"]["p50_us"] / result["bare InferenceSession.run"]["p50_us"]
    return result


def interleaved(cases: dict, calls: int, block: int) -> dict:
    """Per-call latencies (p50, p90) of each case, the cases taking turns in blocks of ``block`` calls."""
    clock = time.perf_counter_ns
    times = {name: [] for name in cases}
    for fn in cases.values():  # warm up
        for _ in range(block):
            fn()
    for _ in range(max(1, calls // block)):
        for name, fn in cases.items():
            samples = times[name]
            for _ in range(block):
                t0 = clock()
                fn()
                samples.append(clock() - t0)
    result = {}
    for name, samples in times.items():
        samples.sort()
        result[name] = {"p50_us": samples[len(samples) // 2] / 1e3,
                        "p90_us": samples[int(len(samples) * 0.9)] / 1e3, "calls": len(samples)}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the rnnx edge runtime.")
    parser.add_argument("--model", type=Path, help="an LSTM stream .onnx (default: export one)")
    parser.add_argument("--full-model", type=Path, help="an LSTM full .onnx, for Model.predict (default: export one)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both sides (default 1)")
    parser.add_argument("--steps", type=int, default=20000, help="timed calls per case (default 20000)")
    parser.add_argument("--import-reps", type=int, default=5, help="fresh interpreters per import (default 5)")
    parser.add_argument("--skip-tensorflow", action="store_true", help="do not time `import tensorflow`")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    figures = {"import": {}}
    print("== import in a fresh interpreter (median of reps) ==")
    modules = ["runtime"] + ([] if args.skip_tensorflow else ["tensorflow"])
    for module in modules:
        reps = args.import_reps if module == "runtime" else max(1, min(3, args.import_reps))
        res = measure_import(module, reps)
        figures["import"][module] = res
        if "error" in res:
            print(f"  import {module:<11} failed: {res['error']}")
        else:
            print(f"  import {module:<11} {res['seconds']:7.3f} s   RSS {res['rss_mb']:7.1f} MB "
                  f"(+{res['rss_delta_mb']:.1f} MB over the bare interpreter)   reps={res['reps']}")
    print("  targets: import runtime <= 0.3 s, <= 80 MB")

    with tempfile.TemporaryDirectory(prefix="rnnx-bench-") as tmp:
        stream_path, full_path = args.model, args.full_model
        if stream_path is None or full_path is None:
            exported_full, exported_stream = exported_lstm(Path(tmp))
            stream_path, full_path = stream_path or exported_stream, full_path or exported_full
        print(f"\n== per-call latency on {stream_path} (threads={args.threads}, {args.steps} calls each) ==")
        steps = measure_step(stream_path, args.threads, args.steps)
        calls = max(2000, args.steps // 4)
        predict = measure_predict(full_path, args.threads, calls)
    figures["step"], figures["predict"] = steps, predict
    bare = steps["bare InferenceSession.run"]["p50_us"]
    for name, res in steps.items():
        print(f"  {name:<42} p50 {res['p50_us']:7.2f} us   p90 {res['p90_us']:7.2f} us   "
              f"{res['p50_us'] / bare:5.2f}x bare")
    print("  targets: step p50 <= 10 us and <= 1.3x bare run; the floor is onnxruntime's own cost "
          "(no input check, no copies), which no wrapper can go below")

    print(f"\n== Model.predict vs bare run on {full_path}, input {tuple(predict['input_shape'])} "
          f"(threads={args.threads}, {predict['Model.predict']['calls']} calls each, interleaved) ==")
    bare = predict["bare InferenceSession.run"]["p50_us"]
    for name in ("bare InferenceSession.run", "Model.predict"):
        res = predict[name]
        print(f"  {name:<42} p50 {res['p50_us']:7.2f} us   p90 {res['p90_us']:7.2f} us   "
              f"{res['p50_us'] / bare:6.3f}x bare")
    print("  target: predict p50 <= 1.05x bare run")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
