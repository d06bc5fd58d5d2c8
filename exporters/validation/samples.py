"""Validation samples: the caller's array or .npz, or shaped random data.

`load(...)` returns a float32/int array (N, T, ...) checked against the
model's input, plus the caller's labels `y` when the .npz has them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.errors import InputValueError

from ..errors import ConfigError, DataError, InputShapeError

DEFAULT_STEPS = 8


def _feature_shape(plan) -> tuple:
    return tuple(plan.input_shape[2:])


def _embedding_size(plan) -> int | None:
    import keras

    first = plan.steps[0].layers[0] if plan.steps else None
    if isinstance(first, keras.layers.Embedding):
        return int(first.input_dim)
    return None


def random(plan, *, steps: int, n: int = 4, seed: int = 0) -> np.ndarray:
    """Shaped random inputs: token ids for an Embedding front end, else uniform [0, 1)."""
    rng = np.random.default_rng(seed)
    shape = (n, steps, *_feature_shape(plan))
    vocab = _embedding_size(plan)
    if vocab is not None:
        return rng.integers(0, vocab, size=shape).astype(plan.input_dtype)
    return rng.random(shape, dtype=np.float32).astype(plan.input_dtype)


def read(samples) -> tuple[np.ndarray, np.ndarray | None]:
    """The caller's samples: an array, or a path to .npz with key 'x' (and optional 'y')."""
    if isinstance(samples, (str, Path)):
        path = Path(samples)
        if not path.is_file():
            raise DataError(f"no data file at {str(path)!r} (it does not exist); expected a .npz with "
                            "array 'x' (and optional integer labels 'y')")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "x" not in data.files:
                    raise DataError(f"samples file {path.name!r} has no array 'x' (found {data.files})")
                return np.asarray(data["x"]), (np.asarray(data["y"]) if "y" in data.files else None)
        except (OSError, ValueError) as exc:
            raise DataError(f"samples file {path.name!r} is not a readable .npz: {exc}") from None
    return np.asarray(samples), None


def check(x: np.ndarray, plan, *, fixed_steps: int | None) -> np.ndarray:
    """Check `x` against the model input (batch, time, *features); all samples are kept."""
    feat = _feature_shape(plan)
    want = ("N", fixed_steps if fixed_steps is not None else "T", *feat)
    if (x.ndim != 2 + len(feat) or tuple(x.shape[2:]) != feat
            or (fixed_steps is not None and x.shape[1] != fixed_steps) or x.shape[0] == 0 or x.shape[1] == 0):
        raise InputShapeError(f"samples have shape {tuple(x.shape)}; expected {_fmt(want)} "
                              "(samples, time steps, features of the model input)")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise InputValueError("samples hold NaN or inf values; expected finite numbers")
    return np.ascontiguousarray(x).astype(plan.input_dtype, copy=False)


def steps_for(plan, *, dynamic_time: bool, original_steps: int | None, chunk: int) -> int:
    """Sequence length for random samples: the model's own, a multiple of `chunk` when free."""
    if not dynamic_time:
        return int(plan.input_shape[1])
    steps = original_steps if original_steps and original_steps > 1 else DEFAULT_STEPS
    return max(chunk, -(-steps // chunk) * chunk)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def validate_chunk(chunk) -> int:
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise ConfigError(f"chunk must be a positive integer, got {chunk!r}")
    return int(chunk)
