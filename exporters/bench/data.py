"""The inputs a benchmark runs on: a test set (x, optional integer labels y), checked
against the ONNX model, and batches cut from it so every runtime sees the same samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..validation import samples
from ..errors import ConfigError, InputShapeError


def load_npz(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y) from a .npz with array 'x' and, optionally, integer labels 'y', checked."""
    x, y = samples.read(Path(path))
    return check_xy(x, y, Path(path).name)


def check_xy(x, y, label: str = "data") -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise InputShapeError(f"{label}: x must be (samples, steps, features...) with at least one sample; "
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


def random_like(shape: tuple, steps: int, samples: int, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1) inputs for a model input ``shape`` when no data is given."""
    dims = [d if d is not None else 1 for d in shape[2:]]
    return np.random.default_rng(seed).random((samples, steps, *dims), dtype=np.float32)


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
