"""LiteRT (ai-edge-litert, the TFLite interpreter) as a benchmark baseline.

LiteRT cannot convert a recurrent model with a dynamic batch without Flex ops,
which its interpreter lacks. So the Keras model is rebuilt with a fixed input
of batch 1 (and the test set's number of steps), weights copied; when even
that fails to convert, again with ``unroll=True`` on every recurrent layer.
Each attempt's failure is kept, so a model that never converts is reported
with the reasons instead of crashing the benchmark.
"""

from __future__ import annotations

import copy

import numpy as np

RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN")
ATTEMPTS = (("batch1", False), ("batch1+unroll", True))


class LiteRTUnavailable(Exception):
    """LiteRT cannot run this model here; the message says why (for the report)."""


def fixed_batch_copy(model, steps: int, unroll: bool):
    """A copy of a Sequential/functional ``model`` taking exactly (1, steps, ...), same weights."""
    import keras

    cfg = copy.deepcopy(model.get_config())
    _edit(cfg, steps, unroll)
    cfg.pop("build_input_shape", None)
    clone = type(model).from_config(cfg) if isinstance(model, keras.Sequential) else \
        keras.Model.from_config(cfg)
    clone.set_weights(model.get_weights())
    return clone


def _edit(cfg, steps: int, unroll: bool) -> None:
    if isinstance(cfg, dict):
        inner = cfg.get("config")
        if cfg.get("class_name") == "InputLayer" and isinstance(inner, dict) and inner.get("batch_shape"):
            shape = list(inner["batch_shape"])
            shape[0] = 1
            if len(shape) > 1:
                shape[1] = steps
            inner["batch_shape"] = shape
        if unroll and cfg.get("class_name") in RECURRENT and isinstance(inner, dict):
            inner["unroll"] = True
        for value in cfg.values():
            _edit(value, steps, unroll)
    elif isinstance(cfg, list):
        for value in cfg:
            _edit(value, steps, unroll)


def convert(model, steps: int) -> tuple[bytes, str, list[str]]:
    """(tflite flatbuffer, method, failures of earlier attempts) for ``model`` at batch 1."""
    import tensorflow as tf

    failures = []
    for method, unroll in ATTEMPTS:
        try:
            clone = fixed_batch_copy(model, steps, unroll)
            blob = tf.lite.TFLiteConverter.from_keras_model(clone).convert()
            return blob, method, failures
        except Exception as exc:  # the converter raises ConverterError, ValueError, ...
            failures.append(f"{method}: {_first_line(exc)}")
    raise LiteRTUnavailable("conversion failed: " + "; ".join(failures))


class Runner:
    """One LiteRT interpreter on a batch-1 model: ``run(x1)`` -> output (copied)."""

    def __init__(self, blob: bytes, threads: int | None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise LiteRTUnavailable("ai-edge-litert is not installed (pip install 'rnnx[pipeline]')") from None
        try:
            self._it = Interpreter(model_content=blob, num_threads=threads or -1)
            self._it.allocate_tensors()
        except Exception as exc:  # RuntimeError/ValueError from the interpreter
            raise LiteRTUnavailable(f"the interpreter cannot load the converted model: {_first_line(exc)}") from None
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        self._dtype = np.dtype(self._in["dtype"])

    def run(self, x1: np.ndarray) -> np.ndarray:
        it = self._it
        it.set_tensor(self._in["index"], x1)
        it.invoke()
        return it.get_tensor(self._out["index"])

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Outputs for every sample of x, one invoke each."""
        xs = np.ascontiguousarray(x, dtype=self._dtype)
        return np.concatenate([self.run(xs[i:i + 1]) for i in range(xs.shape[0])], axis=0)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if "error:" in line:
            return line[line.index("error:"):][:300]
    return (text.splitlines()[0][:300] if text else type(exc).__name__)
