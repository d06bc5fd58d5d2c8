"""Validate an exported variant against Keras with onnxruntime.

Checks run in this order and stop at the first miss, raising ParityError:
input/output names, then shapes, then values (max |onnx - keras| <= atol on
the output `y`). Streaming variants are also fed whole sequences chunk by
chunk, carrying their states from call to call, and the streamed result must
equal Keras on the full sequences. Every figure measured is returned.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, ParityError

BATCH = 256  # sequences per onnxruntime call


def session(model_bytes: bytes):
    """An onnxruntime CPU session on one thread (the export machine is shared)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelFormatError(f"onnxruntime cannot load the exported model: {str(exc).splitlines()[0]}") from None


def compare(got: np.ndarray, want: np.ndarray) -> dict:
    """max/mean |got - want|, argmax agreement over the last axis, and the worst element."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    diff = np.abs(got - want)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    out = {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "argmax_agreement": (float(np.mean(got.argmax(-1) == want.argmax(-1)))
                             if got.ndim >= 2 and got.shape[-1] > 1 else None),
        "worst_index": [int(i) for i in worst],
        "worst_onnx": float(got[worst]) if diff.size else None,
        "worst_keras": float(want[worst]) if diff.size else None,
    }
    return out


def _require(variant: str, what: str, got, want) -> None:
    if list(got) != list(want):
        raise ParityError(f"{variant}: {what} are {list(got)}; expected {list(want)}")


def _check_values(variant: str, label: str, stats: dict, atol: float) -> None:
    if not stats["max_abs_diff"] <= atol:  # also catches NaN
        idx = ", ".join(map(str, stats["worst_index"]))
        raise ParityError(
            f"{variant}: {label} max |onnx - keras| = {stats['max_abs_diff']:.3g} > atol {atol:g}; "
            f"worst element y[{idx}]: onnx {stats['worst_onnx']:.9g}, keras {stats['worst_keras']:.9g}")


def _public(stats: dict, prefix: str = "") -> dict:
    keys = ("max_abs_diff", "mean_abs_diff", "argmax_agreement")
    return {prefix + k: stats[k] for k in keys}


def check_names(sess, variant: str, inputs: list[str], outputs: list[str]) -> None:
    _require(variant, "input names", [i.name for i in sess.get_inputs()], inputs)
    _require(variant, "output names", [o.name for o in sess.get_outputs()], outputs)


def run_full(sess, x: np.ndarray) -> np.ndarray:
    """The output `y` of a full-variant session on `x`, in batches of BATCH sequences."""
    return np.concatenate([sess.run(["y"], {"x": x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)])


def validate_full(sess, x: np.ndarray, keras_y: np.ndarray, *, atol: float) -> dict:
    """Check a full-variant session on whole sequences; returns the figures."""
    check_names(sess, "full", ["x"], ["y"])
    y = run_full(sess, x)
    _require("full", "output shape", y.shape, keras_y.shape)
    stats = compare(y, keras_y)
    _check_values("full", "output", stats, atol)
    return {**_public(stats), "n_samples": int(x.shape[0]), "steps": int(x.shape[1])}


def stream_batched(sess, x: np.ndarray, state_specs, chunk: int, per_step: bool) -> np.ndarray:
    """`stream` over batches of at most BATCH sequences; returns the output(s) only."""
    return np.concatenate([stream(sess, x[i:i + BATCH], state_specs, chunk, per_step)[0]
                           for i in range(0, len(x), BATCH)])


def stream(sess, x: np.ndarray, state_specs, chunk: int, per_step: bool):
    """Feed `x` chunk by chunk, carrying states; returns the output(s) and the final states."""
    n = x.shape[0]
    states = {s_in: np.zeros((n, units), np.float32) for s_in, _, units, *_ in state_specs}
    out_names = ["y"] + [s[1] for s in state_specs]
    ys = []
    for start in range(0, x.shape[1], chunk):
        result = sess.run(out_names, {"x": x[:, start:start + chunk], **states})
        ys.append(result[0])
        states = {s[0]: value for s, value in zip(state_specs, result[1:])}
    return (np.concatenate(ys, axis=1) if per_step else ys[-1]), states


def validate_stream(variant: str, sess, x: np.ndarray, *, keras_first: np.ndarray,
                    keras_full: np.ndarray, onnx_full: np.ndarray | None, state_specs, chunk: int,
                    per_step: bool, atol: float) -> dict:
    """Check a stream/unrolled session: one call from zero state, then whole sequences streamed."""
    check_names(sess, variant, ["x"] + [s[0] for s in state_specs], ["y"] + [s[1] for s in state_specs])
    n = min(x.shape[0], BATCH)  # the single-call check looks at the first batch
    first = x[:n, :chunk]
    keras_first = keras_first[:n]
    zeros = {s[0]: np.zeros((n, s[2]), np.float32) for s in state_specs}
    result = sess.run(None, {"x": first, **zeros})
    _require(variant, "output shape", result[0].shape, keras_first.shape)
    for s, value in zip(state_specs, result[1:]):
        _require(variant, f"shape of {s[1]}", value.shape, (n, s[2]))
    stats = compare(result[0], keras_first)
    _check_values(variant, "first chunk output", stats, atol)
    streamed = stream_batched(sess, x, state_specs, chunk, per_step)
    _require(variant, "streamed output shape", streamed.shape, keras_full.shape)
    sstats = compare(streamed, keras_full)
    _check_values(variant, f"streamed ({x.shape[1]} steps in chunks of {chunk}) output", sstats, atol)
    figures = {**_public(stats), **_public(sstats, "streamed_"),
               "n_samples": int(x.shape[0]), "steps": int(x.shape[1])}
    if onnx_full is not None:
        figures["streamed_vs_full_max_abs_diff"] = compare(streamed, onnx_full)["max_abs_diff"]
    return figures
