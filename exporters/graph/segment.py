"""Convert a run of non-recurrent Keras layers to an ONNX graph with tf2onnx.

The caller converts a run of `TimeDistributed` layers as their inner layers
on single frames (batch*time, ...) and wraps them in two Reshapes, because
tf2onnx turns a Keras 3 TimeDistributed with a dynamic time axis into a
broken Loop. Other runs are converted as they are.
"""

from __future__ import annotations

from ..errors import UnsupportedLayerError


def convert(layers, input_shape, opset: int):
    """tf2onnx-convert `layers` applied in order to an input of `input_shape` (batch first).

    Returns the ModelProto, whose single input is named 'seg_in'.
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    inp = keras.Input(batch_shape=tuple(input_shape), name="seg_in")
    y = inp
    for layer in layers:
        y = layer(y, training=False) if _takes_training(layer) else layer(y)
    sub = keras.Model(inp, y)
    spec = (tf.TensorSpec(tuple(input_shape), tf.float32, name="seg_in"),)
    try:
        proto, _ = tf2onnx.convert.from_keras(sub, input_signature=spec, opset=opset)
    except Exception as exc:  # tf2onnx raises many types; say which layers failed
        names = ", ".join(layer.name for layer in layers)
        raise UnsupportedLayerError(f"tf2onnx could not convert layers [{names}]: {exc}") from None
    return proto


def _takes_training(layer) -> bool:
    import inspect

    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False
