"""Full-sequence inference: :class:`Model`, for the ``full`` variant and plain ONNX files."""

from __future__ import annotations

import threading
from typing import Mapping

import numpy as np
import onnxruntime as ort

from .errors import InputShapeError, ModelFormatError, SettingError
from .inputs import InputChecker, buffer_check
from .pickling import reopen_model, shipped_settings
from .session import LoadedModel, ModelBase, bound_runner, open_model

DEFAULT_MAX_BATCH = 1024
BOUND_SHAPES = 4              # input shapes that get a pre-bound fast path
BOUND_MAX_ELEMENTS = 1 << 20  # larger inputs always take the general path (no extra buffers)

_copyto = np.copyto


class _Bound:
    """A pre-bound run for one input shape: the input and output buffers are bound to the
    session once (like :class:`StreamingModel`), so a repeated call copies the input in,
    checks its values, runs and copies the outputs out."""

    def __init__(self, session: ort.InferenceSession, checker: InputChecker, shape: tuple,
                 out_names: list, outs: list):
        self.xbuf = np.empty(shape, checker.dtype)
        self.check = buffer_check(checker, self.xbuf)
        self.ybufs = [np.empty_like(y) for y in outs]
        binding = session.io_binding()
        binding.bind_ortvalue_input(checker.name, ort.OrtValue.ortvalue_from_numpy(self.xbuf))
        for name, y in zip(out_names, self.ybufs):
            binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(y))
        self.binding = binding  # kept alive: the runner holds its C object
        self.run = bound_runner(session, binding)


class Model(ModelBase):
    """Run a whole sequence (or any model without recurrent state inputs) on a batch in one call.

    Args:
        model: path to an ``.onnx`` file (or its bytes, or an opened :class:`LoadedModel`).
        providers: execution providers, see :func:`runtime.providers.resolve_providers`.
        threads: intra-op threads (``None``: onnxruntime's default).
        max_batch: larger batches are split into calls of at most this many samples.

    Example::

        model = runtime.load("lstm_full.onnx")
        probs = model.predict(images)            # (n, 10) float32
        names = model.predict_labels(images)     # ['Ankle boot', ...]

    A model with several inputs takes a mapping ``{name: array}``; one with
    several outputs returns a dict ``{name: array}``. Repeated calls with the same
    input shape run through a pre-bound ``IOBinding`` (no feed dict, no output
    allocation by onnxruntime); calls from several threads at once are safe (a
    call that finds the bound buffers busy takes the general path).

    Pickling: an instance pickles as its model bytes and settings (providers,
    threads, max_batch), so it can be shipped to another process.
    """

    def __init__(self, model, *, providers=None, threads: int | None = None,
                 max_batch: int = DEFAULT_MAX_BATCH):
        loaded = model if isinstance(model, LoadedModel) else open_model(
            model, providers=providers, threads=threads)
        contract = loaded.contract
        if contract is not None and contract.streaming:
            raise ModelFormatError(
                f"{loaded.path} is a '{contract.variant}' model with recurrent state inputs; "
                "run it with StreamingModel (runtime.load picks it)")
        self.max_batch = _check_max_batch(max_batch)
        self._loaded = loaded
        self._session = loaded.session
        self.contract = contract
        self._checkers = []
        self._time_axes = []
        if contract is not None:
            for spec in contract.inputs:
                shape = loaded.input_shape(spec.name, spec.shape)
                self._checkers.append(InputChecker(
                    spec.name, shape, loaded.input_dtype(spec.name), uint8_scale=spec.uint8_scale,
                    value_range=spec.value_range, vocab_size=spec.vocab_size,
                    axis_names=_axis_names(len(shape), spec.time_axis, guess=False)))
                self._time_axes.append(spec.time_axis)
            outputs = [(o.name, loaded.output_shape(o.name, o.shape), o.per_step) for o in contract.outputs]
        else:
            for arg in self._session.get_inputs():
                shape = loaded.input_shape(arg.name)
                self._checkers.append(InputChecker(arg.name, shape, loaded.input_dtype(arg.name),
                                                   axis_names=_axis_names(len(shape), None, guess=True)))
                self._time_axes.append(1 if len(shape) > 1 else None)
            outputs = [(o.name, loaded.output_shape(o.name), False) for o in self._session.get_outputs()]
        self._output_names = [name for name, _, _ in outputs]
        self._output_shapes = [(shape, per_step) for _, shape, per_step in outputs]
        self._output_dtypes = [loaded.output_dtype(name) for name in self._output_names]
        self._checker = self._checkers[0]
        fixed_batch = self._checker.shape[0] if self._checker.shape else None
        self._fixed_batch = fixed_batch
        self._call_batch = min(self.max_batch, fixed_batch) if fixed_batch else self.max_batch
        # the fast path: rnnx exports with one input (their output shapes follow the input's)
        self._lock = threading.Lock()
        self._bound: dict = {}
        self._can_bind = contract is not None and len(self._checkers) == 1
        self._dtype = self._checker.dtype
        self._single_output = len(self._output_names) == 1

    # -- what the model is -------------------------------------------------------------------

    @property
    def input_name(self) -> str:
        return self._checker.name

    @property
    def input_shape(self) -> tuple:
        """The (first) input's shape, ``None`` for dynamic axes."""
        return self._checker.shape

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._checkers)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self._output_names)

    # -- inference ---------------------------------------------------------------------------

    def predict(self, x, *, max_batch: int | None = None):
        """Run the model on a batch.

        Args:
            x: array of the input's shape with a leading batch axis; float in the
                declared range, or uint8 when the model scales pixels itself, or
                integer token ids in ``[0, vocab_size)``. A mapping ``{name: array}``
                for a model with several inputs (all with the same batch).
            max_batch: override the split size for this call.

        Returns:
            The output as a numpy array (batch first); a dict name -> array for a
            model with several outputs. An empty batch gives an empty result of
            the output's shape (onnxruntime is not called).

        Raises:
            InputShapeError: wrong rank, shape or dtype, or a zero-length axis other than the batch.
            InputValueError: NaN/inf, values outside the declared range, token ids
                outside ``[0, vocab_size)``.
            SettingError: ``max_batch`` is not a positive integer.
        """
        if max_batch is None and type(x) is np.ndarray and x.dtype is self._dtype:
            bound = self._bound.get(x.shape)
            if bound is not None and self._lock.acquire(False):
                try:
                    return self._run_bound(bound, x)
                finally:
                    self._lock.release()
        return self._predict_checked(x, max_batch)

    def predict_labels(self, x) -> list:
        """The most probable class of each sample: its label, or its index without labels."""
        y = self.predict(x)
        if isinstance(y, dict):
            raise ModelFormatError(f"{self.path} has several outputs; predict_labels needs one")
        idx = np.asarray(y).argmax(axis=-1)
        labels = self.labels
        if labels is None:
            return idx.tolist()
        return np.asarray(labels, dtype=object)[idx].tolist()

    # -- pickling ----------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        return shipped_settings(self._loaded) | {"max_batch": self.max_batch}

    def __setstate__(self, shipped: dict) -> None:
        self.__init__(reopen_model(shipped), max_batch=shipped["max_batch"])

    # -- internals ---------------------------------------------------------------------------

    def _run_bound(self, bound: _Bound, x: np.ndarray):
        _copyto(bound.xbuf, x)
        bound.check()
        bound.run()
        if self._single_output:
            return bound.ybufs[0].copy()
        return {name: y.copy() for name, y in zip(self._output_names, bound.ybufs)}

    def _predict_checked(self, x, max_batch):
        step = self._call_batch
        if max_batch is not None:
            step = min(_check_max_batch(max_batch), self._call_batch)
        arrays = self._prepared(x)
        rows = arrays[0].shape[0]
        if rows == 0:  # onnxruntime's LSTM/GRU kernels abort the process on an empty batch
            outs = self._empty(arrays)
        elif rows <= step:
            outs = self._run(arrays)
            if self._can_bind and (self._fixed_batch is None or rows == self._fixed_batch):
                self._remember(arrays[0], outs)
        else:
            parts = [self._run([a[i:i + step] for a in arrays]) for i in range(0, rows, step)]
            outs = [np.concatenate(chunks, axis=0) for chunks in zip(*parts)]
        if self._single_output:
            return outs[0]
        return dict(zip(self._output_names, outs))

    def _prepared(self, x) -> list[np.ndarray]:
        """Every input checked and converted, in graph order, with one batch size."""
        names = [c.name for c in self._checkers]
        if isinstance(x, Mapping):
            if sorted(map(str, x)) != sorted(names):
                raise InputShapeError(f"inputs must be exactly {names}; got {sorted(map(str, x))}")
            values = [x[name] for name in names]
        elif len(names) == 1:
            values = [x]
        else:
            what = "with no rnnx metadata saying what they are" if self.contract is None else ""
            raise InputShapeError(f"{self.path} has inputs {names} {what}; pass a mapping "
                                  f"{{name: array}}; got a {type(x).__name__}".replace("  ", " "))
        arrays = []
        for checker, axis, value in zip(self._checkers, self._time_axes, values):
            arr = checker.as_array(value)
            shape = checker.shape
            hint = "; add the batch axis for a single sample: x[None]" if arr.ndim == len(shape) - 1 else ""
            arr = checker.prepare(arr, shape=(None,) + shape[1:] if shape else shape, hint=hint)
            for k in range(1, arr.ndim):
                if arr.shape[k] == 0:
                    what = "the time axis" if k == axis else f"axis {k}"
                    raise InputShapeError(f"input {checker.name!r} has {what} of length 0 (shape "
                                          f"{tuple(arr.shape)}); a sequence needs at least one step")
            arrays.append(arr)
        rows = {a.shape[0] for a in arrays}
        if len(rows) > 1:
            raise InputShapeError(f"inputs {names} must have the same batch size; got "
                                  f"{[a.shape[0] for a in arrays]}")
        return arrays

    def _run(self, arrays: list) -> list:
        names = [c.name for c in self._checkers]
        fixed = self._fixed_batch
        rows = arrays[0].shape[0]
        if fixed is None or rows == fixed:
            return self._session.run(self._output_names, dict(zip(names, arrays)))
        # a model exported with a fixed batch gets exactly that many rows per call:
        # pad the last rows with copies of the first, then drop their outputs
        padded = [np.concatenate([a, np.repeat(a[:1], fixed - rows, axis=0)], axis=0) for a in arrays]
        return [out[:rows] for out in self._session.run(self._output_names, dict(zip(names, padded)))]

    def _remember(self, arr: np.ndarray, outs: list) -> None:
        """Pre-bind a run for this input shape (at most BOUND_SHAPES shapes)."""
        if arr.shape in self._bound or len(self._bound) >= BOUND_SHAPES or arr.size > BOUND_MAX_ELEMENTS:
            return
        if not self._lock.acquire(False):
            return
        try:
            self._bound[arr.shape] = _Bound(self._session, self._checker, arr.shape, self._output_names, outs)
        finally:
            self._lock.release()

    def _empty(self, arrays: list) -> list:
        """Empty outputs of the right shape and dtype for an empty batch, without running the model
        on it: shapes from the metadata (or graph), a per-step time axis from the input."""
        steps = next((a.shape[axis] for a, axis in zip(arrays, self._time_axes) if axis is not None), None)
        outs = []
        for (shape, per_step), dtype in zip(self._output_shapes, self._output_dtypes):
            dims = [0] + list(shape[1:])
            if per_step and len(dims) > 1 and dims[1] is None:
                dims[1] = steps
            if any(d is None for d in dims):
                return self._empty_by_probe(arrays)
            outs.append(np.empty(dims, dtype))
        return outs

    def _empty_by_probe(self, arrays: list) -> list:
        """Output shapes the metadata leaves open: run one zero sample (never an empty batch)."""
        outs = self._run([np.zeros((1,) + a.shape[1:], a.dtype) for a in arrays])
        return [out[:0] for out in outs]

    def __repr__(self) -> str:
        variant = self.contract.variant if self.contract else "plain"
        return (f"Model({self.path!r}, variant={variant}, input={self._checker.describe()}, "
                f"providers={self.providers})")


def _check_max_batch(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SettingError(f"max_batch must be a positive integer (samples per onnxruntime call); got {value!r}")
    return int(value)


def _axis_names(rank: int, time_axis: int | None, *, guess: bool) -> dict:
    """Names of dynamic axes for messages; without metadata (``guess``), axis 1 is taken as time."""
    names = {0: "batch"} if rank else {}
    if time_axis is not None and 0 < time_axis < rank:
        names[time_axis] = "time"
    elif guess and rank > 1:
        names[1] = "time"
    return names
