"""`rnnx bench`: every export of a model against Keras, TensorFlow and LiteRT.

`run` drives a benchmark; `ort` times onnxruntime, `keras_engines` (in worker
processes, see `worker`) the TensorFlow and LiteRT baselines; `data`,
`timing`, `machine` and `text` are its inputs, clocks, machine description
and summary.
"""

from .run import benchmark  # noqa: F401
