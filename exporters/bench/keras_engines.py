"""The TensorFlow side of the benchmark, run in a worker process per thread count.

TensorFlow fixes its thread pools when it first runs an op, so "1 thread" and
"all cores" need one process each. A worker times the TensorFlow and LiteRT
baselines *and* the onnxruntime files of its thread setting, interleaved in
rounds (see :mod:`exporters.bench.plan`), so that load that comes and goes
lands on every engine alike. It reads a job (JSON), and writes its result
(JSON) and, when asked, the Keras and LiteRT outputs on the whole test set (.npz):

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
from .plan import run_plan, with_steps
from .timing import timed_once
from ..errors import InputShapeError, RnnxError

TF_BASELINES = ("keras_call", "tf_function", "tf_function_xla", "predict_on_batch")
SWEEP_BASELINES = ("tf_function", "tf_function_xla")
TF, LITERT = "tf:", "litert"


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


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


class TFSide:
    """The baselines' engines for each group of a plan (``plan.run_plan``'s ``extra``)."""

    def __init__(self, ref, x: np.ndarray, job: dict):
        import tensorflow as tf

        self.tf, self.ref, self.x, self.job = tf, ref, x, job
        self._call = lambda t: ref(t, training=False)  # noqa: E731
        self.fns = {}
        self.meta = {}        # (name, provider) -> {"first_call_s", "status", "reason", ...}
        self.litert_runners = {}

    def __call__(self, group: str, provider: str, batch: int, steps: int | None):
        tf = self.tf
        engines, skipped = {}, {}
        sweep = steps is not None
        names = SWEEP_BASELINES if sweep else TF_BASELINES
        if provider == "cuda" and not tf.config.list_physical_devices("GPU"):
            return engines, skipped
        xs = self.x if steps is None else with_steps(self.x, steps)
        xb = batch_of(xs, batch)
        for name in names:
            fn, wants_tensor = self._fns(xs.shape[1])[name]
            arg = tf.constant(xb) if wants_tensor else xb
            device = "/GPU:0" if provider == "cuda" else "/CPU:0"
            if provider == "cuda":
                def call(fn=fn, arg=arg, device=device):
                    with tf.device(device):
                        return fn(arg)
            else:
                call = lambda fn=fn, arg=arg: fn(arg)  # noqa: E731
            meta = self.meta.setdefault((name, provider), {"status": "ok", "reason": None})
            try:
                _, first = timed_once(call)             # tracing / XLA compile happen here
                if batch == 1 and not sweep:
                    meta["first_call_s"] = first
            except Exception as exc:  # a baseline that cannot run is reported, not fatal
                reason = _first_line(exc)
                skipped[TF + name] = reason
                if not sweep:
                    meta.update(status="failed", reason=reason)
                say(f"{name} [{provider}, {group}]: {reason}")
                continue
            engines[TF + name] = call
        if provider == "cpu" and batch == 1 and self.job.get("litert"):
            run = self._litert(steps if sweep else int(self.x.shape[1]), sweep)
            if isinstance(run, str):
                skipped[LITERT] = run
            else:
                x1 = np.ascontiguousarray(batch_of(xs, 1), dtype=np.float32)
                engines[LITERT] = lambda r=run, a=x1: r.run(a)
        return engines, skipped

    def _fns(self, steps: int) -> dict:
        """name -> (callable, whether it takes a tf.Tensor), traced for ``steps`` steps (XLA compiles per shape)."""
        if steps not in self.fns:
            tf, call = self.tf, self._call
            spec = [tf.TensorSpec([None, steps, *self.x.shape[2:]], self.x.dtype)]
            self.fns[steps] = {"keras_call": (call, True),
                               "tf_function": (tf.function(call, input_signature=spec), True),
                               "tf_function_xla": (tf.function(call, input_signature=spec, jit_compile=True), True),
                               "predict_on_batch": (self.ref.predict_on_batch, False)}
        return self.fns[steps]

    def _litert(self, steps: int, sweep: bool):
        """A LiteRT runner for ``steps`` steps (converted once, cached on disk), or the reason it cannot run."""
        if steps in self.litert_runners:
            return self.litert_runners[steps]
        cache = self.job.get("litert_cache")
        blob_path = os.path.join(cache, f"model-{steps}.tflite") if cache else None
        info = {}
        try:
            if blob_path and os.path.exists(blob_path):
                with open(blob_path, "rb") as fh:
                    blob = fh.read()
                with open(blob_path + ".json") as fh:
                    info = json.load(fh)
            else:
                say(f"litert: converting (batch 1, {steps} steps)")
                (blob, method, failures), seconds = timed_once(lambda: bench_litert.convert(self.ref, steps))
                info = {"method": method, "earlier_failures": failures, "convert_s": seconds}
                if blob_path:
                    with open(blob_path, "wb") as fh:
                        fh.write(blob)
                    with open(blob_path + ".json", "w") as fh:
                        json.dump(info, fh)
            runner = bench_litert.Runner(blob, self.job.get("threads"))
            info["file_bytes"] = len(blob)
        except bench_litert.LiteRTUnavailable as exc:
            runner = str(exc)
            say(f"litert ({steps} steps): {exc}")
        if not sweep:
            meta = self.meta.setdefault(("litert", "cpu"), {"status": "ok", "reason": None})
            meta.update(info)
            if isinstance(runner, str):
                meta.update(status="failed", reason=runner)
        self.litert_runners[steps] = runner
        return runner


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
    result = {"tf_gpu": bool(tf.config.list_physical_devices("GPU")), "notes": []}
    save = {}
    if job.get("outputs"):
        say(f"keras: outputs on {x.shape[0]} samples")
        save["keras"] = np.asarray(ref.predict(x, batch_size=512, verbose=0), np.float32)
    if "cuda" in job["plan"]["providers"] and not result["tf_gpu"]:
        result["notes"].append("TensorFlow sees no GPU (tensorflow-cpu, or no CUDA device): no TF rows on cuda")
    side = TFSide(ref, x, job)
    result["timed"] = run_plan(job["plan"], x, extra=side, progress=say)
    result["meta"] = [{"name": n, "provider": p, **m} for (n, p), m in side.meta.items()]
    if job.get("outputs") and job.get("litert"):
        runner = side.litert_runners.get(int(x.shape[1]))
        if runner is not None and not isinstance(runner, str):
            save["litert"] = runner.outputs(x.astype(np.float32, copy=False))
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
