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
from ..registry import Call, SiteHandler


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


def _axes_why(axes: list[int], what: str) -> str | None:
    if 0 in axes:
        return f"it {what} across the batch axis"
    return None


class LayerNormHandler(SiteHandler):
    summary = "LayerNormalization op (opset >= 17, trailing axes), else Keras' formula"

    def refuse(self, layer, variant):
        rank = _rank(self)
        if rank is None:
            return None
        axes = _positive(layer.axis, rank)
        return _axes_why(axes, "normalizes")

    def time_local(self, layer) -> bool:
        rank = _rank(self)
        return rank is None or 1 not in _positive(layer.axis, rank)

    def time_refusal(self, layer) -> str | None:
        if self.time_local(layer):
            return None
        return "it normalizes across time steps (axis 1), so each step needs the whole sequence"

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


class BatchNormHandler(SiteHandler):
    summary = "x * scale + shift from the moving mean and variance (inference)"

    def refuse(self, layer, variant):
        rank = _rank(self)
        if rank is None:
            return None
        axis = int(layer.axis) % rank
        if axis == 0:
            return "it normalizes the batch axis"
        return None

    def time_local(self, layer) -> bool:
        rank = _rank(self)
        return rank is None or int(layer.axis) % rank != 1

    def time_refusal(self, layer) -> str | None:
        if self.time_local(layer):
            return None
        return "it keeps statistics per time index (axis=1), so a chunk would need its position in the sequence"

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


def register() -> None:
    import keras

    from ..registry import register_layer

    register_layer(keras.layers.LayerNormalization, LayerNormHandler())
    register_layer(keras.layers.BatchNormalization, BatchNormHandler())
