"""`rnnx quantize`: int8 dynamic, int8 static (QDQ) and fp16 copies of an export.

The modes themselves are one registry, `exporters/quant_modes.py` (what the CLI, the
pipeline's params and the report read); `runners` holds their calls into onnxruntime.
`model` quantizes and gates one file; `data` builds the calibration and
evaluation inputs a model's contract asks for; `graph` holds the graph
surgery around onnxruntime's quantizers; `unroll` writes a stream chunk's
GRU/LSTM nodes out as int8-able plain ops; `layers` groups nodes by layer
and `mixed` picks the layers kept in float; `workspace` keeps scratch files
out of the caller's folders.
"""

from .model import METHODS, MODES, applicable, model_info, quantize_model  # noqa: F401
