"""Build one ONNX variant (full, stream or unrolled) from an export plan.

Graph I/O follows the streaming contract (DESIGN.md): input `x` first, then
`h_in_<k>` (and `c_in_<k>` for an LSTM) per recurrent layer k; output `y`
first, then `h_out_<k>` / `c_out_<k>` in the same order. `full` has no state
tensors. Dynamic dimensions are named 'batch' and 'time'.
"""

from __future__ import annotations

import numpy as np

from . import emit_layers, emit_native, emit_unrolled, rnn_params, segment
from ..errors import UnsupportedLayerError
from .onnx_graph import GraphBuilder

FORBIDDEN_IN_UNROLLED = ("Loop", "Scan", "If", "LSTM", "GRU", "RNN")


def state_layout(plan) -> list[tuple[str, str, int, str, str]]:
    """(input name, output name, units, layer name, kind) for every state, contract order."""
    out = []
    for k, layer in enumerate(plan.recurrent):
        kinds = ("h", "c") if rnn_params.kind_of(layer) == "lstm" else ("h",)
        for kind in kinds:
            out.append((f"{kind}_in_{k}", f"{kind}_out_{k}", int(layer.cell.units), layer.name, kind))
    return out


def io_dims(plan, variant: str, chunk: int):
    """Dims of x and y for a variant: 'batch', 'time' (full, dynamic) or chunk, then features."""
    def dims(shape, has_time):
        rest = [d if d is not None else f"dim{i}" for i, d in enumerate(shape, start=0)][1:]
        if not has_time:
            return ["batch"] + rest
        time = chunk if variant != "full" else (shape[1] if shape[1] is not None else "time")
        return ["batch", time] + rest[1:]

    return dims(plan.input_shape, True), dims(plan.output_shape, plan.per_step_output)


def build(plan, variant: str, *, chunk: int, opset: int, name: str, cache: dict | None = None):
    """The ModelProto of `variant` (no metadata yet). `cache` shares tf2onnx segments between variants."""
    cache = {} if cache is None else cache
    g = GraphBuilder(f"{name}_{variant}")
    x = g.reserve("x")
    states = state_layout(plan) if variant != "full" else []
    for s in states:
        g.reserve(s[0])
    cur = x
    finals_by_name = {}
    for i, step in enumerate(plan.steps):
        prefix = f"s{i}_{step.layers[0].name}"
        if step.kind == "rnn":
            p = rnn_params.read(step.layers[0])
            k = step.index
            ins = [s[0] for s in states if s[1].endswith(f"_out_{k}")]
            if variant == "unrolled":
                cur, finals = emit_unrolled.emit(g, cur, p, chunk, ins, prefix)
            else:
                cur, finals = emit_native.emit(g, cur, p, ins or None, prefix)
            for kind, t in zip(("h", "c"), finals):
                finals_by_name[f"{kind}_out_{k}"] = t
        elif step.kind == "native":
            cur = emit_layers.emitter_for(step.layers[0])(g, cur)
        else:
            proto = _converted(step, opset, cache)
            if step.kind == "per_step":
                cur = _splice_per_step(g, cur, step, proto, prefix)
            else:
                cur = g.splice(proto.graph, {"seg_in": cur}, prefix + "/", proto.opset_import)[0]
    g.reserve("y")
    g.node("Identity", [cur], outputs=["y"], name_hint="output_y")
    for s in states:
        g.reserve(s[1])
        g.node("Identity", [finals_by_name[s[1]]], outputs=[s[1]], name_hint=s[1])
    x_dims, y_dims = io_dims(plan, variant, chunk)
    inputs = [("x", np.dtype(plan.input_dtype), x_dims)]
    inputs += [(s[0], np.float32, ["batch", s[2]]) for s in states]
    outputs = [("y", np.float32, y_dims)] + [(s[1], np.float32, ["batch", s[2]]) for s in states]
    model = g.to_model(inputs, outputs, opset)
    if variant == "unrolled":
        bad = sorted({n.op_type for n in model.graph.node if n.op_type in FORBIDDEN_IN_UNROLLED})
        if bad:
            raise UnsupportedLayerError(f"the unrolled variant still holds {', '.join(bad)} ops "
                                        "from a tf2onnx-converted layer run")
    return model


def _converted(step, opset, cache):
    key = (id(step), opset)
    if key not in cache:
        if step.kind == "per_step":
            inner = [layer.layer for layer in step.layers]
            cache[key] = segment.convert(inner, (None, *step.input_shape[2:]), opset)
        else:
            cache[key] = segment.convert(list(step.layers), (None, *step.input_shape[1:]), opset)
    return cache[key]


def _splice_per_step(g, x, step, proto, prefix):
    frame, out_frame = step.input_shape[2:], step.output_shape[2:]
    flat = g.node("Reshape", [x, g.const(f"{prefix}_in_shape", np.array([-1, *frame], np.int64))],
                  name_hint=f"{prefix}_merge_batch_time")
    y = g.splice(proto.graph, {"seg_in": flat}, prefix + "/", proto.opset_import)[0]
    shape = g.node("Shape", [x], name_hint=f"{prefix}_shape")
    bt = g.node("Slice", [shape, g.const("i0", np.array([0], np.int64)), g.const("i2", np.array([2], np.int64))],
                name_hint=f"{prefix}_batch_time")
    tail = g.const(f"{prefix}_out_frame", np.array(list(out_frame), np.int64))
    target = g.node("Concat", [bt, tail], axis=0, name_hint=f"{prefix}_out_shape")
    return g.node("Reshape", [y, target], name_hint=f"{prefix}_split_batch_time")
