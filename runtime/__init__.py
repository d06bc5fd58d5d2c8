"""rnnx edge runtime: run rnnx ONNX exports with numpy + onnxruntime only.

    import runtime
    model = runtime.load("lstm_stream.onnx")      # StreamingModel (from its metadata)
    probs = model.step(frame)                     # states carried inside

Importing this package never imports tensorflow, keras, tf2onnx or onnx.
"""

from .contract import Contract, StateSpec, TensorSpec
from .errors import (InputShapeError, InputValueError, ModelFormatError, ProviderError, RnnxError,
                     SettingError, StateError, UncheckedModelWarning)
from .integrity import check_export_set
from .loader import load
from .model import Model
from .streaming import StreamingModel
from .version import __version__

__all__ = [
    "__version__", "load", "Model", "StreamingModel", "check_export_set",
    "Contract", "StateSpec", "TensorSpec",
    "RnnxError", "ModelFormatError", "InputShapeError", "InputValueError", "StateError",
    "ProviderError", "SettingError", "UncheckedModelWarning",
]
