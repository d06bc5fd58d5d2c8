"""Whole-model conversion with tf2onnx, for `full` when rnnx cannot emit a layer.

Used when a layer's handler refuses `full` (ConvLSTM, a mask it has no form of, an activation
with no ONNX counterpart, ...) or a layer with no handler takes several
inputs. The export report says "fallback: tf2onnx" and why. The model is
wrapped so that the graph's inputs and outputs carry the plan's names
(tf2onnx looks Keras 3 outputs up by name, hence the Identity layers).
"""

from __future__ import annotations

from ..errors import UnsupportedLayerError


def convert(reference, plan, opset: int):
    """Convert the whole reference model with the plan's input and output names (dynamic batch)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    shapes = [(None, *io.shape[1:]) for io in plan.inputs]
    inputs = [keras.Input(batch_shape=shape, dtype=io.dtype, name=io.name) for io, shape in zip(plan.inputs, shapes)]
    ys = reference(inputs[0] if len(inputs) == 1 else inputs)
    ys = [ys] if not isinstance(ys, (list, tuple)) else list(ys)
    outs = [keras.layers.Identity(name=io.name)(y) for io, y in zip(plan.outputs, ys)]
    wrapped = keras.Model(inputs, outs if len(outs) > 1 else outs[0], name=reference.name)
    spec = tuple(tf.TensorSpec(shape, tf.as_dtype(io.dtype), name=io.name) for io, shape in zip(plan.inputs, shapes))
    try:
        proto, _ = tf2onnx.convert.from_keras(wrapped, input_signature=spec, opset=opset)
    except Exception as exc:  # tf2onnx raises many types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedLayerError(f"tf2onnx could not convert model {reference.name!r}: {detail}") from None
    graph = proto.graph
    want_in, want_out = [io.name for io in plan.inputs], [io.name for io in plan.outputs]
    got_in, got_out = [i.name for i in graph.input], [o.name for o in graph.output]
    if got_in != want_in or sorted(got_out) != sorted(want_out):
        raise UnsupportedLayerError(
            f"tf2onnx gave model {reference.name!r} inputs {got_in} and outputs {got_out}; "
            f"expected {want_in} and {want_out}")
    if got_out != want_out:  # same names, other order: put them in the plan's order
        from onnx import ValueInfoProto

        ordered = []
        for name in want_out:
            value = ValueInfoProto()
            value.CopyFrom(next(o for o in graph.output if o.name == name))
            ordered.append(value)
        del graph.output[:]
        graph.output.extend(ordered)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
    return proto
