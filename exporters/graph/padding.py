"""Keras' window arguments as ONNX wants them: an int-or-tuple argument per axis, and TF's
'same' padding (the smaller half first) of axes whose size is known."""

from __future__ import annotations


def ints(value, n: int) -> tuple:
    """A Keras `kernel_size`/`strides`/`dilation_rate` (an int or a tuple) as `n` ints."""
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * n


def same_pads(sizes, kernel, strides, dilation) -> list:
    """ONNX `pads` (begins, then ends) equal to TF's 'same' on axes of these `sizes`."""
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilation):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end
