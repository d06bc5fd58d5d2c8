"""Keras graph -> ONNX graph: the layer handlers, the graph walker and the ONNX builder."""
