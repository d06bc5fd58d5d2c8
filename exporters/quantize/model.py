"""Quantize an rnnx ONNX export: int8-dynamic, int8-static (QDQ) or fp16.

Example::

    from exporters.quantize import quantize_model
    report = quantize_model("out/lstm/stream.onnx", "out/lstm/stream.int8-dynamic.onnx",
                            "int8-dynamic", evaluation="test.npz", max_drop=1.0)
    report["size"]["ratio"], report["accuracy"]["drop_points"]

Modes (one `QuantMode` each in `exporters/quant_modes.py`, like onnxruntime's own op registry):

- ``int8-dynamic``: `onnxruntime.quantization.quantize_dynamic`; an ONNX
  ``LSTM`` becomes ``DynamicQuantizeLSTM``, MatMul/Conv/Gather (embedding
  tables) become integer ops. onnxruntime has no quantized GRU op: in stream
  variants (a fixed chunk) rnnx first rewrites each GRU node into per-step
  MatMuls (`unroll`), which become int8; the full variant's GRU stays float.
  A one-step stream's LSTM is rewritten too: one integer GEMM of [x, h] per
  call beats DynamicQuantizeLSTM there (0.81 vs 1.00 us per stream-step at 64
  streams, 13.1 vs 14.5 us at one, LSTM(128), `scripts/bench_int8_stream.py`);
  at four steps a chunk DynamicQuantizeLSTM wins (3.2 vs 4.1 us per stream at 64).
- ``int8-static``: QDQ with a calibrator (MinMax, Entropy or Percentile) fed
  with the caller's samples; stream/unrolled variants get their states too,
  the states the fp32 model reaches chunk by chunk. QDQ leaves LSTM/GRU ops
  in float, so stream variants get their LSTM/GRU nodes unrolled first.
- ``fp16``: float16 weights, float32 inputs and outputs (the runtime contract
  does not change), with onnxruntime's converter, which handles a ``Loop``.

``reduce_range`` (the default) keeps int8 weights to 7 bits: x86 CPUs without VNNI (AVX2,
and AVX-512 without VNNI) multiply u8 x s8 pairs into int16 sums that saturate with full
8-bit weights; 7 bits cannot. Measured on an AVX2 EPYC: the CNN-LSTM's int8-dynamic argmax
agreement with fp32 went from 0.91 to above 0.95.

Mixed precision (``mixed="auto"``): when quantizing every layer loses more
than ``max_drop`` points on the evaluation data, each layer's sensitivity is
measured alone and the most sensitive layers are kept in fp32, one at a time,
until the gate holds (`mixed`). The file's precision is then "mixed".

The result keeps the ``rnnx`` metadata with ``precision`` set to the mode (or
"mixed") and ``quantization.layers`` giving each layer's precision, with the
size ratio that results (no timing: the same source and options give the same
bytes); input/output names and dtypes (states included) do not change. With
evaluation data (x and integer labels y) the accuracy of the quantized model
and of its fp32 source is measured on the same samples; a drop above
``max_drop`` points raises QuantizationError and writes nothing, and so does a
file larger than its source (unless ``allow_larger``). Work happens in a
private temporary folder, the caller's current directory untouched. The file
is written atomically. """

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from runtime.contract import Contract
from runtime.errors import RnnxError, UncheckedModelWarning
from runtime.session import open_model

from .. import metadata
from ..validation import parity as validate
from . import data as quant_data, graph as quant_graph, layers as quant_layers, mixed as mixed_mod
from . import unroll as unroll_mod, workspace
from .. import quant_modes as modes
from ..atomic import check_writable, write_bytes
from ..errors import ConfigError, ModelFormatError, QuantizationError
from ..inspect_onnx import describe

MODES = modes.MODES
METHODS = modes.METHODS
RECURRENT_OPS = ("LSTM", "GRU", "RNN")
LOOP_OPS = ("Loop", "Scan")
DEFAULT_CALIBRATION_LIMIT = 512
SIZE_TARGET = 0.30  # int8 files should be at most this fraction of the fp32 file


def applicable(mode: str, op_counts: dict, *, chunk: int | None = None) -> str | None:
    """None when `mode` makes the recurrent weights of a model with these ops smaller
    (int8 or fp16); otherwise the reason it would leave them in float32. `chunk`: the
    fixed steps per call of a stream/unrolled variant, whose GRU/LSTM nodes rnnx
    unrolls into plain ops that onnxruntime quantizes."""
    m = modes.get(mode)
    if m.ops is None:
        return None
    loops = [op for op in LOOP_OPS if op in op_counts]
    if loops and not m.quantizes_loops:
        return f"the recurrence is a {loops[0]}, whose body onnxruntime's {m.name} does not quantize"
    native = [op for op in RECURRENT_OPS if op in op_counts and not (chunk and op in m.unrolled_ops(chunk))]
    stays = [op for op in native if op not in m.int8_recurrent]
    return m.float_recurrent_note.format(op=stays[0]) if stays else None


def _preprocess(src: Path, work: Path, *, optimize: bool) -> tuple[Path, str]:
    """onnxruntime's quant_pre_process (symbolic shape inference, and graph optimization when
    `optimize`); the source itself when it fails, with the reason."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / ("preprocessed-opt.onnx" if optimize else "preprocessed.onnx")
    try:
        quant_pre_process(str(src), str(out), skip_optimization=not optimize)
    except Exception as exc:  # symbolic shape inference raises many types on unusual graphs
        if (full := workspace.no_room(exc)) is not None:
            raise full from None
        return src, f"skipped: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    return out, "shape inference + optimization" if optimize else "shape inference"


def _load(path: Path):
    import onnx

    return onnx.load(str(path))


def _load_source(src: Path):
    """The fp32 model with its weights; external data must lie in the model's folder."""
    import onnx

    try:
        return onnx.load(str(src))
    except Exception as exc:  # onnx refuses external data outside the folder, or missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{src.name}: cannot load its weights: {first}; external data files must "
                               "lie in the model's folder (or below it)") from None


# -- checks -----------------------------------------------------------------------------------------

def _check_options(method, per_channel, max_drop, calibration_limit, reduce_range=True, mixed="auto") -> float:
    if mixed not in MIXED:
        raise ConfigError(f"mixed must be one of {', '.join(MIXED)}; got {mixed!r}")
    if method not in METHODS:
        raise ConfigError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    if not isinstance(per_channel, bool):
        raise ConfigError(f"per_channel must be True or False; got {per_channel!r}")
    if not isinstance(reduce_range, bool):
        raise ConfigError(f"reduce_range must be True or False; got {reduce_range!r}")
    if isinstance(calibration_limit, bool) or not isinstance(calibration_limit, int) or calibration_limit < 1:
        raise ConfigError(f"calibration_limit must be a positive integer; got {calibration_limit!r}")
    return quant_data.check_max_drop(max_drop)


def _check_paths(src, dst, force: bool) -> tuple[Path, Path]:
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise ConfigError(f"output {str(dst)!r} is a directory; expected an .onnx file path")
    check_writable(dst.parent)     # a file in the way, a read-only folder: before the work
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise ConfigError(f"output {str(dst)!r} is the fp32 source itself; choose another path")
    if dst.exists() and not force:
        raise ConfigError(f"output {str(dst)!r} already exists; pass --force (force=True) to replace it")
    return src, dst


def model_info(path: Path, *, check_graph: bool = True) -> quant_data.ModelInfo:
    """What quantization needs to know of `path`; with `check_graph`, the runtime's check that
    its rnnx metadata describes its graph (an onnxruntime session: not for a fresh, unprobed file)."""
    import onnx

    info = describe(path)  # ModelFormatError for a missing or non-ONNX file
    meta = info["rnnx"]
    contract = None
    if meta is not None:
        if "unparsable" in meta:
            raise ModelFormatError(f"{path.name}: its rnnx metadata is not valid JSON")
        contract = Contract.from_dict(meta)
        if check_graph:
            open_model(path, providers=["cpu"], threads=1)
    if not info["inputs"]:
        raise ModelFormatError(f"{path.name} has no graph inputs; expected an rnnx export with input 'x'")
    vocab = quant_graph.vocab_sizes(onnx.load(str(path), load_external_data=False))
    return quant_data.ModelInfo(path=path, inputs=info["inputs"], outputs=info["outputs"],
                                op_counts=info["op_counts"], meta=meta, contract=contract, vocab_sizes=vocab)


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

MIXED = ("auto", "off")
LATENCY_REPS = 50


def quantize_model(src, dst, mode, *, calibration=None, per_channel=False, method="minmax",
                   evaluation=None, max_drop=1.0, force=False, mixed="auto", allow_larger=False,
                   calibration_limit=DEFAULT_CALIBRATION_LIMIT, latency_reps=LATENCY_REPS, progress=None,
                   reduce_range=True) -> dict:
    """Quantize the ONNX model `src` into `dst` and return the report.

    Args:
        src: an rnnx export (full, stream or unrolled; fp32). A plain ONNX file is
            quantized too, with a warning listing what its missing metadata means.
        dst: the output .onnx path (its folder is created).
        mode: "int8-dynamic", "int8-static" or "fp16".
        calibration: samples for int8-static: a .npz with 'x' (N, T, ...) (one array per
            input name for a model with several inputs), an array, or a dict. Each input
            in its own dtype (integer token ids for an Embedding input). The first
            `calibration_limit` sequences are used.
        per_channel: per-channel weight scales (int8 modes).
        reduce_range: 7-bit int8 weights (int8 modes; see the module doc). False: full 8-bit
            weights, for devices whose int8 kernels do not saturate (VNNI, ARM dot-product).
        method: calibrator for int8-static: "minmax", "entropy" or "percentile".
        evaluation: samples with integer labels: a .npz with 'x' and 'y', an (x, y)
            pair or a dict. Enables the accuracy gate.
        max_drop: largest accepted accuracy drop, in percentage points.
        force: replace `dst` if it exists.
        mixed: "auto": when quantizing every layer misses the gate, keep the most
            sensitive layers in fp32, one at a time, until it holds (precision "mixed");
            "off": all or nothing.
        allow_larger: accept a result larger than the fp32 file (otherwise an error).
        latency_reps: batch-1 calls timed for the latency figures (0: not measured).
        progress: callable(str) receiving progress lines, or None.

    Returns:
        The report: sizes, latency, op counts, per-layer precision (and sensitivity when
        the mixed search ran), accuracy before/after and the drop, max |Δ| and argmax
        agreement against fp32, notes and warnings.

    Raises:
        ConfigError: bad option, missing calibration for int8-static, `dst` exists.
        ModelFormatError: `src` is missing, not ONNX, its metadata is malformed, or its
            external data lies outside its folder.
        InputShapeError, InputValueError, DataError: unusable calibration/evaluation data.
        QuantizationError: quantization failed, changed the model's I/O, made it larger,
            or lost more than `max_drop` accuracy points even with layers kept in float
            (nothing is written then).
    """
    say = progress or (lambda _msg: None)
    m = modes.get(mode)
    max_drop = _check_options(method, per_channel, max_drop, calibration_limit, reduce_range, mixed)
    src, dst = _check_paths(src, dst, force)
    job = _Job(m, src, say, per_channel=per_channel, reduce_range=reduce_range, method=method)
    job.open_source()
    job.read_data(calibration, evaluation, calibration_limit)
    say(f"{m.name}: quantizing {src.name} ({len(job.source_bytes)} bytes)")
    with workspace.workspace() as work:
        job.work = work
        kept, search_log = job.choose_layers(max_drop, mixed)
        proto = job.quantize(kept)
        report, blob = job.finish(proto, kept, mixed, search_log, dst, max_drop, latency_reps, allow_larger)
        write_bytes(dst, blob)     # makes the folders; OutputError when it cannot
    say(f"{m.name}: wrote {dst}" + (f" (kept in fp32: {', '.join(kept)})" if kept else ""))
    return report


class _Job:
    """One quantize_model call, as named steps: open the source, read the data, choose the layers
    kept in float, quantize, then check, compare, gate and settle the file."""

    def __init__(self, mode: modes.QuantMode, src: Path, say, *, per_channel, reduce_range, method):
        self.mode, self.src, self.say = mode, src, say
        self.per_channel, self.reduce_range, self.method = per_channel, reduce_range, method
        self.notes, self.warn = [], []
        self.work = None

    # -- the source and its data -----------------------------------------------------------------

    def open_source(self) -> None:
        src = self.src
        self.info = info = model_info(src, check_graph=False)
        if info.contract is None:
            text = (f"{src.name} has no 'rnnx' metadata (not an rnnx export): variant, states, labels and "
                    "preprocessing are unknown, its single input is fed as is, and the quantized file carries "
                    "no rnnx metadata or precision either")
            warnings.warn(text, UncheckedModelWarning, stacklevel=3)
            self.warn.append(text)
        elif info.contract.precision != "fp32":
            raise QuantizationError(f"{src.name} is already quantized (precision {info.contract.precision!r}); "
                                    "quantize its fp32 export instead")
        self.source = _load_source(src.resolve())
        if info.contract is not None:   # the runtime's check that the metadata describes the graph
            open_model(src, providers=["cpu"], threads=1)
        self.source_bytes = self.source.SerializeToString()
        self.original_names = quant_graph.names_in(self.source)

    def read_data(self, calibration, evaluation, calibration_limit: int) -> None:
        """Calibration and evaluation samples, and the inputs both files are compared on."""
        m, info, src = self.mode, self.info, self.src
        if info.contract is None and len(info.inputs) > 1:
            names = [i["name"] for i in info.inputs]
            if m.calibrates and calibration is not None:
                raise QuantizationError(f"{src.name} has no rnnx metadata and {len(names)} inputs {names}; "
                                        "calibration can only feed a single input")
            raise ConfigError(f"{src.name} has no rnnx metadata and inputs {names}; only a single-input plain "
                              "model can be evaluated")
        self.cal_x = None
        if calibration is not None:
            raw, _ = quant_data.read_arrays(calibration, "calibration", info, need_labels=False)
            self.cal_x, extra = quant_data.check_x({k: v[:calibration_limit] for k, v in raw.items()}, info,
                                                   "calibration")
            self.warn += extra
            if not m.calibrates:
                self.notes.append(f"{m.name} does not calibrate: the calibration data was only used to compare "
                                  "outputs")
        elif m.calibrates:
            raise ConfigError(f"{m.name} needs calibration data: a .npz with array 'x' shaped like the model "
                              "input (--calibration FILE.npz)")
        eval_x = self.eval_y = None
        if evaluation is not None:
            raw_x, raw_y = quant_data.read_arrays(evaluation, "evaluation", info, need_labels=True)
            eval_x, extra = quant_data.check_x(raw_x, info, "evaluation")
            self.eval_y = quant_data.check_labels(raw_y, eval_x, info)
            self.warn += extra
        if eval_x is not None:
            self.x_cmp, self.data_kind = eval_x, "evaluation"
        elif self.cal_x is not None:
            self.x_cmp, self.data_kind = self.cal_x, "calibration"
        else:
            self.x_cmp, self.data_kind = quant_data.random_x(info), "random"
        self.ref = _predict(self.source_bytes, info, self.x_cmp, m.name)
        reason = applicable(m.name, info.op_counts, chunk=info.chunk)
        if reason:
            self.notes.append(reason)

    # -- quantizing ------------------------------------------------------------------------------

    def prepare(self, *, fuse: bool = True) -> None:
        self.prepared, self.unrolled = _prepare(self.source, self.mode, self.info, self.work, fuse=fuse)
        self.layer_nodes, self.figures = _layers_and_preprocess(self.prepared, self.mode, self.work)

    def quantize(self, kept: tuple):
        """The quantized ModelProto with the nodes of the `kept` layers left in float."""
        m, work = self.mode, self.work
        exclude = [n for layer in kept for n in self.layer_nodes[layer]]
        opts = {"per_channel": self.per_channel, "reduce_range": self.reduce_range, "method": self.method,
                "info": self.info, "source_bytes": self.source_bytes, "calibration_x": self.cal_x}
        try:
            with workspace.inside(work), _quantizer_output(self.say) as log:
                proto, extra = m.runner()(self.figures["model_in"], work, opts, exclude)
        except RnnxError:
            raise
        except Exception as exc:  # onnxruntime's quantizer raises plain exceptions
            if (full := workspace.no_room(exc)) is not None:
                raise full from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QuantizationError(f"{m.name} quantization of {self.src.name} failed: {first}") from None
        self.figures.update(extra)
        self.figures["quantizer_log"] = list(dict.fromkeys(self.figures.get("quantizer_log", []) + log))
        return proto

    def attempt(self, kept: tuple) -> mixed_mod.Trial:
        blob = self.quantize(kept).SerializeToString()
        trial = self.work / "trial.onnx"
        trial.write_bytes(blob)
        _probe_in_subprocess(trial, self.mode, self.src, self.info.op_counts)   # before this process opens it
        return _trial(kept, self.ref, _predict(blob, self.info, self.x_cmp, self.mode.name), self.eval_y)

    def choose_layers(self, max_drop: float, mixed: str) -> tuple[tuple, dict | None]:
        """(layers kept in fp32, the sensitivity search's log): none unless the gate needs them."""
        m, say = self.mode, self.say
        self.prepare()
        quantizable = [name for name, nodes in self.layer_nodes.items() if nodes]
        first = self.attempt(())
        if self.eval_y is None or first.drop_points <= max_drop:
            return (), None
        if (self.unrolled or {}).get("one_step_fused"):
            # one dynamic scale over [x, h] costs some models accuracy (a one-hot x loses its exact
            # 1.0): keep x and h apart, two integer GEMMs a step, before keeping any layer in fp32
            say(f"{m.name}: one GEMM of [x, h] loses {first.drop_points:.2f} points; keeping x and h apart")
            self.prepare(fuse=False)
            first = self.attempt(())
        if first.drop_points <= max_drop or mixed != "auto" or len(quantizable) <= 1:
            return (), None
        say(f"{m.name}: all layers quantized lose {first.drop_points:.2f} points (max {max_drop:g}); "
            f"measuring the sensitivity of {len(quantizable)} layers")
        chosen, search_log = mixed_mod.search(quantizable, self.attempt, max_drop, say)
        search_log["all_quantized"] = first.public()
        return (chosen.kept if chosen is not None else ()), search_log

    # -- the file --------------------------------------------------------------------------------

    def _blob(self, proto, precision: str, layer_table: dict, size=None) -> bytes:
        return _with_metadata(proto, self.info, self.mode, precision, self.per_channel, self.method,
                              self.source_bytes, layer_table, self.unrolled, size=size,
                              reduce_range=self.reduce_range)

    def finish(self, proto, kept, mixed, search_log, dst, max_drop, latency_reps, allow_larger) -> tuple:
        """(report, the file's bytes): checked against the source, compared, gated, size settled."""
        m, info, src, work = self.mode, self.info, self.src, self.work
        shared = quant_graph.share_weights(proto)
        shared["names_shortened"] = quant_graph.shorten_new_names(proto, self.original_names)
        precision = "mixed" if kept else m.name
        layer_table = _layer_table(self.layer_nodes, kept, m)
        blob = self._blob(proto, precision, layer_table)
        out_path = work / "final.onnx"
        out_path.write_bytes(blob)
        _probe_in_subprocess(out_path, m, src, info.op_counts)
        after = model_info(out_path, check_graph=False)   # the runtime's own open comes in _check_contract
        _check_io(info, after, m.name)
        _check_contract(out_path, info, m.name)
        report = _report(src, dst, m, info, after, len(self.source_bytes), len(blob), self.figures, shared,
                         self.per_channel, self.method, self.cal_x, self.notes, self.warn, proto,
                         unrolled=self.unrolled)
        report.update(precision=precision, reduce_range=self.reduce_range if m.integer else None,
                      layers=layer_table, kept_float=list(kept), unrolled=self.unrolled,
                      mixed={"setting": mixed, "search": search_log})
        self.say(f"{m.name}: {len(self.source_bytes)} -> {len(blob)} bytes; comparing with fp32")
        _compare(report, self.ref, _predict(blob, after, self.x_cmp, m.name), self.x_cmp, self.data_kind, info,
                 self.eval_y)
        if latency_reps:
            report["latency"] = _latency(self.source_bytes, blob, info, self.x_cmp, latency_reps)
        _gate(report, max_drop, src, m.name)
        for _ in range(3):  # the metadata states the file's own size ratio: settle it
            blob = self._blob(proto, precision, layer_table, size=report["size"])
            ratio = round(len(blob) / len(self.source_bytes), 4)
            settled = ratio == report["size"]["ratio"]
            report["size"].update(bytes=len(blob), ratio=ratio)
            if settled:
                break
        _check_size(report, allow_larger, src, m.name)
        return report, blob


def _predict(model_bytes: bytes, info, x: dict, mode: str):
    try:
        return quant_data.predict(model_bytes, info, x)
    except ModelFormatError as exc:
        raise QuantizationError(f"{mode}: {exc}") from None


def _trial(kept: tuple, ref, got, eval_y) -> mixed_mod.Trial:
    stats = validate.compare(got, ref)
    drop = 0.0
    if eval_y is not None:
        drop = round((quant_data.accuracy(ref, eval_y) - quant_data.accuracy(got, eval_y)) * 100, 4)
    return mixed_mod.Trial(tuple(kept), drop, stats["mean_abs_diff"], stats["max_abs_diff"],
                           stats["argmax_agreement"])


def _prepare(source, mode: modes.QuantMode, info, work: Path, *, fuse: bool = True):
    """The fp32 model the quantizer starts from: every node named, and for stream/unrolled
    variants the GRU/LSTM nodes the mode cannot quantize written out step by step (a one-step
    chunk through one [x, h] matrix for a mode that fuses it, unless `fuse` is False)."""
    import copy as _copy

    model = _copy.deepcopy(source)
    quant_layers.name_nodes(model)
    unrolled = None
    ops = mode.unrolled_ops(info.chunk) if info.streaming else ()
    if ops and any(op in info.op_counts for op in ops):
        unrolled = unroll_mod.unroll_recurrent(model, ops, fuse_one_step=fuse and mode.fuse_one_step)
        if unrolled["unrolled"]:
            unrolled["round_trips_folded"] = quant_graph.fold_round_trips(model)
    path = work / "prepared.onnx"
    path.write_bytes(model.SerializeToString())
    return path, unrolled


def _layers_and_preprocess(prepared: Path, mode: modes.QuantMode, work: Path):
    """Pre-process once; returns ({layer: quantizable node names}, figures with 'model_in')."""
    optimize = mode.preprocess
    if optimize is None:
        model_in, pre = prepared, "none"
    else:
        with workspace.inside(work):
            model_in, pre = _preprocess(prepared, work, optimize=optimize)
    model = _load(model_in)
    ops = mode.ops
    by_name = {n.name: n.op_type for n in model.graph.node}
    table = {}
    for layer, nodes in quant_layers.layers(model).items():
        table[layer] = nodes if ops is None else [n for n in nodes if by_name.get(n) in ops]
    return table, {"model_in": model_in, "preprocess": pre, "layer_nodes": quant_layers.layers(model)}


def _layer_table(layer_nodes: dict, kept: tuple, mode: modes.QuantMode) -> dict:
    """{layer: precision}: the mode's ('int8'/'fp16') for quantized layers, 'fp32' for kept ones
    and for layers the mode does not quantize (e.g. a native GRU op under int8)."""
    return {layer: ("fp32" if layer in kept or not nodes else mode.weights) for layer, nodes in layer_nodes.items()}


def _with_metadata(proto, info, mode, precision, per_channel, method, source_bytes, layer_table, unrolled,
                   *, size=None, reduce_range=True) -> bytes:
    """The quantized file's rnnx metadata: what was done and what it weighs, never a timing (the
    same fp32 file and options must give the same bytes on every run; latency is in the report)."""
    if info.meta is not None:
        meta = copy.deepcopy(info.meta)
        meta["precision"] = precision
        meta["quantization"] = {"mode": mode.name, "per_channel": per_channel,
                                "reduce_range": reduce_range if mode.integer else None,
                                "method": method if mode.calibrates else None,
                                "fp32_sha256": hashlib.sha256(source_bytes).hexdigest(),
                                "fp32_bytes": len(source_bytes), "layers": layer_table,
                                "unrolled": (unrolled or {}).get("unrolled", [])}
        if size is not None:
            meta["quantization"]["size_ratio"] = size["ratio"]
        metadata.attach(proto, meta)
    return proto.SerializeToString()


def _latency(source_bytes: bytes, blob: bytes, info, x: dict, reps: int) -> dict:
    """Median of `reps` batch-1 calls (one sequence, or one chunk with its states) on one thread,
    fp32 and quantized interleaved so that both see the same machine load."""
    feed = quant_data.one_call_feed(info, x)
    sessions = [quant_data.session(source_bytes), quant_data.session(blob)]
    for sess in sessions:
        for _ in range(5):
            sess.run(None, feed)
    times = [[], []]
    for _ in range(reps):
        for k, sess in enumerate(sessions):
            t0 = time.perf_counter()
            sess.run(None, feed)
            times[k].append(time.perf_counter() - t0)
    fp32, quant = (statistics.median(t) * 1e3 for t in times)
    return {"fp32_ms": round(fp32, 4), "ms": round(quant, 4), "speedup": round(fp32 / quant, 3),
            "calls": reps, "what": "one call at batch 1, 1 thread, median"}


def _check_size(report: dict, allow_larger: bool, src: Path, mode: str) -> None:
    size = report["size"]
    if size["ratio"] > 1.0 and not allow_larger:
        exc = QuantizationError(
            f"{mode} {src.name}: the quantized file is {size['ratio']:.0%} of the fp32 one "
            f"({size['bytes']} > {size['fp32_bytes']} bytes): "
            + ("; ".join(report["notes"]) or "the quantizer added more than it saved")
            + "; nothing written (allow_larger / --allow-larger accepts it)")
        exc.report = report
        raise exc


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


def _probe_in_subprocess(path: Path, mode: modes.QuantMode, src: Path | None = None,
                         op_counts: dict | None = None) -> None:
    """Open the model with onnxruntime's default settings in a child process first: a crash
    there (a segfault in the graph optimizer, seen with float16 graphs) becomes a typed error
    here instead of killing the caller, and no file that crashes an edge app is written."""
    if not mode.probe:
        return
    mode = mode.name
    code = ("import sys, onnxruntime as ort; "
            "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])")
    try:
        res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                             timeout=300, cwd=path.parent)
    except subprocess.TimeoutExpired:
        raise QuantizationError(f"{mode}: onnxruntime did not load the converted model in 300 s") from None
    if res.returncode != 0:
        why = f"signal {-res.returncode}" if res.returncode < 0 else (res.stderr.strip().splitlines() or ["?"])[-1]
        why = why.replace(f"Load model from {path} failed:", "").strip()   # the scratch path says nothing
        loops = [op for op in LOOP_OPS if op in (op_counts or {})]
        hint = (f"; its recurrence is a {loops[0]} (tf2onnx's form of ConvLSTM and of layers rnnx has no handler "
                f"for), whose body onnxruntime's float16 converter does not convert into a loadable graph: keep "
                "this model fp32") if loops else ""
        raise QuantizationError(f"{mode}{f' of {src.name}' if src else ''}: onnxruntime {_ort_version()} cannot "
                                f"load the converted model ({why}); nothing written{hint}")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _check_contract(path: Path, info: quant_data.ModelInfo, mode: str) -> None:
    """The runtime opens the quantized file as it opens the fp32 one (graph vs metadata, state shapes)."""
    if info.contract is None:
        return
    import runtime

    try:
        runtime.load(path, providers=["cpu"], threads=1, batch=info.fixed_batch or 1)
    except RnnxError as exc:
        raise QuantizationError(f"{mode}: the runtime refuses the quantized model: {exc}") from None


def _report(src, dst, mode: modes.QuantMode, info, after, before_bytes, after_bytes, figures, shared, per_channel,
            method, cal_x, notes, warn, proto, unrolled=None) -> dict:
    float_rnn = [op for op in RECURRENT_OPS if op in after.op_counts]
    if not mode.quantizes_loops or quant_graph.float_ops_in_bodies(proto):
        float_rnn += [op for op in LOOP_OPS if op in after.op_counts]
    if not mode.integer:
        recurrent = "float16"
    else:
        recurrent = "float32" if float_rnn else "int8"
    for op in float_rnn:
        if mode.integer and op in ("GRU", "RNN") and not any(op in n for n in notes):
            notes.append(f"onnxruntime has no quantized {op} op: the {op} stays float32 here; "
                         "the stream and unrolled variants get int8 matmuls")
    ratio = after_bytes / before_bytes
    if mode.integer and recurrent == "int8" and ratio > SIZE_TARGET:
        zeros = (unrolled or {}).get("zero_weights", 0)
        float_bytes = quant_graph.weight_bytes(proto).get("float", 0)
        if float_bytes > after_bytes / 2:   # e.g. an Embedding table: static QDQ quantizes no Gather
            why = (f"{float_bytes} bytes of weights stay float32 (layers kept in fp32, or ops {mode.name} "
                   "does not quantize)")
        elif zeros:
            why = (f"the one-step GRU reads [x, h] through one matrix that holds {zeros} zero weights "
                   "(one integer GEMM per step: faster, not smaller)")
        else:
            why = "graph structure, not weights, dominates this small model"
        notes.append(f"int8 file is {ratio:.0%} of fp32, above the {SIZE_TARGET:.0%} target: {why}")
    return {
        "format": 2,
        "source": str(src), "output": str(dst), "mode": mode.name,
        "variant": info.contract.variant if info.contract else None,
        "chunk": info.chunk,
        "rnnx_metadata": info.contract is not None,
        "per_channel": per_channel,
        "calibration": ({"method": method, "samples": quant_data.n_samples(cal_x),
                         "batches": figures.get("calibration_batches"),
                         "states": "carried from the fp32 model chunk by chunk" if info.streaming else None}
                        if mode.calibrates else None),
        "preprocess": figures.get("preprocess"),
        "quantizer_log": figures.get("quantizer_log", []),
        "size": {"fp32_bytes": before_bytes, "bytes": after_bytes, "ratio": round(ratio, 4)},
        "weight_bytes": quant_graph.weight_bytes(proto),
        "shared_weights": shared,
        "recurrent_weights": recurrent,
        "float_recurrent_ops": float_rnn if mode.integer else [],
        "op_counts": {"fp32": info.op_counts, "quantized": after.op_counts},
        "state_inputs": [s.input for s in info.states],
        "notes": notes, "warnings": warn,
        "accuracy": None, "agreement": None, "latency": None,
    }


def _compare(report, ref, got, x, data_kind, info, eval_y) -> None:
    """Fill the report's agreement (vs fp32) and accuracy figures."""
    stats = validate.compare(got, ref)
    report["agreement"] = {"data": data_kind, "samples": quant_data.n_samples(x),
                           "steps": quant_data.steps_of(x, info),
                           "max_abs_diff": stats["max_abs_diff"], "mean_abs_diff": stats["mean_abs_diff"],
                           "argmax_agreement": stats["argmax_agreement"]}
    if eval_y is not None:
        fp32, quant = quant_data.accuracy(ref, eval_y), quant_data.accuracy(got, eval_y)
        report["accuracy"] = {"fp32": fp32, "quantized": quant, "drop_points": round((fp32 - quant) * 100, 4),
                              "samples": quant_data.n_samples(x)}


def _gate(report: dict, max_drop: float, src: Path, mode: str) -> None:
    acc = report["accuracy"]
    if acc is None:
        return
    acc["max_drop"] = max_drop
    if not acc["drop_points"] <= max_drop:
        search = (report.get("mixed") or {}).get("search")
        tried = (f"; keeping layers in fp32 one at a time ({', '.join(search['order'])}, most sensitive first) "
                 "did not meet it either" if search else "")
        exc = QuantizationError(
            f"{mode} {src.name}: accuracy dropped {acc['drop_points']:.2f} points (fp32 {acc['fp32']:.4f} -> "
            f"{mode} {acc['quantized']:.4f} on {acc['samples']} samples), more than max_drop {max_drop:g}; "
            f"argmax agreement with fp32 {_fmt(report['agreement']['argmax_agreement'])}{tried}; nothing written")
        exc.report = report
        raise exc


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
