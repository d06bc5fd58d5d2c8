"""Keras graph -> ONNX graph: the layer handlers, the graph walker and the ONNX builder.

The public face for users' own layers: `register_layer`, `LayerHandler`,
`StateDecl` and `Call` (see registry.py).
"""

from .registry import Call, LayerHandler, StateDecl, register_layer, unregister_layer  # noqa: F401

__all__ = ["register_layer", "unregister_layer", "LayerHandler", "StateDecl", "Call"]
