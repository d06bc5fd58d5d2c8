"""Keras masks on recurrent layers, for the native ONNX RNN ops: compact, run, scatter back.

Keras runs a masked step by leaving every state as it was; its output is the previous step's
output (zeros before the first valid step), or zeros with `zero_output_for_mask=True` (which
Bidirectional forces when it returns sequences). So the states after any prefix are those of
the valid steps alone, in order, whatever the padding: post-padded, pre-padded or with holes.

The native ops only skip a suffix (`sequence_lens`). So each row's valid steps are moved to the
front in order (`compact`), the op runs over them with `sequence_lens` = their count, and each
output step is gathered back from the last valid step at or before it (`scatter`). A row with
no valid step keeps its initial states (`keep_states`). A stream call does the same over its
chunk; its "previous output" before the chunk's first valid step is the carried h, which is
the layer's last output.

`unrolled` (and a stream of cells the native ops lack) writes the steps as plain ops and masks
each one with `Where` (emit_unrolled.py); both forms give Keras' result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .onnx_graph import reduce_over

BOOL, INT32, INT64, FLOAT = 9, 6, 7, 1   # ONNX TensorProto types


@dataclass
class Compacted:
    x: str            # (batch, time, features): each row's valid steps first, in order
    seq_lens: str     # (batch,) int32 valid steps per row, at least 1 (the op's sequence_lens)
    any_valid: str    # (batch,) bool: the row has a valid step
    seen: str         # (batch, time) int64: valid steps up to and including each step
    valid: str        # (batch, time) bool: the mask itself


def as_bool(g, mask: str, dtype: str, prefix: str) -> str:
    """A (batch, time) mask tensor of any dtype as ONNX bool."""
    return mask if dtype == "bool" else g.node("Cast", [mask], to=BOOL, name_hint=f"{prefix}_mask_bool")


def compact(g, x: str, valid: str, opset: int, prefix: str) -> Compacted:
    """Move each row's valid steps of `x` (batch, time, features) to the front, in order."""
    ones = g.node("Cast", [valid], to=INT64, name_hint=f"{prefix}_mask_i64")
    seen = g.node("CumSum", [ones, g.const("i1_scalar", np.array(1, np.int64))], name_hint=f"{prefix}_mask_seen")
    count = reduce_over(g, "ReduceSum", ones, [1], False, opset, f"{prefix}_mask_count")
    shape = g.node("Shape", [valid], name_hint=f"{prefix}_mask_shape")
    steps = g.node("Slice", [shape, g.const("i1", np.array([1], np.int64)), g.const("i2", np.array([2], np.int64))],
                   name_hint=f"{prefix}_mask_T")
    t = g.node("Cast", [g.node("Range", [g.const("i0_scalar", np.array(0, np.int64)),
                                         g.node("Squeeze", [steps, g.const("axes_0", np.array([0], np.int64))]),
                                         g.const("i1_scalar", np.array(1, np.int64))])], to=FLOAT,
               name_hint=f"{prefix}_mask_t")
    later = g.node("Add", [t, g.node("Cast", [steps], to=FLOAT)], name_hint=f"{prefix}_mask_later")
    key = g.node("Where", [valid, t, later], name_hint=f"{prefix}_mask_key")   # valid steps sort first
    _, order = g.node("TopK", [key, steps], n_out=2, axis=1, largest=0, sorted=1, name_hint=f"{prefix}_mask_order")
    moved = gather_steps(g, x, order, f"{prefix}_compact")
    lens = g.node("Cast", [g.node("Max", [count, g.const("i1", np.array([1], np.int64))])], to=INT32,
                  name_hint=f"{prefix}_seq_lens")
    any_valid = g.node("Greater", [count, g.const("i0_scalar", np.array(0, np.int64))], name_hint=f"{prefix}_any_valid")
    return Compacted(moved, lens, any_valid, seen, valid)


def gather_steps(g, y: str, index: str, prefix: str) -> str:
    """`y` (batch, time, units) with step t of row b taken from step index[b, t]."""
    shape = g.node("Shape", [y], name_hint=f"{prefix}_shape")
    idx = g.node("Unsqueeze", [index, g.const("axes_2", np.array([2], np.int64))], name_hint=f"{prefix}_idx")
    return g.node("GatherElements", [y, g.node("Expand", [idx, shape])], axis=1, name_hint=prefix)


def scatter(g, y: str, c: Compacted, *, zero_output: bool, before: str | None, prefix: str) -> str:
    """The per-step output in input order from `y` (batch, time, units) over compacted steps.

    A valid step gets its own output; a masked one zeros (`zero_output`), else the output of
    the last valid step before it, or `before` ((batch, units), the carried output) / zeros
    when none came.
    """
    last = g.node("Max", [g.node("Sub", [c.seen, g.const("i1_scalar", np.array(1, np.int64))]),
                          g.const("i0_scalar", np.array(0, np.int64))], name_hint=f"{prefix}_from")
    out = gather_steps(g, y, last, f"{prefix}_scatter")
    axis2 = g.const("axes_2", np.array([2], np.int64))
    if zero_output:
        keep = c.valid
    else:
        keep = g.node("Greater", [c.seen, g.const("i0_scalar", np.array(0, np.int64))], name_hint=f"{prefix}_started")
    keep = g.node("Unsqueeze", [keep, axis2], name_hint=f"{prefix}_keep")
    if before is None or zero_output:
        other = g.node("CastLike", [g.const("f0_scalar", np.array(0, np.float32)), out], name_hint=f"{prefix}_zero")
    else:
        other = g.node("Unsqueeze", [before, g.const("axes_1", np.array([1], np.int64))], name_hint=f"{prefix}_before")
    return g.node("Where", [keep, out, other], name_hint=f"{prefix}_masked")


def keep_states(g, finals: list, states_in: list | None, c: Compacted, prefix: str) -> list:
    """Final (batch, units) states: a row without a valid step keeps its initial ones."""
    if not states_in:   # zero initial states: the op ran one padded step on those rows
        zero = g.const("f0_scalar", np.array(0, np.float32))
        states_in = [g.node("CastLike", [zero, f], name_hint=f"{prefix}_zero_state") for f in finals]
    rows = g.node("Unsqueeze", [c.any_valid, g.const("axes_1", np.array([1], np.int64))], name_hint=f"{prefix}_rows")
    return [g.node("Where", [rows, f, s], name_hint=f"{prefix}_kept") for f, s in zip(finals, states_in)]


def step_mask(g, valid: str, t: int, prefix: str) -> str:
    """(batch, 1) bool: whether step `t` of a (batch, steps) mask is valid."""
    m = g.node("Gather", [valid, g.const(f"step_{t}", np.array(t, np.int64))], axis=1, name_hint=f"{prefix}_m")
    return g.node("Unsqueeze", [m, g.const("axes_1", np.array([1], np.int64))], name_hint=f"{prefix}_m1")
