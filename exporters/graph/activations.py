"""Keras activation functions and their ONNX counterparts.

`name_of` reads a Keras activation's name; `emit` applies it to a tensor with
plain ONNX ops; `RNN_OP_NAMES` are the names the ONNX LSTM/GRU/RNN ops accept
in their `activations` attribute (only those with exactly Keras' formula).
"""

from __future__ import annotations

# Keras name -> ONNX RNN-op activation name.
RNN_OP_NAMES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}

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
    return g.node(op, [x], name_hint=f"{hint}_{op.lower()}", **attrs)
