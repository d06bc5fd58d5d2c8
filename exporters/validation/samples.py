"""Validation samples: the caller's arrays or .npz, or shaped random data.

A model with one input takes an array (N, T, ...) or a .npz with key 'x'; a
model with several takes a dict name -> array or a .npz with one array per
input name. Every array is checked against its input, and all keep the same
number of samples N.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from runtime.errors import InputValueError

from ..errors import ConfigError, DataError, InputShapeError

DEFAULT_STEPS = 8


def random(inputs, *, steps: int | dict, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Shaped random inputs (walker IOs): token ids in the vocabulary, else uniform [0, 1).

    `steps` is one length for every sequence input, or {time axis name: length} for inputs
    whose time axes are independent (walker IO.time_dim).

    An input that feeds a Keras mask (`pad_value` set) gets sequences of
    several lengths, post-padded (even rows) and pre-padded (odd rows), the
    padding being its mask value.
    """
    rng = np.random.default_rng(seed)
    out = []
    for io in inputs:
        t = _length(steps, io)
        rest = tuple(d if d is not None else 1 for d in io.shape[2 if io.has_time else 1:])
        shape = (n, t, *rest) if io.has_time else (n, *rest)
        low = 1 if io.pad_value is not None and io.vocab_size is not None else 0
        if io.dtype == "bool":
            x = np.ones(shape, bool)
        elif io.vocab_size is not None:
            x = rng.integers(low, io.vocab_size, size=shape).astype(io.dtype)
        else:
            x = rng.random(shape, dtype=np.float32).astype(io.dtype)
        if io.pad_value is not None and io.has_time:
            lengths = rng.integers(max(1, t // 2), t + 1, size=n)
            lengths[0] = t
            for i, length in enumerate(lengths):
                if i % 2:
                    x[i, :t - length] = io.pad_value
                else:
                    x[i, length:] = io.pad_value
        out.append(x)
    return out


def _length(steps: int | dict, io) -> int:
    if not isinstance(steps, dict):
        return steps
    return steps.get(io.time_dim, max(steps.values(), default=1))


def read(samples) -> tuple[np.ndarray, np.ndarray | None]:
    """A single-input model's samples: an array, or a .npz path with 'x' (and optional labels 'y')."""
    xs, labels = read_inputs(samples, ["x"])
    return xs[0], labels


def read_inputs(samples, names: list[str]) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The caller's samples for inputs `names`: an array (one input), a dict, or a .npz path.

    A .npz holds 'x' (one input) or one array per input name, and optional labels 'y'.
    """
    if isinstance(samples, (str, Path)):
        path = Path(samples)
        arrays = load_npz(path, "samples", "a .npz with array 'x' (and optional integer labels 'y')")
        labels = arrays.pop("y", None) if names != ["y"] else None
        return _pick(arrays, names, f"samples file {path.name!r}"), labels
    if isinstance(samples, dict):
        return _pick({k: np.asarray(v) for k, v in samples.items()}, names, "samples"), None
    if len(names) != 1:
        raise DataError(f"the model has inputs {names}; give samples as a dict or .npz with one array per input")
    return [np.asarray(samples)], None


_ZIP_HEADERS = (b"PK\x03\x04", b"PK\x05\x06")   # a zip's first entry, or an empty archive


def load_npz(path: Path, role: str, expected: str) -> dict:
    """{name: array} of a .npz file; a missing, unreadable or non-.npz file is a DataError naming `role`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no data file at {str(path)!r} (it does not exist); expected {expected}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise DataError(f"{role} file {path.name!r} cannot be read: {exc.strerror}") from None
    if head not in _ZIP_HEADERS:
        what = ("a single .npy array, not a .npz archive" if head == b"\x93NUM"
                else "not a .npz archive (it has no zip header: a text file, or another format?)")
        raise DataError(f"{role} file {path.name!r} is {what}; expected {expected}, saved with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{role} file {path.name!r} is not a readable .npz: {exc}") from None


def _pick(arrays: dict, names: list[str], what: str) -> list[np.ndarray]:
    if names == ["x"] or len(names) == 1:
        key = "x" if "x" in arrays else names[0]
        if key not in arrays:
            raise DataError(f"{what} has no array 'x' (found {sorted(arrays)})")
        return [arrays[key]]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DataError(f"{what} has no arrays {missing} for the model inputs {names} (found {sorted(arrays)})")
    return [arrays[n] for n in names]


def check(xs: list, inputs, *, fixed_steps: int | None) -> list[np.ndarray]:
    """Check each array against its input (walker IOs); all samples are kept."""
    out, n = [], None
    for x, io in zip(xs, inputs):
        rest = tuple(io.shape[2 if io.has_time else 1:])
        lead = ("N", fixed_steps if fixed_steps is not None else "T") if io.has_time else ("N",)
        want = (*lead, *rest)
        ok = x.ndim == len(want) and all(w is None or g == w for g, w in zip(x.shape[len(lead):], rest))
        ok = ok and x.shape[0] > 0 and (not io.has_time or x.shape[1] > 0)
        ok = ok and (not io.has_time or fixed_steps is None or x.shape[1] == fixed_steps)
        if not ok:
            raise InputShapeError(f"samples for input {io.name!r} have shape {tuple(x.shape)}; expected "
                                  f"{_fmt(want)} (samples{', time steps' if io.has_time else ''}, features)")
        if n is not None and x.shape[0] != n:
            raise InputShapeError(f"samples for input {io.name!r} hold {x.shape[0]} samples; the first input's hold {n}")
        n = x.shape[0]
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            raise InputValueError(f"samples for input {io.name!r} hold NaN or inf values; expected finite numbers")
        if io.vocab_size is not None and x.size and (x.min() < 0 or x.max() >= io.vocab_size):
            raise InputValueError(f"samples for input {io.name!r} hold token ids outside [0, {io.vocab_size}); "
                                  f"found {int(x.min())}..{int(x.max())}")
        out.append(np.ascontiguousarray(x).astype(io.dtype, copy=False))
    by_axis: dict = {}
    for x, io in zip(out, inputs):
        if io.has_time:
            by_axis.setdefault(io.time_dim, {})[io.name] = int(x.shape[1])
    for lengths in by_axis.values():
        if len(set(lengths.values())) > 1:
            raise InputShapeError(f"the sequence inputs {sorted(lengths)} share one time axis in the model but "
                                  f"the samples have lengths {lengths}; expected one length")
    return out


def steps_for(*, dynamic_time: bool, model_steps: int | None, chunk: int, window: tuple = (1, 1)) -> int:
    """Sequence length for random samples: the model's own, a multiple of `chunk` when free.

    With no length of its own, the model gets one that leaves DEFAULT_STEPS frames after its
    windows on time: `window` is the walker's receptive field (frames, stride).
    """
    if not dynamic_time:
        return int(model_steps)
    frames, stride = window
    steps = model_steps if model_steps and model_steps > 1 else frames + (DEFAULT_STEPS - 1) * stride
    return max(chunk, -(-steps // chunk) * chunk)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def validate_chunk(chunk) -> int:
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise ConfigError(f"chunk must be a positive integer, got {chunk!r}")
    return int(chunk)
