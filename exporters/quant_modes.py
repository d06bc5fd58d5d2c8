"""The quantization modes: one `QuantMode` each, registered in `REGISTRY`.

A mode says everything the quantizer (exporters/quantize/), the CLI, the pipeline's params
schema, the report and the runtime's precision list ask of it: what it quantizes, which
recurrent ops rnnx writes out step by step before it, its onnxruntime pre-processing, whether
it calibrates, its label, and `run`, the "module:function" that calls onnxruntime
(exporters/quantize/runners.py for the built-in modes). Adding a mode is one
`register(QuantMode(...))` here (plus its runner and its test); `runtime.contract.PRECISIONS`
lists the names too (the runtime imports nothing of rnnx's exporters), and a test ties them.

This module imports nothing: every pipeline stage reads the mode names through its params
schema, and none of them should depend on the quantizer's code (dvc.yaml's deps).

Example::

    from exporters.quant_modes import REGISTRY
    REGISTRY["int8-static"].calibrates      # True
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("minmax", "entropy", "percentile")   # int8-static's calibrators
INT8_DYNAMIC_OPS = ("MatMul", "Conv", "Gemm", "LSTM", "Gather", "Attention")  # onnxruntime's IntegerOps registry
STATIC_OPS = ("MatMul", "Gemm", "Conv")  # QDQ elsewhere compounds error along the recurrence


@dataclass(frozen=True)
class QuantMode:
    name: str                 # the CLI/params/metadata name, e.g. "int8-dynamic"
    summary: str              # one line for `rnnx quantize --help` and the docs
    weights: str              # what a quantized layer's weights become: "int8" or "fp16"
    ops: tuple | None         # the ONNX ops it quantizes (None: every float op)
    unroll: tuple             # recurrent ops rnnx writes out step by step first, in a stream chunk...
    unroll_one_step: tuple    # ... and in a one-step stream (chunk 1)
    int8_recurrent: tuple     # native recurrent ops it has an integer form of
    float_recurrent_note: str  # why a native recurrent op ({op}) stays float under it
    preprocess: bool | None   # onnxruntime pre-processing: None none, False shape inference, True optimization
    run: str                  # "module:function": (model_in, work, opts, exclude) -> (ModelProto, figures)
    calibrates: bool = False  # needs calibration samples (and carries the fp32 states to them)
    fuse_one_step: bool = False   # a one-step chunk's LSTM/GRU through one [x, h] matrix
    quantizes_loops: bool = False  # a Loop/Scan body is quantized too
    probe: bool = False       # open the result in a child process first (a converter that can segfault it)
    color: str = "#7f7f7f"    # its bars in the report's figures

    @property
    def integer(self) -> bool:
        return self.weights == "int8"

    def unrolled_ops(self, chunk: int | None) -> tuple:
        """The recurrent ops rnnx writes out step by step before quantizing a stream of `chunk` steps."""
        return self.unroll_one_step if chunk == 1 else self.unroll

    def runner(self):
        """The function `run` names, imported now."""
        import importlib

        module, _, function = self.run.partition(":")
        return getattr(importlib.import_module(module), function)


REGISTRY: dict[str, QuantMode] = {}


def register(mode: QuantMode) -> QuantMode:
    if mode.name in REGISTRY:
        raise ValueError(f"quantization mode {mode.name!r} is already registered")
    REGISTRY[mode.name] = mode
    return mode


def get(name: str) -> QuantMode:
    """The mode called `name`; ConfigError naming the modes for another name."""
    from .errors import ConfigError

    if not isinstance(name, str) or name not in REGISTRY:
        raise ConfigError(f"unknown quantization mode {name!r}; expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


# Pre-processing: not optimization for the int8 modes. It fuses a step's MatMul with the Add of
# the chunk's input projection into a Gemm whose bias is not a constant, which onnxruntime cannot
# run as an integer op; it then dequantized the recurrent weights on every call (LSTM(128)
# stream, batch 1: 0.135 ms, 0.030 ms without; same size and gate).
register(QuantMode(
    "int8-dynamic", "DynamicQuantizeLSTM, integer MatMul/Conv", "int8", INT8_DYNAMIC_OPS,
    unroll=("GRU",), unroll_one_step=("GRU", "LSTM"), int8_recurrent=("LSTM",),
    float_recurrent_note=("onnxruntime has no quantized {op} op, so the {op} weights stay float32; "
                          "the stream and unrolled variants get int8 matmuls"),
    preprocess=False, run="exporters.quantize.runners:int8_dynamic", fuse_one_step=True, quantizes_loops=True, color="#2ca02c"))
register(QuantMode(
    "int8-static", "QDQ, needs --calibration", "int8", STATIC_OPS,
    unroll=("GRU", "LSTM"), unroll_one_step=("GRU", "LSTM"), int8_recurrent=(),
    float_recurrent_note="static QDQ leaves the {op} op in float32; use int8-dynamic or the stream/unrolled variant",
    preprocess=False, run="exporters.quantize.runners:int8_static", calibrates=True, color="#d62728"))
register(QuantMode(
    "fp16", "float16 weights, float32 inputs/outputs", "fp16", None,
    unroll=(), unroll_one_step=(), int8_recurrent=(), float_recurrent_note="",
    preprocess=None, run="exporters.quantize.runners:fp16", quantizes_loops=True, probe=True, color="#ff7f0e"))

MODES = tuple(REGISTRY)
