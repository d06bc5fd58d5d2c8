"""Streaming inference: :class:`StreamingModel` carries recurrent state between calls.

A ``stream`` or ``unrolled`` model takes one chunk of ``chunk`` steps plus
every recurrent state, and returns its output plus the new states (see
DESIGN.md, "Streaming contract"). This class hides the states: each
:meth:`StreamingModel.step` feeds one chunk for ``batch`` independent streams
and returns the output; the states stay inside, in buffers allocated once.

Per-step overhead is kept to what onnxruntime needs. The input, output and
state tensors are pre-allocated and bound to the session once, through two
``IOBinding`` objects that swap the state buffers (states in of one are the
states out of the other): a step copies the chunk into the bound input buffer,
checks it is finite, runs the binding of the current parity and copies the
output out. No dict, list or OrtValue is built per call. (Measured on this
project's LSTM stream model: a bound run is faster than a bare
``InferenceSession.run`` with a feed dict; ``scripts/bench_runtime.py``.)

Not thread-safe: use one instance per thread.
"""

from __future__ import annotations

import functools
import math
from typing import Iterable, Mapping

import numpy as np
import onnxruntime as ort

from .errors import InputShapeError, ModelFormatError, StateError
from .inputs import InputChecker
from .session import LoadedModel, ModelBase, open_model

_dot = np.dot
_isfinite = math.isfinite
_copyto = np.copyto
_umax = np.maximum.reduce


class StreamingModel(ModelBase):
    """Feed a recurrent model one chunk (or frame) at a time, states carried inside.

    Args:
        model: path to a ``stream``/``unrolled`` ``.onnx`` file (or a :class:`LoadedModel`).
        batch: number of independent streams run together in each call (e.g.
            one per sensor); each has its own states and can be reset alone.
        providers: execution providers, see :func:`runtime.providers.resolve_providers`.
        threads: intra-op threads (``None``: onnxruntime's default).

    Example::

        model = runtime.load("lstm_stream.onnx", batch=2)   # two sensors
        for frames in sensor_frames():                      # (2, 28) per tick
            probs = model.step(frames)                      # (2, 10)
        model.reset(1)                                      # sensor 1 starts over
        saved = model.state                                 # dict of arrays, to persist
    """

    def __init__(self, model, *, batch: int = 1, providers=None, threads: int | None = None):
        loaded = model if isinstance(model, LoadedModel) else open_model(
            model, providers=providers, threads=threads)
        contract = loaded.contract
        if contract is None or not contract.streaming:
            what = "has no rnnx metadata" if contract is None else f"is a '{contract.variant}' model"
            raise ModelFormatError(f"{loaded.path} {what}; StreamingModel needs a 'stream' or "
                                   "'unrolled' export (run full models with Model)")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise StateError(f"batch must be a positive number of streams; got {batch!r}")
        batch = int(batch)
        shape = contract.input.shape
        if contract.input_time_axis not in (None, 1) or len(shape) < 2:
            raise ModelFormatError(f"{loaded.path}: a stream input must be (batch, chunk, features...); "
                                   f"metadata says shape {list(shape)}, time axis {contract.input_time_axis}")
        if shape[0] is not None and shape[0] != batch:
            raise StateError(f"{loaded.path} was exported for exactly {shape[0]} stream(s); got batch={batch}")
        chunk = contract.chunk if contract.chunk is not None else shape[1]
        features = tuple(shape[2:])
        if chunk is None or any(d is None for d in features):
            raise ModelFormatError(f"{loaded.path}: a stream input needs a fixed chunk and feature shape; "
                                   f"metadata says shape {list(shape)}, chunk {contract.chunk}")

        self._loaded = loaded
        self._session = loaded.session
        self.contract = contract
        self._batch = batch
        self.chunk = int(chunk)
        self.features = features
        self._specs = contract.states
        self._checker = InputChecker(
            contract.input.name, (batch, self.chunk) + features, loaded.input_dtype(contract.input.name),
            uint8_scale=contract.uint8_scale, value_range=contract.input_range,
            axis_names={})
        self._xbuf = np.zeros((batch, self.chunk) + features, self._checker.dtype)
        self._xflat = self._xbuf.reshape(-1)
        self._xdtype = self._xbuf.dtype
        self._fast_finite = contract.input_range is None and self._xdtype.kind == "f"
        self._bits_limit = self._checker.bits_limit  # [0, hi] float32 inputs: one integer max
        self._xbits = self._xflat.view(np.uint32) if self._bits_limit is not None else None
        self._state_dtypes = [loaded.input_dtype(s.input) for s in self._specs]
        self._state_shapes = [(batch, s.units) for s in self._specs]
        self._inits = [np.full(shp, s.init, dt)
                       for s, shp, dt in zip(self._specs, self._state_shapes, self._state_dtypes)]

        self._ybuf = self._probe_output()
        # two sets of state buffers: binding p reads _states[p] and writes _states[1 - p]
        self._states = [[init.copy() for init in self._inits] for _ in range(2)]
        self._parity = 0
        self._bindings = [self._bind(p) for p in range(2)]
        self._runs = self._runners()
        self._views = self._input_views()
        self._sequence_checker = InputChecker(
            contract.input.name, (batch, None) + features, self._checker.dtype,
            uint8_scale=contract.uint8_scale, value_range=contract.input_range,
            axis_names={1: "time"})

    # -- what the model is -------------------------------------------------------------------

    @property
    def batch(self) -> int:
        """How many independent streams each call runs."""
        return self._batch

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.input for s in self._specs)

    # -- streaming ---------------------------------------------------------------------------

    def step(self, x) -> np.ndarray:
        """Feed one chunk to every stream and return the output.

        Args:
            x: ``(batch, chunk, *features)``. Axes may be left out: the time axis
                when ``chunk`` is 1 (one frame per stream: ``(batch, *features)``),
                and the batch axis when ``batch`` is 1 (``(chunk, *features)``, or
                just ``features`` for one frame of one stream). The output leaves
                out the same axes.

        Returns:
            A new array with the model's output for this chunk.

        Raises:
            InputShapeError: the shape or dtype fits none of the forms above.
            InputValueError: NaN/inf, or values outside the declared range; the
                states are left as they were.
        """
        views = self._views.get(x.shape) if type(x) is np.ndarray else None
        if views is None or x.dtype is not self._xdtype:
            return self._step_checked(x)
        _copyto(views[0], x)
        if self._bits_limit is not None:
            if _umax(self._xbits) > self._bits_limit:
                self._checker.check_values(self._xbuf)
        elif self._fast_finite:
            if not _isfinite(_dot(self._xflat, self._xflat)):
                self._checker.check_values(self._xbuf)
        else:
            self._checker.check_values(self._xbuf)
        parity = self._parity
        self._runs[parity]()
        self._parity = 1 - parity
        return views[1].copy()

    __call__ = step

    def feed(self, xs) -> np.ndarray:
        """Feed a whole sequence chunk by chunk, carrying (and updating) the states.

        Args:
            xs: ``(batch, T, *features)`` (or ``(T, *features)`` when ``batch`` is 1),
                ``T`` a multiple of ``chunk``.

        Returns:
            What a ``full`` export returns for the sequence: the last chunk's
            output, or for per-step outputs all of them along axis 1.
        """
        checker = self._sequence_checker
        xs = checker.as_array(xs)
        squeeze = self._batch == 1 and xs.ndim == len(checker.shape) - 1
        if squeeze:
            xs = xs[None]
        arr = checker.prepare(xs)
        steps = arr.shape[1]
        if steps == 0 or steps % self.chunk:
            raise InputShapeError(f"input {checker.name!r} must have a positive multiple of chunk="
                                  f"{self.chunk} steps on axis 1; got {steps}")
        outs = []
        for t in range(0, steps, self.chunk):
            _copyto(self._xbuf, arr[:, t:t + self.chunk])
            self._runs[self._parity]()
            self._parity = 1 - self._parity
            if self.contract.per_step or t + self.chunk == steps:
                outs.append(self._ybuf.copy())
        y = np.concatenate(outs, axis=1) if self.contract.per_step else outs[-1]
        return y[0] if squeeze else y

    # -- states ------------------------------------------------------------------------------

    def reset(self, index: int | Iterable[int] | None = None) -> None:
        """Set the states back to their initial value: all streams, or only stream ``index``
        (an int or several ints)."""
        current = self._states[self._parity]
        if index is None:
            for buf, init in zip(current, self._inits):
                _copyto(buf, init)
            return
        rows = self._stream_indices(index)
        for buf, init in zip(current, self._inits):
            buf[rows] = init[rows]

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of every state, ``{input name: (batch, units) array}`` in graph order.
        Assign such a dict (e.g. from ``np.load``) to restore it."""
        return {s.input: buf.copy() for s, buf in zip(self._specs, self._states[self._parity])}

    @state.setter
    def state(self, value: Mapping[str, np.ndarray]) -> None:
        names = [s.input for s in self._specs]
        if not isinstance(value, Mapping):
            raise StateError(f"state must be a mapping {{name: array}} with keys {names}; "
                             f"got {type(value).__name__}")
        if sorted(value) != sorted(names):
            raise StateError(f"state must have exactly the keys {names}; got {sorted(value)}")
        arrays = [self._checked_state(spec, shp, dt, value[spec.input])
                  for spec, shp, dt in zip(self._specs, self._state_shapes, self._state_dtypes)]
        for buf, arr in zip(self._states[self._parity], arrays):
            _copyto(buf, arr)

    # -- internals ---------------------------------------------------------------------------

    def _step_checked(self, x) -> np.ndarray:
        """The slow path of :meth:`step`: any array-like, any accepted dtype, full messages."""
        checker = self._checker
        x = checker.as_array(x)
        checker.check_dtype(x)
        views = self._views.get(x.shape)
        if views is None:
            raise InputShapeError(f"input {checker.name!r} must have shape "
                                  f"{', or '.join(self._forms())}; got shape {tuple(x.shape)}")
        checker.convert_into(x, views[0])
        if not (x.dtype == np.uint8 and checker.uint8_scale is not None):
            checker.check_values(self._xbuf)
        self._runs[self._parity]()
        self._parity = 1 - self._parity
        return views[1].copy()

    def _forms(self) -> list[str]:
        """The accepted input shapes, described."""
        feats = ", ".join(str(d) for d in self.features)
        text = [f"({self._batch}, {self.chunk}, {feats}) as (streams, chunk, features)"]
        if self.chunk == 1:
            text.append(f"({self._batch}, {feats}) without the time axis")
        if self._batch == 1:
            text.append(f"({self.chunk}, {feats}) without the batch axis")
        if self._batch == 1 and self.chunk == 1:
            text.append(f"({feats},) for one frame")
        return text

    def _input_views(self) -> dict:
        """Accepted input shape -> (view of the input buffer, view of the output buffer)."""
        x, y = self._xbuf, self._ybuf
        per_step = self.contract.per_step
        views = {}

        def add(shape, yview):
            views.setdefault(tuple(shape), (x.reshape(shape), yview))

        add(x.shape, y)
        if self.chunk == 1:  # one frame per stream: no time axis, in and (per-step) out
            add((self._batch,) + self.features, y[:, 0] if per_step else y)
        if self._batch == 1:  # one stream: no batch axis
            add((self.chunk,) + self.features, y[0])
        if self._batch == 1 and self.chunk == 1:
            add(self.features, y[0, 0] if per_step else y[0])
        return views

    def _probe_output(self) -> np.ndarray:
        """Run once on zeros to learn the output shape and check the state outputs'."""
        names = [self.contract.output.name] + [s.output for s in self._specs]
        feed = {self.contract.input.name: self._xbuf}
        feed.update({s.input: init for s, init in zip(self._specs, self._inits)})
        try:
            outs = self._session.run(names, feed)
        except Exception as exc:  # onnxruntime's own exception types
            raise ModelFormatError(f"{self.path}: the stream model does not run on inputs of the "
                                   f"shapes its metadata declares: {str(exc).strip().splitlines()[0]}") from None
        for spec, shp, out in zip(self._specs, self._state_shapes, outs[1:]):
            if out.shape != shp:
                raise ModelFormatError(f"{self.path}: state output {spec.output!r} has shape {out.shape}; "
                                       f"expected {shp} like its input {spec.input!r}")
        y = outs[0]
        if self.contract.per_step and (y.ndim < 2 or y.shape[1] != self.chunk):
            raise ModelFormatError(f"{self.path}: per-step output {self.contract.output.name!r} has shape "
                                   f"{y.shape}; expected (batch, {self.chunk}, ...)")
        return np.empty_like(y)

    def _bind(self, parity: int) -> ort.IOBinding:
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(self.contract.input.name, ort.OrtValue.ortvalue_from_numpy(self._xbuf))
        binding.bind_ortvalue_output(self.contract.output.name, ort.OrtValue.ortvalue_from_numpy(self._ybuf))
        for k, spec in enumerate(self._specs):
            binding.bind_ortvalue_input(spec.input, ort.OrtValue.ortvalue_from_numpy(self._states[parity][k]))
            binding.bind_ortvalue_output(spec.output, ort.OrtValue.ortvalue_from_numpy(self._states[1 - parity][k]))
        return binding

    def _runners(self) -> list:
        """One zero-argument callable per binding; the C-level call when this onnxruntime has it."""
        options = ort.RunOptions()
        c_session = getattr(self._session, "_sess", None)
        runners = []
        for binding in self._bindings:
            c_binding = getattr(binding, "_iobinding", None)
            if c_session is not None and c_binding is not None and hasattr(c_session, "run_with_iobinding"):
                runners.append(functools.partial(c_session.run_with_iobinding, c_binding, options))
            else:
                runners.append(functools.partial(self._session.run_with_iobinding, binding, options))
        return runners

    def _stream_indices(self, index) -> list[int]:
        single = isinstance(index, (int, np.integer, bool, float, str))
        try:
            items = [index] if single else list(index)
        except TypeError:
            items = [index]
        for i in items:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self._batch:
                raise StateError(f"stream index {i!r} is out of range: this model runs "
                                 f"{self._batch} stream(s), indices 0..{self._batch - 1}")
        return [int(i) for i in items]

    def _checked_state(self, spec, shape, dtype, value) -> np.ndarray:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            raise StateError(f"state {spec.input!r} must be an array of shape {shape}; "
                             f"got {type(value).__name__}") from None
        if arr.shape != shape:
            raise StateError(f"state {spec.input!r} must have shape {shape} (batch={self._batch}, "
                             f"units={spec.units}); got {arr.shape}")
        if arr.dtype.kind != "f":
            raise StateError(f"state {spec.input!r} must be {dtype}; got {arr.dtype}")
        if not np.isfinite(arr).all():
            raise StateError(f"state {spec.input!r} must be finite; got NaN or inf values")
        return arr

    def __repr__(self) -> str:
        return (f"StreamingModel({self.path!r}, variant={self.contract.variant}, batch={self._batch}, "
                f"chunk={self.chunk}, states={list(self.state_names)}, providers={self.providers})")

