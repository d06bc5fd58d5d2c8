"""The onnxruntime side of the benchmark: one row per (model file, provider).

Each row runs the file through the edge runtime (``runtime.load``):
accuracy and parity on the whole test set (stream/unrolled fed chunk by
chunk with ``StreamingModel.feed``), file size and load time. Its timings
(batch-1 latency, throughput, ``StreamingModel.step`` for several streams)
come from interleaved rounds, see ``exporters.bench.plan``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

import runtime
from runtime.contract import PRECISIONS, VARIANTS

from .data import batch_of
from .timing import timed_once
from ..errors import ModelFormatError

FEED_BATCH = 1024          # streams per call while computing outputs on the whole test set
LOAD_REPS = 3
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
            "clocked": c is not None and c.flush is not None,    # takes any length (flushed at the end)
            "chunk": getattr(model, "chunk", None), "input_shape": in_shape, "output_last": out_last,
            "source": dict(c.source) if c is not None else {},
            "input_range": list(c.input_range) if c is not None and c.input_range is not None else None,
            "input_dtype": c.input.dtype if c is not None else None,
            "vocab_size": c.input.vocab_size if c is not None else None,
            "parity_steps": (c.parity or {}).get("steps") if c is not None else None}


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


def file_row(info: dict, provider: str, x: np.ndarray, y, reference: np.ndarray | None, *,
             threads: int | None) -> dict:
    """A row's figures that need no timing rounds: size, load time, accuracy and parity on all of x.

    Latency, throughput and step figures are added from the interleaved rounds (``exporters.bench.run``).
    """
    path = Path(info["path"])
    row = {k: info[k] for k in ("file", "variant", "precision", "chunk")}
    row.update(provider=provider, size_bytes=path.stat().st_size, reason=None)
    loads = [timed_once(lambda: open_quietly(path, providers=[provider], threads=1))[1] for _ in range(LOAD_REPS)]
    row["load_ms"] = float(np.median(loads) * 1e3)
    whole = not info["streaming"] or info.get("clocked")
    usable = x.shape[1] if whole else x.shape[1] - x.shape[1] % (info["chunk"] or 1)
    if usable != x.shape[1]:
        row.update(accuracy=None, parity=None,
                   reason=f"{x.shape[1]} steps are not a multiple of chunk {info['chunk']}: no accuracy/parity")
    else:
        got = outputs(path, info, x, provider, threads)
        row["accuracy"], row["parity"] = accuracy(got, y), parity(got, reference)
    row.update(latency_ms={}, throughput={}, step_us={}, streams={}, speedup={}, speedup_ci={},
               throughput_ratio={}, throughput_ratio_ci={})
    return row
