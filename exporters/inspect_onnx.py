"""Describe an ONNX file for a person: I/O tensors, op counts, rnnx metadata, export set.

The metadata is read through the runtime's one strict schema
(`runtime.contract.Contract`): a malformed entry is a ModelFormatError naming
the field. When the file's folder holds an `export.json` that lists it, the
file's size and sha256 are checked against it (`export_set` in the result).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from runtime.contract import METADATA_KEY, Contract

from .errors import ModelFormatError
from .metadata import timing_text


def _dims(value_info) -> list:
    t = value_info.type.tensor_type
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim]


def _dtype(value_info) -> str:
    from onnx import helper

    try:
        return str(helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type))
    except Exception:  # an exotic or missing element type
        return f"elem_type {value_info.type.tensor_type.elem_type}"


def describe(path) -> dict:
    """Inputs, outputs (name, shape, dtype), op counts, opsets and the `rnnx` metadata of a model."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"no ONNX file at {str(path)!r}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelFormatError(f"{path.name!r} is not an ONNX model: {exc}") from None
    if not model.graph.node and not model.graph.input:
        raise ModelFormatError(f"{path.name!r} is not an ONNX model (empty graph)")
    inits = {i.name for i in model.graph.initializer}
    meta, other = None, {}
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            try:
                Contract.from_json(entry.value)  # the one strict schema; shown as written
            except ModelFormatError as exc:
                raise ModelFormatError(f"{path.name!r}: {exc}") from None
            meta = json.loads(entry.value)
        else:
            other[entry.key] = entry.value
    return {
        "file": str(path), "bytes": path.stat().st_size,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "inputs": [{"name": i.name, "shape": _dims(i), "dtype": _dtype(i)}
                   for i in model.graph.input if i.name not in inits],
        "outputs": [{"name": o.name, "shape": _dims(o), "dtype": _dtype(o)} for o in model.graph.output],
        "op_counts": dict(Counter(n.op_type for n in model.graph.node).most_common()),
        "initializers": len(model.graph.initializer),
        "rnnx": meta, "other_metadata": other,
        "export_set": _export_set(path),
    }


def _export_set(path: Path) -> dict | None:
    """Whether `path` matches its folder's export.json: None when that does not list it."""
    from runtime.integrity import MANIFEST, file_problem, read_manifest

    files = read_manifest(path.parent)
    if not files or path.name not in files:
        return None
    problem = file_problem(path, files[path.name])
    return {"manifest": str(path.parent / MANIFEST), "matches": problem is None, "problem": problem}


def render(info: dict) -> str:
    """The `describe` dict as readable text."""
    def tensor(t):
        return f"  {t['name']:<10} {t['dtype']:<8} [{', '.join(str(d) for d in t['shape'])}]"

    lines = [f"{info['file']}  ({info['bytes']} bytes, opsets "
             + ", ".join(f"{k} {v}" for k, v in info["opsets"].items()) + ")",
             "inputs:", *map(tensor, info["inputs"]), "outputs:", *map(tensor, info["outputs"]),
             f"ops ({sum(info['op_counts'].values())} nodes, {info['initializers']} initializers):"]
    lines += [f"  {op:<16} {n}" for op, n in info["op_counts"].items()]
    meta = info["rnnx"]
    if meta is None:
        lines.append("rnnx metadata: none (not an rnnx export)")
        return "\n".join(lines)
    lines.append("rnnx metadata:")   # as written: the schema lets optional fields be null
    for key in ("variant", "chunk", "precision"):
        lines.append(f"  {key:<10} {meta.get(key)}")
    for inp in meta.get("inputs") or []:
        lines.append(f"  input      {inp.get('name')} {inp.get('shape')} {inp.get('dtype')} "
                     f"time_axis={inp.get('time_axis')} preprocessing={inp.get('preprocessing')}"
                     + (f" vocab_size={inp['vocab_size']}" if inp.get("vocab_size") else ""))
    for out in meta.get("outputs") or []:
        lines.append(f"  output     {out.get('name')} {out.get('shape')} meaning={out.get('meaning')} "
                     f"per_step={out.get('per_step')} labels={out.get('labels')}")
    lines += _timing_lines(meta)
    for s in meta.get("states") or []:
        lines.append(f"  state      {s.get('input')} -> {s.get('output')} {s.get('shape')} "
                     f"init={s.get('init')} ({s.get('kind')} of layer {s.get('layer')!r})")
    src = meta.get("source") or {}
    lines.append(f"  source     {src.get('name')} sha256={src.get('sha256')} keras={src.get('keras_version')}")
    parity = meta.get("parity") or {}
    if parity:
        lines.append("  parity     " + ", ".join(f"{k}={_num(v)}" for k, v in parity.items()
                                              if not isinstance(v, dict)))
    if info.get("export_set") is not None:
        es = info["export_set"]
        lines.append(f"export set: {'matches' if es['matches'] else 'DOES NOT MATCH'} {es['manifest']}"
                     + (f" ({es['problem']})" if es["problem"] else ""))
    return "\n".join(lines)


def _timing_lines(meta: dict) -> list[str]:
    """When a stream or unrolled file gives its output frames: decimation, arrival, latency, look-back."""
    if meta.get("variant") == "full":
        return []
    lines = []
    for out in meta.get("outputs") or []:
        text = timing_text(out, meta.get("frame_rate"))
        if text is None and out.get("per_step"):
            text = "each frame arrives with its input frame (latency 0, no window of past frames)"
        if text is not None:
            lines.append(f"  timing     {out.get('name')}: {text}")
    if meta.get("flush"):
        lines.append(f"  flush      feed {meta['flush']['frames']} zero frames after a sequence (runtime: flush()); "
                     f"clock state {meta['flush']['state']}")
    return lines


def _num(v):
    return f"{v:.3g}" if isinstance(v, float) else v
