"""Checking and converting what a caller feeds a model.

:class:`InputChecker` knows one model input (its shape with dynamic axes,
dtype, uint8 scaling and value range) and turns a caller's array into the
tensor the model takes, or raises a typed error that names what was expected
and what came. Nothing here guesses: a wrong rank, shape or dtype is an
:class:`InputShapeError`; NaN, inf or values outside the declared range are an
:class:`InputValueError`.

The checks are cheap enough for the streaming hot path: finiteness is tested
with one dot product over the (small) converted input, and only when that
overflows or is not finite are the values inspected one by one.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputShapeError, InputValueError

RANGE_SLACK = 1e-6
_min, _max = np.minimum.reduce, np.maximum.reduce


class InputChecker:
    """One model input: what it accepts and how a caller's value becomes it.

    Args:
        name: the input's name in the graph (used in messages).
        shape: its shape; ``None`` marks a dynamic axis (batch, time).
        dtype: the dtype the graph takes.
        uint8_scale: when set, uint8 arrays are accepted and multiplied by it.
        value_range: ``(lo, hi)`` float inputs must lie in, or ``None``.
        vocab_size: token-id inputs (those that feed an Embedding): ids must lie in
            ``[0, vocab_size)``; float ids are checked as the range ``[0, vocab_size - 1]``.
        axis_names: names for dynamic axes in messages, e.g. ``{0: "batch"}``.
    """

    def __init__(self, name: str, shape: tuple, dtype: np.dtype, *, uint8_scale: float | None = None,
                 value_range: tuple[float, float] | None = None, vocab_size: int | None = None,
                 axis_names: dict | None = None):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.uint8_scale = None if uint8_scale is None else self.dtype.type(uint8_scale)
        self.vocab_size = vocab_size if self.dtype.kind in "iuf" else None
        if self.vocab_size is not None and self.dtype.kind == "f" and value_range is None:
            value_range = (0.0, float(self.vocab_size - 1))   # float ids: the range checks them fast
        self.value_range = value_range
        self.axis_names = dict(axis_names or {})
        self.bits_limit = _bits_limit(self.dtype, value_range)

    # -- description -------------------------------------------------------------------------

    def describe(self, shape: tuple | None = None) -> str:
        """A shape such as ``(batch, 28, 28)`` with dynamic axes named."""
        shape = self.shape if shape is None else shape
        parts = [self.axis_names.get(i, "any") if d is None else str(d) for i, d in enumerate(shape)]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def accepted_dtypes(self) -> str:
        text = str(self.dtype)
        if self.uint8_scale is not None:
            text += f" (or uint8, scaled by {float(self.uint8_scale):.6g})"
        return text

    # -- conversion --------------------------------------------------------------------------

    def as_array(self, x) -> np.ndarray:
        """``x`` as an ndarray, or an InputShapeError when it is not array-like."""
        if isinstance(x, np.ndarray):
            return x
        try:
            return np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise InputShapeError(f"input {self.name!r} must be an array of shape {self.describe()}; "
                                  f"got a {type(x).__name__} that is not one ({exc})") from None

    def check_shape(self, x: np.ndarray, shape: tuple | None = None, hint: str = "") -> None:
        """Raise unless ``x`` has ``shape`` (default: the input's), ``None`` matching any size."""
        shape = self.shape if shape is None else shape
        if x.ndim != len(shape):
            raise InputShapeError(
                f"input {self.name!r} must have shape {self.describe(shape)} (rank {len(shape)}); "
                f"got shape {tuple(x.shape)} (rank {x.ndim}){hint}")
        for axis, (want, got) in enumerate(zip(shape, x.shape)):
            if want is not None and want != got:
                raise InputShapeError(
                    f"input {self.name!r} must have shape {self.describe(shape)}; got shape "
                    f"{tuple(x.shape)}: axis {axis} is {got}, expected {want}{hint}")

    def check_dtype(self, x: np.ndarray) -> None:
        if not self.converts(x.dtype):
            raise InputShapeError(f"input {self.name!r} must be {self.accepted_dtypes()}; got {x.dtype}")

    def converts(self, dtype: np.dtype) -> bool:
        """Whether arrays of ``dtype`` are accepted (and converted without loss of meaning)."""
        if dtype == self.dtype:
            return True
        if dtype == np.uint8 and self.uint8_scale is not None:
            return True
        if self.dtype.kind in "iu":  # token ids: any integer array (its values are checked)
            return dtype.kind in "iu"
        return dtype.kind == "f" and self.dtype.kind == "f"

    def convert_into(self, x: np.ndarray, out: np.ndarray) -> None:
        """Write ``x`` (already shape- and dtype-checked) into ``out``, scaling uint8 pixels."""
        if x.dtype == np.uint8 and self.uint8_scale is not None and self.dtype != np.uint8:
            np.multiply(x, self.uint8_scale, out=out)
        else:
            np.copyto(out, x, casting="same_kind")

    def convert(self, x: np.ndarray) -> np.ndarray:
        """A new array of the model's dtype holding ``x`` (already checked)."""
        out = np.empty(x.shape, self.dtype)
        self.convert_into(x, out)
        return out

    def prepare(self, x, shape: tuple | None = None, hint: str = "") -> np.ndarray:
        """Check ``x`` fully and return it as a contiguous array of the model's dtype."""
        x = self.as_array(x)
        self.check_dtype(x)
        self.check_shape(x, shape, hint)
        if self.vocab_size is not None and self.dtype.kind in "iu":
            self.check_ids(x)  # before the conversion, which could wrap a large id around
        scaled = x.dtype == np.uint8 and self.uint8_scale is not None
        arr = self.convert(x)
        if not scaled:
            self.check_values(arr)
        return arr

    # -- values ------------------------------------------------------------------------------

    def check_values(self, arr: np.ndarray) -> None:
        """Raise on NaN/inf, or on values outside the declared range (``arr`` already converted);
        for token-id inputs, on ids outside ``[0, vocab_size)``."""
        if self.vocab_size is not None and arr.dtype.kind in "iu":
            self.check_ids(arr)
            return
        if arr.dtype.kind != "f" or arr.size == 0:
            return
        flat = arr.reshape(-1)
        if self.value_range is not None:
            lo, hi = _min(flat), _max(flat)  # NaN propagates through both
            if lo >= self.value_range[0] - RANGE_SLACK and hi <= self.value_range[1] + RANGE_SLACK:
                return
            self._raise_nonfinite(arr)
            self._raise_range(float(lo), float(hi))
        if not math.isfinite(np.dot(flat, flat)):  # any NaN/inf makes the sum of squares non-finite
            self._raise_nonfinite(arr)  # (or a huge finite value overflowed it: then no error)

    def check_ids(self, arr: np.ndarray) -> None:
        """Raise unless every id of the integer array ``arr`` lies in ``[0, vocab_size)`` (float ids
        are checked after conversion, as a value range, by `check_values`)."""
        vocab = self.vocab_size
        if vocab is None or arr.size == 0 or self.dtype.kind == "f" or arr.dtype.kind not in "iu":
            return
        flat = arr.reshape(-1)
        if _min(flat) >= 0 and _max(flat) < vocab:
            return
        bad = (arr < 0) | (arr >= vocab)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputValueError(
            f"input {self.name!r} holds token id {int(arr[first])} at index {first}; ids must lie in "
            f"[0, {vocab}) (vocab_size {vocab}); {int(bad.sum())} id(s) are outside it")

    def _raise_nonfinite(self, arr: np.ndarray) -> None:
        finite = np.isfinite(arr)
        if finite.all():
            return
        nan = int(np.isnan(arr).sum())
        inf = int(arr.size - finite.sum()) - nan
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InputValueError(
            f"input {self.name!r} must hold finite {self.dtype} values; got {nan} NaN and {inf} inf "
            f"(first at index {first})")

    def _raise_range(self, lo: float, hi: float) -> None:
        want_lo, want_hi = self.value_range
        if self.vocab_size is not None:
            raise InputValueError(
                f"input {self.name!r} holds token ids from {lo:g} to {hi:g}; ids must lie in "
                f"[0, {self.vocab_size}) (vocab_size {self.vocab_size}: it feeds an Embedding)")
        hint = ""
        if self.uint8_scale is not None and hi > want_hi:
            hint = "; unscaled pixels? pass them as uint8 and the model scales them"
        raise InputValueError(
            f"input {self.name!r} values must lie in [{want_lo:g}, {want_hi:g}]; got min {lo:g}, "
            f"max {hi:g}{hint}")


def buffer_check(checker: "InputChecker", buf: np.ndarray):
    """The hot path's value check of a fixed input buffer, as a zero-argument callable.

    Cheap first: one integer max over the bits of a [0, hi] float32 input, or one dot product
    (finite only when every value is) for other float inputs; the full `check_values` (naming the
    bad value) only when that fails, or for inputs with another range or kind."""
    flat = buf.reshape(-1)
    if checker.bits_limit is not None:
        bits, limit, umax = flat.view(np.uint32), checker.bits_limit, np.maximum.reduce

        def check():
            if umax(bits) > limit:
                checker.check_values(buf)
    elif checker.value_range is None and buf.dtype.kind == "f":
        dot, isfinite = np.dot, math.isfinite

        def check():
            if not isfinite(dot(flat, flat)):
                checker.check_values(buf)
    else:
        def check():
            checker.check_values(buf)
    return check


def _bits_limit(dtype: np.dtype, value_range: tuple[float, float] | None) -> np.uint32 | None:
    """For float32 inputs in [0, hi]: the largest uint32 bit pattern of an accepted value.

    Non-negative float32 values order like their bit patterns read as uint32, and
    every negative value, NaN and inf reads as larger than ``hi``'s pattern, so a
    single integer max over the input's bits tells whether all of it is in range.
    (Only -0.0 is flagged without being wrong; the exact check then clears it.)
    """
    if dtype != np.float32 or value_range is None or value_range[0] != 0 or not 0 < value_range[1] < np.inf:
        return None
    return np.array(value_range[1], np.float32).view(np.uint32)[()]
