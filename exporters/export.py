"""Export a Keras recurrent model to ONNX: full, stream and unrolled variants.

Example::

    from exporters.export import export_model
    res = export_model("models/lstm.keras", "out/lstm", chunk=1)
    res.paths["stream"]            # Path('out/lstm/stream.onnx')
    res.report["variants"]["full"]["parity"]["max_abs_diff"]

Every variant is built and validated against Keras in memory first; only
when all pass is the set written, as one: the folder holds the complete old
set or the complete new set at every instant (`atomic.write_set`), and
`export.json` records each file's sha256. A miss raises ParityError and
leaves no model file behind.

With `variants=None` every variant the model supports is written, and the
report says which were skipped and why (e.g. Bidirectional layers need the
whole sequence, so they export as `full` only); an explicitly requested
variant that cannot be made raises UnsupportedLayerError.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.contract import VARIANTS

from . import edge, keras_io, metadata
from .atomic import check_writable, write_set
from .errors import ConfigError, InputShapeError, ModelFormatError, ParityError, UnsupportedLayerError
from .graph import fallback, reference, walker
from .validation import parity as validate, samples as samples_mod

REPORT_NAME = "export.json"
MIN_OPSET = 13


@dataclass(frozen=True)
class ExportResult:
    paths: dict = field(default_factory=dict)   # variant -> Path of the written model
    report: dict = field(default_factory=dict)  # exactly what export.json holds


def _rnnx_version() -> str:
    from runtime.version import __version__

    return __version__


FORBIDDEN_IN_UNROLLED = ("Loop", "Scan", "If", "LSTM", "GRU", "RNN")
OTHER_LENGTHS = 2   # a dynamic time axis is declared only when validated at this many other lengths


def _check_options(variants, chunk, opset, atol, uint8_scale) -> tuple:
    if variants is None:
        variants = VARIANTS
    elif isinstance(variants, str):
        variants = tuple(v.strip() for v in variants.split(",") if v.strip())
    variants = tuple(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if not variants or unknown or len(set(variants)) != len(variants):
        raise ConfigError(f"variants must be distinct names among {', '.join(VARIANTS)}; got {list(variants)}")
    variants = tuple(v for v in VARIANTS if v in variants)  # full first: streams compare against it
    chunk = samples_mod.validate_chunk(chunk)
    from onnx.defs import onnx_opset_version

    if not isinstance(opset, int) or not MIN_OPSET <= opset <= onnx_opset_version():
        raise ConfigError(f"opset must be an integer from {MIN_OPSET} to {onnx_opset_version()}; got {opset!r}")
    if not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol <= 0:
        raise ConfigError(f"atol must be a positive number; got {atol!r}")
    if uint8_scale is True:
        uint8_scale = 1.0 / 255.0
    elif uint8_scale in (None, False):
        uint8_scale = None
    elif not isinstance(uint8_scale, (int, float)) or not 0 < uint8_scale < math.inf:
        raise ConfigError(f"uint8_scale must be a positive number (1/255 for images); got {uint8_scale!r}")
    return variants, chunk, opset, float(atol), (float(uint8_scale) if uint8_scale else None)


def _check_labels(labels: list | None, plan) -> None:
    first = plan.outputs[0]
    n_out = first.shape[-1] if len(first.shape) > 1 else None
    if labels is not None and n_out is not None and len(labels) != n_out:
        raise ConfigError(f"{len(labels)} labels given; the model output has {n_out} values per prediction")


def _check_frame_rate(frame_rate) -> float | None:
    if frame_rate is None:
        return None
    if isinstance(frame_rate, bool) or not isinstance(frame_rate, (int, float)) or not 0 < frame_rate < math.inf:
        raise ConfigError(f"frame_rate must be a positive number of input frames per second; got {frame_rate!r}")
    return float(frame_rate)


def _check_out_dir(out_dir) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output directory {str(out)!r} is a file; expected a directory (or a new path)")
    check_writable(out)  # fail now, not after minutes of validation
    return out


def _read_labels(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if path.suffix == ".txt" or path.is_file():
            if not path.is_file():
                raise ConfigError(f"labels file {str(path)!r} does not exist")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"labels file {str(path)!r} is not UTF-8 text (byte {exc.start}: "
                                  f"{exc.object[exc.start:exc.start + 1]!r}); expected one label per line") from None
            except OSError as exc:
                raise ConfigError(f"labels file {str(path)!r} cannot be read: {exc.strerror}") from None
            return [line.strip() for line in text.splitlines() if line.strip()]
        return [s.strip() for s in str(labels).split(",")]
    return [str(s) for s in labels]


def _load(model_or_path, name):
    """(model, source dict) from a path or an in-memory Keras model."""
    import keras

    if isinstance(model_or_path, (str, Path)):
        model = keras_io.load_keras(model_or_path)
        source = {"name": name or Path(model_or_path).stem, "file": Path(model_or_path).name,
                  "sha256": keras_io.file_sha256(model_or_path), "sha256_of": "file"}
    elif isinstance(model_or_path, keras.Model):
        model = model_or_path
        source = {"name": name or model.name, "file": None,
                  "sha256": keras_io.weights_sha256(model), "sha256_of": "weights"}
    else:
        raise ConfigError(f"expected a Keras model or a path to a .keras file; got {type(model_or_path).__name__}")
    source.update(keras_version=keras_io.keras_version(), rnnx_version=_rnnx_version())
    return model, source


def _keras(ref, xs: list, batch: int = 256) -> list[np.ndarray]:
    """Keras reference outputs (one array per model output), in batches to bound memory."""
    parts = []
    for i in range(0, len(xs[0]), batch):
        feed = [x[i:i + batch] for x in xs]
        ys = ref(feed[0] if len(feed) == 1 else feed, training=False)
        ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
        parts.append([np.asarray(y, dtype=np.float32) for y in ys])
    return [np.concatenate(p, axis=0) for p in zip(*parts)]


def _op_counts(model) -> dict:
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def export_model(model_or_path, out_dir, *, variants=None, chunk=1,
                 opset=17, atol=1e-5, samples=None, labels=None, uint8_scale=None,
                 name=None, progress=None, frame_rate=None, ort=False) -> ExportResult:
    """Export, validate and write the variants of a Keras recurrent model.

    Args:
        model_or_path: a keras.Model or a path to a .keras file (loaded with safe mode on).
        out_dir: directory for full.onnx, stream.onnx, unrolled.onnx and export.json.
        variants: any of "full", "stream", "unrolled"; None = every variant the model supports
            (the report's "skipped" says why the others were not made).
        chunk: time steps per call of the stream/unrolled variants.
        opset: ONNX opset.
        atol: largest |onnx - keras| accepted on every output.
        samples: validation inputs: an array (N, T, ...), a dict input name -> array, or a .npz
            path (key 'x', or one key per input name); shaped random data when None.
        labels: class labels of the first output (list, "a,b,c", or a .txt file with one per line).
        uint8_scale: the scale applied to uint8 inputs before the model (True = 1/255).
        name: model name for the metadata (default: file stem or model name).
        progress: callable(str) that receives progress lines, or None.
        frame_rate: input frames per second (e.g. 100 for 10 ms audio frames), or None: the
            stream's latency is then also reported in milliseconds, and kept in the metadata.
        ort: also write ``<variant>.ort`` (ORT format, for onnxruntime Mobile and minimal builds),
            ``required_operators.config`` for a reduced build and ``selftest.npz`` (inputs and
            Keras' outputs for ``python -m runtime --selftest``), in the same set (see edge.py).

    Returns:
        ExportResult with `paths` (variant -> Path) and `report` (export.json's content).

    Raises:
        ConfigError, ModelFormatError, UnsupportedLayerError, InputShapeError, ParityError, OutputError.
    """
    say = progress or (lambda _msg: None)
    explicit = variants is not None
    variants, chunk, opset, atol, uint8_scale = _check_options(variants, chunk, opset, atol, uint8_scale)
    frame_rate = _check_frame_rate(frame_rate)
    out = _check_out_dir(out_dir)
    label_list = _read_labels(labels)
    model, source = _load(model_or_path, name)
    ref, time_inputs, dynamic_time = reference.build_reference(model)
    plan = walker.plan(ref, time_inputs)
    variants, skipped = _choose_variants(plan, variants, explicit, dynamic_time)
    for variant, why in skipped.items():
        say(f"{variant}: skipped: {why}")
    _check_labels(label_list, plan)
    streaming = any(v != "full" for v in variants)
    xs, sample_source = _samples(samples, plan, dynamic_time, model, chunk, streaming)
    steps = _steps(plan, xs)
    # Inputs are all checked: a bad one fails above, before any progress line is printed.
    say(f"loaded {source['name']!r} ({len(model.layers)} layers, {len(plan.recurrent)} recurrent); "
        f"validating on {xs[0].shape[0]} {sample_source} samples" + (f" of {steps} steps" if steps else ""))

    opts = _Settings(chunk=chunk, opset=opset, atol=atol, labels=label_list, uint8_scale=uint8_scale,
                     frame_rate=frame_rate, source=source, dynamic_time=dynamic_time)
    built, entries, fixed_time = _build_variants(variants, plan, ref, xs, opts, skipped, say, explicit=explicit)
    report = _export_report(plan, opts, fixed_time, sample_source, xs, entries, skipped)
    if ort:
        extra, report["edge"] = _edge_files(built, plan, ref, xs, atol, say)
        built.update(extra)
    return _write(out, built, report, entries, say)


def _write(out: Path, built: dict, report: dict, entries: dict, say) -> ExportResult:
    """The set and its export.json, replaced at once (the previous set's variants go with it)."""
    report = write_set(out, built, REPORT_NAME, report, replaces=[f"{v}.onnx" for v in VARIANTS])
    paths = {v: out / f"{v}.onnx" for v in entries}
    for variant in entries:
        say(f"{variant}: wrote {paths[variant]} ({entries[variant]['file_bytes']} bytes)")
    say(f"wrote {out / REPORT_NAME}")
    return ExportResult(paths=paths, report=report)


def _edge_files(built: dict, plan, ref, xs, atol: float, say) -> tuple[dict, dict]:
    """The ORT copies, the operator config and the self-test vectors (Keras' outputs on the first
    validation samples) of the files built: (their bytes by name, export.json's `edge` entry)."""
    few = [x[:edge.SELFTEST_SAMPLES] for x in xs]
    selftest = edge.vectors({io.name: x for io, x in zip(plan.inputs, few)},
                            {io.name: y for io, y in zip(plan.outputs, _keras(ref, few))}, atol, "keras")
    return edge.ort_files(built, say, selftest)


@dataclass(frozen=True)
class _Settings:
    """An export's checked options and what it learned of the model before building."""

    chunk: int
    opset: int
    atol: float
    labels: list | None
    uint8_scale: float | None
    frame_rate: float | None
    source: dict
    dynamic_time: bool


def _build_variants(variants, plan, ref, xs, opts: _Settings, skipped: dict, say, *, explicit: bool) -> tuple:
    """Build, validate and describe each variant: ({file: bytes}, {variant: report entry}, fixed time or None).

    A `full` rnnx cannot make (and tf2onnx cannot either) is skipped with the reason when the
    variants were not asked for by name; the streams are still exact."""
    keras_full = _keras(ref, xs)
    built, entries, cache, full_session, fixed_time = {}, {}, {}, None, None
    for variant in variants:
        try:
            proto, entry, session, fixed_time = _build_and_validate(
                variant, plan, ref, xs, keras_full, full_session, dynamic_time=opts.dynamic_time, chunk=opts.chunk,
                opset=opts.opset, atol=opts.atol, name=opts.source["name"], cache=cache, say=say,
                fixed_time=fixed_time)
        except UnsupportedLayerError as exc:
            if explicit or variant != "full" or len(variants) == 1:
                raise
            skipped["full"] = str(exc)
            say(f"full: skipped: {exc}")
            continue
        full_session = session if variant == "full" else full_session
        meta = metadata.describe(
            variant=variant, chunk=opts.chunk, inputs=_io_rows(plan.inputs, variant, opts.chunk, fixed_time),
            outputs=_io_rows(plan.outputs, variant, opts.chunk, fixed_time, plan.clocked and variant != "full"),
            labels=opts.labels, uint8_scale=opts.uint8_scale, source=opts.source, parity=entry["parity"],
            states=plan.states if variant != "full" else [], flush=_flush(plan, variant), frame_rate=opts.frame_rate)
        metadata.attach(proto, meta)
        _say_timing(variant, meta, say)
        built[f"{variant}.onnx"] = _serialize(proto)
        _check_readable(variant, built[f"{variant}.onnx"])
        entries[variant] = _variant_entry(variant, proto, built[f"{variant}.onnx"], entry)
    return built, entries, fixed_time


def _export_report(plan, opts: _Settings, fixed_time, sample_source: str, xs, entries: dict, skipped: dict) -> dict:
    """export.json's content (write_set adds each file's size and sha256)."""
    dynamic = opts.dynamic_time and fixed_time is None
    return {
        "format": 2,
        "source": opts.source,
        "input": _io_entry(plan.inputs[0], dynamic),
        "output": {**_io_entry(plan.outputs[0], dynamic), "labels": opts.labels},
        "inputs": [_io_entry(io, dynamic) for io in plan.inputs],
        "outputs": [_io_entry(io, dynamic) for io in plan.outputs],
        "recurrent_layers": [_layer_entry(k, layer) for k, layer in enumerate(plan.recurrent)],
        "chunk": opts.chunk, "opset": opts.opset, "atol": opts.atol,
        "samples": {"source": sample_source, "n": int(xs[0].shape[0]), "steps": _steps(plan, xs)},
        "variants": entries,
        "skipped": skipped,
    }


def _say_timing(variant: str, meta: dict, say) -> None:
    """Progress lines on when a stream gives its frames (windows on time), and how to end one."""
    for out in meta["outputs"]:
        text = metadata.timing_text(out, meta.get("frame_rate"))
        if text:
            say(f"{variant}: output {out['name']!r}: {text}")
    if meta.get("flush"):
        say(f"{variant}: a sequence ends with flush() ({meta['flush']['frames']} zero frames give its last outputs)")


def _choose_variants(plan, variants, explicit: bool, dynamic_time: bool) -> tuple[tuple, dict]:
    """The variants to make and {variant: why not} for those the model cannot give."""
    reasons = {}
    for v in variants:
        why = plan.blockers[v] if v != "full" else None   # full always exists (tf2onnx fallback)
        if why is None and v != "full" and not dynamic_time:
            steps = next((io.shape[1] for io in plan.inputs if io.has_time), None)
            why = (f"the model only accepts sequences of exactly {steps} steps (a layer's configuration "
                   "fixes the length), so it cannot take one chunk at a time")
        if why is None and v != "full" and not any(io.has_time for io in plan.inputs):
            why = "the model has no sequence input to cut into chunks"
        if why is not None:
            reasons[v] = why
    if explicit and reasons:
        v, why = next(iter(reasons.items()))
        raise UnsupportedLayerError(f"cannot export {v}: {why}")
    return tuple(v for v in variants if v not in reasons), reasons


def _steps(plan, xs) -> int | None:
    for io, x in zip(plan.inputs, xs):
        if io.has_time:
            return int(x.shape[1])
    return None


def _model_steps(model) -> int | None:
    for t in model.inputs:
        if len(t.shape) > 1 and t.shape[1] is not None and (len(t.shape) >= 3 or "int" in str(t.dtype)):
            return int(t.shape[1])
    return None


def _samples(samples, plan, dynamic_time, model, chunk, streaming) -> tuple[list, str]:
    """The validation inputs (checked, one array per model input) and where they came from."""
    fixed = None if dynamic_time else next((io.shape[1] for io in plan.inputs if io.has_time), None)
    if samples is None:
        steps = samples_mod.steps_for(dynamic_time=dynamic_time, model_steps=fixed or _model_steps(model),
                                      chunk=chunk, window=walker.receptive_field(plan))
        xs, source = samples_mod.random(plan.inputs, steps=steps), "random"
    else:
        raw, _ = samples_mod.read_inputs(samples, [io.name for io in plan.inputs])
        xs = samples_mod.check(raw, plan.inputs, fixed_steps=fixed)
        source = f"file:{Path(samples).name}" if isinstance(samples, (str, Path)) else "array"
    steps = _steps(plan, xs)
    lengths = {io.name: int(x.shape[1]) for io, x in zip(plan.inputs, xs) if io.has_time}
    if streaming and len(set(lengths.values())) > 1:
        raise InputShapeError(f"the stream and unrolled variants take one chunk of every sequence input per call, "
                              f"so their samples need one length; got {lengths} (export only 'full' for others)")
    if streaming and steps is not None and steps < chunk:
        raise ConfigError(f"chunk {chunk} is longer than the {steps} steps of the samples")
    return xs, source


def _signature(plan, variant: str) -> validate.Signature:
    states = plan.states if variant != "full" else []
    flush = _flush(plan, variant)
    return validate.Signature(tuple((io.name, io.has_time) for io in plan.inputs),
                              tuple((io.name, io.has_time) for io in plan.outputs),
                              tuple((s.input, s.output, s.shape, s.dtype, s.init) for s in states),
                              (flush["state"], flush["frames"]) if flush else None)


def _io_rows(ios, variant, chunk, fixed_time, clocked=False) -> list[dict]:
    rows = []
    for io in ios:
        row = {"name": io.name, "dims": walker.io_dims(io, variant, chunk, fixed_time, clocked=clocked),
               "dtype": "float32" if io.dtype.startswith("float") else io.dtype, "has_time": io.has_time,
               "vocab_size": io.vocab_size, "per_step": io.has_time,
               "meaning": metadata.output_meaning(io.producer) if io.producer is not None else "values"}
        if variant != "full" and io.has_time and (clocked or io.look_back):   # windows on time: when frames come
            row.update(frames_per_output=io.clock.stride if clocked else 1, emit_after=io.clock.delay if clocked else 0,
                       look_back=io.look_back, look_ahead=io.look_ahead)
        rows.append(row)
    return rows


def _flush(plan, variant) -> dict | None:
    """The metadata's `flush` entry of a stream on a clock (clocks.py), else None."""
    if variant == "full" or not plan.clocked:
        return None
    return {"state": next(s.input for s in plan.states if s.step == -1), "frames": plan.flush_frames}


def _io_entry(io, dynamic_time: bool) -> dict:
    return {"name": io.name, "shape": list(io.shape), "dtype": io.dtype,
            "time_axis": 1 if io.has_time else None, "dynamic_time": bool(dynamic_time and io.has_time),
            "time_dim": io.time_dim if dynamic_time and io.has_time else None, "per_step": io.has_time}


def _build(variant, plan, ref, *, chunk, opset, name, cache, fixed_time):
    reason = plan.fallback if variant == "full" else None
    if reason is None:
        try:
            proto = walker.emit(plan, variant, chunk=chunk, opset=opset, name=name, cache=cache,
                                fixed_time=fixed_time)
        except UnsupportedLayerError as exc:  # a layer without handler that tf2onnx cannot take alone
            if variant != "full":
                raise
            reason = str(exc)
    if reason is not None:
        proto = fallback.convert(ref, plan, opset)
        try:
            _serialize(proto)
        except ModelFormatError as exc:
            raise UnsupportedLayerError(f"cannot export full: {reason}; and the whole model through tf2onnx "
                                        f"fails too: {exc}") from None
        return proto, "fallback: tf2onnx", reason
    if variant == "unrolled":
        bad = sorted({n.op_type for n in proto.graph.node if n.op_type in FORBIDDEN_IN_UNROLLED})
        if bad:
            raise UnsupportedLayerError(f"the unrolled variant still holds {', '.join(bad)} ops "
                                        "from a layer converted by tf2onnx")
    return proto, "rnnx", None


def _build_and_validate(variant, plan, ref, xs, keras_full, full_session, *, dynamic_time, chunk, opset, atol,
                        name, cache, say, fixed_time):
    """Build one variant and check it against Keras (streams also against `full_session`).

    Returns (proto, report entry, onnxruntime session of the variant, fixed time length or None).
    """
    say(f"{variant}: building")
    proto, converter, reason = _build(variant, plan, ref, chunk=chunk, opset=opset, name=name, cache=cache,
                                      fixed_time=fixed_time)
    if reason:
        say(f"full: {reason}; falling back to tf2onnx for the whole model")
    say(f"{variant}: validating against Keras")
    session = validate.session(_serialize(proto))
    sig = _signature(plan, variant)
    if variant == "full":
        parity = validate.validate_full(session, sig, xs, keras_full, atol=atol)
        if dynamic_time and _steps(plan, xs) is not None:
            other = _other_lengths(session, sig, plan, ref, xs, atol)
            if other.get("failed"):
                fixed_time = _steps(plan, xs)
                say(f"full: {other['failed']}; declaring the time axis as exactly {fixed_time} steps")
                _fix_time(proto, plan, fixed_time)
                session = validate.session(_serialize(proto))
            parity["other_lengths"] = other
    else:
        steps = _steps(plan, xs)
        whole = steps % chunk == 0 or plan.clocked   # a clocked stream takes a last partial chunk
        xs_w = xs if whole else [x[:, :steps - steps % chunk] if io.has_time else x
                                 for io, x in zip(plan.inputs, xs)]
        first = [x[:, :chunk] if io.has_time else x for io, x in zip(plan.inputs, xs_w)]
        parity = validate.validate_stream(
            variant, session, sig, xs_w, keras_first=None if plan.clocked else _keras(ref, first),
            keras_full=keras_full if whole else _keras(ref, xs_w),
            onnx_full=(validate.run_full(full_session, _signature(plan, "full"), xs_w)
                       if full_session is not None else None),
            chunk=chunk, atol=atol)
    parity = {"atol": atol, **parity}
    streamed = parity.get("streamed_max_abs_diff")
    say(f"{variant}: max |onnx - keras| {parity['max_abs_diff']:.3g}"
        + (f", streamed {streamed:.3g}" if streamed is not None else ""))
    return proto, {"converter": converter, "fallback_reason": reason, "parity": parity}, session, fixed_time


def _check_readable(variant: str, data: bytes) -> None:
    """The metadata must describe the graph as the runtime reads it (shapes, time axes, states),
    checked before anything is written: rnnx never writes a file its own runtime refuses."""
    import runtime

    try:
        runtime.load(data, providers=["cpu"], threads=1)
    except ModelFormatError as exc:
        raise ModelFormatError(f"the {variant} export's metadata disagrees with its graph ({exc}); "
                               "nothing was written: please report this model to rnnx") from None


def _fix_time(proto, plan, steps: int) -> None:
    """Declare the time axis of every sequence input as exactly `steps`, and of every output as the
    frames it then has."""
    timed = {io.name: walker.fixed_frames(io, steps) for io in plan.inputs + plan.outputs if io.has_time}
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.name in timed and len(dims) > 1:
            dims[1].Clear()
            dims[1].dim_value = timed[value.name]


def _other_lengths(session, sig, plan, ref, xs, atol) -> dict:
    """Validate `full` at OTHER_LENGTHS other sequence lengths (random inputs of the same kind).

    Returns {"steps": [...], "max_abs_diff": ...} or {"failed": why} when a length does not work.
    """
    steps, (frames, _) = _steps(plan, xs), walker.receptive_field(plan)
    lengths = [max(frames, steps // 2) if steps > 1 else 2, steps + 3][:OTHER_LENGTHS]   # every window fits
    axes = sorted({io.time_dim for io in plan.inputs if io.has_time and io.time_dim})
    worst, per_axis = 0.0, {axis: [] for axis in axes}
    for t in lengths:   # independent time axes get lengths that differ from each other
        by_axis = {axis: t + k for k, axis in enumerate(axes)}
        for axis, length in by_axis.items():
            per_axis[axis].append(length)
        what = " and ".join(f"{n} steps on {a}" for a, n in by_axis.items()) if len(axes) > 1 else f"{t} steps"
        probe = samples_mod.random(plan.inputs, steps=by_axis if len(axes) > 1 else t, n=min(8, len(xs[0])),
                                   seed=t)
        try:
            want = _keras(ref, probe)
        except Exception:  # Keras itself refuses this length: the length is not free
            return {"failed": f"Keras refuses sequences of {what}"}
        try:
            got = validate.run_full(session, sig, probe)
            for g, w in zip(got, want):
                stats = validate.compare(g, w)
                worst = max(worst, stats["max_abs_diff"])
                if not stats["max_abs_diff"] <= atol:
                    raise ParityError(f"max |onnx - keras| {stats['max_abs_diff']:.3g} at {what}")
        except ParityError as exc:
            return {"failed": str(exc)}
        except Exception as exc:  # onnxruntime cannot run the graph at this length
            return {"failed": f"onnxruntime cannot run {what}: {str(exc).strip().splitlines()[0][:200]}"}
    return {"steps": lengths, "max_abs_diff": worst, **({"time_axes": per_axis} if len(axes) > 1 else {})}


def _variant_entry(variant, proto, blob, entry) -> dict:
    ops = _op_counts(proto)
    return {
        "path": f"{variant}.onnx",
        "file_bytes": len(blob),
        "op_counts": ops,
        "nodes": sum(ops.values()),
        "rnn_ops": _rnn_ops(variant, ops),
        "native_rnn_ops": any(op in ops for op in ("LSTM", "GRU", "RNN")),
        **entry,
    }


def _layer_entry(k, layer) -> dict:
    cell = getattr(getattr(layer, "forward_layer", layer), "cell", None)
    return {"index": k, "name": layer.name, "type": type(layer).__name__,
            "units": int(cell.units) if cell is not None and hasattr(cell, "units") else None,
            "return_sequences": bool(getattr(layer, "return_sequences", False))}


def _serialize(proto) -> bytes:
    import onnx

    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ModelFormatError(f"the exported graph is not valid ONNX: {str(exc).splitlines()[0]}") from None
    return proto.SerializeToString()


def _rnn_ops(variant: str, ops: dict) -> str:
    if any(op in ops for op in ("LSTM", "GRU", "RNN")):
        return "native"
    if "Loop" in ops or "Scan" in ops:
        return "loop"
    return "unrolled" if variant == "unrolled" else "none"
