"""Streaming inference: :class:`StreamingModel` carries recurrent state between calls.

A ``stream`` or ``unrolled`` model takes one chunk of ``chunk`` steps of each
input plus every state, and returns its outputs plus the new states (the
contract: ``runtime/contract.py``). This class hides the states: each
:meth:`StreamingModel.step` feeds one chunk for ``batch`` independent streams
and returns the output; the states stay inside, in buffers allocated once.
States may have any shape (an RNN's ``(batch, units)``, a convolution's
left-context cache ``(batch, k, channels)``, ...): the metadata gives it.

Per-step overhead is kept to what onnxruntime needs. The inputs, outputs and
states are pre-allocated and bound to the session once, through two
``IOBinding`` objects that swap the state buffers (states in of one are the
states out of the other): a step copies the chunk into the bound input buffer,
checks its values, runs the binding of the current parity and copies the
output out. For a single-input, single-output model no dict, list or OrtValue
is built per call (``scripts/bench_runtime.py`` measures it against a bare
``InferenceSession.run``).
"""

from __future__ import annotations

import functools
import threading
from typing import Iterable, Mapping

import numpy as np
import onnxruntime as ort

from .errors import InputShapeError, ModelFormatError, StateError
from .inputs import InputChecker, buffer_check
from .pickling import reopen_model, shipped_settings
from .session import LoadedModel, ModelBase, bound_runner, open_model

_copyto = np.copyto


class _Port:
    """One model input of a stream model: its checker, its bound buffer, and the shapes
    a caller may give it (``shape -> (view of the buffer, batch left out, time left out)``)."""

    def __init__(self, spec, shape: tuple, dtype: np.dtype, batch: int, chunk: int):
        self.name = spec.name
        self.timed = spec.time_axis is not None
        self.features = tuple(shape[2:] if self.timed else shape[1:])
        full = (batch, chunk) + self.features if self.timed else (batch,) + self.features
        self.checker = InputChecker(spec.name, full, dtype, uint8_scale=spec.uint8_scale,
                                    value_range=spec.value_range, vocab_size=spec.vocab_size, axis_names={})
        self.buf = np.zeros(full, self.checker.dtype)
        self.views: dict = {}

        def add(form, drop_batch, drop_time):
            self.views.setdefault(tuple(form), (self.buf.reshape(form), drop_batch, drop_time))

        add(full, False, False)
        if self.timed:
            if chunk == 1:  # one frame per stream: no time axis
                add((batch,) + self.features, False, True)
            if batch == 1:  # one stream: no batch axis
                add((chunk,) + self.features, True, False)
            if batch == 1 and chunk == 1:
                add(self.features, True, True)
        elif batch == 1:
            add(self.features, True, False)

    def forms(self, batch: int, chunk: int) -> list[str]:
        feats = ", ".join(str(d) for d in self.features)
        sep = ", " if feats else ""
        if not self.timed:
            text = [f"({batch}{sep}{feats}) as (streams, features)"]
            if batch == 1:
                text.append(f"({feats}{',' if len(self.features) == 1 else ''}) without the batch axis")
            return text
        text = [f"({batch}, {chunk}{sep}{feats}) as (streams, chunk, features)"]
        if chunk == 1:
            text.append(f"({batch}{sep}{feats}) without the time axis")
        if batch == 1:
            text.append(f"({chunk}{sep}{feats}) without the batch axis")
        if batch == 1 and chunk == 1:
            text.append(f"({feats},) for one frame")
        return text


def _chunk_of(loaded, contract, shapes: list, batch: int) -> int:
    """The steps per call a stream file takes, its inputs' shapes checked against `batch`."""
    chunk = contract.chunk
    for spec, shape in zip(contract.inputs, shapes):
        if spec.time_axis not in (None, 1):
            raise ModelFormatError(f"{loaded.path}: stream input {spec.name!r} must be (batch, chunk, "
                                   f"features...); metadata says time axis {spec.time_axis}")
        if shape[0] is not None and shape[0] != batch:
            raise StateError(f"{loaded.path} was exported for exactly {shape[0]} stream(s); got batch={batch}")
        if spec.time_axis is not None and chunk is None:
            chunk = shape[1]
        rest = shape[2:] if spec.time_axis is not None else shape[1:]
        if any(d is None for d in rest):
            raise ModelFormatError(f"{loaded.path}: stream input {spec.name!r} needs a fixed feature "
                                   f"shape; metadata says shape {list(spec.shape)}")
    if chunk is None:
        if any(spec.time_axis is not None for spec in contract.inputs):
            raise ModelFormatError(f"{loaded.path}: a stream model needs a fixed chunk; metadata says "
                                   f"chunk null and input shapes {[list(s.shape) for s in contract.inputs]}")
        chunk = 1
    return int(chunk)


class StreamingModel(ModelBase):
    """Feed a recurrent model one chunk (or frame) at a time, states carried inside.

    Args:
        model: path to a ``stream``/``unrolled`` ``.onnx`` file (or its bytes, or a
            :class:`LoadedModel`).
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

    A model with several inputs takes a mapping ``{name: array}`` per step (an
    input without a time axis, e.g. a speaker embedding, is ``(batch, ...)`` per
    call); a model with several outputs returns a dict ``{name: array}``.

    Threads: one instance may be shared between threads. :meth:`step`,
    :meth:`feed`, :meth:`reset` and :attr:`state` hold a lock while they use the
    buffers, so calls from several threads run one after another, each seeing
    and leaving consistent states (the streams of one instance form one
    sequence, so there is nothing to run in parallel). For parallel streams,
    use one instance per thread, or one instance with ``batch`` streams.

    Pickling: an instance pickles as its model bytes, settings (providers,
    threads, batch) and current states, so it can be shipped to another process.
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
        shapes = [loaded.input_shape(spec.name, spec.shape) for spec in contract.inputs]
        self._loaded, self._session, self.contract = loaded, loaded.session, contract
        self._batch, self.chunk = batch, _chunk_of(loaded, contract, shapes, batch)
        self._lock = threading.Lock()
        self._ports = [_Port(spec, shape, loaded.input_dtype(spec.name), batch, self.chunk)
                       for spec, shape in zip(contract.inputs, shapes)]
        self._timed = [p for p in self._ports if p.timed] or self._ports[:1]
        self.features = self._ports[0].features
        self._init_states()
        self._init_outputs_and_runs()
        self._init_fast_path()

    def _init_states(self) -> None:
        """Initial values, and two sets of state buffers: binding p reads _states[p] and writes _states[1 - p]."""
        self._specs = self.contract.states
        self._state_dtypes = [self._loaded.input_dtype(s.input) for s in self._specs]
        self._state_shapes = [(self._batch,) + tuple(s.shape[1:]) for s in self._specs]
        self._inits = [np.full(shp, s.init, dt)
                       for s, shp, dt in zip(self._specs, self._state_shapes, self._state_dtypes)]
        self._states = [[init.copy() for init in self._inits] for _ in range(2)]
        self._parity = 0

    def _init_outputs_and_runs(self) -> None:
        self._out_specs = self.contract.outputs
        self._flush = self.contract.flush
        self._ybufs = self._probe_outputs()
        self._yviews = ([_output_views(y, spec.per_step) for y, spec in zip(self._ybufs, self._out_specs)]
                        if self._flush is None else [])
        if self._flush is None:
            self._bindings = [self._bind(p) for p in range(2)]
            self._runs = self._runners()
        else:   # the outputs' time axes change from call to call: onnxruntime allocates them
            self._clock = next(k for k, spec in enumerate(self._specs) if spec.input == self._flush.state)
            self._emitted: list = []
            self._runs = [functools.partial(self._run_clocked, p) for p in range(2)]

    def _init_fast_path(self) -> None:
        """The fast path of step(): one input, one output."""
        port = self._ports[0]
        self._single = len(self._ports) == 1 and len(self._ybufs) == 1
        self._checker = port.checker
        self._xbuf = port.buf
        self._xdtype = port.buf.dtype
        self._check_x = buffer_check(port.checker, port.buf)
        self._views = ({shape: (xview, self._yviews[0][(drop_batch, drop_time)])
                        for shape, (xview, drop_batch, drop_time) in port.views.items()}
                       if self._single and self._flush is None else {})

    # -- what the model is -------------------------------------------------------------------

    @property
    def batch(self) -> int:
        """How many independent streams each call runs."""
        return self._batch

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._ports)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._out_specs)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.input for s in self._specs)

    # -- streaming ---------------------------------------------------------------------------

    def step(self, x):
        """Feed one chunk to every stream and return the output.

        Args:
            x: ``(batch, chunk, *features)``. Axes may be left out: the time axis
                when ``chunk`` is 1 (one frame per stream: ``(batch, *features)``),
                and the batch axis when ``batch`` is 1 (``(chunk, *features)``, or
                just ``features`` for one frame of one stream). The output leaves
                out the same axes. A model with several inputs takes a mapping
                ``{name: array}``; an input without a time axis is ``(batch, ...)``
                (or ``(...)`` when ``batch`` is 1), and the outputs follow the axes
                left out of the inputs that have a time axis.

        Returns:
            A new array with the model's output for this chunk; a dict
            ``{name: array}`` for a model with several outputs. A model whose windows on
            time drop, decimate or look ahead (``contract.flush``) returns, for a per-step
            output, the frames that became complete: ``(batch, n, ...)`` with ``n`` from 0
            up (the time axis stays, even at chunk 1); see :meth:`flush`.

        Raises:
            InputShapeError: the shape or dtype fits none of the forms above.
            InputValueError: NaN/inf, values outside the declared range, or token
                ids outside ``[0, vocab_size)``; the states are left as they were.
        """
        views = self._views.get(x.shape) if type(x) is np.ndarray else None
        if views is None or x.dtype is not self._xdtype:
            return self._step_checked(x)
        with self._lock:
            _copyto(views[0], x)
            self._check_x()
            parity = self._parity
            self._runs[parity]()
            self._parity = 1 - parity
            return views[1].copy()

    __call__ = step

    def flush(self):
        """End the sequence of every stream and return the outputs still waiting.

        A model with look-ahead windows (``padding="same"`` on time) gives output frame t only
        when a later input frame arrives; this feeds the zero frames Keras pads with and returns
        what comes out (like :meth:`step`; for a model without look-ahead, no frame). The states
        then start over (:meth:`reset`), ready for a new sequence. Any model may be flushed: one
        without windows on time returns its output for an empty chunk list (none per step).
        """
        with self._lock:
            outs = self._end_sequence()
        return outs[0] if len(outs) == 1 else dict(zip(self.output_names, outs))

    def _end_sequence(self, tail: dict | None = None) -> list:
        """Feed `tail` (a partial last chunk per input, or None) and the flush; reset; the outputs."""
        per_call = []
        if self._flush is not None:
            clock = self._states[self._parity][self._clock]
            fed = int(clock[0, 0])
            real = fed + (next(iter(tail.values())).shape[1] if tail else 0)
            clock[:, 1] = real
            total = real + self._flush.frames
            self._zero_chunk()
            for port in self._ports:   # the partial last chunk, zero-padded
                if tail:
                    arr = tail[port.name]
                    if port.timed:
                        port.buf[:, :arr.shape[1]] = arr
                    else:
                        _copyto(port.buf, arr)
            while fed < total:
                self._runs[self._parity]()
                self._parity = 1 - self._parity
                per_call.append(self._emitted)
                self._zero_chunk()
                fed += self.chunk
        for buf, init in zip(self._states[self._parity], self._inits):
            _copyto(buf, init)
        return [self._joined(k, [c[k] for c in per_call]) for k in range(len(self._out_specs))]

    def _zero_chunk(self) -> None:
        for port in self._ports:
            if port.timed:
                port.buf[...] = 0

    def _joined(self, k: int, parts: list):
        """Output `k` over several calls: per-step frames joined on axis 1 (none: length 0), else
        the last call's (None when no call was made)."""
        if self._out_specs[k].per_step:
            y = self._ybufs[k]
            return np.concatenate(parts, axis=1) if parts else np.zeros((self._batch, 0, *y.shape[2:]), y.dtype)
        return parts[-1] if parts else None

    def _run_clocked(self, parity: int) -> None:
        """One call of a model on a stream clock: states from buffer set `parity` into the other;
        the outputs (any number of frames) in `_emitted`."""
        feed = {p.name: p.buf for p in self._ports}
        feed.update({s.input: buf for s, buf in zip(self._specs, self._states[parity])})
        outs = self._session.run(None, feed)
        n = len(self._out_specs)
        for buf, new in zip(self._states[1 - parity], outs[n:]):
            _copyto(buf, new)
        self._emitted = outs[:n]

    def feed(self, xs, *, flush: bool | None = None):
        """Feed a whole sequence chunk by chunk, carrying (and updating) the states.

        Args:
            xs: ``(batch, T, *features)`` (or ``(T, *features)`` when ``batch`` is 1),
                ``T`` a multiple of ``chunk``; for several inputs a mapping
                ``{name: array}``, inputs without a time axis given once
                ``(batch, ...)`` and fed with every chunk.
            flush: end the sequence after it (:meth:`flush`). The default is True for a
                model with windows on time (``contract.flush``; then ``T`` may be any length),
                so that the result is Keras' output on ``xs``; False keeps the sequence open
                (``T`` a multiple of ``chunk``) and returns the frames that became complete.

        Returns:
            What a ``full`` export returns for the sequence: the last chunk's
            output, or for per-step outputs all of them along axis 1 (a dict for
            several outputs).
        """
        if flush is None:
            flush = self._flush is not None
        given = self._by_name(xs)
        arrays, squeeze, steps = {}, None, None
        for port in self._ports:
            arr, dropped = self._sequence(port, given[port.name])
            if port.timed:
                if squeeze is not None and dropped != squeeze:
                    raise InputShapeError(f"inputs {list(self.input_names)} must all have the batch axis "
                                          "or all leave it out")
                squeeze = dropped
                if steps is not None and arr.shape[1] != steps:
                    raise InputShapeError(f"inputs with a time axis must have the same number of steps; "
                                          f"got {steps} and {arr.shape[1]}")
                steps = arr.shape[1]
            arrays[port.name] = arr
        if steps is None:
            steps = self.chunk
        whole = steps - steps % self.chunk if flush and self._flush is not None else steps
        if steps == 0 or whole % self.chunk:
            name = next(p.name for p in self._ports if p.timed)
            raise InputShapeError(f"input {name!r} must have a positive multiple of chunk="
                                  f"{self.chunk} steps on axis 1; got {steps}")
        outs = [[] for _ in self._ybufs]
        with self._lock:
            for t in range(0, whole, self.chunk):
                for port in self._ports:
                    arr = arrays[port.name]
                    _copyto(port.buf, arr[:, t:t + self.chunk] if port.timed else arr)
                self._runs[self._parity]()
                self._parity = 1 - self._parity
                for k, (spec, y) in enumerate(zip(self._out_specs, self._emitted if self._flush else self._ybufs)):
                    if spec.per_step or t + self.chunk == whole:
                        outs[k].append(y.copy())
            if flush:
                tail = {p.name: arrays[p.name][:, whole:] if p.timed else arrays[p.name] for p in self._ports}
                ends = self._end_sequence(tail if whole < steps else None)
                for k, y in enumerate(ends):
                    if y is not None:
                        outs[k].append(y)
        result = []
        for k, chunks in enumerate(outs):
            y = self._joined(k, chunks)
            result.append(y[0] if squeeze and y is not None else y)
        return result[0] if len(result) == 1 else dict(zip(self.output_names, result))

    # -- states ------------------------------------------------------------------------------

    def reset(self, index: int | Iterable[int] | None = None) -> None:
        """Set the states back to their initial value: all streams, or only stream ``index``
        (an int or several ints)."""
        rows = None if index is None else self._stream_indices(index)
        if rows is not None and self._flush is not None and len(set(rows)) < self._batch:
            raise StateError("this model's windows on time run every stream on one clock, so its streams "
                             f"start over together: call reset() with no index; got index {index!r}")
        with self._lock:
            current = self._states[self._parity]
            for buf, init in zip(current, self._inits):
                if rows is None:
                    _copyto(buf, init)
                else:
                    buf[rows] = init[rows]

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of every state, ``{input name: (batch, ...) array}`` in graph order.
        Assign such a dict (e.g. from ``np.load``) to restore it."""
        with self._lock:
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
        with self._lock:
            for buf, arr in zip(self._states[self._parity], arrays):
                _copyto(buf, arr, casting="same_kind")

    # -- pickling ----------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        return shipped_settings(self._loaded) | {"batch": self._batch, "state": self.state}

    def __setstate__(self, shipped: dict) -> None:
        loaded = reopen_model(shipped)
        self.__init__(loaded, batch=shipped["batch"])
        self.state = shipped["state"]

    # -- internals ---------------------------------------------------------------------------

    def _step_checked(self, x):
        """The general path of :meth:`step`: any array-like, any accepted dtype, several inputs,
        full messages."""
        given = self._by_name(x)
        staged, form = [], None
        for port in self._ports:
            checker = port.checker
            arr = checker.as_array(given[port.name])
            checker.check_dtype(arr)
            view = port.views.get(arr.shape)
            if view is None:
                forms = port.forms(self._batch, self.chunk)
                raise InputShapeError(f"input {checker.name!r} must have shape {', or '.join(forms)}; "
                                      f"got shape {tuple(arr.shape)}")
            if checker.vocab_size is not None:
                checker.check_ids(arr)
            if form is None and (port.timed or port is self._timed[0]):
                form = view[1:]
            staged.append((port, arr, view[0]))
        with self._lock:
            for port, arr, buf in staged:
                port.checker.convert_into(arr, buf)
                if not (arr.dtype == np.uint8 and port.checker.uint8_scale is not None):
                    port.checker.check_values(port.buf)
            self._runs[self._parity]()
            self._parity = 1 - self._parity
            if self._flush is None:
                outs = [views[form or (False, False)].copy() for views in self._yviews]
            else:   # frames that became complete: the time axis stays, whatever the input's form
                outs = [y[0] if form and form[0] else y for y in self._emitted]
        return outs[0] if len(outs) == 1 else dict(zip(self.output_names, outs))

    def _by_name(self, x) -> dict:
        """``{input name: value}`` from a mapping, or from one value for a single-input model."""
        names = [p.name for p in self._ports]
        if isinstance(x, Mapping):
            if sorted(map(str, x)) != sorted(names):
                raise InputShapeError(f"inputs must be exactly {names}; got {sorted(map(str, x))}")
            return dict(x)
        if len(names) != 1:
            raise InputShapeError(f"this model has inputs {names}: pass a mapping {{name: array}}; "
                                  f"got a {type(x).__name__}")
        return {names[0]: x}

    def _sequence(self, port: _Port, value) -> tuple[np.ndarray, bool]:
        """A whole sequence for ``port`` as (batch, T, *features) (or (batch, *features) for an
        input without a time axis), checked and converted; and whether its batch axis was left out."""
        b = self._batch
        shape = (b, None) + port.features if port.timed else (b,) + port.features
        checker = InputChecker(port.name, shape, port.checker.dtype, uint8_scale=port.checker.uint8_scale,
                               value_range=port.checker.value_range, vocab_size=port.checker.vocab_size,
                               axis_names={1: "time"} if port.timed else {})
        arr = checker.as_array(value)
        dropped = b == 1 and arr.ndim == len(shape) - 1
        if dropped:
            arr = arr[None]
        return checker.prepare(arr), dropped

    def _forms(self) -> list[str]:
        """The accepted input shapes of the first input, described."""
        return self._ports[0].forms(self._batch, self.chunk)

    def _probe_outputs(self) -> list[np.ndarray]:
        """Run once on zeros to learn the output shapes and check the state outputs'."""
        names = [s.name for s in self._out_specs] + [s.output for s in self._specs]
        feed = {p.name: p.buf for p in self._ports}
        feed.update({s.input: init for s, init in zip(self._specs, self._inits)})
        try:
            outs = self._session.run(names, feed)
        except Exception as exc:  # onnxruntime's own exception types
            raise ModelFormatError(f"{self.path}: the stream model does not run on inputs of the "
                                   f"shapes its metadata declares: {str(exc).strip().splitlines()[0]}") from None
        for spec, shp, out in zip(self._specs, self._state_shapes, outs[len(self._out_specs):]):
            if out.shape != shp:
                raise ModelFormatError(f"{self.path}: state output {spec.output!r} has shape {out.shape}; "
                                       f"expected {shp} like its input {spec.input!r}")
        ys = outs[:len(self._out_specs)]
        for spec, y in zip(self._out_specs, ys):
            if spec.per_step and (y.ndim < 2 or (y.shape[1] != self.chunk and self._flush is None)):
                raise ModelFormatError(f"{self.path}: per-step output {spec.name!r} has shape "
                                       f"{y.shape}; expected (batch, {self.chunk}, ...)")
        return [np.empty_like(y) for y in ys]

    def _bind(self, parity: int) -> ort.IOBinding:
        binding = self._session.io_binding()
        for port in self._ports:
            binding.bind_ortvalue_input(port.name, ort.OrtValue.ortvalue_from_numpy(port.buf))
        for spec, y in zip(self._out_specs, self._ybufs):
            binding.bind_ortvalue_output(spec.name, ort.OrtValue.ortvalue_from_numpy(y))
        for k, spec in enumerate(self._specs):
            binding.bind_ortvalue_input(spec.input, ort.OrtValue.ortvalue_from_numpy(self._states[parity][k]))
            binding.bind_ortvalue_output(spec.output, ort.OrtValue.ortvalue_from_numpy(self._states[1 - parity][k]))
        return binding

    def _runners(self) -> list:
        """One zero-argument callable per binding; the C-level call when this onnxruntime has it."""
        return [bound_runner(self._session, binding) for binding in self._bindings]

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
                             f"then {list(spec.shape[1:])}); got {arr.shape}")
        if arr.dtype.kind not in ("f" if dtype.kind == "f" else "iu") and arr.dtype != dtype:
            raise StateError(f"state {spec.input!r} must be {dtype}; got {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise StateError(f"state {spec.input!r} must be finite; got NaN or inf values")
        return arr

    def __repr__(self) -> str:
        return (f"StreamingModel({self.path!r}, variant={self.contract.variant}, batch={self._batch}, "
                f"chunk={self.chunk}, states={list(self.state_names)}, providers={self.providers})")


def _output_views(y: np.ndarray, per_step: bool) -> dict:
    """``(batch left out, time left out) -> view`` of one output buffer."""
    no_time = y[:, 0] if per_step else y
    return {(False, False): y, (False, True): no_time, (True, False): y[0],
            (True, True): no_time[0]}

