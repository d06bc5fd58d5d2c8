"""Normalization at inference: LayerNormalization and BatchNormalization.

Both are time-local when they leave the batch and time axes alone: each frame
is normalized by itself (LayerNormalization) or by fixed statistics
(BatchNormalization's moving mean and variance), so they stream as they are
and run on frames inside `TimeDistributed`.

LayerNormalization over trailing axes is one ONNX `LayerNormalization` op from
opset 17; otherwise (other axes, older opsets, `rms_scaling`) it is Keras'
formula: x * inv + (beta - mean * inv) with inv = gamma / sqrt(var + epsilon).
BatchNormalization is x * scale + shift with scale and shift folded from the
moving statistics at export, as TensorFlow computes them.
"""

from __future__ import annotations

import numpy as np

from ..onnx_graph import reduce_over
from ..registry import Call, SiteHandler, keras_layer_handlers


def _rank(handler: SiteHandler) -> int | None:
    """The rank of the sequence the graph calls the layer on; None on frames inside TimeDistributed."""
    return len(handler.site.tensors[0].shape) if handler.sees_time else None


def _positive(axes, rank: int) -> list[int]:
    return sorted(int(a) % rank for a in (axes if isinstance(axes, (list, tuple)) else [axes]))


def _broadcast(value: np.ndarray, axes: list[int], rank: int) -> np.ndarray:
    """A weight over `axes` shaped to broadcast against a rank-`rank` tensor."""
    if axes == [rank - 1]:
        return value
    shape = [1] * rank
    for a, n in zip(axes, value.shape if value.ndim == len(axes) else [value.size]):
        shape[a] = n
    return value.reshape(shape)


class _NormHandler(SiteHandler):
    """A normalization over `axes` of the sequence the graph calls it on: never the batch axis;
    over axis 1 it needs the whole sequence."""

    def axes(self, layer) -> list[int] | None:
        """Its axes, positive, at this call's rank; None on frames inside TimeDistributed."""
        rank = _rank(self)
        return None if rank is None else _positive(layer.axis, rank)

    def refuse(self, layer, variant):
        axes = self.axes(layer)
        return "it normalizes across the batch axis" if axes is not None and 0 in axes else None

    over_time = ""    # why a normalization over axis 1 cannot stream

    def time_local(self, layer) -> bool:
        axes = self.axes(layer)
        return axes is None or 1 not in axes

    def time_refusal(self, layer) -> str | None:
        return None if self.time_local(layer) else self.over_time


class LayerNormHandler(_NormHandler):
    layers = ('LayerNormalization',)
    summary = "LayerNormalization op (opset >= 17, trailing axes), else Keras' formula"
    over_time = "it normalizes across time steps (axis 1), so each step needs the whole sequence"

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        rank = len(call.in_shapes[0])
        axes = _positive(layer.axis, rank)
        x, eps = call.inputs[0], float(layer.epsilon)
        gamma = layer.gamma.numpy() if layer.gamma is not None else None
        beta = layer.beta.numpy() if getattr(layer, "beta", None) is not None else None
        rms = bool(getattr(layer, "rms_scaling", False))
        normalized = list(gamma.shape) if gamma is not None else [call.in_shapes[0][a] for a in axes]
        if ctx.opset >= 17 and not rms and axes == list(range(axes[0], rank)) and None not in normalized:
            scale = gamma if gamma is not None else np.ones(normalized, np.float32)
            ins = [x, ctx.weight(layer, "gamma", scale.reshape(normalized))]
            if beta is not None:
                ins.append(ctx.weight(layer, "beta", beta.reshape(normalized)))
            return [g.node("LayerNormalization", ins, axis=axes[0], epsilon=eps, name_hint=call.prefix)]
        p = call.prefix
        mean = reduce_over(g, "ReduceMean", x, axes, True, ctx.opset, f"{p}_mean")
        centered = g.node("Sub", [x, mean], name_hint=f"{p}_centered")
        var = reduce_over(g, "ReduceMean", g.node("Mul", [centered, centered], name_hint=f"{p}_square"), axes,
                          True, ctx.opset, f"{p}_var")
        std = g.node("Sqrt", [g.node("Add", [var, g.const(f"{p}_eps", np.float32(eps))], name_hint=f"{p}_eps")],
                     name_hint=f"{p}_std")
        inv = g.node("Reciprocal", [std], name_hint=f"{p}_inv")
        if gamma is not None:
            inv = g.node("Mul", [inv, ctx.weight(layer, "gamma", _broadcast(gamma, axes, rank))],
                         name_hint=f"{p}_gamma")
        if rms:
            return [g.node("Mul", [x, inv], name_hint=p)]
        res = g.node("Neg", [g.node("Mul", [mean, inv], name_hint=f"{p}_mean_inv")], name_hint=f"{p}_res")
        if beta is not None:
            res = g.node("Add", [res, ctx.weight(layer, "beta", _broadcast(beta, axes, rank))], name_hint=f"{p}_beta")
        return [g.node("Add", [g.node("Mul", [x, inv], name_hint=f"{p}_scaled"), res], name_hint=p)]


class BatchNormHandler(_NormHandler):
    layers = ('BatchNormalization',)
    summary = "x * scale + shift from the moving mean and variance (inference)"
    over_time = "it keeps statistics per time index (axis=1), so a chunk would need its position in the sequence"

    def takes_mask(self, layer) -> bool:
        return False   # a mask only weights the batch statistics of training

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        rank = len(call.in_shapes[0])
        axis = int(layer.axis) % rank
        mean = layer.moving_mean.numpy().astype(np.float32)
        var = layer.moving_variance.numpy().astype(np.float32)
        # tf.nn.batch_normalization: inv = rsqrt(var + eps) * gamma; x * inv + (beta - mean * inv)
        inv = (np.float32(1.0) / np.sqrt(var + np.float32(layer.epsilon))).astype(np.float32)
        if layer.scale:
            inv = inv * layer.gamma.numpy().astype(np.float32)
        shift = -mean * inv
        if layer.center:
            shift = layer.beta.numpy().astype(np.float32) + shift
        scale = ctx.weight(layer, "scale", _broadcast(inv, [axis], rank))
        offset = ctx.weight(layer, "shift", _broadcast(shift, [axis], rank))
        y = g.node("Mul", [call.inputs[0], scale], name_hint=f"{call.prefix}_scale")
        return [g.node("Add", [y, offset], name_hint=call.prefix)]


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(LayerNormHandler, BatchNormHandler)
