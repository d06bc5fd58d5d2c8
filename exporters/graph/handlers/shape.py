"""Layers that move axes around: TimeDistributed, Reshape, Flatten, Permute,
RepeatVector, and the global poolings over time (running reductions in a stream).

`TimeDistributed` runs its inner layer on each frame: a last-axis layer runs
on the whole (batch, time, ...) tensor as it is; any other layer (a handled
one, or one tf2onnx converts) runs on (batch*time, ...) frames between two
Reshapes. A `Reshape` or `Permute` that keeps the batch and time axes where
they are is time-local: it is emitted with the time length copied (0 in the
ONNX shape), so it works at any length and streams.
"""

from __future__ import annotations

import numpy as np

from .. import registry
from ..registry import Call, LayerHandler, keras_layer_handlers
from . import running


def _inner(layer):
    return layer.layer


class TimeDistributedHandler(LayerHandler):
    layers = ('TimeDistributed',)
    summary = "the inner layer on every frame (its handler, or tf2onnx on (batch*time) frames)"

    def refuse(self, layer, variant):
        inner = _inner(layer)
        handler = registry.handler_for(inner)
        if handler is None:
            return None
        if handler.states(inner):
            return f"TimeDistributed of a stateful layer ({type(inner).__name__}) has no rnnx emitter"
        return handler.refuse(inner, variant)

    def takes_mask(self, layer) -> bool | None:
        # it hands each frame's mask to the inner layer: nothing, unless that layer's call reads one
        return None if getattr(_inner(layer), "_call_has_mask_arg", False) else False

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        inner = _inner(layer)
        handler = registry.handler_for(inner)
        in_shape, out_shape = call.in_shapes[0], call.out_shapes[0]
        frame_in, frame_out = (None, *in_shape[2:]), (None, *out_shape[2:])
        if handler is not None and handler.acts_on_last_axis:
            return handler.emit(ctx, Call(inner, call.inputs, call.in_shapes, call.out_shapes,
                                          prefix=call.prefix))
        x = call.inputs[0]
        flat = g.node("Reshape", [x, g.const(f"{call.prefix}_in_shape", np.array([-1, *in_shape[2:]], np.int64))],
                      name_hint=f"{call.prefix}_merge_batch_time")
        frames = Call(inner, [flat], [frame_in], [frame_out], prefix=f"{call.prefix}_inner")
        if handler is not None:
            y = handler.emit(ctx, frames)[0]
        else:
            y = ctx.segment(inner, frames, None, [frame_in])[0]
        shape = g.node("Shape", [x], name_hint=f"{call.prefix}_shape")
        bt = g.node("Slice", [shape, g.const("i0", np.array([0], np.int64)), g.const("i2", np.array([2], np.int64))],
                    name_hint=f"{call.prefix}_batch_time")
        tail = g.const(f"{call.prefix}_out_frame", np.array(list(out_shape[2:]), np.int64))
        target = g.node("Concat", [bt, tail], axis=0, name_hint=f"{call.prefix}_out_shape")
        return [g.node("Reshape", [y, target], name_hint=f"{call.prefix}_split_batch_time")]


def _keeps_time_axis(in_shape, out_shape) -> bool:
    """Whether a reshape keeps axis 1 and regroups only the axes after it: the same length, or a
    fixed number of frames written where the input's is free (keras-io's OCR writes
    `Reshape((width // 4, ...))`), which leaves each frame's values in that frame."""
    if len(in_shape) < 2 or len(out_shape) < 2:
        return False
    if in_shape[1] == out_shape[1]:
        return True
    rest_in, rest_out = in_shape[2:], out_shape[2:]
    return (in_shape[1] is None and out_shape[1] is not None and None not in rest_in and None not in rest_out
            and int(np.prod(rest_in)) == int(np.prod(rest_out)))


class ReshapeHandler(LayerHandler):
    layers = ('Reshape',)
    summary = "Reshape (time-local when the time axis stays axis 1: its length, or a fixed frame count, kept)"

    def time_local(self, layer) -> bool:
        return _keeps_time_axis(tuple(layer.input.shape), tuple(layer.output.shape))

    def keeps_time(self, layer) -> bool | None:
        return True if self.time_local(layer) else None

    def emit(self, ctx, call: Call) -> list[str]:
        g, in_shape, out_shape = ctx.g, call.in_shapes[0], call.out_shapes[0]
        if _keeps_time_axis(in_shape, out_shape) and all(d is not None for d in out_shape[2:]):
            dims = [0, 0 if in_shape[1] is None else in_shape[1], *out_shape[2:]]
            dims[1] = 0  # copy the time length: any length works
        else:
            target = list(call.layer.target_shape)
            dims = [0, *[-1 if d is None else d for d in target]]
        shape = g.const(f"{call.prefix}_shape", np.array(dims, np.int64))
        return [g.node("Reshape", [call.inputs[0], shape], name_hint=call.prefix)]


class FlattenHandler(LayerHandler):
    layers = ('Flatten',)
    summary = "Reshape to (batch, -1)"

    def time_local(self, layer) -> bool:
        return len(layer.input.shape) <= 2

    def keeps_time(self, layer) -> bool:
        return len(layer.input.shape) <= 2    # (batch, time, ...) -> (batch, time*...): no time axis left

    def emit(self, ctx, call: Call) -> list[str]:
        g = ctx.g
        shape = g.const("shape_batch_flat", np.array([0, -1], np.int64))
        return [g.node("Reshape", [call.inputs[0], shape], name_hint=call.prefix)]


class PermuteHandler(LayerHandler):
    layers = ('Permute',)
    summary = "Transpose (time-local when axes 0 and 1 stay)"

    def time_local(self, layer) -> bool:
        return tuple(layer.dims)[0] == 1

    def emit(self, ctx, call: Call) -> list[str]:
        perm = [0, *[int(d) for d in call.layer.dims]]
        return [ctx.g.node("Transpose", [call.inputs[0]], perm=perm, name_hint=call.prefix)]


class RepeatVectorHandler(LayerHandler):
    layers = ('RepeatVector',)
    summary = "Expand (batch, features) to (batch, n, features)"

    def time_local(self, layer) -> bool:
        return False

    def keeps_time(self, layer) -> bool:
        return False

    def emit(self, ctx, call: Call) -> list[str]:
        g = ctx.g
        axis1 = g.const("axes_1", np.array([1], np.int64))
        x = g.node("Unsqueeze", [call.inputs[0], axis1], name_hint=f"{call.prefix}_add_time")
        reps = g.const(f"{call.prefix}_reps", np.array([1, int(call.layer.n), 1], np.int64))
        return [g.node("Tile", [x, reps], name_hint=call.prefix)]


class GlobalPooling1DHandler(registry.SiteHandler):
    layers = ('GlobalAveragePooling1D', 'GlobalMaxPooling1D')
    summary = ("ReduceMean (of the valid steps under a mask) / ReduceMax over time; streams as a running "
               "sum and count / a running max")

    @staticmethod
    def _kind(layer) -> str:
        return "max" if "Max" in type(layer).__name__ else "mean"

    def refuse(self, layer, variant):
        if layer.data_format != "channels_last":
            return "only channels_last has an rnnx emitter"
        return None

    def time_local(self, layer) -> bool:
        return False

    def keeps_time(self, layer) -> bool:
        return False

    def states(self, layer) -> list:
        shape = self.site.args[0].shape if self.sees_time else layer.input.shape   # not the mask= input
        return running.state_decls(self._kind(layer), tuple(int(d) for d in shape[2:]))

    def takes_mask(self, layer) -> bool:
        return True    # the average of the valid steps (GlobalMaxPooling1D's call takes no mask)

    def emit(self, ctx, call: Call) -> list[str]:
        frame_rank = len(call.in_shapes[0]) - 2
        return [running.emit(ctx, call, call.inputs[0], self._kind(call.layer), bool(call.layer.keepdims), frame_rank,
                             valid=call.mask)]


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(TimeDistributedHandler, ReshapeHandler, FlattenHandler, PermuteHandler,
                                RepeatVectorHandler, GlobalPooling1DHandler)
