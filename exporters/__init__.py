"""rnnx exporters: Keras -> ONNX (full, stream, unrolled), validation, quantization, CLI.

Heavy dependencies (tensorflow, tf2onnx, onnx) are imported inside the
functions that need them, so `rnnx --help` stays fast.
"""
