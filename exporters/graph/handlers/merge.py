"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.

They combine tensors of the same time steps element by element (or along the
feature axis), so they are time-local and stream as they are.
"""

from __future__ import annotations

import numpy as np

from ..registry import Call, LayerHandler, keras_layer_handlers

_ELEMENTWISE = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Maximum": "Max", "Minimum": "Min"}


class ElementwiseMergeHandler(LayerHandler):
    layers = ('Add', 'Subtract', 'Multiply', 'Maximum', 'Minimum')
    summary = "element-wise Add/Sub/Mul/Max/Min of the inputs"

    def emit(self, ctx, call: Call) -> list[str]:
        op = _ELEMENTWISE[type(call.layer).__name__]
        if op in ("Max", "Min"):  # variadic in ONNX
            return [ctx.g.node(op, call.inputs, name_hint=call.prefix)]
        y = call.inputs[0]
        for other in call.inputs[1:]:
            y = ctx.g.node(op, [y, other], name_hint=call.prefix)
        return [y]


class AverageHandler(LayerHandler):
    layers = ('Average',)
    summary = "Sum of the inputs / their count"

    def emit(self, ctx, call: Call) -> list[str]:
        g = ctx.g
        total = g.node("Sum", call.inputs, name_hint=f"{call.prefix}_sum")
        scale = g.const(f"{call.prefix}_inv_n", np.float32(1.0 / len(call.inputs)))
        return [g.node("Mul", [total, scale], name_hint=call.prefix)]


class ConcatenateHandler(LayerHandler):
    layers = ('Concatenate',)
    summary = "Concat along the layer's axis"

    def time_local(self, layer) -> bool:
        """False when it joins sequences end to end along the time axis (axis 1 of rank >= 3)."""
        rank = len(layer.output.shape)
        return rank < 3 or int(layer.axis) % rank != 1

    def emit(self, ctx, call: Call) -> list[str]:
        return [ctx.g.node("Concat", call.inputs, axis=int(call.layer.axis), name_hint=call.prefix)]


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(ElementwiseMergeHandler, AverageHandler, ConcatenateHandler)
