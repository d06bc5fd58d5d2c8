"""Export a Keras recurrent model to ONNX: full, stream and unrolled variants.

Example::

    from exporters.export import export_model
    res = export_model("models/lstm.keras", "out/lstm", chunk=1)
    res.paths["stream"]            # Path('out/lstm/stream.onnx')
    res.report["variants"]["full"]["parity"]["max_abs_diff"]

Every variant is built and validated against Keras in memory first; only
when all pass are the files written (atomically), then `export.json`. A
miss raises ParityError and leaves no model file behind.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.contract import VARIANTS

from . import keras_io, metadata
from .graph import build, fallback, plan as planning, reference
from .validation import parity as validate, samples as samples_mod
from .atomic import write_bytes, write_json
from .errors import ConfigError, ModelFormatError, UnsupportedLayerError

REPORT_NAME = "export.json"
MIN_OPSET = 13


@dataclass(frozen=True)
class ExportResult:
    paths: dict = field(default_factory=dict)   # variant -> Path of the written model
    report: dict = field(default_factory=dict)  # exactly what export.json holds


def _rnnx_version() -> str:
    try:
        from importlib.metadata import version

        return version("rnnx")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0"


def _check_options(variants, chunk, opset, atol, uint8_scale) -> tuple:
    if isinstance(variants, str):
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


def _check_out_dir(out_dir) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output directory {str(out)!r} is a file; expected a directory (or a new path)")
    return out


def _read_labels(labels) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if path.suffix == ".txt" or path.is_file():
            if not path.is_file():
                raise ConfigError(f"labels file {str(path)!r} does not exist")
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]
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


def _keras(ref, x, batch: int = 256) -> np.ndarray:
    """Keras reference outputs, computed in batches to bound memory on large sample sets."""
    parts = [np.asarray(ref(x[i:i + batch], training=False), dtype=np.float32)
             for i in range(0, len(x), batch)]
    return np.concatenate(parts, axis=0)


def _op_counts(model) -> dict:
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def export_model(model_or_path, out_dir, *, variants=("full", "stream", "unrolled"), chunk=1,
                 opset=17, atol=1e-5, samples=None, labels=None, uint8_scale=None,
                 name=None, progress=None) -> ExportResult:
    """Export, validate and write the requested variants of a Keras recurrent model.

    Args:
        model_or_path: a keras.Model or a path to a .keras file (loaded with safe mode on).
        out_dir: directory for full.onnx, stream.onnx, unrolled.onnx and export.json.
        variants: any of "full", "stream", "unrolled".
        chunk: time steps per call of the stream/unrolled variants.
        opset: ONNX opset.
        atol: largest |onnx - keras| accepted on the output.
        samples: validation inputs, an array (N, T, ...) or a .npz path (key 'x');
            shaped random data when None.
        labels: class labels (list, "a,b,c", or a .txt file with one per line).
        uint8_scale: the scale applied to uint8 inputs before the model (True = 1/255).
        name: model name for the metadata (default: file stem or model name).
        progress: callable(str) that receives progress lines, or None.

    Returns:
        ExportResult with `paths` (variant -> Path) and `report` (export.json's content).

    Raises:
        ConfigError, ModelFormatError, UnsupportedLayerError, InputShapeError, ParityError.
    """
    say = progress or (lambda _msg: None)
    variants, chunk, opset, atol, uint8_scale = _check_options(variants, chunk, opset, atol, uint8_scale)
    out = _check_out_dir(out_dir)
    label_list = _read_labels(labels)
    model, source = _load(model_or_path, name)
    ref, dynamic_time = reference.reference_model(model)
    plan = planning.make(ref)
    streams = [v for v in variants if v != "full"]
    if streams and plan.stream_blocker:
        raise UnsupportedLayerError(f"cannot export {'/'.join(streams)}: {plan.stream_blocker}")
    if streams and not dynamic_time:
        raise UnsupportedLayerError(f"cannot export {'/'.join(streams)}: the model only accepts sequences "
                                    f"of exactly {plan.input_shape[1]} steps")
    n_out = plan.output_shape[-1]
    if label_list is not None and n_out is not None and len(label_list) != n_out:
        raise ConfigError(f"{len(label_list)} labels given; the model output has {n_out} values per prediction")
    original_steps = model.inputs[0].shape[1] if len(model.inputs[0].shape) > 1 else None
    x, sample_source = _samples(samples, plan, dynamic_time, original_steps, chunk, bool(streams))
    # Inputs are all checked: a bad one fails above, before any progress line is printed.
    say(f"loaded {source['name']!r} ({len(model.layers)} layers, {len(plan.recurrent)} recurrent); "
        f"validating on {x.shape[0]} {sample_source} samples of {x.shape[1]} steps")

    keras_full = _keras(ref, x)
    built, entries, cache, full_session = {}, {}, {}, None
    for variant in variants:
        proto, entry, session = _build_and_validate(variant, plan, ref, x, keras_full, full_session,
                                                    chunk=chunk, opset=opset, atol=atol, name=source["name"],
                                                    cache=cache, say=say)
        full_session = session if variant == "full" else full_session
        x_dims, y_dims = build.io_dims(plan, variant, chunk)
        meta = metadata.describe(
            variant=variant, chunk=chunk, x_dims=x_dims, x_dtype=plan.input_dtype, y_dims=y_dims,
            per_step=plan.per_step_output, meaning=metadata.output_meaning(ref.layers[-1]),
            labels=label_list, uint8_scale=uint8_scale, source=source, parity=entry["parity"],
            states=build.state_layout(plan) if variant != "full" else [])
        metadata.attach(proto, meta)
        built[variant] = _serialize(proto)
        entries[variant] = _variant_entry(variant, proto, built[variant], entry)

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for variant, blob in built.items():
        paths[variant] = write_bytes(out / f"{variant}.onnx", blob)
        say(f"{variant}: wrote {paths[variant]} ({len(blob)} bytes)")
    report = {
        "format": 1,
        "source": source,
        "input": {"shape": list(plan.input_shape), "dtype": plan.input_dtype, "time_axis": 1,
                  "dynamic_time": dynamic_time},
        "output": {"shape": list(plan.output_shape), "per_step": plan.per_step_output, "labels": label_list},
        "recurrent_layers": [_layer_entry(k, layer) for k, layer in enumerate(plan.recurrent)],
        "chunk": chunk, "opset": opset, "atol": atol,
        "samples": {"source": sample_source, "n": int(x.shape[0]), "steps": int(x.shape[1])},
        "variants": entries,
    }
    write_json(out / REPORT_NAME, report)
    say(f"wrote {out / REPORT_NAME}")
    return ExportResult(paths=paths, report=report)


def _samples(samples, plan, dynamic_time, original_steps, chunk, streaming) -> tuple[np.ndarray, str]:
    """The validation inputs (checked) and where they came from."""
    if samples is None:
        steps = samples_mod.steps_for(plan, dynamic_time=dynamic_time, original_steps=original_steps, chunk=chunk)
        x, source = samples_mod.random(plan, steps=steps), "random"
    else:
        raw, _ = samples_mod.read(samples)
        x = samples_mod.check(raw, plan, fixed_steps=None if dynamic_time else plan.input_shape[1])
        source = f"file:{Path(samples).name}" if isinstance(samples, (str, Path)) else "array"
    if streaming and x.shape[1] < chunk:
        raise ConfigError(f"chunk {chunk} is longer than the {x.shape[1]} steps of the samples")
    return x, source


def _build_and_validate(variant, plan, ref, x, keras_full, full_session, *, chunk, opset, atol, name, cache, say):
    """Build one variant and check it against Keras (streams also against `full_session`).

    Returns (proto, report entry, onnxruntime session of the variant).
    """
    say(f"{variant}: building")
    converter, reason = "rnnx", None
    if variant == "full" and plan.native_blocker:
        converter, reason = "fallback: tf2onnx", plan.native_blocker
        say(f"full: {reason}; falling back to tf2onnx for the whole model")
        proto = fallback.convert(ref, plan, opset)
    else:
        proto = build.build(plan, variant, chunk=chunk, opset=opset, name=name, cache=cache)
    blob = _serialize(proto)
    say(f"{variant}: validating against Keras")
    session = validate.session(blob)
    if variant == "full":
        parity = validate.validate_full(session, x, keras_full, atol=atol)
    else:
        whole = x.shape[1] % chunk == 0
        xs = x if whole else x[:, :x.shape[1] - x.shape[1] % chunk]   # whole chunks only
        parity = validate.validate_stream(
            variant, session, xs, keras_first=_keras(ref, xs[:, :chunk]),
            keras_full=keras_full if whole else _keras(ref, xs),
            onnx_full=validate.run_full(full_session, xs) if full_session is not None else None,
            state_specs=build.state_layout(plan), chunk=chunk, per_step=plan.per_step_output, atol=atol)
    parity = {"atol": atol, **parity}
    streamed = parity.get("streamed_max_abs_diff")
    say(f"{variant}: max |onnx - keras| {parity['max_abs_diff']:.3g}"
        + (f", streamed {streamed:.3g}" if streamed is not None else ""))
    return proto, {"converter": converter, "fallback_reason": reason, "parity": parity}, session


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
    cell = getattr(layer, "cell", None)
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
