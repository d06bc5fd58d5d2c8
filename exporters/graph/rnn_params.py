"""The weights and settings of one Keras recurrent cell, as plain numpy.

`read(cell, ...)` gives an `RnnParams` in Keras' own layout (gate blocks in
Keras order along the last axis of the kernels); the emitters reorder from
there. `cell_blocker(cell)` says why a cell cannot be emitted by rnnx (None
when it can). A layer (`LSTM`, `GRU`, `SimpleRNN`, `RNN(cell)`, a
`Bidirectional` side) is one or more cells: see `handlers/recurrent.py`.

Keras gate orders: LSTM i, f, c, o; GRU z, r, h; SimpleRNN one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activations

GATES = {"lstm": 4, "gru": 3, "simple": 1}
STATE_KINDS = {"lstm": ("h", "c"), "gru": ("h",), "simple": ("h",)}


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
    go_backwards: bool = False

    @property
    def has_c(self) -> bool:
        return self.kind == "lstm"


def cell_kind(cell) -> str | None:
    """'lstm', 'gru' or 'simple' for the Keras cell classes rnnx emits, else None."""
    import keras

    for cls, kind in ((keras.layers.LSTMCell, "lstm"), (keras.layers.GRUCell, "gru"),
                      (keras.layers.SimpleRNNCell, "simple")):
        if type(cell) is cls:
            return kind
    return None


def cell_activations(cell) -> list[str]:
    kind = cell_kind(cell)
    names = [activations.name_of(cell.activation)]
    if kind != "simple":
        names.append(activations.name_of(cell.recurrent_activation))
    return names


def cell_blocker(cell, *, native: bool) -> str | None:
    """Why rnnx cannot emit `cell` (as a native ONNX op when `native`, else as plain ops), or None."""
    kind = cell_kind(cell)
    if kind is None:
        return f"cell {type(cell).__name__} has no rnnx emitter (LSTMCell, GRUCell and SimpleRNNCell have)"
    for n in cell_activations(cell):
        if native and n not in activations.RNN_OPS:
            exact = ", ".join(sorted(activations.RNN_OPS))
            return f"activation {n!r} has no exact ONNX RNN-op counterpart (those that do: {exact})"
        if not native and not activations.supported(n):
            return f"activation {n!r} has no exact ONNX counterpart"
    return None


def read(cell, *, name: str, return_sequences: bool, go_backwards: bool = False) -> RnnParams:
    """Extract a cell's weights and settings (call `cell_blocker` first)."""
    kind = cell_kind(cell)
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
        kind=kind, name=name, units=units, kernel=kernel, recurrent=recurrent,
        bias_in=bias_in, bias_rec=bias_rec,
        activation=activations.name_of(cell.activation), recurrent_activation=rec_act,
        reset_after=reset_after, return_sequences=bool(return_sequences), go_backwards=bool(go_backwards),
    )
