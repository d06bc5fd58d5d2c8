"""rnnx edge runtime: run rnnx ONNX exports with numpy + onnxruntime only."""

from .contract import Contract, StateSpec, TensorSpec
from .errors import (InputShapeError, InputValueError, ModelFormatError, RnnxError,
                     StateError)

__all__ = [
    "Contract", "StateSpec", "TensorSpec",
    "RnnxError", "ModelFormatError", "InputShapeError", "InputValueError", "StateError",
]
