"""Data for quantization: calibration feeds, predictions and accuracy of an ONNX model.

The model is described by a `ModelInfo` (graph I/O plus the `rnnx` contract,
or none for a plain ONNX file). Stream and unrolled variants are always fed
chunk by chunk with their states carried from call to call: calibration sees
the states a real stream produces (obtained by running the fp32 source), and
accuracy is that of whole sequences streamed, as an edge app would see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.contract import Contract
from runtime.errors import InputValueError

from ..validation import samples as samples_mod
from ..validation import parity as validate
from ..errors import ConfigError, DataError, InputShapeError

CALIBRATION_BATCH = 32
PREDICT_BATCH = 256
RANDOM_SAMPLES = 8


@dataclass(frozen=True)
class ModelInfo:
    """What quantization needs to know about a model file."""

    path: Path
    inputs: list            # [{"name", "shape", "dtype"}] from inspect_onnx.describe
    outputs: list
    op_counts: dict
    meta: dict | None       # the raw `rnnx` metadata, None for a plain ONNX file
    contract: Contract | None

    @property
    def x_name(self) -> str:
        return self.contract.input.name if self.contract else self.inputs[0]["name"]

    @property
    def x_shape(self) -> tuple:
        """Input shape, None for dynamic dims (contract first, else the graph's)."""
        if self.contract:
            return tuple(self.contract.input.shape)
        return tuple(d if isinstance(d, int) else None for d in self.inputs[0]["shape"])

    @property
    def streaming(self) -> bool:
        return bool(self.contract and self.contract.streaming)

    @property
    def chunk(self) -> int | None:
        if not self.streaming:
            return None
        return int(self.contract.chunk or self.contract.input.shape[1])

    @property
    def state_specs(self) -> list[tuple]:
        """(input, output, units) per state, in contract order (exporters.validation.parity's layout)."""
        return [(s.input, s.output, s.units) for s in self.contract.states] if self.streaming else []


def read_arrays(source, role: str, *, need_labels: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) from a .npz path ('x', optional 'y'), a dict, an (x, y) pair or an array."""
    if isinstance(source, (str, Path)):
        x, y = samples_mod.read(source)
    elif isinstance(source, dict):
        if "x" not in source:
            raise DataError(f"{role} data has no array 'x' (keys {sorted(source)})")
        x, y = np.asarray(source["x"]), (np.asarray(source["y"]) if "y" in source else None)
    elif isinstance(source, tuple) and len(source) == 2:
        x, y = np.asarray(source[0]), np.asarray(source[1])
    else:
        x, y = np.asarray(source), None
    if need_labels and y is None:
        raise DataError(f"{role} data has no integer labels 'y'; accuracy needs them (.npz with 'x' and 'y')")
    return x, y


def check_x(x: np.ndarray, info: ModelInfo, role: str) -> tuple[np.ndarray, list[str]]:
    """`x` as float32 checked against the model input; returns (x, warnings).

    Shape: (N, T, *features) with the model's features (T = a multiple of the
    chunk for stream/unrolled, the model's own T where it is fixed). dtype: a
    float type, or uint8 when the metadata says the model takes scaled uint8
    pixels (then x * uint8_scale is used).
    """
    want = info.x_shape
    shown = "(" + ", ".join("N" if i == 0 else ("T" if d is None or (info.streaming and i == 1) else str(d))
                            for i, d in enumerate(want)) + ")"
    if info.streaming:
        shown += f" with T a multiple of chunk {info.chunk}"
    if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
        raise InputShapeError(f"{role} data 'x' has dtype {x.dtype}; expected float32 (or uint8 pixels)")
    if x.ndim != len(want) or x.shape[0] == 0 or any(
            d is not None and got != d for i, (got, d) in enumerate(zip(x.shape, want)) if i > 0
            and not (info.streaming and i == 1)):
        raise InputShapeError(f"{role} data 'x' has shape {tuple(x.shape)}; expected {shown} "
                              f"for input {info.x_name!r} of {info.path.name}")
    warnings = []
    scale = info.contract.uint8_scale if info.contract else None
    if x.dtype.kind in "iu":
        if x.dtype == np.uint8 and scale:
            x = x.astype(np.float32) * np.float32(scale)
        else:
            raise InputShapeError(f"{role} data 'x' has dtype {x.dtype}; expected float32"
                                  + (" (uint8 only for a model whose metadata has a uint8_scale)"))
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise InputValueError(f"{role} data 'x' holds NaN or inf values; expected finite numbers")
    if info.streaming:
        steps = x.shape[1] - x.shape[1] % info.chunk
        if steps == 0:
            raise InputShapeError(f"{role} data 'x' has {x.shape[1]} time steps; the model takes chunks "
                                  f"of {info.chunk}, so at least {info.chunk} are needed")
        if steps != x.shape[1]:
            warnings.append(f"{role} sequences trimmed from {x.shape[1]} to {steps} steps "
                            f"(a multiple of chunk {info.chunk})")
            x = x[:, :steps]
    lo_hi = info.contract.input_range if info.contract else None
    if lo_hi is not None and x.size and (x.min() < lo_hi[0] or x.max() > lo_hi[1]):
        warnings.append(f"{role} data lies in [{x.min():.4g}, {x.max():.4g}], outside the model's declared "
                        f"input range [{lo_hi[0]:g}, {lo_hi[1]:g}]")
    return x, warnings


def check_labels(y: np.ndarray, x: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Integer labels: (N,) or, for per-step outputs, (N, T)."""
    per_step = bool(info.contract and info.contract.per_step)
    want = (x.shape[0], x.shape[1]) if per_step else (x.shape[0],)
    if y.dtype.kind not in "iu":
        raise InputShapeError(f"evaluation labels 'y' have dtype {y.dtype}; expected integer class indices")
    if per_step and y.ndim == 2 and y.shape[0] == x.shape[0] and y.shape[1] >= x.shape[1]:
        y = y[:, :x.shape[1]]  # sequences trimmed to a multiple of the chunk
    if tuple(y.shape) != want:
        raise InputShapeError(f"evaluation labels 'y' have shape {tuple(y.shape)}; expected {want} "
                              f"(one per {'step of each ' if per_step else ''}sample of 'x' {tuple(x.shape)})")
    return y.astype(np.int64)


def random_x(info: ModelInfo, n: int = RANDOM_SAMPLES, seed: int = 0) -> np.ndarray:
    """Shaped random inputs within the declared range (uniform [0, 1) without one)."""
    dims = list(info.x_shape)
    if dims and dims[0] is not None:
        n = dims[0]
    shape = [n] + [(info.chunk if info.streaming and i == 1 else 8) if d is None else d
                   for i, d in enumerate(dims) if i > 0]
    lo, hi = (info.contract.input_range if info.contract and info.contract.input_range else (0.0, 1.0))
    return (lo + (hi - lo) * np.random.default_rng(seed).random(shape)).astype(np.float32)


def _batches(n: int, size: int, fixed: int | None):
    """Row slices of at most `size` (exactly `fixed` rows when the model's batch is fixed)."""
    step = fixed or size
    for start in range(0, n, step):
        yield start, min(start + step, n)


def _pad(xb: np.ndarray, fixed: int | None) -> np.ndarray:
    if fixed is None or len(xb) == fixed:
        return xb
    return np.concatenate([xb, np.repeat(xb[:1], fixed - len(xb), axis=0)], axis=0)


def calibration_feeds(model_bytes: bytes, info: ModelInfo, x: np.ndarray):
    """Yield input dicts for a calibrator: whole sequences for `full`; for stream and
    unrolled one dict per chunk, with the states the fp32 model has reached so far."""
    fixed = info.x_shape[0]
    if info.contract is None and len(info.inputs) > 1:
        from ..errors import QuantizationError

        raise QuantizationError(f"{info.path.name} has no rnnx metadata and {len(info.inputs)} inputs "
                                f"{[i['name'] for i in info.inputs]}; calibration can only feed a single input")
    sess = validate.session(model_bytes) if info.streaming else None
    for start, stop in _batches(len(x), CALIBRATION_BATCH, fixed):
        xb = _pad(x[start:stop], fixed)
        if sess is None:
            yield {info.x_name: xb}
            continue
        states = {s.input: np.full((len(xb), s.units), s.init, np.float32) for s in info.contract.states}
        outs = [s.output for s in info.contract.states]
        for t in range(0, xb.shape[1], info.chunk):
            feed = {info.x_name: np.ascontiguousarray(xb[:, t:t + info.chunk]), **states}
            yield feed
            states = dict(zip(states, sess.run(outs, feed)))


def make_reader(model_bytes: bytes, info: ModelInfo, x: np.ndarray):
    """An onnxruntime CalibrationDataReader over `calibration_feeds` (rewindable)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self.calls = 0
            self.rewind()

        def get_next(self):
            item = next(self._feeds, None)
            self.calls += item is not None
            return item

        def rewind(self):
            self._feeds = calibration_feeds(model_bytes, info, x)

    return _Reader()


def predict(model_bytes: bytes, info: ModelInfo, x: np.ndarray) -> np.ndarray:
    """The model's output on `x` on one CPU thread: whole sequences for full/plain models,
    streamed chunk by chunk with carried states (exporters.validation.parity.stream) otherwise."""
    if info.contract is None and len(info.inputs) > 1:
        raise ConfigError(f"{info.path.name} has no rnnx metadata and inputs {[i['name'] for i in info.inputs]}; "
                          "only a single-input plain model can be evaluated")
    sess = validate.session(model_bytes)
    fixed = info.x_shape[0]
    out_name = info.contract.output.name if info.contract else sess.get_outputs()[0].name
    per_step = bool(info.contract and info.contract.per_step)
    parts = []
    for start, stop in _batches(len(x), PREDICT_BATCH, fixed):
        xb = _pad(x[start:stop], fixed)
        if info.streaming:
            y, _ = validate.stream(sess, xb, info.state_specs, info.chunk, per_step)
        else:
            y = sess.run([out_name], {info.x_name: xb})[0]
        parts.append(y[:stop - start])
    return np.concatenate(parts, axis=0)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of samples (or steps) whose argmax is the label."""
    if pred.shape[:-1] != y.shape:
        raise InputShapeError(f"model output {pred.shape} does not fit labels {y.shape}; "
                              "expected one class score vector per label")
    return float(np.mean(pred.argmax(-1) == y))


def check_max_drop(max_drop) -> float:
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or math.isnan(max_drop) or max_drop < 0:
        raise ConfigError(f"max_drop must be a number of accuracy points >= 0; got {max_drop!r}")
    return float(max_drop)
