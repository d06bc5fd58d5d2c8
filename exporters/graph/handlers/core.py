"""Layers that act on the last axis alone: Dense, Activation and its named forms,
Embedding, and the layers that are the identity at inference (Dropout, noise,
regularizers). Being last-axis, they work on any rank and inside
`TimeDistributed` unchanged.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..onnx_graph import reduce_over
from ..registry import Call, LayerHandler, keras_layer_handlers


class LastAxisHandler(LayerHandler):
    """A layer that maps each vector of the last axis alone (any rank, any time length)."""

    acts_on_last_axis = True


class DenseHandler(LastAxisHandler):
    layers = ('Dense',)
    summary = "MatMul + Add + activation"

    def refuse(self, layer, variant):
        name = activations.name_of(layer.activation)
        if not activations.supported(name):
            return f"activation {name!r} has no exact ONNX counterpart"
        if getattr(layer, "quantization_mode", None):
            return f"a Dense layer quantized by Keras ({layer.quantization_mode}) has no rnnx emitter"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        y = g.node("MatMul", [call.inputs[0], ctx.weight(layer, "kernel", layer.kernel.numpy())],
                   name_hint=f"{call.prefix}_matmul")
        if layer.use_bias:
            y = g.node("Add", [y, ctx.weight(layer, "bias", layer.bias.numpy())], name_hint=f"{call.prefix}_bias")
        return [activations.emit(g, y, activations.name_of(layer.activation), call.prefix)]


class ActivationHandler(LastAxisHandler):
    layers = ('Activation',)
    summary = "the activation's ONNX op"

    @staticmethod
    def _name(layer) -> str:
        return activations.name_of(layer.activation)

    def refuse(self, layer, variant):
        name = self._name(layer)
        if not activations.supported(name):
            return f"activation {name!r} has no exact ONNX counterpart"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        return [activations.emit(ctx.g, call.inputs[0], self._name(call.layer), call.prefix)]


class SoftmaxHandler(LastAxisHandler):
    layers = ('Softmax',)
    summary = "Softmax over the last axis"

    def refuse(self, layer, variant):
        if layer.axis != -1:
            return f"Softmax over axis {layer.axis} has no rnnx emitter (the last axis has)"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        return [ctx.g.node("Softmax", [call.inputs[0]], axis=-1, name_hint=call.prefix)]


class ReLUHandler(LastAxisHandler):
    layers = ('ReLU',)
    summary = "Relu, or Clip / LeakyRelu for max_value / negative_slope"

    def refuse(self, layer, variant):
        if layer.threshold not in (0, 0.0):
            return "ReLU with a threshold has no rnnx emitter"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g, x = call.layer, ctx.g, call.inputs[0]
        slope = float(layer.negative_slope or 0.0)
        y = g.node("LeakyRelu", [x], alpha=slope, name_hint=call.prefix) if slope else \
            g.node("Relu", [x], name_hint=call.prefix)
        if layer.max_value is not None:
            hi = g.const(f"{call.prefix}_max", np.float32(layer.max_value))
            y = g.node("Min", [y, hi], name_hint=f"{call.prefix}_max")
        return [y]


class LeakyReLUHandler(LastAxisHandler):
    layers = ('LeakyReLU',)
    summary = "LeakyRelu"

    def emit(self, ctx, call: Call) -> list[str]:
        return [ctx.g.node("LeakyRelu", [call.inputs[0]], alpha=float(call.layer.negative_slope),
                           name_hint=call.prefix)]


class ELUHandler(LastAxisHandler):
    layers = ('ELU',)
    summary = "Elu"

    def emit(self, ctx, call: Call) -> list[str]:
        return [ctx.g.node("Elu", [call.inputs[0]], alpha=float(call.layer.alpha), name_hint=call.prefix)]


class IdentityHandler(LastAxisHandler):
    layers = ('Dropout', 'SpatialDropout1D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
              'ActivityRegularization', 'Identity')
    summary = "the identity at inference"

    def emit(self, ctx, call: Call) -> list[str]:
        return [ctx.g.node("Identity", [call.inputs[0]], name_hint=call.prefix)]


class EmbeddingHandler(LastAxisHandler):
    layers = ('Embedding',)
    summary = "Gather from the table (token ids)"
    acts_on_last_axis = False  # it adds an axis

    def refuse(self, layer, variant):
        if getattr(layer, "quantization_mode", None):
            return f"an Embedding quantized by Keras ({layer.quantization_mode}) has no rnnx emitter"
        return None

    def produces_mask(self, layer) -> bool:
        return bool(getattr(layer, "mask_zero", False))

    def mask_value(self, layer):
        return 0

    def emit_mask(self, ctx, call: Call) -> str:
        g = ctx.g
        zero = g.node("CastLike", [g.const("i0_scalar", np.array(0, np.int64)), call.inputs[0]],
                      name_hint=f"{call.prefix}_zero")
        return g.node("Not", [g.node("Equal", [call.inputs[0], zero])], name_hint=f"{call.prefix}_valid")

    def emit(self, ctx, call: Call) -> list[str]:
        g = ctx.g
        table = ctx.weight(call.layer, "table", call.layer.embeddings.numpy())
        idx = g.node("Cast", [call.inputs[0]], to=7, name_hint=f"{call.prefix}_index")  # 7 = INT64
        return [g.node("Gather", [table, idx], axis=0, name_hint=call.prefix)]


class MaskingHandler(LastAxisHandler):
    layers = ('Masking',)
    summary = "zeroes masked steps and masks them for the layers after it (every variant)"

    def produces_mask(self, layer) -> bool:
        return True

    def mask_value(self, layer):
        return float(layer.mask_value)

    def _valid(self, ctx, call: Call) -> str:
        g = ctx.g
        value = g.const(f"{call.prefix}_mask_value", np.float32(call.layer.mask_value))
        differs = g.node("Cast", [g.node("Not", [g.node("Equal", [call.inputs[0], value])])], to=1,
                         name_hint=f"{call.prefix}_differs")
        return reduce_over(g, "ReduceMax", differs, [-1], False, ctx.opset, f"{call.prefix}_valid")

    def emit_mask(self, ctx, call: Call) -> str:
        g = ctx.g
        return g.node("Cast", [self._valid(ctx, call)], to=9, name_hint=f"{call.prefix}_valid_bool")  # 9 = BOOL

    def emit(self, ctx, call: Call) -> list[str]:
        g = ctx.g
        keep = g.node("Unsqueeze", [self._valid(ctx, call), g.const("axes_m1", np.array([-1], np.int64))],
                      name_hint=f"{call.prefix}_keep")
        return [g.node("Mul", [call.inputs[0], keep], name_hint=call.prefix)]


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(DenseHandler, ActivationHandler, SoftmaxHandler, ReLUHandler, LeakyReLUHandler,
                                ELUHandler, IdentityHandler, EmbeddingHandler, MaskingHandler)
