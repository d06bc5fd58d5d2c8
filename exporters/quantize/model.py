"""Quantize an rnnx ONNX export: int8-dynamic, int8-static (QDQ) or fp16.

Example::

    from exporters.quantize import quantize_model
    report = quantize_model("out/lstm/stream.onnx", "out/lstm/stream.int8-dynamic.onnx",
                            "int8-dynamic", evaluation="test.npz", max_drop=1.0)
    report["size"]["ratio"], report["accuracy"]["drop_points"]

Modes (a registry: mode -> handler, like onnxruntime's own op registry):

- ``int8-dynamic``: `onnxruntime.quantization.quantize_dynamic`; an ONNX
  ``LSTM`` becomes ``DynamicQuantizeLSTM``, MatMul/Conv become integer ops.
  onnxruntime has no quantized GRU: a GRU's weights only become int8 in the
  ``unrolled`` variant (plain MatMuls), and the report says so.
- ``int8-static``: QDQ with a calibrator (MinMax, Entropy or Percentile) fed
  with the caller's samples; stream/unrolled variants get their states too,
  the states the fp32 model reaches chunk by chunk. QDQ leaves LSTM/GRU ops
  in float: it quantizes the recurrence of ``unrolled`` variants only.
- ``fp16``: float16 weights, float32 inputs and outputs (the runtime contract
  does not change), with onnxruntime's converter, which handles a ``Loop``.

The result keeps the ``rnnx`` metadata with ``precision`` set to the mode and
the same input/output names and dtypes, states included. With evaluation data
(x and integer labels y) the accuracy of the quantized model and of its fp32
source is measured on the same samples; a drop above ``max_drop`` points
raises QuantizationError and writes nothing. The file is written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from runtime.contract import Contract
from runtime.errors import RnnxError, UncheckedModelWarning

from .. import metadata
from ..validation import parity as validate
from . import data as quant_data, graph as quant_graph
from ..atomic import write_bytes
from ..errors import ConfigError, ModelFormatError, QuantizationError
from ..inspect_onnx import describe

MODES = ("int8-dynamic", "int8-static", "fp16")
METHODS = ("minmax", "entropy", "percentile")
RECURRENT_OPS = ("LSTM", "GRU", "RNN")
LOOP_OPS = ("Loop", "Scan")
DEFAULT_CALIBRATION_LIMIT = 512
SIZE_TARGET = 0.30  # int8 files should be at most this fraction of the fp32 file
STATIC_OPS = ["MatMul", "Gemm", "Conv"]  # QDQ elsewhere compounds error along the recurrence
FP16_KEEP_FLOAT = ["Transpose"]


def applicable(mode: str, op_counts: dict) -> str | None:
    """None when `mode` makes the recurrent weights of a model with these ops smaller
    (int8 or fp16); otherwise the reason it would leave them in float32."""
    if mode not in MODES:
        raise ConfigError(f"unknown quantization mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "fp16":
        return None
    loops = [op for op in LOOP_OPS if op in op_counts]
    if loops:
        return f"the recurrence is a {loops[0]}, whose body onnxruntime does not quantize"
    native = [op for op in RECURRENT_OPS if op in op_counts]
    if mode == "int8-dynamic" and any(op != "LSTM" for op in native):
        op = next(op for op in native if op != "LSTM")
        return (f"onnxruntime has no quantized {op} op, so the {op} weights stay float32; "
                "the unrolled variant gets int8 matmuls")
    if mode == "int8-static" and native:
        return (f"static QDQ leaves the {native[0]} op in float32; use int8-dynamic or the unrolled variant")
    return None


# -- mode handlers: (source path, work dir, options) -> (ModelProto, figures) ---------------------

def _preprocess(src: Path, work: Path, *, optimize: bool) -> tuple[Path, str]:
    """onnxruntime's quant_pre_process (symbolic shape inference, and graph optimization when
    `optimize`); the source itself when it fails, with the reason."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "preprocessed.onnx"
    try:
        quant_pre_process(str(src), str(out), skip_optimization=not optimize)
    except Exception as exc:  # symbolic shape inference raises many types on unusual graphs
        return src, f"skipped: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    return out, "shape inference + optimization" if optimize else "shape inference"


def _int8_dynamic(src: Path, work: Path, opts: dict):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul+Add must not be fused into Gemm first: quantize_dynamic has no integer Gemm
    model_in, pre = _preprocess(src, work, optimize=False)
    out = work / "quantized.onnx"
    quantize_dynamic(str(model_in), str(out), weight_type=QuantType.QInt8, per_channel=opts["per_channel"])
    return _load(out), {"preprocess": pre}


def _int8_static(src: Path, work: Path, opts: dict):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model_in, pre = _preprocess(src, work, optimize=True)
    reader = quant_data.make_reader(opts["source_bytes"], opts["info"], opts["calibration_x"])
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[opts["method"]]
    out = work / "quantized.onnx"
    quantize_static(str(model_in), str(out), reader, quant_format=QuantFormat.QDQ,
                    per_channel=opts["per_channel"], activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=method, op_types_to_quantize=STATIC_OPS)
    return _load(out), {"preprocess": pre, "calibration_batches": reader.calls}


def _fp16(src: Path, work: Path, opts: dict):
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    # Transpose stays float32 (it has no weights): onnxruntime 1.32's full graph optimization
    # segfaults on two back-to-back float16 Transposes between stacked GRU ops (char_gru)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the converter warns about every clamped tiny value
        model = convert_float_to_float16(_load(src), keep_io_types=True,
                                         op_block_list=list(DEFAULT_OP_BLOCK_LIST) + FP16_KEEP_FLOAT)
    return model, {"preprocess": "none"}


HANDLERS = {"int8-dynamic": _int8_dynamic, "int8-static": _int8_static, "fp16": _fp16}


def _load(path: Path):
    import onnx

    return onnx.load(str(path))


# -- checks -----------------------------------------------------------------------------------------

def _check_options(mode, method, per_channel, max_drop, calibration_limit) -> float:
    if mode not in MODES:
        raise ConfigError(f"unknown quantization mode {mode!r}; expected one of {', '.join(MODES)}")
    if method not in METHODS:
        raise ConfigError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if not isinstance(per_channel, bool):
        raise ConfigError(f"per_channel must be True or False; got {per_channel!r}")
    if isinstance(calibration_limit, bool) or not isinstance(calibration_limit, int) or calibration_limit < 1:
        raise ConfigError(f"calibration_limit must be a positive integer; got {calibration_limit!r}")
    return quant_data.check_max_drop(max_drop)


def _check_paths(src, dst, force: bool) -> tuple[Path, Path]:
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise ConfigError(f"output {str(dst)!r} is a directory; expected an .onnx file path")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise ConfigError(f"output {str(dst)!r} is the fp32 source itself; choose another path")
    if dst.exists() and not force:
        raise ConfigError(f"output {str(dst)!r} already exists; pass --force (force=True) to replace it")
    return src, dst


def model_info(path: Path) -> quant_data.ModelInfo:
    info = describe(path)  # ModelFormatError for a missing or non-ONNX file
    meta = info["rnnx"]
    contract = None
    if meta is not None:
        if "unparsable" in meta:
            raise ModelFormatError(f"{path.name}: its rnnx metadata is not valid JSON")
        contract = Contract.from_dict(meta)
    if not info["inputs"]:
        raise ModelFormatError(f"{path.name} has no graph inputs; expected an rnnx export with input 'x'")
    return quant_data.ModelInfo(path=path, inputs=info["inputs"], outputs=info["outputs"],
                                op_counts=info["op_counts"], meta=meta, contract=contract)


def _signature(tensors: list) -> list:
    return [(t["name"], t["dtype"], len(t["shape"])) for t in tensors]


def _check_io(before: quant_data.ModelInfo, after: quant_data.ModelInfo, mode: str) -> None:
    """Same input/output names, dtypes and ranks, in the same order (states included)."""
    for what in ("inputs", "outputs"):
        want, got = _signature(getattr(before, what)), _signature(getattr(after, what))
        if want != got:
            raise QuantizationError(f"{mode}: the quantized model's {what} are {got}; expected {want} "
                                    "(name, dtype, rank) like the fp32 source")


# -- the API ----------------------------------------------------------------------------------------

def quantize_model(src, dst, mode, *, calibration=None, per_channel=False, method="minmax",
                   evaluation=None, max_drop=1.0, force=False,
                   calibration_limit=DEFAULT_CALIBRATION_LIMIT, progress=None) -> dict:
    """Quantize the ONNX model `src` into `dst` and return the report.

    Args:
        src: an rnnx export (full, stream or unrolled; fp32). A plain ONNX file is
            quantized too, with a warning listing what its missing metadata means.
        dst: the output .onnx path (its folder is created).
        mode: "int8-dynamic", "int8-static" or "fp16".
        calibration: samples for int8-static: a .npz with 'x' (N, T, ...), an array,
            or a dict with 'x'. The first `calibration_limit` sequences are used.
        per_channel: per-channel weight scales (int8 modes).
        method: calibrator for int8-static: "minmax", "entropy" or "percentile".
        evaluation: samples with integer labels: a .npz with 'x' and 'y', an (x, y)
            pair or a dict. Enables the accuracy gate.
        max_drop: largest accepted accuracy drop, in percentage points.
        force: replace `dst` if it exists.
        progress: callable(str) receiving progress lines, or None.

    Returns:
        The report: sizes, op counts before/after, accuracy before/after and the drop,
        max |Δ| and argmax agreement against fp32, notes and warnings.

    Raises:
        ConfigError: bad option, missing calibration for int8-static, `dst` exists.
        ModelFormatError: `src` is missing, not ONNX, or its metadata is malformed.
        InputShapeError, InputValueError, DataError: unusable calibration/evaluation data.
        QuantizationError: quantization failed, changed the model's I/O, or lost more
            than `max_drop` accuracy points (nothing is written then).
    """
    say = progress or (lambda _msg: None)
    max_drop = _check_options(mode, method, per_channel, max_drop, calibration_limit)
    src, dst = _check_paths(src, dst, force)
    info = model_info(src)
    notes, warn = [], []
    if info.contract is None:
        text = (f"{src.name} has no 'rnnx' metadata (not an rnnx export): variant, states, labels and "
                "preprocessing are unknown, its single input is fed as is, and the quantized file carries "
                "no rnnx metadata or precision either")
        warnings.warn(text, UncheckedModelWarning, stacklevel=2)
        warn.append(text)
    elif info.contract.precision != "fp32":
        raise QuantizationError(f"{src.name} is already quantized (precision {info.contract.precision!r}); "
                                "quantize its fp32 export instead")
    source_bytes = src.read_bytes()
    original_names = quant_graph.names_in(_load(src))

    cal_x = None
    if calibration is not None:
        raw, _ = quant_data.read_arrays(calibration, "calibration", need_labels=False)
        cal_x, extra = quant_data.check_x(raw[:calibration_limit], info, "calibration")
        warn += extra
        if mode != "int8-static":
            notes.append(f"{mode} does not calibrate: the calibration data was only used to compare outputs")
    elif mode == "int8-static":
        raise ConfigError("int8-static needs calibration data: a .npz with array 'x' shaped like the model "
                          "input (--calibration FILE.npz)")
    eval_x = eval_y = None
    if evaluation is not None:
        raw_x, raw_y = quant_data.read_arrays(evaluation, "evaluation", need_labels=True)
        eval_x, extra = quant_data.check_x(raw_x, info, "evaluation")
        eval_y = quant_data.check_labels(raw_y, eval_x, info)
        warn += extra

    reason = applicable(mode, info.op_counts)
    if reason:
        notes.append(reason)
    say(f"{mode}: quantizing {src.name} ({len(source_bytes)} bytes)")
    with tempfile.TemporaryDirectory(prefix="rnnx-quantize-") as tmp:
        work = Path(tmp)
        opts = {"per_channel": per_channel, "method": method, "info": info, "source_bytes": source_bytes,
                "calibration_x": cal_x}
        try:
            with _quantizer_output(say) as log:
                proto, figures = HANDLERS[mode](src, work, opts)
        except RnnxError:
            raise
        except Exception as exc:  # onnxruntime's quantizer raises plain exceptions
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QuantizationError(f"{mode} quantization of {src.name} failed: {first}") from None
        figures["quantizer_log"] = log
        shared = quant_graph.share_weights(proto)
        shared["names_shortened"] = quant_graph.shorten_new_names(proto, original_names)
        if info.meta is not None:
            meta = copy.deepcopy(info.meta)
            meta["precision"] = mode
            meta["quantization"] = {"mode": mode, "per_channel": per_channel,
                                    "method": method if mode == "int8-static" else None,
                                    "fp32_sha256": hashlib.sha256(source_bytes).hexdigest(),
                                    "fp32_bytes": len(source_bytes)}
            metadata.attach(proto, meta)
        blob = proto.SerializeToString()
        out_path = work / "final.onnx"
        out_path.write_bytes(blob)
        after = model_info(out_path)
        _check_io(info, after, mode)
        _probe_in_subprocess(out_path, mode)
        _check_contract(out_path, info, mode)
        report = _report(src, dst, mode, info, after, len(source_bytes), len(blob), figures, shared,
                         per_channel, method, cal_x, notes, warn, proto)
        say(f"{mode}: {len(source_bytes)} -> {len(blob)} bytes; comparing with fp32")
        _compare(report, source_bytes, blob, info, after, eval_x, eval_y, cal_x)
        _gate(report, max_drop, src, mode)
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(dst, blob)
    say(f"{mode}: wrote {dst}")
    return report


@contextlib.contextmanager
def _quantizer_output(say):
    """Catch what onnxruntime's quantizer prints (stdout) and logs (root logger), so that
    stdout stays the caller's; each distinct line goes to `say` and into the report."""
    lines: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            lines.append(f"{record.levelname.lower()}: {record.getMessage()}")

    root, handler, buf = logging.getLogger(), _Collect(level=logging.WARNING), io.StringIO()
    root.addHandler(handler)  # with a handler present, logging.warning() adds no stderr handler
    try:
        with contextlib.redirect_stdout(buf):
            yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(line.strip() for line in buf.getvalue().splitlines() if line.strip())
        unique = list(dict.fromkeys(lines))
        lines[:] = unique
        for line in unique:
            say(f"onnxruntime: {line}")


def _probe_in_subprocess(path: Path, mode: str) -> None:
    """Open the model with onnxruntime's default settings in a child process first: a crash
    there (a segfault in the graph optimizer, seen with float16 graphs) becomes a typed error
    here instead of killing the caller, and no file that crashes an edge app is written."""
    if mode != "fp16":
        return
    code = ("import sys, onnxruntime as ort; "
            "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])")
    try:
        res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                             timeout=300)
    except subprocess.TimeoutExpired:
        raise QuantizationError(f"{mode}: onnxruntime did not load the converted model in 300 s") from None
    if res.returncode != 0:
        why = f"signal {-res.returncode}" if res.returncode < 0 else (res.stderr.strip().splitlines() or ["?"])[-1]
        raise QuantizationError(f"{mode}: onnxruntime {_ort_version()} cannot load the converted model "
                                f"({why}); nothing written")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _check_contract(path: Path, info: quant_data.ModelInfo, mode: str) -> None:
    """The runtime opens the quantized file as it opens the fp32 one (graph vs metadata, state shapes)."""
    if info.contract is None:
        return
    import runtime

    try:
        runtime.load(path, providers=["cpu"], threads=1, batch=info.x_shape[0] or 1)
    except RnnxError as exc:
        raise QuantizationError(f"{mode}: the runtime refuses the quantized model: {exc}") from None


def _report(src, dst, mode, info, after, before_bytes, after_bytes, figures, shared, per_channel, method,
            cal_x, notes, warn, proto) -> dict:
    float_rnn = [op for op in RECURRENT_OPS + LOOP_OPS if op in after.op_counts]
    if mode == "fp16":
        recurrent = "float16"
    else:
        recurrent = "float32" if float_rnn else "int8"
    for op in float_rnn:
        if mode != "fp16" and op in ("GRU", "RNN") and not any(op in n for n in notes):
            notes.append(f"onnxruntime has no quantized {op} op: the {op} stays float32 here; "
                         "the unrolled variant gets int8 matmuls")
    ratio = after_bytes / before_bytes
    if mode != "fp16" and recurrent == "int8" and ratio > SIZE_TARGET:
        notes.append(f"int8 file is {ratio:.0%} of fp32, above the {SIZE_TARGET:.0%} target: "
                     "graph structure, not weights, dominates this small model")
    return {
        "format": 1,
        "source": str(src), "output": str(dst), "mode": mode,
        "variant": info.contract.variant if info.contract else None,
        "chunk": info.chunk,
        "rnnx_metadata": info.contract is not None,
        "per_channel": per_channel,
        "calibration": ({"method": method, "samples": int(len(cal_x)), "batches": figures.get("calibration_batches"),
                         "states": "carried from the fp32 model chunk by chunk" if info.streaming else None}
                        if mode == "int8-static" else None),
        "preprocess": figures.get("preprocess"),
        "quantizer_log": figures.get("quantizer_log", []),
        "size": {"fp32_bytes": before_bytes, "bytes": after_bytes, "ratio": round(ratio, 4)},
        "weight_bytes": quant_graph.weight_bytes(proto),
        "shared_weights": shared,
        "recurrent_weights": recurrent,
        "float_recurrent_ops": float_rnn if mode != "fp16" else [],
        "op_counts": {"fp32": info.op_counts, "quantized": after.op_counts},
        "state_inputs": [s[0] for s in info.state_specs],
        "notes": notes, "warnings": warn,
        "accuracy": None, "agreement": None,
    }


def _compare(report, source_bytes, blob, info, after, eval_x, eval_y, cal_x) -> None:
    """Fill the report's agreement (vs fp32) and accuracy figures."""
    if eval_x is not None:
        x, data = eval_x, "evaluation"
    elif cal_x is not None:
        x, data = cal_x, "calibration"
    else:
        x, data = quant_data.random_x(info), "random"
    try:
        ref = quant_data.predict(source_bytes, info, x)
        got = quant_data.predict(blob, after, x)
    except ModelFormatError as exc:
        raise QuantizationError(f"{report['mode']}: {exc}") from None
    stats = validate.compare(got, ref)
    report["agreement"] = {"data": data, "samples": int(len(x)), "steps": int(x.shape[1]) if x.ndim > 1 else None,
                           "max_abs_diff": stats["max_abs_diff"], "mean_abs_diff": stats["mean_abs_diff"],
                           "argmax_agreement": stats["argmax_agreement"]}
    if eval_y is not None:
        fp32, quant = quant_data.accuracy(ref, eval_y), quant_data.accuracy(got, eval_y)
        report["accuracy"] = {"fp32": fp32, "quantized": quant, "drop_points": round((fp32 - quant) * 100, 4),
                              "samples": int(len(eval_x))}


def _gate(report: dict, max_drop: float, src: Path, mode: str) -> None:
    acc = report["accuracy"]
    if acc is None:
        return
    acc["max_drop"] = max_drop
    if not acc["drop_points"] <= max_drop:
        exc = QuantizationError(
            f"{mode} {src.name}: accuracy dropped {acc['drop_points']:.2f} points (fp32 {acc['fp32']:.4f} -> "
            f"{mode} {acc['quantized']:.4f} on {acc['samples']} samples), more than max_drop {max_drop:g}; "
            f"argmax agreement with fp32 {_fmt(report['agreement']['argmax_agreement'])}; nothing written")
        exc.report = report
        raise exc



def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
