"""Emit a Keras ConvLSTM1D/2D/3D layer (channels_last) with plain ONNX ops.

Keras' ConvLSTMCell, per step (gate blocks i, f, c, o along the filters axis):

    z = conv(x_t, W; padding, strides, dilation) + b + conv(h, U; 'same', stride 1)
    i, f, cc, o = split(z);  c' = σ(f) c + σ(i) g(cc);  h' = σ(o) g(c')

The input convolution of all steps is ONE Conv over the (batch*time) frames, before the steps;
each step adds its recurrent convolution. ONNX Conv is channels-first, so the steps run on
(batch, filters, *spatial) and h, c are put back in Keras' channels_last layout only where they
leave the layer (its output and its final states).

- `emit_steps` writes a known number of steps out (unrolled, and a stream's chunk);
- `emit_scan` runs the steps in one ONNX `Scan` whose body holds one step (full: any length).
  The body reads the layer's weights from the outer graph, so each is stored once.

A Keras mask (`valid`, (batch, steps) bool) keeps h and c on a masked step and repeats the last
output, as Keras does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import activations, emit_unrolled
from .padding import ints, same_pads


@dataclass(frozen=True)
class ConvLstmParams:
    name: str
    rank: int                  # 1, 2 or 3 spatial axes per frame
    filters: int
    frame: tuple               # the input frame's spatial shape
    out_frame: tuple           # the state's spatial shape
    kernel: np.ndarray         # ONNX (4*filters, channels, *k)
    recurrent: np.ndarray      # ONNX (4*filters, filters, *k)
    bias: np.ndarray | None    # (4*filters,)
    strides: tuple
    dilation: tuple
    pads: list                 # the input convolution's explicit ONNX pads (Keras' padding)
    activation: str
    recurrent_activation: str
    return_sequences: bool


def blocker(layer, frame: tuple) -> str | None:
    """Why rnnx cannot emit this ConvLSTM layer on frames of spatial shape `frame`, or None."""
    cell = layer.cell
    if cell.data_format != "channels_last":
        return f"data_format={cell.data_format!r} has no rnnx emitter (channels_last has)"
    if any(n is None for n in frame):
        return f"its frames' spatial shape {tuple(frame)} is not fixed, which its convolutions' padding needs"
    for fn in (cell.activation, cell.recurrent_activation):
        name = activations.name_of(fn)
        if not activations.supported(name):
            return f"activation {name!r} has no exact ONNX counterpart"
    return None


def read(layer, frame: tuple, *, return_sequences: bool) -> ConvLstmParams:
    """The weights and settings of `layer` in ONNX layout (call `blocker` first)."""
    cell = layer.cell
    rank = int(cell.rank)
    kernel, strides, dilation = (ints(v, rank) for v in (cell.kernel_size, cell.strides, cell.dilation_rate))
    frame = tuple(int(n) for n in frame)
    perm = (rank + 1, rank, *range(rank))      # Keras (*k, in, out) -> ONNX (out, in, *k)
    w = np.ascontiguousarray(np.transpose(cell.kernel.numpy(), perm), np.float32)
    u = np.ascontiguousarray(np.transpose(cell.recurrent_kernel.numpy(), perm), np.float32)
    b = np.asarray(cell.bias.numpy(), np.float32) if cell.use_bias else None
    if cell.padding == "same":
        pads = same_pads(frame, kernel, strides, dilation)
    else:
        pads = [0] * (2 * rank)
    out = tuple((n + pads[a] + pads[rank + a] - (k - 1) * d - 1) // s + 1
                for a, (n, k, s, d) in enumerate(zip(frame, kernel, strides, dilation)))
    return ConvLstmParams(layer.name, rank, int(cell.filters), frame, out, w, u, b, strides, dilation, pads,
                          activations.name_of(cell.activation), activations.name_of(cell.recurrent_activation),
                          bool(return_sequences))


def _weights(ctx, layer, p: ConvLstmParams) -> dict:
    w = {"W": ctx.weight(layer, "kernel", p.kernel), "U": ctx.weight(layer, "recurrent_kernel", p.recurrent)}
    if p.bias is not None:
        w["b"] = ctx.weight(layer, "bias", p.bias)
    return w


def _first(p: ConvLstmParams) -> list:
    return [0, p.rank + 1, *range(1, p.rank + 1)]    # channels_last -> channels_first


def _last(p: ConvLstmParams) -> list:
    return [0, *range(2, p.rank + 2), 1]             # channels_first -> channels_last


def _input_projection(g, x: str, p: ConvLstmParams, w: dict, prefix: str) -> str:
    """x (batch, time, *frame, channels) -> (batch, time, 4*filters, *out_frame): every step's x W + b."""
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    frames = g.node("Reshape", [x, g.const(f"{prefix}_frames_shape", i64([-1, *p.frame, int(p.kernel.shape[1])]))],
                    name_hint=f"{prefix}_frames")
    frames = g.node("Transpose", [frames], perm=_first(p), name_hint=f"{prefix}_frames_ncw")
    conv_in = [frames, w["W"]] + ([w["b"]] if "b" in w else [])
    xw = g.node("Conv", conv_in, kernel_shape=list(p.kernel.shape[2:]), strides=list(p.strides),
                dilations=list(p.dilation), pads=list(p.pads), name_hint=f"{prefix}_xw")
    lead = g.node("Slice", [g.node("Shape", [x], name_hint=f"{prefix}_shape"), g.const("i0", i64([0])),
                            g.const("i2", i64([2]))], name_hint=f"{prefix}_batch_time")
    dims = g.node("Concat", [lead, g.const(f"{prefix}_xw_dims", i64([4 * p.filters, *p.out_frame]))], axis=0,
                  name_hint=f"{prefix}_xw_shape")
    return g.node("Reshape", [xw, dims], name_hint=f"{prefix}_xw_steps")


def _step(g, p: ConvLstmParams, xt: str, h: str, c: str, u: str, tag: str) -> tuple[str, str]:
    """One step on channels-first tensors: xt (batch, 4F, *S), h and c (batch, F, *S)."""
    k = list(p.recurrent.shape[2:])
    rec_pads = [(n - 1) // 2 for n in k] + [n - 1 - (n - 1) // 2 for n in k]
    hu = g.node("Conv", [h, u], kernel_shape=k, pads=rec_pads, name_hint=f"{tag}_hu")
    z = g.node("Add", [xt, hu], name_hint=f"{tag}_z")
    return emit_unrolled.lstm_gates(g, z, c, p.filters, p.activation, p.recurrent_activation, tag)


def _keep_masked(g, m: str, new: str, old: str, tag: str) -> str:
    """`new` where the (batch, 1, ..., 1) mask `m` is set, else `old`."""
    return g.node("Where", [m, new, old], name_hint=f"{tag}_kept")


def _frame_mask(g, m: str, p: ConvLstmParams, tag: str) -> str:
    """(batch,) bool -> (batch, 1, ..., 1) to broadcast over a channels-first state."""
    axes = g.const(f"axes_1_to_{p.rank + 1}", np.arange(1, p.rank + 2, dtype=np.int64))
    return g.node("Unsqueeze", [m, axes], name_hint=f"{tag}_mask")


def _initial(g, x: str, p: ConvLstmParams, states_in, prefix: str) -> list[str]:
    if not states_in:
        zero = emit_unrolled.zeros(g, x, (p.filters, *p.out_frame), f"{prefix}_zero_state")
        return [zero, zero]
    return [g.node("Transpose", [s], perm=_first(p), name_hint=f"{prefix}_{k}_in") for s, k in zip(states_in, "hc")]


def _finals(g, p: ConvLstmParams, h: str, c: str, prefix: str) -> list[str]:
    return [g.node("Transpose", [s], perm=_last(p), name_hint=f"{prefix}_{k}_final") for s, k in ((h, "h"), (c, "c"))]


def emit_steps(ctx, layer, x: str, p: ConvLstmParams, steps: int, states_in, prefix: str, *,
               valid: str | None = None) -> tuple[str, list[str]]:
    """`steps` steps as plain ops. Returns (output, [h, c]) in Keras' layout."""
    g = ctx.g
    w = _weights(ctx, layer, p)
    xw = _input_projection(g, x, p, w, prefix)
    h, c = _initial(g, x, p, states_in, prefix)
    axis1 = g.const("axes_1", np.array([1], np.int64))
    outs = []
    for t in range(steps):
        tag = f"{prefix}_t{t}"
        xt = g.node("Gather", [xw, g.const(f"step_{t}", np.array(t, np.int64))], axis=1, name_hint=f"{prefix}_x{t}")
        h_new, c_new = _step(g, p, xt, h, c, w["U"], tag)
        if valid is not None:
            m = _frame_mask(g, g.node("Gather", [valid, g.const(f"step_{t}", np.array(t, np.int64))], axis=1,
                                      name_hint=f"{tag}_m"), p, tag)
            h_new, c_new = _keep_masked(g, m, h_new, h, f"{tag}_h"), _keep_masked(g, m, c_new, c, f"{tag}_c")
        h, c = h_new, c_new
        if p.return_sequences:
            outs.append(g.node("Unsqueeze", [h, axis1], name_hint=f"{tag}_y"))
    finals = _finals(g, p, h, c, prefix)
    if not p.return_sequences:
        return finals[0], finals
    seq = outs[0] if len(outs) == 1 else g.node("Concat", outs, axis=1, name_hint=f"{prefix}_seq")
    perm = [0, 1, *range(3, p.rank + 3), 2]     # (batch, time, F, *S) -> (batch, time, *S, F)
    return g.node("Transpose", [seq], perm=perm, name_hint=f"{prefix}_seq_nwc"), finals


def emit_scan(ctx, layer, x: str, p: ConvLstmParams, states_in, prefix: str, *,
              valid: str | None = None) -> tuple[str, list[str]]:
    """Every step of a sequence of any length in one `Scan`. Returns (output, [h, c]) in Keras' layout."""
    from onnx import TensorProto

    g = ctx.g
    w = _weights(ctx, layer, p)
    xw = _input_projection(g, x, p, w, prefix)
    h0, c0 = _initial(g, x, p, states_in, prefix)
    body = g.child(f"{prefix}_step")
    h_in, c_in, x_in = (body.fresh(f"{prefix}_{k}_prev") for k in ("h", "c", "x"))
    h, c = _step(body, p, x_in, h_in, c_in, w["U"], f"{prefix}_body")
    scan_in = [xw]
    body_in = [(h_in, None), (c_in, None), (x_in, None)]
    if valid is not None:
        m_in = body.fresh(f"{prefix}_valid_t")
        m = _frame_mask(body, m_in, p, f"{prefix}_body")
        h, c = _keep_masked(body, m, h, h_in, f"{prefix}_body_h"), _keep_masked(body, m, c, c_in, f"{prefix}_body_c")
        scan_in.append(valid)
        body_in.append((m_in, TensorProto.BOOL))
    y = body.node("Identity", [h], name_hint=f"{prefix}_body_y")
    dims = [None] * (p.rank + 2)
    graph = body.to_graph(
        inputs=[(name, elem or TensorProto.FLOAT, dims if elem is None else [None]) for name, elem in body_in],
        outputs=[(name, TensorProto.FLOAT, dims) for name in (h, c, y)])
    n_scan = len(scan_in)
    h_last, c_last, ys = g.node("Scan", [h0, c0, *scan_in], n_out=3, body=graph, num_scan_inputs=n_scan,
                                scan_input_axes=[1] * n_scan, scan_output_axes=[1], name_hint=f"{prefix}_scan")
    finals = _finals(g, p, h_last, c_last, prefix)
    if not p.return_sequences:
        return finals[0], finals
    perm = [0, 1, *range(3, p.rank + 3), 2]
    return g.node("Transpose", [ys], perm=perm, name_hint=f"{prefix}_seq_nwc"), finals
