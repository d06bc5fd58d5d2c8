"""Reductions over the time axis that stream: a prefix mean is a running sum and a count, a
prefix sum a running sum, a prefix max (min) a running max (min).

`GlobalAveragePooling1D`, `GlobalMaxPooling1D` and `keras.ops.mean/sum/max/min` over axis 1
of a sequence use them. In `full` they are one Reduce* over time. In a stream each call
reduces its chunk, folds in the states of the chunks before it and returns the reduction
of the whole prefix, so the output after L steps is Keras' on `x[:, :L]`. The states:

- `sum` (the features' running sum, starting at 0) and `count` (steps seen, a (1,) float; the
  valid steps under a Keras mask);
- `max` / `min`, starting at the float32 lowest / highest value (no infinity in JSON).
"""

from __future__ import annotations

import numpy as np

from ..onnx_graph import reduce_over
from ..registry import Call, StateDecl

KINDS = ("mean", "sum", "max", "min")
_F32 = np.finfo(np.float32)
_ONNX = {"mean": "ReduceSum", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin"}


def state_decls(kind: str, frame: tuple) -> list[StateDecl]:
    """The states of a running `kind` over frames of shape `frame` (the axes kept, without batch)."""
    if kind == "mean":
        return [StateDecl("sum", frame), StateDecl("count", (1,))]
    if kind == "sum":
        return [StateDecl("sum", frame)]
    return [StateDecl(kind, frame, init=float(_F32.min if kind == "max" else _F32.max))]


def emit(ctx, call: Call, x: str, kind: str, keepdims: bool, frame_rank: int, valid: str | None = None) -> str:
    """`kind` of `x` (batch, time, *frame) over axis 1: the whole sequence in `full`, the prefix
    so far in a stream (the new states go to `call.states_out`); `frame_rank` is len(frame).

    With a mask (`valid`, (batch, time) bool: a Keras mask, which GlobalAveragePooling1D reads,
    or the stream clock's filled slots) the mean is over the valid steps: their sum over their
    count, 0/0 before the first one as in Keras; a max (min) skips the others (they read as the
    float32 lowest (highest), the state's start).
    """
    g, p = ctx.g, call.prefix
    weight = None
    if valid is not None:
        axes = g.const(f"axes_2_{frame_rank + 1}", np.arange(2, frame_rank + 2, dtype=np.int64))
        keep = g.node("Unsqueeze", [valid, axes], name_hint=f"{p}_keep")
        neutral = {"max": _F32.min, "min": _F32.max}.get(kind, 0.0)
        x = g.node("Where", [keep, x, g.node("CastLike", [g.const(f"f32_{neutral:g}", np.array(neutral, np.float32)),
                                                          x])], name_hint=f"{p}_masked")
        if kind == "mean":
            weight = g.node("CastLike", [keep, x], name_hint=f"{p}_weight")
    if not ctx.streaming:
        if weight is not None:
            total = reduce_over(g, "ReduceSum", x, [1], keepdims, ctx.opset, f"{p}_sum")
            count = reduce_over(g, "ReduceSum", weight, [1], keepdims, ctx.opset, f"{p}_count")
            return g.node("Div", [total, count], name_hint=f"{p}_mean")
        op = "ReduceMean" if kind == "mean" else _ONNX[kind]
        return reduce_over(g, op, x, [1], keepdims, ctx.opset, p)
    chunk = reduce_over(g, _ONNX[kind], x, [1], False, ctx.opset, f"{p}_chunk")
    combine = {"max": "Max", "min": "Min"}.get(kind, "Add")
    total = g.node(combine, [call.states_in[0], chunk], name_hint=f"{p}_{kind}")
    call.states_out, y = [total], total
    if kind == "mean":
        shape = g.node("Shape", [x], name_hint=f"{p}_shape")
        steps = g.node("Slice", [shape, g.const("i1", np.array([1], np.int64)), g.const("i2", np.array([2], np.int64))],
                       name_hint=f"{p}_steps")
        steps = g.node("Cast", [steps], to=1, name_hint=f"{p}_steps_f32")      # 1 = FLOAT
        if weight is not None:   # (batch, 1): the valid steps of each row's chunk
            frame_axes = g.const(f"axes_2_{frame_rank + 1}", np.arange(2, frame_rank + 2, dtype=np.int64))
            steps = reduce_over(g, "ReduceSum", g.node("Squeeze", [weight, frame_axes]), [1], True, ctx.opset,
                                f"{p}_valid_steps")
        count = g.node("Add", [call.states_in[1], steps], name_hint=f"{p}_count")
        call.states_out.append(count)
        if frame_rank > 1:    # (batch, 1) -> (batch, 1, 1, ...) to divide a (batch, *frame) sum
            axes = g.const(f"axes_2_{frame_rank}", np.arange(2, frame_rank + 1, dtype=np.int64))
            count = g.node("Unsqueeze", [count, axes], name_hint=f"{p}_count_b")
        y = g.node("Div", [total, count], name_hint=f"{p}_mean")
    if keepdims:
        y = g.node("Unsqueeze", [y, g.const("axes_1", np.array([1], np.int64))], name_hint=f"{p}_keep")
    return y
