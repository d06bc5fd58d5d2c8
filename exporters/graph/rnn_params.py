"""The weights and settings of one Keras recurrent layer, as plain numpy.

`read(layer)` gives an `RnnParams` in Keras' own layout (gate blocks in Keras
order along the last axis of the kernels); the emitters reorder from there.
`native_blocker(layer)` says why a layer cannot be emitted by rnnx (None when
it can).

Keras gate orders: LSTM i, f, c, o; GRU z, r, h; SimpleRNN one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activations

GATES = {"lstm": 4, "gru": 3, "simple": 1}


@dataclass(frozen=True)
class RnnParams:
    kind: str                 # "lstm" | "gru" | "simple"
    name: str                 # the Keras layer name
    units: int
    kernel: np.ndarray        # (features, gates*units)
    recurrent: np.ndarray     # (units, gates*units)
    bias_in: np.ndarray | None   # (gates*units,) added to the input projection
    bias_rec: np.ndarray | None  # (gates*units,) GRU reset_after only: the recurrent bias
    activation: str
    recurrent_activation: str  # unused for SimpleRNN
    reset_after: bool          # GRU only
    return_sequences: bool

    @property
    def has_c(self) -> bool:
        return self.kind == "lstm"


def kind_of(layer) -> str | None:
    """'lstm', 'gru' or 'simple' for the exact Keras classes rnnx emits, else None."""
    import keras

    return {keras.layers.LSTM: "lstm", keras.layers.GRU: "gru",
            keras.layers.SimpleRNN: "simple"}.get(type(layer))


def is_recurrent(layer) -> bool:
    """Any Keras RNN-like layer (including wrappers rnnx cannot stream)."""
    import keras

    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def native_blocker(layer) -> str | None:
    """Why rnnx cannot emit `layer` itself, or None when it can."""
    kind = kind_of(layer)
    if kind is None:
        return f"{type(layer).__name__} has no rnnx emitter"
    if layer.go_backwards:
        return "go_backwards=True"
    if getattr(layer, "return_state", False):
        return "return_state=True"
    cell = layer.cell
    names = [activations.name_of(cell.activation)]
    if kind != "simple":
        names.append(activations.name_of(cell.recurrent_activation))
    for n in names:
        if n not in activations.RNN_OP_NAMES:
            return f"activation {n!r} has no exact ONNX RNN-op counterpart"
    return None


def read(layer) -> RnnParams:
    """Extract `layer`'s weights and settings (call `native_blocker` first)."""
    kind = kind_of(layer)
    cell = layer.cell
    units = int(cell.units)
    kernel = np.asarray(cell.kernel.numpy(), np.float32)
    recurrent = np.asarray(cell.recurrent_kernel.numpy(), np.float32)
    bias_in = bias_rec = None
    reset_after = bool(getattr(cell, "reset_after", False))
    if cell.use_bias:
        bias = np.asarray(cell.bias.numpy(), np.float32)
        if kind == "gru" and reset_after:
            bias_in, bias_rec = bias[0], bias[1]
        else:
            bias_in = bias
    rec_act = activations.name_of(cell.recurrent_activation) if kind != "simple" else "sigmoid"
    return RnnParams(
        kind=kind, name=layer.name, units=units, kernel=kernel, recurrent=recurrent,
        bias_in=bias_in, bias_rec=bias_rec,
        activation=activations.name_of(cell.activation), recurrent_activation=rec_act,
        reset_after=reset_after, return_sequences=bool(layer.return_sequences),
    )
