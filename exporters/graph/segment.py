"""Convert one Keras operation that has no rnnx handler with tf2onnx.

The operation is called on fresh `keras.Input`s of its input shapes (with the
same non-tensor arguments the model used, e.g. the slice of `y[:, -1]`),
wrapped as a small model and converted; the walker splices the result in.
Its inputs are named `seg_in_<i>`. `TimeDistributed` calls this on single
frames (batch*time, ...), because tf2onnx turns a Keras 3 TimeDistributed
with a dynamic time axis into a broken Loop.
"""

from __future__ import annotations

from ..errors import UnsupportedLayerError


def convert(op, node, input_shapes, opset: int):
    """tf2onnx-convert `op` applied to inputs of `input_shapes` (batch first).

    `node` is the Keras node of the call (its non-tensor arguments are reused),
    or None to call `op` on its inputs alone. Returns (ModelProto, number of inputs).
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    dtypes = _input_dtypes(node, len(input_shapes))
    inputs = [keras.Input(batch_shape=tuple(shape), dtype=dtype, name=f"seg_in_{i}")
              for i, (shape, dtype) in enumerate(zip(input_shapes, dtypes))]
    try:
        if node is not None:
            fill = {id(t): new for t, new in zip(_tensors(node), inputs)}
            args, kwargs = node.arguments.fill_in(fill)
        else:
            args, kwargs = ((inputs[0] if len(inputs) == 1 else inputs),), {}
        if _takes_training(op):
            kwargs = {**kwargs, "training": False}
        y = op(*args, **kwargs)
        sub = keras.Model(inputs, y)
        spec = tuple(tf.TensorSpec(tuple(shape), tf.as_dtype(dtype), name=f"seg_in_{i}")
                     for i, (shape, dtype) in enumerate(zip(input_shapes, dtypes)))
        proto, _ = tf2onnx.convert.from_keras(sub, input_signature=spec, opset=opset)
    except Exception as exc:  # tf2onnx and Keras raise many types; say which layer failed
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedLayerError(
            f"layer {op.name!r} ({type(op).__name__}) has no rnnx handler and tf2onnx could not "
            f"convert it: {detail}") from None
    return proto, len(inputs)


def _tensors(node) -> list:
    import keras

    return [t for t in keras.tree.flatten(node.arguments.args) if isinstance(t, keras.KerasTensor)]


def _input_dtypes(node, n: int) -> list:
    if node is None:
        return ["float32"] * n
    return [str(t.dtype) for t in _tensors(node)]


def _takes_training(layer) -> bool:
    import inspect

    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError, AttributeError):
        return False
