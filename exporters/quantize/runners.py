"""The calls into onnxruntime's quantizers, one per quantization mode (`exporters.quant_modes`
names them in each mode's `run`): (model in, work folder, options, nodes kept float) ->
(ModelProto, figures for the report)."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..quant_modes import STATIC_OPS

FP16_KEEP_FLOAT = ("Transpose",)


def _load(path: Path):
    import onnx

    return onnx.load(str(path))


def int8_dynamic(model_in: Path, work: Path, opts: dict, exclude: list):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / "quantized.onnx"
    quantize_dynamic(str(model_in), str(out), weight_type=QuantType.QInt8, per_channel=opts["per_channel"],
                     reduce_range=opts["reduce_range"], nodes_to_exclude=list(exclude),
                     extra_options={"EnableSubgraph": True})     # a Scan's body (ConvLSTM's full) too
    return _load(out), {}


def int8_static(model_in: Path, work: Path, opts: dict, exclude: list):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from . import data as quant_data

    reader = quant_data.make_reader(opts["source_bytes"], opts["info"], opts["calibration_x"])
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[opts["method"]]
    out = work / "quantized.onnx"
    quantize_static(str(model_in), str(out), reader, quant_format=QuantFormat.QDQ,
                    per_channel=opts["per_channel"], reduce_range=opts["reduce_range"],
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                    op_types_to_quantize=list(STATIC_OPS), nodes_to_exclude=list(exclude))
    return _load(out), {"calibration_batches": reader.calls}


def fp16(model_in: Path, work: Path, opts: dict, exclude: list):
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    # Transpose stays float32 (it has no weights): onnxruntime 1.32's full graph optimization
    # segfaults on two back-to-back float16 Transposes between stacked GRU ops (char_gru)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter warns about every clamped tiny value
        model = convert_float_to_float16(_load(model_in), keep_io_types=True,
                                         op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(FP16_KEEP_FLOAT),
                                         node_block_list=list(exclude) or None)
    return model, {}
