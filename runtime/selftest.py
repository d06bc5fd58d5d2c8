"""``python -m runtime --selftest DIR``: does this device's onnxruntime compute what Keras computed?

An export set packed for the edge (``rnnx export --ort`` or ``rnnx pack``) carries
``selftest.npz``: a few inputs, the Keras model's outputs on them (whole sequences) and the
parity tolerance of the export, listed with its sha256 in ``export.json`` like every file of
the set. The self-test runs every model file of the set (``.onnx`` and ``.ort``) on those
inputs, ``full`` files on whole sequences and stream/unrolled files chunk by chunk, and gives
one line per file: ``pass`` with the worst |Δ|, or ``FAIL`` with what differs. This is the check
an app runs after installing onnxruntime on a new board. Base install only (numpy + onnxruntime).

Vector file layout (``numpy.savez``): ``x/<input name>`` and ``y/<output name>`` arrays, ``atol``
(a 0-d float), ``reference`` (a 0-d string: what gave the outputs, e.g. ``keras``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelFormatError, RnnxError
from .integrity import file_problem, read_manifest

VECTORS = "selftest.npz"
MODEL_SUFFIXES = (".onnx", ".ort")


@dataclass(frozen=True)
class Result:
    file: str
    ok: bool
    detail: str          # the worst |Δ| on a pass; what differs on a failure

    def line(self) -> str:
        return f"{'pass' if self.ok else 'FAIL'}  {self.file}  {self.detail}"


def read_vectors(folder) -> tuple[dict, dict, float, str]:
    """(inputs, outputs, atol, reference) of the set's vector file, checked against export.json."""
    folder = Path(folder)
    files = read_manifest(folder)
    if files is None:
        raise ModelFormatError(f"{folder} holds no export.json listing its files; expected an rnnx export set")
    if VECTORS not in files:
        raise ModelFormatError(f"{folder}/export.json lists no {VECTORS}; pack the set first "
                               "(rnnx export --ort, or rnnx pack)")
    problem = file_problem(folder / VECTORS, files[VECTORS])
    if problem is not None:
        raise ModelFormatError(f"{folder / VECTORS} does not belong to this export set: {problem}")
    try:
        with np.load(io.BytesIO((folder / VECTORS).read_bytes()), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, KeyError) as exc:
        raise ModelFormatError(f"{folder / VECTORS} is not a self-test vector file: {exc}") from None
    xs = {k[2:]: v for k, v in arrays.items() if k.startswith("x/")}
    ys = {k[2:]: v for k, v in arrays.items() if k.startswith("y/")}
    if not xs or not ys or "atol" not in arrays:
        raise ModelFormatError(f"{folder / VECTORS} lacks inputs (x/...), outputs (y/...) or atol")
    return xs, ys, float(arrays["atol"]), str(arrays.get("reference", "keras"))


def run(folder) -> list[Result]:
    """One Result per model file of the set (ModelFormatError when the vectors are unusable)."""
    folder = Path(folder)
    xs, ys, atol, reference = read_vectors(folder)
    names = [n for n in sorted(read_manifest(folder)) if n.endswith(MODEL_SUFFIXES)]
    return [_check(folder / name, xs, ys, atol, reference) for name in names]


def _check(path: Path, xs: dict, ys: dict, atol: float, reference: str) -> Result:
    from .loader import load
    from .streaming import StreamingModel

    n = len(next(iter(xs.values())))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load(path, providers=["cpu"], batch=n)
        feeds = xs if len(xs) > 1 else next(iter(xs.values()))
        got = model.feed(feeds) if isinstance(model, StreamingModel) else model.predict(feeds)
    except RnnxError as exc:
        return Result(path.name, False, f"{type(exc).__name__}: {exc}")
    got = got if isinstance(got, dict) else {next(iter(ys)): got}
    worst = 0.0
    for name, want in ys.items():
        if name not in got:
            return Result(path.name, False, f"gives no output {name!r} (it gives {sorted(got)})")
        y = np.asarray(got[name])
        if y.shape != want.shape:
            return Result(path.name, False, f"output {name!r} has shape {y.shape}; {reference} gave {want.shape}")
        diff = float(np.max(np.abs(y.astype(np.float64) - want))) if y.size else 0.0
        if not diff <= atol:
            return Result(path.name, False, f"output {name!r} differs from {reference} by {diff:.3g} > atol {atol:g}")
        worst = max(worst, diff)
    return Result(path.name, True, f"max |Δ| {worst:.3g} (atol {atol:g}, vs {reference})")


def main(folder) -> int:
    """Print one line per file; 0 when every file passes, 1 otherwise (or when the vectors are unusable)."""
    import sys

    try:
        results = run(folder)
    except RnnxError as exc:
        print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(r.line())
    if not results:
        print(f"rnnx: {folder}/export.json lists no model files", file=sys.stderr)
        return 1
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} of {len(results)} files pass", file=sys.stderr)
    return 1 if failed else 0
