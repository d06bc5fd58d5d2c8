"""Layer-matrix cases of the Keras operations (exporters/graph/handlers/ops.py): functional
models that call `keras.ops` on symbolic tensors the way public Keras 3 code does. Not a
test module: layer_cases.py collects `CASES` from here.

Discontinuous operations (floor, round, mod, ...) are scaled by 0.01 so that a last-bit
difference between Keras' and onnxruntime's recurrent kernels cannot flip a step by more
than the matrix' tolerance.
"""

from __future__ import annotations

from layer_cases import Case


def _gru(units=6, shape=(None, 5)):
    import keras
    from keras import layers as L

    inp = keras.Input(shape)
    return inp, L.GRU(units, return_sequences=True)(inp)


def last_step():
    """`h[:, -1, :]` after a per-step LSTM, then Dense (keras-io's functional classifiers)."""
    import keras
    from keras import layers as L

    inp = keras.Input((None, 5))
    h = L.LSTM(6, return_sequences=True)(inp)
    return keras.Model(inp, L.Dense(3)(h[:, -1, :]))


def unary_math():
    import keras
    from keras import ops

    inp, h = _gru()
    b = ops.abs(h) + 1.0
    half = h * 0.5
    terms = [ops.tanh(h) * 2 + 1, ops.sqrt(b), ops.log(b), ops.exp(-ops.square(h)), ops.negative(h),
             ops.sin(h) + ops.cos(h) + ops.tan(half), ops.arctan(h) + ops.arcsin(half) + ops.arccos(half),
             ops.sinh(h) + ops.cosh(h) + ops.arcsinh(h) + ops.arccosh(b + 0.5) + ops.arctanh(half),
             0.01 * (ops.floor(h * 3) + ops.ceil(h * 3) + ops.sign(h) + ops.round(h * 3)),
             ops.reciprocal(b) + ops.log1p(b) + ops.expm1(h) + ops.erf(h) + ops.rsqrt(b)]
    y = terms[0]
    for t in terms[1:]:
        y = ops.add(y, t)
    return keras.Model(inp, y)


def binary_math():
    import keras
    from keras import ops

    inp, h = _gru()
    b = ops.abs(h) + 1.0
    y = ops.subtract(h, 0.5) / b + ops.true_divide(1.0, b) + ops.divide(h, 3.0)
    y = y + ops.power(b, 1.5) + ops.maximum(h, 0.1) + ops.minimum(-0.2, h) + 2.0 - h
    y = y + 0.01 * (ops.mod(h, 0.3) + ops.floor_divide(h, 0.3))
    return keras.Model(inp, ops.multiply(y, h))


def compare_where_cast():
    """ReLU-by-hand with `where`, a threshold cast back to float, boolean logic, `clip`."""
    import keras
    from keras import ops

    inp, h = _gru()
    leaky = ops.where(h > 0, h, 0.1 * h)
    on = ops.cast(h >= 0.1, "float32") * 0.01
    logic = ops.logical_or(ops.logical_and(h < 0.2, h <= 0.3), ops.logical_xor(ops.equal(h, 0.0), h != 0.5))
    logic = ops.logical_not(logic)
    y = leaky + on + 0.01 * ops.cast(logic, "float32") + ops.clip(h, -0.3, 0.4)
    return keras.Model(inp, y)


def nn_activations():
    """The `keras.ops.nn` activations, and `softmax(logits / t)` on the last step (a temperature)."""
    import keras
    from keras import ops

    inp, h = _gru()
    y = (ops.sigmoid(h) + ops.relu(h) + ops.relu6(h * 8) + ops.softplus(h) + ops.softsign(h) + ops.silu(h)
         + ops.gelu(h) + ops.gelu(h, approximate=False) + ops.elu(h, alpha=0.7) + ops.selu(h)
         + ops.leaky_relu(h, negative_slope=0.3) + ops.hard_sigmoid(h) + ops.hard_silu(h) + ops.log_sigmoid(h))
    y = ops.log_softmax(y, axis=-1) + ops.softmax(y * 2)
    logits = keras.layers.Dense(4)(y[:, -1])
    return keras.Model(inp, ops.softmax(logits / 0.7))


def shape_moves():
    """transpose/expand_dims/squeeze/stack/concatenate that keep batch and time put, and
    reshape/transpose of the last step's features."""
    import keras
    from keras import ops

    inp, h = _gru()
    r = ops.expand_dims(h, -1)                               # (batch, time, 6, 1)
    r = ops.transpose(ops.concatenate([r, r * 0.5], axis=-1), (0, 1, 3, 2))
    r = ops.squeeze(ops.expand_dims(r, 2), axis=2)           # (batch, time, 2, 6)
    s = ops.stack([h, h * h], axis=-1)                       # (batch, time, 6, 2)
    y = ops.concatenate([ops.transpose(r, (0, 1, 3, 2)), s], axis=-1)
    seq = keras.layers.GRU(4, return_sequences=True)(keras.layers.Reshape((-1, 24))(y))
    last = ops.reshape(ops.transpose(ops.reshape(seq[:, -1], (-1, 2, 2)), (0, 2, 1)), (-1, 4))
    return keras.Model(inp, [seq, last])


def feature_reductions():
    import keras
    from keras import ops

    inp, h = _gru()
    feats = ops.stack([ops.mean(h, axis=-1), ops.sum(h, axis=-1), ops.max(h, axis=-1), ops.min(h, axis=-1),
                       ops.prod(h + 1.0, axis=-1), ops.amax(h, axis=2), ops.amin(h, axis=-1)], axis=-1)
    keep = ops.mean(h, axis=-1, keepdims=True)
    flags = ops.stack([ops.any(h > 0.2, axis=-1), ops.all(h > -0.2, axis=-1)], axis=-1)   # Masking's own test
    return keras.Model(inp, ops.concatenate([feats, keep, ops.cast(flags, "float32")], axis=-1))


def running_reductions():
    """Pooling over time written with keras.ops: the prefix mean/sum/max/min after every step."""
    import keras
    from keras import ops

    inp, h = _gru()
    pooled = ops.concatenate([ops.mean(h, axis=1), ops.sum(h, axis=1) * 0.1, ops.max(h, axis=1),
                              ops.min(h, axis=1), ops.squeeze(ops.mean(h, axis=1, keepdims=True), 1)], axis=-1)
    return keras.Model(inp, keras.layers.Dense(3)(pooled))


def scalar_series():
    """A univariate series (batch, time): expand_dims to one feature, a per-step forecast squeezed back."""
    import keras
    from keras import ops

    inp = keras.Input((None,))
    h = keras.layers.LSTM(5, return_sequences=True)(ops.expand_dims(inp, -1))
    return keras.Model(inp, ops.squeeze(keras.layers.Dense(1)(h), axis=-1))


_UNARY = ("Tanh", "Multiply", "Add", "Absolute", "Sqrt", "Log", "Exp", "Square", "Negative", "Sin", "Cos", "Tan",
          "Arctan", "Arcsin", "Arccos", "Sinh", "Cosh", "Arcsinh", "Arccosh", "Arctanh", "Floor", "Ceil", "Sign",
          "Round", "Reciprocal", "Log1p", "Expm1", "Erf", "Rsqrt")
_BINARY = ("Subtract", "TrueDivide", "Divide", "Power", "Maximum", "Minimum", "Mod", "FloorDivide", "Multiply")
_COMPARE = ("Where", "Greater", "GreaterEqual", "Cast", "LogicalOr", "LogicalAnd", "LogicalXor", "LogicalNot",
            "Less", "LessEqual", "Equal", "NotEqual", "Clip")
_NN = ("Sigmoid", "Relu", "Relu6", "Softplus", "Softsign", "Silu", "Gelu", "Elu", "Selu", "LeakyRelu",
       "HardSigmoid", "HardSilu", "LogSigmoid", "LogSoftmax", "Softmax", "GetItem")


def _ops(names) -> tuple:
    return tuple(f"ops.{n}" for n in names)


CASES = [
    Case("ops_last_step", _ops(("GetItem",)), last_step),
    Case("ops_unary_math", _ops(_UNARY), unary_math),
    Case("ops_binary_math", _ops(_BINARY), binary_math),
    Case("ops_compare_where_cast", _ops(_COMPARE), compare_where_cast),
    Case("ops_nn_activations", _ops(_NN), nn_activations),
    Case("ops_shape_moves", _ops(("Reshape", "Transpose", "ExpandDims", "Squeeze", "Stack", "Concatenate")),
         shape_moves),
    Case("ops_feature_reductions", _ops(("Mean", "Sum", "Max", "Min", "Prod", "Amax", "Amin", "Any", "All")),
         feature_reductions),
    Case("ops_running_reductions", _ops(("Mean", "Sum", "Max", "Min", "Squeeze")), running_reductions),
    Case("ops_scalar_series", _ops(("ExpandDims", "Squeeze")), scalar_series),
]
