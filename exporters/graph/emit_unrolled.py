"""Emit a Keras recurrent layer as plain ops, one block of nodes per time step.

No Loop/Scan/If/LSTM/GRU/RNN node is produced. Every weight is ONE
initializer that all steps share (quantization and file size depend on it).
The input projection of all steps is a single MatMul before the steps; each
step then adds its recurrent projection. Weights stay in Keras gate order:

- LSTM: i, f, c, o = split(x W + b + h U); c' = f c + i g(c~); h' = o g(c')
- GRU (reset_after): z, r, h~ from x W + b_in and h U + b_rec;
  h~ = g(x_h + r * (h U_h + b_rec_h)); h' = h~ + z (h - h~)
- GRU (reset_before): h~ = g(x_h + (r h) U_h)
- SimpleRNN: h' = g(x W + b + h U)

With a Keras mask (`valid`, (batch, steps) bool) a masked step keeps every state (`Where`) and
outputs the last output (h, which it kept), or zeros with `zero_output_for_mask`.
"""

from __future__ import annotations

import numpy as np

from . import activations, masks
from .rnn_params import RnnParams


def emit(g, x: str, p: RnnParams, steps: int, states_in: list[str], prefix: str = "rnn", *,
         valid: str | None = None, zero_output: bool = False):
    """Emit layer `p` on `x` (batch, steps, features) with a fixed number of steps.

    `states_in` are the (batch, units) initial states (h, then c for LSTM), or None for zeros;
    `valid` a (batch, steps) bool Keras mask, or None. Returns (output, final states) like
    `emit_native.emit`.
    """
    if not states_in:
        states_in = [zeros(g, x, (p.units,), f"{prefix}_zero_{k}") for k in ("h", "c")[:2 if p.kind == "lstm" else 1]]
    axis1 = g.const("axes_1", np.array([1], np.int64))
    xw = g.node("MatMul", [x, g.const(f"{prefix}_kernel", p.kernel)], name_hint=f"{prefix}_xw")
    if p.bias_in is not None:
        xw = g.node("Add", [xw, g.const(f"{prefix}_bias", p.bias_in)], name_hint=f"{prefix}_xw_b")
    weights = _recurrent_weights(g, p, prefix)
    h = states_in[0]
    c = states_in[1] if p.kind == "lstm" else None
    outs = []
    for t in range(steps):
        idx = g.const(f"step_{t}", np.array(t, np.int64))
        xt = g.node("Gather", [xw, idx], axis=1, name_hint=f"{prefix}_x{t}")
        tag = f"{prefix}_t{t}"
        h_prev, c_prev = h, c
        if p.kind == "lstm":
            h, c = _lstm_step(g, p, xt, h, c, weights, tag)
        elif p.kind == "gru":
            h = _gru_step(g, p, xt, h, weights, tag)
        else:
            pre = g.node("Add", [xt, g.node("MatMul", [h, weights["U"]], name_hint=f"{tag}_hu")],
                         name_hint=f"{tag}_pre")
            h = activations.emit(g, pre, p.activation, f"{tag}_h")
        y = h
        if valid is not None:   # a masked step keeps its states and repeats (or zeroes) the output
            m = masks.step_mask(g, valid, t, tag)
            h = g.node("Where", [m, h, h_prev], name_hint=f"{tag}_h_kept")
            if c is not None:
                c = g.node("Where", [m, c, c_prev], name_hint=f"{tag}_c_kept")
            y = h
            if zero_output:
                zero = g.node("CastLike", [g.const("f0_scalar", np.array(0, np.float32)), h], name_hint=f"{tag}_zero")
                y = g.node("Where", [m, h, zero], name_hint=f"{tag}_y_zeroed")
        if p.return_sequences:
            outs.append(g.node("Unsqueeze", [y, axis1], name_hint=f"{tag}_y"))
    finals = [h] + ([c] if c is not None else [])
    if not p.return_sequences:
        return y, finals
    y = outs[0] if len(outs) == 1 else g.node("Concat", outs, axis=1, name_hint=f"{prefix}_seq")
    return y, finals


def zeros(g, x: str, dims: tuple, prefix: str) -> str:
    """(batch, *dims) float32 zeros, batch taken from `x`."""
    batch = g.node("Slice", [g.node("Shape", [x], name_hint=f"{prefix}_shape"), g.const("i0", np.array([0], np.int64)),
                             g.const("i1", np.array([1], np.int64))], name_hint=f"{prefix}_batch")
    rest = g.const("i" + "_".join(map(str, dims)), np.array(dims, np.int64))    # "i<units>" for (units,)
    shape = g.node("Concat", [batch, rest], axis=0, name_hint=f"{prefix}_dims")
    return g.node("ConstantOfShape", [shape], name_hint=prefix)


def _recurrent_weights(g, p: RnnParams, prefix: str) -> dict:
    u = p.units
    if p.kind == "gru" and not p.reset_after:
        return {"U_zr": g.const(f"{prefix}_rec_kernel_zr", np.ascontiguousarray(p.recurrent[:, :2 * u])),
                "U_h": g.const(f"{prefix}_rec_kernel_h", np.ascontiguousarray(p.recurrent[:, 2 * u:]))}
    w = {"U": g.const(f"{prefix}_rec_kernel", p.recurrent)}
    if p.bias_rec is not None:
        w["b_rec"] = g.const(f"{prefix}_rec_bias", p.bias_rec)
    return w


def _split(g, x: str, sizes, tag: str) -> list[str]:
    split = g.const("split_" + "_".join(map(str, sizes)), np.array(sizes, np.int64))
    return g.node("Split", [x, split], n_out=len(sizes), axis=1, name_hint=tag)


def _lstm_step(g, p, xt, h, c, w, tag):
    z = g.node("Add", [xt, g.node("MatMul", [h, w["U"]], name_hint=f"{tag}_hu")], name_hint=f"{tag}_z")
    return lstm_gates(g, z, c, p.units, p.activation, p.recurrent_activation, tag)


def lstm_gates(g, z: str, c: str, units: int, activation: str, recurrent_activation: str, tag: str):
    """(h', c') from the summed projections `z` (gate blocks i, f, c, o on axis 1, `units` each)
    and the carry `c`: c' = σ(f) c + σ(i) g(c~), h' = σ(o) g(c'). ConvLSTM's frames too."""
    zi, zf, zc, zo = _split(g, z, [units] * 4, f"{tag}_gates")
    i = activations.emit(g, zi, recurrent_activation, f"{tag}_i")
    f = activations.emit(g, zf, recurrent_activation, f"{tag}_f")
    cc = activations.emit(g, zc, activation, f"{tag}_cc")
    o = activations.emit(g, zo, recurrent_activation, f"{tag}_o")
    c_new = g.node("Add", [g.node("Mul", [f, c]), g.node("Mul", [i, cc])], name_hint=f"{tag}_c")
    h_new = g.node("Mul", [o, activations.emit(g, c_new, activation, f"{tag}_hc")], name_hint=f"{tag}_h")
    return h_new, c_new


def _gru_step(g, p, xt, h, w, tag):
    u = p.units
    xz, xr, xh = _split(g, xt, [u] * 3, f"{tag}_xgates")
    if p.reset_after:
        hu = g.node("MatMul", [h, w["U"]], name_hint=f"{tag}_hu")
        if "b_rec" in w:
            hu = g.node("Add", [hu, w["b_rec"]], name_hint=f"{tag}_hu_b")
        hz, hr, hh = _split(g, hu, [u] * 3, f"{tag}_hgates")
        z = activations.emit(g, g.node("Add", [xz, hz]), p.recurrent_activation, f"{tag}_z")
        r = activations.emit(g, g.node("Add", [xr, hr]), p.recurrent_activation, f"{tag}_r")
        cand_in = g.node("Add", [xh, g.node("Mul", [r, hh])], name_hint=f"{tag}_cand_in")
    else:
        hzr = g.node("MatMul", [h, w["U_zr"]], name_hint=f"{tag}_hu_zr")
        hz, hr = _split(g, hzr, [u, u], f"{tag}_hgates")
        z = activations.emit(g, g.node("Add", [xz, hz]), p.recurrent_activation, f"{tag}_z")
        r = activations.emit(g, g.node("Add", [xr, hr]), p.recurrent_activation, f"{tag}_r")
        rh = g.node("MatMul", [g.node("Mul", [r, h]), w["U_h"]], name_hint=f"{tag}_rh_u")
        cand_in = g.node("Add", [xh, rh], name_hint=f"{tag}_cand_in")
    cand = activations.emit(g, cand_in, p.activation, f"{tag}_cand")
    delta = g.node("Mul", [z, g.node("Sub", [h, cand])], name_hint=f"{tag}_zd")
    return g.node("Add", [cand, delta], name_hint=f"{tag}_h")
