"""Whole-model conversion with tf2onnx, for `full` when rnnx cannot emit a layer.

Used when the model is not a single chain, or holds a recurrent layer type
rnnx has no emitter for (Bidirectional, ConvLSTM, masking, ...). The export
report says "fallback: tf2onnx". The output is renamed `y` by an Identity.
"""

from __future__ import annotations

from .errors import UnsupportedLayerError


def convert(reference, plan, opset: int):
    """Convert the whole reference model; input `x` (dynamic batch), output `y`."""
    import tensorflow as tf
    import tf2onnx
    from onnx import helper

    shape = (None, *plan.input_shape[1:])
    spec = (tf.TensorSpec(shape, tf.as_dtype(plan.input_dtype), name="x"),)
    try:
        proto, _ = tf2onnx.convert.from_keras(reference, input_signature=spec, opset=opset)
    except Exception as exc:  # tf2onnx raises many types
        raise UnsupportedLayerError(f"tf2onnx could not convert model {reference.name!r}: {exc}") from None
    graph = proto.graph
    if len(graph.output) != 1:
        raise UnsupportedLayerError(f"model {reference.name!r} has {len(graph.output)} outputs; rnnx exports one")
    inner = graph.output[0].name
    graph.node.append(helper.make_node("Identity", [inner], ["y"], name="output_y"))
    graph.output[0].name = "y"
    dims = graph.output[0].type.tensor_type.shape.dim
    if dims:
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "batch"
    return proto
