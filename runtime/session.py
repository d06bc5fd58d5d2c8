"""Open an ONNX file as an onnxruntime session and read its ``rnnx`` contract.

This is the only place that touches the file: it turns a missing, unreadable
or corrupt model into a :class:`ModelFormatError`, and checks that the graph's
inputs and outputs are the ones its metadata promises, so that the model
classes can trust the contract afterwards.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .contract import METADATA_KEY, Contract
from .errors import ModelFormatError, UncheckedModelWarning
from .providers import check_active, resolve_providers, session_options

# onnxruntime type strings -> numpy dtypes, for the tensors rnnx models exchange.
ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}


@dataclass(frozen=True)
class LoadedModel:
    """An open session with its parsed contract (``None`` for a plain ONNX file)."""

    session: ort.InferenceSession
    contract: Contract | None
    path: str

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def input_dtype(self, name: str) -> np.dtype:
        return _dtype_of(self.session.get_inputs(), name, self.path)

    def output_dtype(self, name: str) -> np.dtype:
        return _dtype_of(self.session.get_outputs(), name, self.path)


def open_model(path, *, providers=None, threads: int | None = None) -> LoadedModel:
    """Open ``path`` (a file path, or the model's bytes) with onnxruntime.

    Raises:
        ModelFormatError: the file is missing, not ONNX, or its graph does not
            match its ``rnnx`` metadata.
        ProviderError: a requested execution provider is unavailable.
    """
    if isinstance(path, (bytes, bytearray)):
        source, label = bytes(path), "<bytes>"
    else:
        label = os.fspath(path)
        if not Path(label).is_file():
            what = "is a directory, not a model file" if Path(label).is_dir() else "does not exist"
            raise ModelFormatError(f"model file {label} {what}; expected an .onnx file")
        source = label
    resolved = resolve_providers(providers)
    options = session_options(threads)
    try:
        session = ort.InferenceSession(source, options, providers=resolved)
    except Exception as exc:  # onnxruntime raises its own exception types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"cannot load {label} as an ONNX model: {detail}") from None
    check_active(providers, resolved, session.get_providers())

    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        warnings.warn(
            f"{label} has no '{METADATA_KEY}' metadata: input shapes cannot be checked against "
            "a contract (only against the ONNX graph), and there are no labels or preprocessing",
            UncheckedModelWarning, stacklevel=3)
        return LoadedModel(session, None, label)
    contract = Contract.from_json(text)
    _check_graph(session, contract, label)
    return LoadedModel(session, contract, label)


def _check_graph(session: ort.InferenceSession, contract: Contract, label: str) -> None:
    """The graph's input/output names and ranks are those the contract declares."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    want_in = [contract.input.name] + [s.input for s in contract.states]
    want_out = [contract.output.name] + [s.output for s in contract.states]
    missing_in = [n for n in want_in if n not in inputs]
    missing_out = [n for n in want_out if n not in outputs]
    if missing_in or missing_out:
        raise ModelFormatError(
            f"{label}: graph does not match its rnnx metadata; expected inputs {want_in} and "
            f"outputs {want_out}, the graph has inputs {list(inputs)} and outputs {list(outputs)}")
    extra = [n for n in inputs if n not in want_in]
    if extra:
        raise ModelFormatError(
            f"{label}: graph has inputs {extra} that its rnnx metadata does not describe; "
            f"expected exactly {want_in}")
    declared = inputs[contract.input.name].shape
    if declared is not None and len(declared) != len(contract.input.shape):
        raise ModelFormatError(
            f"{label}: input {contract.input.name!r} has rank {len(declared)} in the graph but "
            f"shape {list(contract.input.shape)} in the rnnx metadata")
    for spec in contract.states:
        if len(spec.shape) != 2 or spec.shape[-1] is None:
            raise ModelFormatError(
                f"{label}: state {spec.input!r} must be declared (batch, units); got {list(spec.shape)}")
    if contract.streaming and contract.chunk is not None and len(contract.input.shape) > 1:
        axis = 1 if contract.input_time_axis is None else contract.input_time_axis
        steps = contract.input.shape[axis]
        if steps is not None and steps != contract.chunk:
            raise ModelFormatError(
                f"{label}: chunk is {contract.chunk} but input {contract.input.name!r} has "
                f"{steps} steps on axis {axis}")


def _dtype_of(args, name: str, label: str) -> np.dtype:
    for arg in args:
        if arg.name == name:
            try:
                return ORT_DTYPES[arg.type]
            except KeyError:
                raise ModelFormatError(f"{label}: tensor {name!r} has type {arg.type}, "
                                       f"which the rnnx runtime does not handle") from None
    raise ModelFormatError(f"{label}: the graph has no tensor named {name!r}")


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
