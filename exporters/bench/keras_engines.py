"""The TensorFlow side of the benchmark, run in a worker process per thread count.

TensorFlow fixes its thread pools when it first runs an op, so "1 thread" and
"all cores" need one process each; the ONNX side never imports TensorFlow.
A worker reads a job (JSON), and writes its result (JSON) and, when asked,
the Keras outputs on the whole test set (.npz):

    python -m exporters.bench.keras_engines JOB.json

Baselines, each on the same inputs as onnxruntime: ``keras_call``
(``model(x)``, eager), ``tf_function``, ``tf_function_xla``
(``jit_compile=True``), ``predict_on_batch``, and ``litert`` (batch 1,
see bench_litert). A baseline that fails is returned with its reason.
Progress lines go to stderr, prefixed ``[bench``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

from . import litert as bench_litert
from .data import batch_of
from .timing import throughput, time_calls, timed_once
from ..errors import InputShapeError, RnnxError

TF_BASELINES = ("keras_call", "tf_function", "tf_function_xla", "predict_on_batch")


def say(msg: str) -> None:
    print(f"[bench tf] {msg}", file=sys.stderr, flush=True)


def check_shapes(ref, onnx_input: list, onnx_out_last, keras_file: str) -> None:
    """The Keras model takes and returns what the ONNX models do (feature axes, classes)."""
    k_in = tuple(ref.inputs[0].shape)
    o_in = tuple(onnx_input)
    k_out_last = ref.outputs[0].shape[-1]
    fmt = lambda s: "(" + ", ".join("?" if d is None else str(d) for d in s) + ")"  # noqa: E731
    if len(k_in) != len(o_in) or any(a is not None and b is not None and a != b
                                     for a, b in zip(k_in[2:], o_in[2:])):
        raise InputShapeError(f"Keras model {keras_file} takes input {fmt(k_in)} but the ONNX models take "
                              f"{fmt(o_in)}; pass the Keras model they were exported from")
    if onnx_out_last is not None and k_out_last is not None and k_out_last != onnx_out_last:
        raise InputShapeError(f"Keras model {keras_file} returns {k_out_last} values per prediction but the "
                              f"ONNX models return {onnx_out_last}; pass the Keras model they were exported from")


def _set_threads(threads: int | None) -> None:
    import tensorflow as tf

    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _tf_calls(ref, x_shape, dtype):
    """name -> (function, whether it takes a tf.Tensor rather than numpy)."""
    import tensorflow as tf

    spec = [tf.TensorSpec([None, *x_shape[1:]], dtype)]
    call = lambda t: ref(t, training=False)  # noqa: E731
    return {
        "keras_call": (call, True),
        "tf_function": (tf.function(call, input_signature=spec), True),
        "tf_function_xla": (tf.function(call, input_signature=spec, jit_compile=True), True),
        "predict_on_batch": (ref.predict_on_batch, False),
    }


def measure_tf(ref, x, batches, reps, device: str, label: str) -> list[dict]:
    import tensorflow as tf

    rows = []
    for name, (fn, wants_tensor) in _tf_calls(ref, x.shape, x.dtype).items():
        row = {"name": name, "provider": device, "threads": label, "status": "ok", "reason": None,
               "latency_ms": None, "throughput": {}}
        try:
            with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
                for b in batches:
                    xb = batch_of(x, b)
                    arg = tf.constant(xb) if wants_tensor else xb
                    call = lambda: fn(arg)  # noqa: E731
                    _, first_s = timed_once(call)           # tracing / XLA compile happen here
                    if b == 1:
                        row["latency_ms"] = time_calls(call, reps)
                        row["first_call_s"] = first_s
                    else:
                        row["throughput"][str(b)] = throughput(call, b, _batch_reps(reps))
        except Exception as exc:  # a baseline that cannot run is reported, not fatal
            row.update(status="failed", reason=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
                       if str(exc).strip() else type(exc).__name__)
        say(f"{name} [{device}, threads {label}]: " + (
            f"p50 {row['latency_ms']['p50']:.3f} ms" if row["latency_ms"] else row["reason"] or "no batch 1"))
        rows.append(row)
    return rows


def measure_litert(ref, x, reps, threads, label, cache_dir, want_outputs):
    row = {"name": "litert", "provider": "cpu", "threads": label, "status": "ok", "reason": None,
           "latency_ms": None, "throughput": {}, "method": None,
           "throughput_reason": "the LiteRT model is converted for batch 1"}
    outputs = None
    try:
        blob_path = os.path.join(cache_dir, "model.tflite") if cache_dir else None
        if blob_path and os.path.exists(blob_path):
            with open(blob_path, "rb") as fh:
                blob = fh.read()
            with open(blob_path + ".json") as fh:
                row.update(json.load(fh))
        else:
            say("litert: converting (batch 1)")
            (blob, method, failures), seconds = timed_once(lambda: bench_litert.convert(ref, int(x.shape[1])))
            row.update(method=method, earlier_failures=failures, convert_s=seconds)
            if blob_path:
                with open(blob_path, "wb") as fh:
                    fh.write(blob)
                with open(blob_path + ".json", "w") as fh:
                    json.dump({"method": method, "earlier_failures": failures, "convert_s": seconds}, fh)
        runner = bench_litert.Runner(blob, threads)
        row["file_bytes"] = len(blob)
        x1 = np.ascontiguousarray(batch_of(x, 1), dtype=np.float32)
        row["latency_ms"] = time_calls(lambda: runner.run(x1), reps)
        if want_outputs:
            outputs = runner.outputs(x.astype(np.float32, copy=False))
        say(f"litert [{row['method']}, threads {label}]: p50 {row['latency_ms']['p50']:.3f} ms")
    except bench_litert.LiteRTUnavailable as exc:
        row.update(status="failed", reason=str(exc))
        say(f"litert: {exc}")
    return row, outputs


def _batch_reps(reps: int) -> int:
    return max(5, reps // 10)


def run_job(job: dict) -> dict:
    """Everything one worker does; returns the result dict (outputs written to job['outputs'])."""
    from .. import keras_io
    from ..graph import reference

    _set_threads(job.get("threads"))
    import tensorflow as tf

    model = keras_io.load_keras(job["keras"])
    ref, _ = reference.reference_model(model)
    check_shapes(ref, job["onnx_input"], job.get("onnx_output_last"), os.path.basename(job["keras"]))
    with np.load(job["data"]) as npz:
        x = npz["x"]
    label, batches, reps = job["threads_label"], job["batches"], int(job["reps"])
    result = {"baselines": [], "tf_gpu": bool(tf.config.list_physical_devices("GPU")), "notes": []}
    save = {}
    if job.get("outputs"):
        say(f"keras: outputs on {x.shape[0]} samples")
        save["keras"] = np.asarray(ref.predict(x, batch_size=512, verbose=0), np.float32)
    for device in job.get("devices", ["cpu"]):
        if device == "cuda" and not result["tf_gpu"]:
            result["notes"].append("TensorFlow sees no GPU (tensorflow-cpu, or no CUDA device): "
                                   "no TF rows on cuda")
            continue
        result["baselines"] += measure_tf(ref, x, batches, reps, device, label)
    if job.get("litert"):
        row, outputs = measure_litert(ref, x, reps, job.get("threads"), label, job.get("litert_cache"),
                                      bool(job.get("outputs")))
        result["baselines"].append(row)
        if outputs is not None:
            save["litert"] = outputs
    if save:
        np.savez(job["outputs"], **save)
    return result


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as fh:
        job = json.load(fh)
    try:
        result = run_job(job)
        code = 0
    except RnnxError as exc:
        result, code = {"error": {"type": type(exc).__name__, "message": str(exc)}}, 3
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason baselines are missing
        traceback.print_exc(file=sys.stderr)
        result, code = {"error": {"type": "crash", "message": f"{type(exc).__name__}: {exc}"}}, 4
    with open(job["result"], "w") as fh:
        json.dump(result, fh)
    return code


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
