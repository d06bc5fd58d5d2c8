"""Emitters for the simple non-recurrent layers rnnx writes itself.

Each emitter takes (GraphBuilder, input tensor, layer) and returns the output
tensor. They act on the last axis only, so they work on any rank and inside
`TimeDistributed` unchanged. Layers without an emitter here go to tf2onnx
(`segment.py`).
"""

from __future__ import annotations

import numpy as np

from . import activations


def _dense(g, x, layer):
    y = g.node("MatMul", [x, g.const(f"{layer.name}_kernel", np.asarray(layer.kernel.numpy(), np.float32))],
               name_hint=f"{layer.name}_matmul")
    if layer.use_bias:
        y = g.node("Add", [y, g.const(f"{layer.name}_bias", np.asarray(layer.bias.numpy(), np.float32))],
                   name_hint=f"{layer.name}_bias")
    return activations.emit(g, y, activations.name_of(layer.activation), layer.name)


def _identity(g, x, layer):
    return x


def _activation(g, x, layer):
    return activations.emit(g, x, activations.name_of(layer.activation), layer.name)


def _embedding(g, x, layer):
    table = g.const(f"{layer.name}_table", np.asarray(layer.embeddings.numpy(), np.float32))
    idx = g.node("Cast", [x], to=7, name_hint=f"{layer.name}_index")  # 7 = INT64
    return g.node("Gather", [table, idx], axis=0, name_hint=layer.name)


def _emitters():
    import keras

    return {
        keras.layers.Dense: _dense,
        keras.layers.Dropout: _identity,
        keras.layers.Activation: _activation,
        keras.layers.Embedding: _embedding,
    }


def emitter_for(layer):
    """The emitter of `layer` (unwrapping TimeDistributed of a last-axis layer), or None."""
    import keras

    inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
    fn = _emitters().get(type(inner))
    if fn is None:
        return None
    if fn is _dense and inner.kernel is None:
        return None
    if fn is _embedding and (inner is not layer or getattr(inner, "mask_zero", False)
                             or getattr(inner, "quantization_mode", None)):
        return None
    if fn in (_dense, _activation) and not activations.supported(activations.name_of(inner.activation)):
        return None
    return lambda g, x: fn(g, x, inner)
