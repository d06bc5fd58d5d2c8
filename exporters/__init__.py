"""rnnx exporters: Keras -> ONNX (full, stream, unrolled), validation, quantization, CLI.

Heavy dependencies (tensorflow, tf2onnx, onnx) are imported inside the
functions that need them, so `rnnx --help` stays fast.

Teach rnnx a layer of your own with `exporters.graph.register_layer(YourLayer,
handler)`, where the handler is a `LayerHandler` subclass (see
exporters/graph/registry.py and the README's "Your own layers").
"""

from runtime.version import __version__  # noqa: F401
