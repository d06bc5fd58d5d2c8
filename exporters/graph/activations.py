"""Keras activation functions and their ONNX counterparts.

`name_of` reads a Keras activation's name; `emit` applies it to a tensor with
plain ONNX ops; `RNN_OPS` are the activations the ONNX LSTM/GRU/RNN ops accept
in their `activations` attribute with exactly Keras' formula, with the
(alpha, beta) each takes. Keras 3's `hard_sigmoid` is relu6(x + 3) / 6, which
is ONNX HardSigmoid with alpha=1/6, beta=0.5 (Keras 2's 0.2x + 0.5 is not it).
"""

from __future__ import annotations

import numpy as np

# Keras name -> (ONNX RNN-op activation name, activation_alpha, activation_beta).
RNN_OPS = {
    "sigmoid": ("Sigmoid", 0.0, 0.0),
    "tanh": ("Tanh", 0.0, 0.0),
    "relu": ("Relu", 0.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "linear": ("Affine", 1.0, 0.0),
    "elu": ("Elu", 1.0, 0.0),
    "softsign": ("Softsign", 0.0, 0.0),
    "softplus": ("Softplus", 0.0, 0.0),
    "leaky_relu": ("LeakyRelu", 0.2, 0.0),
}
RNN_OP_NAMES = {k: v[0] for k, v in RNN_OPS.items()}


_TAKES_ALPHA = {"Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu"}
_TAKES_BETA = {"Affine", "ScaledTanh", "HardSigmoid"}


def rnn_op_attrs(names: list[str]) -> dict:
    """The `activations` (and `activation_alpha`/`activation_beta`) attributes for Keras names.

    The alpha and beta lists hold values only for the activations that take
    them, in order (onnxruntime consumes them that way: a 0 listed for Sigmoid
    would become the next Elu's alpha).
    """
    specs = [RNN_OPS[n] for n in names]
    attrs = {"activations": [s[0] for s in specs]}
    alpha = [float(s[1]) for s in specs if s[0] in _TAKES_ALPHA]
    beta = [float(s[2]) for s in specs if s[0] in _TAKES_BETA]
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    return attrs

# Keras name -> (ONNX op, attributes) for a stand-alone node; None is identity.
_PLAIN = {
    "linear": None,
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    "softmax": ("Softmax", {"axis": -1}),
    "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
    "softplus": ("Softplus", {}),
    "softsign": ("Softsign", {}),
    "elu": ("Elu", {"alpha": 1.0}),
    "exponential": ("Exp", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),
    "selu": ("Selu", {"alpha": 1.6732632423543772, "gamma": 1.0507009873554805}),
    "relu6": ("Clip", None),
    "silu": ("silu", None),
    "swish": ("silu", None),
    "gelu": ("gelu", None),
    "mish": ("mish", None),
    "hard_silu": ("hard_silu", None),
}


def name_of(fn) -> str:
    """The Keras name of an activation function (`keras.activations.tanh` -> 'tanh')."""
    if fn is None:
        return "linear"
    return getattr(fn, "__name__", type(fn).__name__)


def supported(name: str) -> bool:
    """Whether `emit` can express this activation."""
    return name in _PLAIN


def emit(g, x: str, name: str, hint: str = "act") -> str:
    """Apply activation `name` to tensor `x` in GraphBuilder `g`; returns the result."""
    if name not in _PLAIN:
        raise KeyError(name)
    spec = _PLAIN[name]
    if spec is None:
        return x
    op, attrs = spec
    if op == "Clip":  # relu6
        lo, hi = g.const("f32_0", np.float32(0.0)), g.const("f32_6", np.float32(6.0))
        return g.node("Clip", [x, lo, hi], name_hint=f"{hint}_relu6")
    if op == "silu":  # x * sigmoid(x)
        return g.node("Mul", [x, g.node("Sigmoid", [x], name_hint=f"{hint}_sig")], name_hint=f"{hint}_silu")
    if op == "gelu":  # exact: x * (1 + erf(x / sqrt(2))) / 2
        scaled = g.node("Mul", [x, g.const("f32_inv_sqrt2", np.float32(1.0 / np.sqrt(2.0)))], name_hint=f"{hint}_s")
        one_plus = g.node("Add", [g.node("Erf", [scaled]), g.const("f32_1", np.float32(1.0))], name_hint=f"{hint}_e")
        half_x = g.node("Mul", [x, g.const("f32_half", np.float32(0.5))], name_hint=f"{hint}_hx")
        return g.node("Mul", [half_x, one_plus], name_hint=f"{hint}_gelu")
    if op == "mish":  # x * tanh(softplus(x))
        return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])], name_hint=f"{hint}_mish")
    if op == "hard_silu":  # x * relu6(x + 3) / 6
        gate = g.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5, name_hint=f"{hint}_hsig")
        return g.node("Mul", [x, gate], name_hint=f"{hint}_hard_silu")
    return g.node(op, [x], name_hint=f"{hint}_{op.lower()}", **attrs)
