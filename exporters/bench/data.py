"""The inputs a benchmark runs on: a test set (x, optional integer labels y), checked
against the ONNX model, and batches cut from it so every runtime sees the same samples."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from runtime.errors import InputValueError

from ..validation import samples
from ..errors import ConfigError, InputShapeError

FALLBACK_STEPS = 8


def load_npz(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) from a .npz with array 'x' and, optionally, integer labels 'y', checked."""
    x, y = samples.read(Path(path))
    return check_xy(x, y, Path(path).name)


def check_xy(x, y, label: str = "data") -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise InputShapeError(f"{label}: x must be (samples, steps, features...) with at least one sample; "
                              f"got shape {x.shape}")
    if 0 in x.shape[1:]:
        raise InputShapeError(f"{label}: x must have at least one time step and one value per step; "
                              f"got shape {x.shape}")
    if x.dtype.kind not in "fu":
        raise InputShapeError(f"{label}: x must be float or uint8; got {x.dtype}")
    if x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "iu" or y.shape[0] != x.shape[0]:
            raise InputShapeError(f"{label}: y must hold one integer label per sample (or per step) of x; "
                                  f"got {y.dtype} {y.shape} for x {x.shape}")
    return x, y


def check_against(x: np.ndarray, shape: tuple, name: str, file: str) -> None:
    """x (samples, steps, ...) fits an ONNX input declared as ``shape`` (None = any)."""
    if x.ndim != len(shape):
        raise InputShapeError(f"data x has shape {tuple(x.shape)} (rank {x.ndim}); {file} input {name!r} "
                              f"is {_dims(shape)} (rank {len(shape)})")
    bad = [i for i, d in enumerate(shape) if i >= 2 and d is not None and d != x.shape[i]]
    if bad:
        raise InputShapeError(f"data x has shape {tuple(x.shape)}; {file} input {name!r} is {_dims(shape)} "
                              f"(axis {bad[0]} differs)")


def random_like(shape: tuple, steps: int, samples: int, seed: int = 0,
                value_range: tuple[float, float] | None = None, vocab_size: int | None = None,
                dtype: str | None = None) -> np.ndarray:
    """Uniform inputs in ``value_range`` (default [0, 1)) for a model input ``shape`` when no data is
    given; token ids in [0, ``vocab_size``) of the input's ``dtype`` for an input that feeds an Embedding."""
    dims = [d if d is not None else 1 for d in shape[2:]]
    rng = np.random.default_rng(seed)
    if vocab_size:
        return rng.integers(0, int(vocab_size), size=(samples, steps, *dims)).astype(dtype or "int32")
    x = rng.random((samples, steps, *dims), dtype=np.float32)
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        x = (lo + x * np.float32(hi - lo)).astype(np.float32)
    return x


def keras_steps(path) -> int | None:
    """The fixed time length of a .keras file's first input (from its config.json), or None.

    Reads the archive's JSON only: no Keras import.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    found = []

    def walk(node):
        if isinstance(node, dict):
            inner = node.get("config")
            if node.get("class_name") == "InputLayer" and isinstance(inner, dict):
                shape = inner.get("batch_shape") or inner.get("batch_input_shape")
                if isinstance(shape, list) and len(shape) >= 3:
                    found.append(shape[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found[0] if found and isinstance(found[0], int) and found[0] > 0 else None


def default_inputs(infos: list[dict], keras=None, samples: int = 256, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Random inputs shaped like the model's own data when no test set is given, and what they are.

    The length is the Keras model's fixed input length, else the length the export's parity was
    measured on (rnnx metadata), else the full file's fixed length, else FALLBACK_STEPS chunks.
    Values are uniform in the input's declared range (rnnx metadata), else in [0, 1); token ids
    span the vocabulary of an input that feeds an Embedding.
    """
    first = infos[0]
    full = next((i for i in infos if not i["streaming"]), None)
    steps, steps_from = None, None
    if keras is not None and Path(keras).is_file():
        steps = keras_steps(keras)
        steps_from = f"the input length of {Path(keras).name}" if steps else None
    if steps is None:
        steps = next((i["parity_steps"] for i in infos if i.get("parity_steps")), None)
        steps_from = "the length the export was validated on (rnnx metadata)" if steps else None
    if steps is None and full is not None and (full["input_shape"] + [None, None])[1]:
        steps, steps_from = full["input_shape"][1], f"the fixed input length of {full['file']}"
    if steps is None:
        steps = FALLBACK_STEPS * (first["chunk"] or 1)
        steps_from = f"a default ({FALLBACK_STEPS} chunks): the model's own length is not recorded"
    chunk = first["chunk"] or 1
    if any(i["streaming"] for i in infos) and steps % chunk:
        steps += chunk - steps % chunk
    value_range = next((tuple(i["input_range"]) for i in infos if i.get("input_range")), None)
    vocab = first.get("vocab_size")
    x = random_like(tuple(first["input_shape"]), int(steps), samples, seed, value_range, vocab,
                    first.get("input_dtype"))
    described = {"source": "random", "steps": int(steps), "steps_from": steps_from,
                 "range": [0, int(vocab) - 1] if vocab else list(value_range) if value_range else [0.0, 1.0],
                 "range_from": ("token ids of the vocabulary (rnnx metadata)" if vocab else
                                "rnnx metadata" if value_range else "a default: the model declares no range")}
    return x, described


def check_labels(y: np.ndarray | None, classes: int | None, label: str = "data") -> None:
    """Integer labels must be class indices of the model's ``classes`` outputs."""
    if y is None or classes is None or y.size == 0:
        return
    bad = np.unique(y[(y < 0) | (y >= classes)])
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise InputValueError(f"{label}: labels y must be class indices in [0, {classes}) for the model's "
                              f"{classes} classes; got {shown}")


def batch_of(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples (cycled when there are fewer), contiguous."""
    if n <= x.shape[0]:
        return np.ascontiguousarray(x[:n])
    return np.ascontiguousarray(np.resize(x, (n,) + x.shape[1:]))


def parse_list(text, kind=str, what: str = "list") -> list:
    """'1,64,256' -> [1, 64, 256] (or a list as it is), non-empty, no duplicates."""
    items = text if isinstance(text, (list, tuple)) else [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        items = [kind(i) for i in items]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a comma-separated list; got {text!r}") from None
    if not items or len(set(items)) != len(items):
        raise ConfigError(f"{what} must be a non-empty list without repeats; got {text!r}")
    return items


def _dims(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
