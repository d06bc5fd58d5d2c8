"""Data for quantization: inputs that fit the model, predictions and accuracy.

The model is described by a `ModelInfo` (graph I/O plus the `rnnx` contract,
or none for a plain ONNX file). Its inputs (`InputSpec`, states excluded) may
be several, of any dtype: float features, uint8 pixels scaled by the
metadata, or integer token ids below the vocabulary size. Data travels as a
dict {input name: array (N, T, ...)}. Stream and unrolled variants are
always fed chunk by chunk with their states (any shape, from the contract)
carried from call to call: calibration sees the states a real stream
produces (obtained by running the fp32 source), and accuracy is that of
whole sequences streamed, as an edge app would see it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.contract import Contract
from runtime.errors import InputValueError

from ..errors import ConfigError, DataError, InputShapeError, QuantizationError
from ..validation import parity
from ..validation.samples import load_npz

CALIBRATION_BATCH = 32
PREDICT_BATCH = 256
RANDOM_SAMPLES = 8
RANDOM_STEPS = 8


@dataclass(frozen=True)
class InputSpec:
    """One model input (states excluded), from the contract or the graph."""

    name: str
    shape: tuple            # None for dynamic dims, batch first
    dtype: str              # numpy dtype name
    time_axis: int | None = 1
    uint8_scale: float | None = None
    value_range: tuple | None = None
    vocab_size: int | None = None

    @property
    def integer(self) -> bool:
        return np.dtype(self.dtype).kind in "iu"


@dataclass(frozen=True)
class StateInfo:
    input: str
    output: str
    shape: tuple            # batch (None) first, the rest fixed
    dtype: str = "float32"
    init: float = 0.0


@dataclass(frozen=True)
class ModelInfo:
    """What quantization needs to know about a model file."""

    path: Path
    inputs: list            # [{"name", "shape", "dtype"}] from inspect_onnx.describe (graph inputs)
    outputs: list
    op_counts: dict
    meta: dict | None       # the raw `rnnx` metadata, None for a plain ONNX file
    contract: Contract | None
    vocab_sizes: dict | None = None   # {graph input: rows of the Gather table it indexes}

    # -- inputs, outputs and states of the contract (format 1 files read in format 2's shape) and plain files --
    @functools.cached_property
    def specs(self) -> tuple[InputSpec, ...]:
        vocab = self.vocab_sizes or {}
        graph = {i["name"]: i for i in self.inputs}
        if self.contract is None:
            i = self.inputs[0]
            shape = tuple(d if isinstance(d, int) else None for d in i["shape"])
            return (InputSpec(i["name"], shape, _np_dtype(i["dtype"]), 1 if len(shape) > 1 else None,
                              vocab_size=vocab.get(i["name"])),)
        out = []
        for t in self.contract.inputs:
            dtype = graph.get(t.name, {}).get("dtype") or t.dtype   # the graph decides
            rng = t.value_range if t.value_range is not None or not t.uint8_scale else (0.0, 1.0)
            vs = t.vocab_size or vocab.get(t.name)
            out.append(InputSpec(t.name, tuple(t.shape), _np_dtype(dtype), t.time_axis, t.uint8_scale,
                                 tuple(rng) if rng is not None else None, int(vs) if vs else None))
        return tuple(out)

    @property
    def states(self) -> tuple[StateInfo, ...]:
        if not self.streaming:
            return ()
        return tuple(StateInfo(s.input, s.output, tuple(s.shape), _np_dtype(s.dtype), float(s.init))
                     for s in self.contract.states)

    @property
    def output_names(self) -> list[str]:
        if self.contract is None:
            return [self.outputs[0]["name"]]
        return [t.name for t in self.contract.outputs]

    @property
    def classes(self) -> int | None:
        """Scores per prediction of the first output (the one labels refer to)."""
        shape = self.contract.output.shape if self.contract else self.outputs[0]["shape"]
        last = shape[-1] if shape else None
        return int(last) if isinstance(last, int) and last > 0 else None

    @property
    def x_name(self) -> str:
        return self.specs[0].name

    @property
    def x_shape(self) -> tuple:
        """First input's shape, None for dynamic dims."""
        return self.specs[0].shape

    @property
    def fixed_batch(self) -> int | None:
        return self.specs[0].shape[0]

    @property
    def streaming(self) -> bool:
        return bool(self.contract and self.contract.streaming)

    @property
    def chunk(self) -> int | None:
        if not self.streaming:
            return None
        return int(self.contract.chunk or self.specs[0].shape[1])

    @property
    def clocked(self) -> bool:
        """A stream whose windows on time drop, decimate or look ahead: it takes any length (flush)."""
        return bool(self.streaming and self.contract.flush)

    @property
    def per_step(self) -> bool:
        return bool(self.contract and self.contract.per_step)

    @functools.cached_property
    def signature(self) -> parity.Signature:
        """The stream signature the shared chunk feeder reads (`validation.parity.stream_calls`)."""
        return parity.Signature.from_contract(self.contract)

    @property
    def state_specs(self) -> list[tuple]:
        """(input, output, shape) per state, in contract order."""
        return [(s.input, s.output, s.shape) for s in self.states]


def _np_dtype(name) -> str:
    try:
        return np.dtype(str(name)).name
    except TypeError:
        return "float32"


# -- reading the caller's data ----------------------------------------------------------------------

def read_arrays(source, role: str, info: ModelInfo | None = None, *, need_labels: bool):
    """({input name: x}, y) from a .npz path, a dict, an (x, y) pair or an array.

    A single-input model reads array 'x' (or the input's own name); a model with
    several inputs reads one array per input name. 'y' holds the labels.
    """
    names = [s.name for s in info.specs] if info is not None else ["x"]
    if isinstance(source, (str, Path)):
        arrays = load_npz(Path(source), role, "a .npz with array 'x' (and integer labels 'y' for evaluation)")
    elif isinstance(source, dict):
        arrays = {k: np.asarray(v) for k, v in source.items()}
    elif isinstance(source, tuple) and len(source) == 2:
        x, y = source
        arrays = {k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else {"x": np.asarray(x)}
        arrays["y"] = np.asarray(y)
    else:
        arrays = {"x": np.asarray(source)}
    y = arrays.pop("y", None)
    if need_labels and y is None:
        raise DataError(f"{role} data has no integer labels 'y'; accuracy needs them (.npz with 'x' and 'y')")
    if len(names) == 1:
        key = "x" if "x" in arrays else names[0]
        if key not in arrays:
            raise DataError(f"{role} data has no array 'x' (keys {sorted(arrays)})")
        return {names[0]: arrays[key]}, y
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DataError(f"{role} data has no array for input(s) {missing}; the model takes inputs {names}, "
                        f"one array each (keys found: {sorted(arrays)})")
    return {n: arrays[n] for n in names}, y


def _shown(spec: InputSpec, streaming: bool, chunk: int | None) -> str:
    dims = []
    for i, d in enumerate(spec.shape):
        if i == 0:
            dims.append("N")
        elif i == spec.time_axis and (d is None or streaming):
            dims.append("T")
        else:
            dims.append(str(d))
    text = "(" + ", ".join(dims) + ")"
    if streaming and chunk and spec.time_axis is not None:
        text += f" with T a multiple of chunk {chunk}"
    return text


def check_x(raw: dict, info: ModelInfo, role: str) -> tuple[dict, list[str]]:
    """Each input's array checked against the model and cast to its dtype; returns (feeds, warnings).

    Shape: (N, T, *features) with the model's features (T a multiple of the chunk
    for stream/unrolled, T >= 1). dtype: the input's own: integer token ids below
    the vocabulary size for an integer input; floats, or uint8 pixels when the
    metadata has a uint8_scale, for a float input.
    """
    out, warnings, n, steps = {}, [], None, None
    for spec in info.specs:
        label = "x" if len(info.specs) == 1 else spec.name
        x = raw[spec.name]
        what = f"{role} data {label!r}"
        if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
            raise InputShapeError(f"{what} has dtype {x.dtype}; expected {_dtype_wanted(spec)}")
        if x.ndim != len(spec.shape) or x.shape[0] == 0 or any(
                d is not None and got != d for i, (got, d) in enumerate(zip(x.shape, spec.shape))
                if i > 0 and not (info.streaming and i == spec.time_axis)):
            shown = _shown(spec, info.streaming, None if info.clocked else info.chunk)
            raise InputShapeError(f"{what} has shape {tuple(x.shape)}; expected {shown} for input {spec.name!r} "
                                  f"of {info.path.name}")
        if n is not None and x.shape[0] != n:
            raise InputShapeError(f"{what} has {x.shape[0]} samples; the other inputs have {n}")
        n = x.shape[0]
        if spec.time_axis is not None:
            if x.shape[spec.time_axis] == 0:
                raise InputShapeError(f"{what} has 0 time steps (shape {tuple(x.shape)}); expected at least "
                                      f"{info.chunk or 1}")
            if steps is not None and x.shape[spec.time_axis] != steps:
                raise InputShapeError(f"{what} has {x.shape[spec.time_axis]} time steps; the other inputs "
                                      f"have {steps}")
            steps = x.shape[spec.time_axis]
        x = _cast(x, spec, what)
        if info.streaming and spec.time_axis is not None and not info.clocked:   # a clocked stream takes any T
            keep = x.shape[spec.time_axis] - x.shape[spec.time_axis] % info.chunk
            if keep == 0:
                raise InputShapeError(f"{what} has {x.shape[spec.time_axis]} time steps; the model takes "
                                      f"chunks of {info.chunk}, so at least {info.chunk} are needed")
            if keep != x.shape[spec.time_axis]:
                warnings.append(f"{role} sequences trimmed from {x.shape[spec.time_axis]} to {keep} steps "
                                f"(a multiple of chunk {info.chunk})")
                x = np.take(x, np.arange(keep), axis=spec.time_axis)
        lo_hi = spec.value_range
        if lo_hi is not None and not spec.integer and x.size and (x.min() < lo_hi[0] or x.max() > lo_hi[1]):
            warnings.append(f"{role} data lies in [{x.min():.4g}, {x.max():.4g}], outside the model's declared "
                            f"input range [{lo_hi[0]:g}, {lo_hi[1]:g}]")
        out[spec.name] = np.ascontiguousarray(x)
    return out, warnings


def _dtype_wanted(spec: InputSpec) -> str:
    if spec.integer:
        return (f"integer token ids ({spec.dtype})" + (f" in [0, {spec.vocab_size})" if spec.vocab_size else ""))
    return "float32 (or uint8 pixels)" if spec.uint8_scale else "float32"


def _cast(x: np.ndarray, spec: InputSpec, what: str) -> np.ndarray:
    if spec.integer:
        if x.dtype.kind not in "iu":
            raise InputShapeError(f"{what} has dtype {x.dtype}; expected {_dtype_wanted(spec)}")
        if x.size:
            lo, hi = int(x.min()), int(x.max())
            top = spec.vocab_size
            if lo < 0 or (top is not None and hi >= top):
                raise InputValueError(f"{what} holds token ids in [{lo}, {hi}]; expected ids in "
                                      f"[0, {top if top is not None else 'vocab_size'}) for input {spec.name!r}")
            if hi > np.iinfo(spec.dtype).max:
                raise InputValueError(f"{what} holds ids up to {hi}, beyond {spec.dtype}")
        return x.astype(spec.dtype, copy=False)
    if x.dtype.kind in "iu":
        if x.dtype == np.uint8 and spec.uint8_scale:
            x = x.astype(np.float32) * np.float32(spec.uint8_scale)
        else:
            raise InputShapeError(f"{what} has dtype {x.dtype}; expected float32"
                                  " (uint8 only for a model whose metadata has a uint8_scale)")
    x = x.astype(spec.dtype, copy=False)
    if not np.all(np.isfinite(x)):
        raise InputValueError(f"{what} holds NaN or inf values; expected finite numbers")
    return x


def check_labels(y: np.ndarray, x: dict, info: ModelInfo) -> np.ndarray:
    """Integer labels in [0, classes): (N,) or, for per-step outputs, (N, T)."""
    first = next(iter(x.values()))
    spec = info.specs[0]
    t_axis = spec.time_axis if spec.time_axis is not None else 1
    per_step = info.per_step
    steps = first.shape[t_axis] if first.ndim > t_axis else None
    want = (first.shape[0], steps) if per_step else (first.shape[0],)
    if y.dtype.kind not in "iu":
        raise InputShapeError(f"evaluation labels 'y' have dtype {y.dtype}; expected integer class indices")
    if per_step and y.ndim == 2 and y.shape[0] == first.shape[0] and steps is not None and y.shape[1] >= steps:
        y = y[:, :steps]  # sequences trimmed to a multiple of the chunk
    if tuple(y.shape) != want:
        raise InputShapeError(f"evaluation labels 'y' have shape {tuple(y.shape)}; expected {want} "
                              f"(one per {'step of each ' if per_step else ''}sample of the input "
                              f"{tuple(first.shape)})")
    classes = info.classes
    if y.size and (int(y.min()) < 0 or (classes is not None and int(y.max()) >= classes)):
        raise InputValueError(f"evaluation labels 'y' lie in [{int(y.min())}, {int(y.max())}]; expected class "
                              f"indices in [0, {classes if classes is not None else 'classes'}) "
                              f"(the model has {classes} outputs per prediction)")
    return y.astype(np.int64)


def random_steps(info: ModelInfo) -> int:
    """The length of random sequences: the one the export validated the model on (long enough
    for its windows on time), else RANDOM_STEPS for a file without that record."""
    steps = (info.contract.parity or {}).get("steps") if info.contract is not None else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else RANDOM_STEPS


def random_x(info: ModelInfo, n: int = RANDOM_SAMPLES, seed: int = 0) -> dict:
    """Shaped random inputs that fit each input: token ids in [0, vocab_size) for integer
    inputs, values in the declared range (pixels: [0, 1]; else [0, 1)) for float ones."""
    rng = np.random.default_rng(seed)
    fixed = info.fixed_batch
    steps = random_steps(info)
    out = {}
    for spec in info.specs:
        shape = [fixed or n]
        for i, d in enumerate(spec.shape[1:], start=1):
            if info.streaming and i == spec.time_axis:   # whole sequences, fed chunk by chunk
                shape.append(info.chunk * max(1, -(-steps // info.chunk)))
            else:
                shape.append((steps if i == spec.time_axis else RANDOM_STEPS) if d is None else d)
        if spec.integer:
            lo, hi = 0, spec.vocab_size or (int(spec.value_range[1]) + 1 if spec.value_range else 2)
            out[spec.name] = rng.integers(lo, hi, size=shape).astype(spec.dtype)
        else:
            lo, hi = spec.value_range or (0.0, 1.0)
            out[spec.name] = (lo + (hi - lo) * rng.random(shape)).astype(spec.dtype)
    return out


def n_samples(x: dict) -> int:
    return int(next(iter(x.values())).shape[0])


def steps_of(x: dict, info: ModelInfo) -> int | None:
    for spec in info.specs:
        if spec.time_axis is not None and x[spec.name].ndim > spec.time_axis:
            return int(x[spec.name].shape[spec.time_axis])
    return None


def take(x: dict, start: int, stop: int) -> dict:
    return {k: v[start:stop] for k, v in x.items()}


# -- running the model ------------------------------------------------------------------------------

def _batches(n: int, size: int, fixed: int | None):
    """Row slices of at most `size` (exactly `fixed` rows when the model's batch is fixed)."""
    step = fixed or size
    for start in range(0, n, step):
        yield start, min(start + step, n)


def _pad(xb: dict, fixed: int | None) -> dict:
    rows = n_samples(xb)
    if fixed is None or rows == fixed:
        return xb
    return {k: np.concatenate([v, np.repeat(v[:1], fixed - rows, axis=0)], axis=0) for k, v in xb.items()}


def initial_states(info: ModelInfo, batch: int) -> dict:
    return {s.input: np.full((batch, *s.shape[1:]), s.init, dtype=s.dtype) for s in info.states}


def _chunk(xb: dict, info: ModelInfo, t: int) -> dict:
    feed = {}
    for spec in info.specs:
        v = xb[spec.name]
        if spec.time_axis is None:
            feed[spec.name] = v
        else:
            idx = [slice(None)] * v.ndim
            idx[spec.time_axis] = slice(t, t + info.chunk)
            feed[spec.name] = np.ascontiguousarray(v[tuple(idx)])
    return feed


def session(model_bytes: bytes):
    """An onnxruntime CPU session on one thread."""
    from ..validation import parity

    return parity.session(model_bytes)


def calibration_feeds(model_bytes: bytes, info: ModelInfo, x: dict):
    """Yield input dicts for a calibrator: whole sequences for `full`; for stream and
    unrolled one dict per chunk, with the states the fp32 model has reached so far."""
    fixed = info.fixed_batch
    if info.contract is None and len(info.inputs) > 1:
        raise QuantizationError(f"{info.path.name} has no rnnx metadata and {len(info.inputs)} inputs "
                                f"{[i['name'] for i in info.inputs]}; calibration can only feed a single input")
    sess = session(model_bytes) if info.streaming else None
    for start, stop in _batches(n_samples(x), CALIBRATION_BATCH, fixed):
        xb = _pad(take(x, start, stop), fixed)
        if sess is None:
            yield xb
            continue
        for feed, _, _ in parity.stream_calls(sess, info.signature, [xb[s.name] for s in info.specs], info.chunk):
            yield feed


def make_reader(model_bytes: bytes, info: ModelInfo, x: dict):
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


def predict(model_bytes: bytes, info: ModelInfo, x: dict) -> np.ndarray:
    """The model's first output on `x` on one CPU thread: whole sequences for full/plain
    models, streamed chunk by chunk with carried states otherwise."""
    if info.contract is None and len(info.inputs) > 1:
        raise ConfigError(f"{info.path.name} has no rnnx metadata and inputs {[i['name'] for i in info.inputs]}; "
                          "only a single-input plain model can be evaluated")
    sess = session(model_bytes)
    fixed = info.fixed_batch
    out_name = info.output_names[0]
    parts = []
    for start, stop in _batches(n_samples(x), PREDICT_BATCH, fixed):
        xb = _pad(take(x, start, stop), fixed)
        if info.streaming:
            y = _stream(sess, xb, info, out_name)
        else:
            y = sess.run([out_name], xb)[0]
        parts.append(y[:stop - start])
    return np.concatenate(parts, axis=0)


def _stream(sess, xb: dict, info: ModelInfo, out_name: str) -> np.ndarray:
    ys, _ = parity.stream(sess, info.signature, [xb[s.name] for s in info.specs], info.chunk)
    return ys[info.output_names.index(out_name)]


def one_call_feed(info: ModelInfo, x: dict) -> dict:
    """Batch 1 (or the fixed batch): one whole sequence (full) or its first chunk with initial states."""
    rows = info.fixed_batch or 1
    xb = _pad(take(x, 0, rows), info.fixed_batch)
    if info.streaming:
        return {**_chunk(xb, info, 0), **initial_states(info, rows)}
    return xb


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
