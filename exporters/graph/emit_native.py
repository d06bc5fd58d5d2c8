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


def _attrs(p: RnnParams, direction: str) -> dict:
    names = {"lstm": [p.recurrent_activation, p.activation, p.activation],
             "gru": [p.recurrent_activation, p.activation], "simple": [p.activation]}[p.kind]
    names = names * (2 if direction == "bidirectional" else 1)
    attrs = {"hidden_size": p.units, "direction": direction, **activations.rnn_op_attrs(names)}
    if p.kind == "gru":
        attrs["linear_before_reset"] = 1 if p.reset_after else 0
    return attrs


def emit(g, x: str, p: RnnParams, states_in=None, prefix: str = "rnn", *, backward: RnnParams | None = None,
         seq_lens: str | None = None):
    """Emit layer `p` on batch-first tensor `x` (batch, time, features) as one ONNX node.

    `states_in` is None (zero initial state) or the list of (batch, units)
    state tensors, h then c for an LSTM (for a bidirectional pair: forward h,
    [c,] then backward h, [c]). With `backward` (the other side of a
    Bidirectional) the node runs both directions.

    Returns (y, finals). One direction: y is the layer output (batch, time,
    units) or (batch, units) in Keras' order (a `go_backwards` layer returns
    its steps last-first, as Keras does), finals the final states (batch,
    units). `seq_lens` ((batch,) int32) runs each sequence over its first
    seq_lens steps only (the valid steps of a masked batch, moved to the
    front by masks.compact); the op's outputs after them are zeros.
    Bidirectional: y is the pair (forward, backward) of such outputs, the
    backward sequence put back in input order as Keras' Bidirectional does.
    """
    pair = [p] if backward is None else [p, backward]
    direction = "bidirectional" if backward is not None else ("reverse" if p.go_backwards else "forward")
    weights = [onnx_weights(q) for q in pair]
    w, r, b = (np.concatenate([wt[i] for wt in weights], axis=0) for i in range(3))
    names = [g.const(f"{prefix}_W", w), g.const(f"{prefix}_R", r), g.const(f"{prefix}_B", b)]
    axis0 = g.const("axes_0", np.array([0], np.int64))
    axis1 = g.const("axes_1", np.array([1], np.int64))
    inputs = [g.node("Transpose", [x], perm=[1, 0, 2], name_hint=f"{prefix}_to_time_major")]
    inputs += names
    if seq_lens is not None:
        inputs.append(seq_lens)
    if states_in:
        per_dir = 2 if p.kind == "lstm" else 1
        stacked = []
        for j in range(per_dir):  # ONNX wants (directions, batch, units) per state kind
            parts = [g.node("Unsqueeze", [states_in[d * per_dir + j], axis0], name_hint=f"{prefix}_init")
                     for d in range(len(pair))]
            stacked.append(parts[0] if len(parts) == 1
                           else g.node("Concat", parts, axis=0, name_hint=f"{prefix}_init_pair"))
        inputs += ([""] if seq_lens is None else []) + stacked
    n_out = 3 if p.kind == "lstm" else 2
    outs = g.node(_OP[p.kind], inputs, n_out=n_out, name_hint=prefix, **_attrs(p, direction))
    if backward is None:
        finals = [g.node("Squeeze", [o, axis0], name_hint=f"{prefix}_state") for o in outs[1:]]
        if not p.return_sequences:
            return finals[0], finals
        seq = g.node("Squeeze", [outs[0], axis1], name_hint=f"{prefix}_seq")
        y = g.node("Transpose", [seq], perm=[1, 0, 2], name_hint=f"{prefix}_to_batch_major")
        return (reverse_time(g, y, prefix) if p.go_backwards else y), finals
    # bidirectional: Y (time, 2, batch, units), Y_h / Y_c (2, batch, units)
    finals = []  # forward h, [c,] then backward h, [c]
    for d in range(2):
        idx = g.const(f"dir_{d}", np.array([d], np.int64))
        for o in outs[1:]:
            finals.append(g.node("Squeeze", [g.node("Gather", [o, idx], axis=0), axis0],
                                 name_hint=f"{prefix}_state_{d}"))
    if not p.return_sequences:
        per_dir = len(finals) // 2
        return (finals[0], finals[per_dir]), finals
    ys = []
    for d in range(2):
        idx = g.const(f"dir_{d}", np.array([d], np.int64))
        seq = g.node("Squeeze", [g.node("Gather", [outs[0], idx], axis=1), axis1], name_hint=f"{prefix}_seq_{d}")
        ys.append(g.node("Transpose", [seq], perm=[1, 0, 2], name_hint=f"{prefix}_to_batch_major_{d}"))
    return tuple(ys), finals


def reverse_time(g, y: str, prefix: str) -> str:
    """`y` (batch, time, ...) with its time axis reversed (any length)."""
    starts = g.const("i_minus1", np.array([-1], np.int64))
    ends = g.const("i_int64_min", np.array([np.iinfo(np.int64).min], np.int64))
    axes = g.const("axes_1", np.array([1], np.int64))
    steps = g.const("i_minus1", np.array([-1], np.int64))
    return g.node("Slice", [y, starts, ends, axes, steps], name_hint=f"{prefix}_reverse_time")
