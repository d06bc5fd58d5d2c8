"""The onnxruntime side of the benchmark: one row per (model file, provider).

Each row runs the file through the edge runtime (``runtime.load``):
accuracy and parity on the whole test set (stream/unrolled fed chunk by
chunk with ``StreamingModel.feed``), batch-1 latency, throughput at larger
batches, per-step latency of streaming variants (``StreamingModel.step``),
file size and load time; latency and throughput for every thread setting.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

import runtime
from runtime.contract import PRECISIONS, VARIANTS

from .data import batch_of
from .timing import throughput, time_calls, timed_once
from ..errors import ModelFormatError

FEED_BATCH = 1024          # streams per call while computing outputs on the whole test set
LOAD_REPS = 3
STEP_REPS_FACTOR = 5       # a streaming step is ~100x cheaper than a sequence: time more of them
_NAME = re.compile(r"^(?P<variant>[A-Za-z0-9_-]+?)(?:\.(?P<precision>[A-Za-z0-9_-]+))?\.onnx$")


def model_files(path) -> list[Path]:
    """The .onnx files of a model directory (or the one file given), fp32 first, by variant."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".onnx":
            raise ModelFormatError(f"{str(path)!r} is not an .onnx file; expected a model directory or an .onnx file")
        return [path]
    if not path.is_dir():
        raise ModelFormatError(f"no model directory or .onnx file at {str(path)!r}")
    files = sorted(path.glob("*.onnx"), key=_order)
    if not files:
        raise ModelFormatError(f"{str(path)!r} holds no .onnx files; expected full.onnx, stream.onnx, ... "
                               "(run `rnnx export` first)")
    return files


def _order(p: Path):
    variant, precision = name_parts(p)
    return (PRECISIONS.index(precision) if precision in PRECISIONS else len(PRECISIONS), precision,
            VARIANTS.index(variant) if variant in VARIANTS else len(VARIANTS), variant)


def name_parts(path: Path) -> tuple[str, str]:
    """(variant, precision) from a file name such as ``stream.int8-dynamic.onnx``."""
    m = _NAME.match(path.name)
    if not m:
        return path.stem, "fp32"
    return m["variant"], m["precision"] or "fp32"


def open_quietly(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.UncheckedModelWarning)
        return runtime.load(path, **kwargs)


def describe(path: Path) -> dict:
    """variant, precision, input/output of a file (from its rnnx metadata, else its name and graph)."""
    model = open_quietly(path, providers=["cpu"], threads=1)
    variant, precision = name_parts(path)
    c = model.contract
    if c is not None:
        variant, precision = c.variant, c.precision
        in_shape, out_last = list(c.input.shape), c.output.shape[-1] if c.output.shape else None
    else:
        in_shape, out_last = list(model.input_shape), None
    return {"file": path.name, "path": str(path), "variant": variant, "precision": precision,
            "streaming": isinstance(model, runtime.StreamingModel),
            "chunk": getattr(model, "chunk", None), "input_shape": in_shape, "output_last": out_last,
            "source": dict(c.source) if c is not None else {}}


def outputs(path: Path, info: dict, x: np.ndarray, provider: str, threads: int | None) -> np.ndarray:
    """The file's outputs on all of x: ``predict`` for full models, ``feed`` (chunk by chunk) for streams."""
    if not info["streaming"]:
        return np.asarray(open_quietly(path, providers=[provider], threads=threads).predict(x))
    n = x.shape[0]
    size = min(FEED_BATCH, n)
    model = open_quietly(path, providers=[provider], threads=threads, batch=size)
    parts = []
    for i in range(0, n, size):
        part = x[i:i + size]
        rows = part.shape[0]
        model.reset()
        got = model.feed(batch_of(part, size) if rows < size else part)
        parts.append(got[:rows])
    return np.concatenate(parts, axis=0)


def accuracy(y_pred: np.ndarray, y: np.ndarray | None) -> float | None:
    if y is None:
        return None
    pred = y_pred.argmax(-1)
    if pred.shape != y.shape:
        return None
    return float(np.mean(pred == y))


def parity(got: np.ndarray, want: np.ndarray | None) -> dict | None:
    """max/mean |Δ| and argmax agreement of got against the reference outputs."""
    if want is None:
        return None
    if got.shape != want.shape:
        return {"max_abs_diff": None, "mean_abs_diff": None, "argmax_agreement": None,
                "reason": f"output shape {got.shape} differs from the reference's {want.shape}"}
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "argmax_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1)))}


def bench_file(info: dict, provider: str, x: np.ndarray, y, reference: np.ndarray | None, *,
               threads: dict, batches: list[int], reps: int) -> dict:
    """One row: every figure of one file on one provider (see module doc)."""
    path = Path(info["path"])
    all_threads = list(threads.values())[-1]
    row = {k: info[k] for k in ("file", "variant", "precision", "chunk")}
    row.update(provider=provider, size_bytes=path.stat().st_size, reason=None)
    loads = [timed_once(lambda: open_quietly(path, providers=[provider], threads=1))[1] for _ in range(LOAD_REPS)]
    row["load_ms"] = float(np.median(loads) * 1e3)
    usable = x.shape[1] - x.shape[1] % (info["chunk"] or 1) if info["streaming"] else x.shape[1]
    if usable != x.shape[1]:
        row.update(accuracy=None, parity=None,
                   reason=f"{x.shape[1]} steps are not a multiple of chunk {info['chunk']}: no accuracy/parity")
    else:
        got = outputs(path, info, x, provider, all_threads)
        row["accuracy"], row["parity"] = accuracy(got, y), parity(got, reference)
    row["latency_ms"], row["throughput"], row["step_us"] = {}, {}, {}
    for label, count in threads.items():
        row["throughput"][label] = {}
        for b in batches:
            model = open_quietly(path, providers=[provider], threads=count, batch=b)
            xb = batch_of(x[:, :usable], b)
            call = (lambda m=model, a=xb: m.feed(a)) if info["streaming"] else (lambda m=model, a=xb: m.predict(a))
            if b == 1:
                row["latency_ms"][label] = time_calls(call, reps)
                if info["streaming"]:
                    frame = np.ascontiguousarray(xb[:, :info["chunk"]])
                    stats = time_calls(lambda m=model, f=frame: m.step(f), reps * STEP_REPS_FACTOR)
                    row["step_us"][label] = {k: (v * 1e3 if k != "reps" else v) for k, v in stats.items()}
            else:
                row["throughput"][label][str(b)] = throughput(call, b, max(5, reps // 10))
    row["step_us"] = row["step_us"] or None
    return row
