"""Emit a Keras recurrent layer as one native ONNX `LSTM`, `GRU` or `RNN` node.

ONNX RNN ops read (seq, batch, features) with `layout` 0 (onnxruntime does
not run layout 1), so the batch-first Keras tensor is transposed around the
node. Weight layout: W (1, gates*units, features), R (1, gates*units, units),
B (1, 2*gates*units) = input bias then recurrent bias.

Gate orders: Keras LSTM i,f,c,o -> ONNX i,o,f,c; GRU z,r,h and RNN are the
same in both. Keras GRU reset_after=True is ONNX linear_before_reset=1 with
the two bias rows as Wb and Rb; reset_after=False is linear_before_reset=0
with Rb = 0.
"""

from __future__ import annotations

import numpy as np

from . import activations
from .rnn_params import GATES, RnnParams

_OP = {"lstm": "LSTM", "gru": "GRU", "simple": "RNN"}
_LSTM_TO_ONNX = (0, 3, 1, 2)   # Keras block index for ONNX blocks i, o, f, c


def _reorder(p: RnnParams, mat: np.ndarray) -> np.ndarray:
    """Reorder gate blocks along the last axis from Keras to ONNX order."""
    if p.kind != "lstm":
        return mat
    blocks = np.split(mat, GATES["lstm"], axis=-1)
    return np.concatenate([blocks[i] for i in _LSTM_TO_ONNX], axis=-1)


def onnx_weights(p: RnnParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W, R, B in ONNX layout for one forward direction."""
    width = GATES[p.kind] * p.units
    w = _reorder(p, p.kernel).T[None]
    r = _reorder(p, p.recurrent).T[None]
    zeros = np.zeros(width, np.float32)
    wb = _reorder(p, p.bias_in) if p.bias_in is not None else zeros
    rb = _reorder(p, p.bias_rec) if p.bias_rec is not None else zeros
    b = np.concatenate([wb, rb])[None]
    return (np.ascontiguousarray(w, np.float32), np.ascontiguousarray(r, np.float32),
            np.ascontiguousarray(b, np.float32))


def _attrs(p: RnnParams) -> dict:
    act, rec = activations.RNN_OP_NAMES[p.activation], activations.RNN_OP_NAMES[p.recurrent_activation]
    attrs = {"hidden_size": p.units, "direction": "forward"}
    if p.kind == "lstm":
        attrs["activations"] = [rec, act, act]
    elif p.kind == "gru":
        attrs["activations"] = [rec, act]
        attrs["linear_before_reset"] = 1 if p.reset_after else 0
    else:
        attrs["activations"] = [act]
    return attrs


def emit(g, x: str, p: RnnParams, states_in=None, prefix: str = "rnn") -> tuple[str, list[str]]:
    """Emit layer `p` on batch-first tensor `x` (batch, time, features).

    `states_in` is None (zero initial state) or the list of (batch, units)
    state tensors, h then c for an LSTM. Returns the layer output (batch,
    time, units) or (batch, units), and the final states as (batch, units).
    """
    w, r, b = onnx_weights(p)
    names = [g.const(f"{prefix}_W", w), g.const(f"{prefix}_R", r), g.const(f"{prefix}_B", b)]
    axis0 = g.const("axes_0", np.array([0], np.int64))
    axis1 = g.const("axes_1", np.array([1], np.int64))
    inputs = [g.node("Transpose", [x], perm=[1, 0, 2], name_hint=f"{prefix}_to_time_major")]
    inputs += names
    if states_in:
        inputs += [""] + [g.node("Unsqueeze", [s, axis0], name_hint=f"{prefix}_init") for s in states_in]
    n_out = 3 if p.kind == "lstm" else 2
    outs = g.node(_OP[p.kind], inputs, n_out=n_out, name_hint=prefix, **_attrs(p))
    finals = [g.node("Squeeze", [o, axis0], name_hint=f"{prefix}_state") for o in outs[1:]]
    if p.return_sequences:
        seq = g.node("Squeeze", [outs[0], axis1], name_hint=f"{prefix}_seq")
        y = g.node("Transpose", [seq], perm=[1, 0, 2], name_hint=f"{prefix}_to_batch_major")
    else:
        y = finals[0]
    return y, finals
