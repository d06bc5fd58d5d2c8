"""Whole-model conversion with tf2onnx, for `full` when rnnx cannot emit a layer.

Used when the model is not a single chain, or holds a recurrent layer type
rnnx has no emitter for (Bidirectional, ConvLSTM, masking, ...). The export
report says "fallback: tf2onnx". The model is wrapped as x -> model -> Identity
named y, because tf2onnx looks Keras 3 outputs up by name.
"""

from __future__ import annotations

from ..errors import UnsupportedLayerError


def convert(reference, plan, opset: int):
    """Convert the whole reference model; input `x` (dynamic batch), output `y`."""
    import keras
    import tensorflow as tf
    import tf2onnx

    shape = (None, *plan.input_shape[1:])
    inp = keras.Input(batch_shape=shape, dtype=plan.input_dtype, name="x")
    wrapped = keras.Model(inp, keras.layers.Identity(name="y")(reference(inp)), name=reference.name)
    spec = (tf.TensorSpec(shape, tf.as_dtype(plan.input_dtype), name="x"),)
    try:
        proto, _ = tf2onnx.convert.from_keras(wrapped, input_signature=spec, opset=opset)
    except Exception as exc:  # tf2onnx raises many types
        raise UnsupportedLayerError(f"tf2onnx could not convert model {reference.name!r}: {exc}") from None
    graph = proto.graph
    if [i.name for i in graph.input] != ["x"] or [o.name for o in graph.output] != ["y"]:
        raise UnsupportedLayerError(
            f"tf2onnx gave model {reference.name!r} inputs {[i.name for i in graph.input]} and outputs "
            f"{[o.name for o in graph.output]}; expected ['x'] and ['y']")
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
    return proto
