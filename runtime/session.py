"""Open an ONNX file as an onnxruntime session and read its ``rnnx`` contract.

This is the only place that touches the file: it turns a missing, unreadable
or corrupt model into a :class:`ModelFormatError`, and checks that the graph's
inputs and outputs are the ones its metadata promises, so that the model
classes can trust the contract afterwards.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .contract import METADATA_KEY, Contract, is_state_name
from .errors import ModelFormatError, UncheckedModelWarning
from .integrity import check_file_in_export_set
from .providers import check_active, resolve_providers, session_options

# onnxruntime type strings -> numpy dtypes, for the tensors rnnx models exchange.
ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}


@dataclass(frozen=True)
class LoadedModel:
    """An open session with its parsed contract (``None`` for a plain ONNX file), and the
    settings it was opened with (to reopen it elsewhere: see :meth:`reopen_args`)."""

    session: ort.InferenceSession
    contract: Contract | None
    path: str
    requested_providers: object = None
    threads: int | None = None
    data: bytes | None = field(default=None, repr=False)  # the model's bytes when opened from bytes
    stamp: tuple | None = None                            # (size, mtime_ns) of the file when opened

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def input_dtype(self, name: str) -> np.dtype:
        return _dtype_of(self.session.get_inputs(), name, self.path)

    def output_dtype(self, name: str) -> np.dtype:
        return _dtype_of(self.session.get_outputs(), name, self.path)

    def input_shape(self, name: str, declared: tuple | None = None) -> tuple:
        """The shape of input ``name``: the declared one, with the graph's fixed dims filled in
        where the declaration leaves them dynamic (``None`` for what stays dynamic)."""
        return _merged(declared, _arg(self.session.get_inputs(), name, self.path))

    def output_shape(self, name: str, declared: tuple | None = None) -> tuple:
        return _merged(declared, _arg(self.session.get_outputs(), name, self.path))

    def model_bytes(self) -> bytes:
        """The serialized model, to ship it to another process.

        Raises:
            ModelFormatError: the file changed or vanished since it was opened.
        """
        if self.data is not None:
            return self.data
        try:
            data = Path(self.path).read_bytes()
            now = _stamp(self.path)
        except OSError as exc:
            raise ModelFormatError(f"cannot read {self.path} again to ship the model: {exc.strerror}") from None
        if self.stamp is not None and now != self.stamp:
            raise ModelFormatError(f"{self.path} changed since it was opened; load it again before "
                                   "shipping the model to another process")
        return data


def open_model(path, *, providers=None, threads: int | None = None) -> LoadedModel:
    """Open ``path`` (a file path, or the model's bytes) with onnxruntime.

    When the file's folder holds an ``export.json`` that lists the file, its size
    and sha256 must be the ones listed there (see :mod:`runtime.integrity`).

    Raises:
        ModelFormatError: the file is missing, not ONNX, not the file its export set
            lists, or its graph does not match its ``rnnx`` metadata.
        ProviderError: a requested execution provider is unavailable.
    """
    data, stamp = None, None
    if isinstance(path, (bytes, bytearray, memoryview)):
        data, label = bytes(path), "<bytes>"
        source = data
    else:
        label = os.fspath(path)
        if not Path(label).is_file():
            what = "is a directory, not a model file" if Path(label).is_dir() else "does not exist"
            raise ModelFormatError(f"model file {label} {what}; expected an .onnx or .ort file")
        stamp = _stamp(label)
        check_file_in_export_set(label)
        source = label
    resolved = resolve_providers(providers)
    options = session_options(threads)
    try:
        session = ort.InferenceSession(source, options, providers=resolved)
    except Exception as exc:  # onnxruntime raises its own exception types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"cannot load {label} as an ONNX model: {detail}") from None
    check_active(providers, resolved, session.get_providers())
    settings = dict(requested_providers=_plain(providers), threads=threads, data=data, stamp=stamp)

    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        warnings.warn(
            f"{label} has no '{METADATA_KEY}' metadata: input shapes cannot be checked against "
            "a contract (only against the ONNX graph), and there are no labels or preprocessing",
            UncheckedModelWarning, stacklevel=3)
        return LoadedModel(session, None, label, **settings)
    contract = Contract.from_json(text)
    _check_graph(session, contract, label)
    return LoadedModel(session, contract, label, **settings)


def _stamp(path: str) -> tuple:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _plain(providers):
    """The providers as given, as a picklable value."""
    if providers is None or isinstance(providers, str):
        return providers
    return [tuple(p) if isinstance(p, tuple) else p for p in providers]


def _check_graph(session: ort.InferenceSession, contract: Contract, label: str) -> None:
    """The graph is the one the contract describes: names, then ranks, fixed dims and dtypes.

    Raises ModelFormatError naming the first disagreement.
    """
    graph_in = {i.name: i for i in session.get_inputs()}
    graph_out = {o.name: o for o in session.get_outputs()}
    want_in = [t.name for t in contract.inputs] + [s.input for s in contract.states]
    want_out = [t.name for t in contract.outputs] + [s.output for s in contract.states]
    state_like = [n for n in graph_in if is_state_name(n) and n not in want_in]
    if state_like and not contract.streaming:
        raise ModelFormatError(
            f"{label}: the graph has state inputs {state_like} but its rnnx metadata says variant "
            f"'{contract.variant}'; a model that carries state is 'stream' or 'unrolled'")
    if state_like:
        raise ModelFormatError(
            f"{label}: the graph has state inputs {state_like} that the rnnx metadata's 'states' "
            f"does not declare (it declares {[s.input for s in contract.states]})")
    missing_in = [n for n in want_in if n not in graph_in]
    missing_out = [n for n in want_out if n not in graph_out]
    if missing_in or missing_out:
        raise ModelFormatError(
            f"{label}: graph does not match its rnnx metadata; expected inputs {want_in} and "
            f"outputs {want_out}, the graph has inputs {list(graph_in)} and outputs {list(graph_out)}")
    for what, graph, want in (("inputs", graph_in, want_in), ("outputs", graph_out, want_out)):
        extra = [n for n in graph if n not in want]
        if extra:
            raise ModelFormatError(
                f"{label}: graph has {what} {extra} that its rnnx metadata does not describe; "
                f"expected exactly {want}")
    for spec in contract.inputs:
        _check_tensor(label, "input", spec.name, spec.shape, spec.dtype, graph_in[spec.name])
    for spec in contract.outputs:
        _check_tensor(label, "output", spec.name, spec.shape, spec.dtype, graph_out[spec.name])
    shapes = {s.input: _graph_shape(graph_in[s.input]) for s in contract.states}
    for spec in contract.states:
        # a format-1 file declares no state dtype: the graph's is taken as it is
        dtype = spec.dtype if contract.format >= 2 else None
        for name, arg in ((spec.input, graph_in[spec.input]), (spec.output, graph_out[spec.output])):
            problem = _tensor_problem(spec.shape, dtype, arg)
            if problem is None:
                continue
            twin = [other.input for other in contract.states if other is not spec
                    and _fits(spec.shape, shapes[other.input]) and _fits(other.shape, _graph_shape(arg))]
            hint = f"; it looks swapped with state {twin[0]!r}" if twin else ""
            raise ModelFormatError(f"{label}: state tensor {name!r} {problem}{hint}")


def _check_tensor(label: str, what: str, name: str, shape: tuple, dtype: str, arg) -> None:
    problem = _tensor_problem(shape, dtype, arg)
    if problem is not None:
        raise ModelFormatError(f"{label}: {what} {name!r} {problem}")


def _tensor_problem(shape: tuple, dtype: str | None, arg) -> str | None:
    """What is wrong with graph tensor ``arg`` against a declared shape and dtype, or None."""
    graph = _graph_shape(arg)
    if graph is not None and len(graph) != len(shape):
        return (f"has rank {len(graph)} in the graph {_show(graph)} but shape {list(shape)} "
                "in the rnnx metadata")
    if graph is not None:
        for axis, (want, got) in enumerate(zip(shape, graph)):
            if want is not None and got is not None and want != got:
                return (f"has {got} on axis {axis} in the graph {_show(graph)} but {want} in the rnnx "
                        f"metadata's shape {list(shape)}")
    if dtype is not None:
        got = ORT_DTYPES.get(arg.type)
        if got is None or got != np.dtype(dtype):
            return f"is {arg.type} in the graph but {dtype} in the rnnx metadata"
    return None


def _graph_shape(arg) -> tuple | None:
    """The graph's shape of a tensor, ``None`` for unknown dims (or for an unknown rank)."""
    if arg.shape is None:
        return None
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in arg.shape)


def _fits(shape: tuple, graph: tuple | None) -> bool:
    if graph is None:
        return True
    return len(graph) == len(shape) and all(a is None or b is None or a == b for a, b in zip(shape, graph))


def _show(shape: tuple) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _arg(args, name: str, label: str):
    for arg in args:
        if arg.name == name:
            return arg
    raise ModelFormatError(f"{label}: the graph has no tensor named {name!r}")


def _dtype_of(args, name: str, label: str) -> np.dtype:
    arg = _arg(args, name, label)
    try:
        return ORT_DTYPES[arg.type]
    except KeyError:
        raise ModelFormatError(f"{label}: tensor {name!r} has type {arg.type}, "
                               f"which the rnnx runtime does not handle") from None


def _merged(declared: tuple | None, arg) -> tuple:
    graph = _graph_shape(arg)
    if declared is None:
        return graph if graph is not None else ()
    if graph is None or len(graph) != len(declared):
        return tuple(declared)
    return tuple(d if d is not None else g for d, g in zip(declared, graph))


__all__ = ["LoadedModel", "open_model", "ORT_DTYPES"]


class ModelBase:
    """What every runtime model says about itself (needs ``_loaded`` and ``contract``)."""

    _loaded: LoadedModel
    contract: object

    @property
    def path(self) -> str:
        return self._loaded.path

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on."""
        return self._loaded.providers

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class (or vocabulary) labels from the metadata, or ``None``."""
        return self.contract.labels if self.contract is not None else None

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Alias of :attr:`labels`."""
        return self.labels


def bound_runner(session: ort.InferenceSession, binding: ort.IOBinding):
    """A zero-argument callable that runs ``binding``; the C-level call when this onnxruntime has it."""
    options = ort.RunOptions()
    c_session = getattr(session, "_sess", None)
    c_binding = getattr(binding, "_iobinding", None)
    if c_session is not None and c_binding is not None and hasattr(c_session, "run_with_iobinding"):
        return functools.partial(c_session.run_with_iobinding, c_binding, options)
    return functools.partial(session.run_with_iobinding, binding, options)
