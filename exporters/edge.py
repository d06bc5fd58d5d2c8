"""Edge packaging of an export set: ORT-format files and the operator list of a reduced build.

onnxruntime Mobile and minimal onnxruntime builds load ORT-format models (``.ort``) and can be
built with only the operators a set of models needs (``--include_ops_by_config``). For each
``<variant>.onnx`` of an export set, `ort_files` gives ``<variant>.ort`` (onnxruntime's own
conversion: a session saves its optimized graph in the ORT format; the ``rnnx`` metadata comes
along, so `runtime.load` reads the same contract) and one ``required_operators.config`` for the
whole set, with the types each operator needs (type reduction).

``rnnx export ... --ort`` writes them with the export; ``rnnx pack DIR`` adds them to an existing
set. Either way they join the set atomically and are listed with their sha256 in
``export.json``, whose ``edge`` entry says what was converted and how many operators the config
names.

The optimization level is onnxruntime's basic one (constant folding and redundant-node
removal): the files stay portable across CPUs and devices (no layout or instruction-set
specific fusions, which the converter's "all" level writes into the file).
"""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_set
from .errors import ConfigError, ModelFormatError

CONFIG_NAME = "required_operators.config"
REPORT_NAME = "export.json"
SELFTEST_SAMPLES = 3


def ort_name(onnx_name: str) -> str:
    return onnx_name[:-len(".onnx")] + ".ort"


def vectors(xs: dict, ys: dict, atol: float, reference: str) -> bytes:
    """The self-test vector file (runtime/selftest.py): inputs, the reference outputs, the tolerance."""
    import io

    import numpy as np

    arrays = {f"x/{k}": np.ascontiguousarray(v) for k, v in xs.items()}
    arrays.update({f"y/{k}": np.ascontiguousarray(v, np.float32) for k, v in ys.items()})
    buf = io.BytesIO()
    np.savez(buf, atol=np.float64(atol), reference=np.array(reference), **arrays)
    return buf.getvalue()


def ort_files(onnx_files: dict, say=None, selftest: bytes | None = None) -> tuple[dict, dict]:
    """({file name: bytes} of the ORT files, the config and the self-test vectors, the manifest's
    `edge` entry) for `onnx_files` ({"full.onnx": bytes, ...})."""
    import onnxruntime as ort

    from .quantize import workspace

    say = say or (lambda _m: None)
    out = {}
    with workspace.workspace() as work:
        converted = []
        for name, data in sorted(onnx_files.items()):
            src, dst = Path(work) / name, Path(work) / ort_name(name)
            src.write_bytes(data)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.optimized_model_filepath = str(dst)
            options.add_session_config_entry("session.save_model_format", "ORT")
            try:
                ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own types
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelFormatError(f"onnxruntime cannot convert {name} to the ORT format: {detail}") from None
            out[dst.name] = dst.read_bytes()
            converted.append(dst)
            say(f"{dst.name}: {len(out[dst.name])} bytes (ORT format, from {name})")
        config = Path(work) / CONFIG_NAME
        _operator_config(converted, config)
        out[CONFIG_NAME] = config.read_bytes()
    ops = operators(out[CONFIG_NAME].decode())
    entry = {"ort": {name: ort_name(name) for name in sorted(onnx_files)}, "operator_config": CONFIG_NAME,
             "operators": sum(len(v) for v in ops.values()), "onnxruntime": ort.__version__,
             "optimization": "basic"}
    if selftest is not None:
        from runtime.selftest import VECTORS

        out[VECTORS] = selftest
        entry["selftest"] = VECTORS
    say(f"{CONFIG_NAME}: {entry['operators']} operators for a reduced onnxruntime build")
    return out, entry


def _operator_config(models: list, path: Path) -> None:
    """onnxruntime's config writer, quiet, with the models named by file (not their scratch path)."""
    import logging

    from onnxruntime.tools.ort_format_model.utils import create_config_from_models

    log = logging.getLogger("ort_format_model.utils")
    level, log.level = log.level, logging.WARNING
    try:
        create_config_from_models(models, path, enable_type_reduction=True)
    finally:
        log.setLevel(level)
    scratch = str(Path(models[0]).parent) + "/"
    path.write_text(path.read_text().replace(scratch, ""))


def operators(config_text: str) -> dict:
    """{"<domain>;<opset>": [operator, ...]} of a required-operators config (comments skipped)."""
    found: dict = {}
    for line in config_text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        domain, opset, ops = line.split(";", 2)
        names = []
        depth, current = 0, ""
        for ch in ops:   # "Add,Gather{...},MatMul": commas inside {} belong to type lists
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                names.append(current)
                current = ""
            else:
                current += ch
        names.append(current)
        found[f"{domain};{opset}"] = sorted({n.split("{", 1)[0] for n in names if n})
    return found


def pack(folder, *, keras=None, progress=None) -> dict:
    """Add ``<variant>.ort``, the operator config and the self-test vectors to the export set in
    `folder` (atomically); returns export.json as written. The vectors' outputs are the Keras
    model's (`keras`: its .keras file) or, without it, the set's fp32 ``full.onnx``'s (validated
    against Keras at export)."""
    from runtime.integrity import file_problem

    folder = Path(folder)
    path = folder / REPORT_NAME
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{folder} holds no {REPORT_NAME}; expected a folder written by rnnx export") from None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"cannot read {path}: {exc}") from None
    listed = report.get("files") or {}
    onnx = {}
    for name, entry in sorted(listed.items()):
        if name.endswith(".onnx"):
            problem = file_problem(folder / name, entry)
            if problem is not None:
                raise ModelFormatError(f"{folder / name} is not the file {REPORT_NAME} lists ({problem}); "
                                       "re-export before packing")
            onnx[name] = (folder / name).read_bytes()
    if not onnx:
        raise ConfigError(f"{path} lists no .onnx files to convert")
    new, entry = ort_files(onnx, progress, _pack_vectors(folder, report, keras))
    keep = {name: onnx[name] if name in onnx else (folder / name).read_bytes() for name in listed if name not in new}
    manifest = {k: v for k, v in report.items() if k != "files"}
    manifest["edge"] = entry
    return write_set(folder, {**keep, **new}, REPORT_NAME, manifest, replaces=list(new))


def _pack_vectors(folder: Path, report: dict, keras) -> bytes:
    """Random inputs the export's length (quantize's shaped random data), and the reference outputs."""
    import numpy as np

    import runtime
    from .quantize import data as quant_data
    from .quantize.model import model_info

    ref_file = folder / "full.onnx" if (folder / "full.onnx").is_file() else None
    source = ref_file or folder / next(n for n in sorted(report["files"]) if n.endswith(".onnx"))
    xs = quant_data.random_x(model_info(source), n=SELFTEST_SAMPLES)
    if keras is not None:
        from .keras_io import load_keras

        model = load_keras(keras)
        got = model([xs[t.name] for t in model.inputs] if len(model.inputs) > 1 else next(iter(xs.values())),
                    training=False)
        got = got if isinstance(got, (list, tuple)) else [got]
        names = [o["name"] for o in report["outputs"]]
        return vectors(xs, {n: np.asarray(y) for n, y in zip(names, got)}, report["atol"], "keras")
    if ref_file is None:
        raise ConfigError(f"{folder} has no full.onnx to take the self-test outputs from; give the Keras model "
                          "(rnnx pack DIR --keras MODEL.keras)")
    model = runtime.load(ref_file, providers=["cpu"])
    got = model.predict(xs if len(xs) > 1 else next(iter(xs.values())))
    got = got if isinstance(got, dict) else {report["outputs"][0]["name"]: got}
    return vectors(xs, got, report["atol"], "full.onnx")
