"""`rnnx quantize`: int8 dynamic, int8 static (QDQ) and fp16 copies of an export.

`model` quantizes and gates one file; `data` builds the calibration and
evaluation inputs a model's contract asks for; `graph` holds the graph
surgery around onnxruntime's quantizers.
"""

from .model import METHODS, MODES, applicable, model_info, quantize_model  # noqa: F401
