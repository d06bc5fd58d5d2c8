"""Validate an exported variant against Keras with onnxruntime.

Checks run in this order and stop at the first miss, raising ParityError:
input/output names, then shapes, then values (max |onnx - keras| <= atol on
every output). Streaming variants are also fed whole sequences chunk by
chunk, carrying their states (of any shape) from call to call, and the
streamed result must equal Keras on the full sequences. Every figure
measured is returned.

A `Signature` says what the graph exchanges: its model inputs and outputs
(each with whether axis 1 is time) and its states. Inputs without a time axis
(side features) are fed whole on every call of a stream.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """max/mean |got - want|, argmax agreement over the last axis, and the worst element.

    A NaN (or infinity) where Keras gives the same (the mean of an all-padding prefix is 0/0
    in both) agrees; one on one side only is an infinite difference.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    with np.errstate(invalid="ignore"):
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        diff = np.where(same, 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
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


@dataclass(frozen=True)
class Signature:
    inputs: tuple     # (name, has_time) per model input, graph order
    outputs: tuple    # (name, has_time) per model output, graph order
    states: tuple = ()  # (input name, output name, shape without batch, dtype, init)
    flush: tuple | None = None  # a stream on a clock: (clock state input, zero frames that end a sequence)

    @property
    def input_names(self) -> list[str]:
        return [n for n, _ in self.inputs] + [s[0] for s in self.states]

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self.outputs] + [s[1] for s in self.states]

    def zero_states(self, n: int) -> dict:
        return {s[0]: np.full((n, *s[2]), s[4], dtype=s[3]) for s in self.states}

    @classmethod
    def from_contract(cls, contract) -> "Signature":
        """The signature of a file as the runtime reads it (`runtime.contract.Contract`)."""
        return cls(tuple((t.name, t.time_axis is not None) for t in contract.inputs),
                   tuple((t.name, t.per_step) for t in contract.outputs),
                   tuple((s.input, s.output, tuple(s.shape[1:]), s.dtype, s.init) for s in contract.states),
                   (contract.flush.state, contract.flush.frames) if contract.flush else None)


def check_names(sess, variant: str, sig: Signature) -> None:
    _require(variant, "input names", [i.name for i in sess.get_inputs()], sig.input_names)
    _require(variant, "output names", [o.name for o in sess.get_outputs()], sig.output_names)


def _feeds(sig: Signature, xs: list, rows: slice) -> dict:
    return {name: x[rows] for (name, _), x in zip(sig.inputs, xs)}


def run_full(sess, sig: Signature, xs: list) -> list:
    """The model outputs of a full-variant session on inputs `xs`, in batches of BATCH samples."""
    names = [n for n, _ in sig.outputs]
    n = len(xs[0])
    parts = [sess.run(names, _feeds(sig, xs, slice(i, i + BATCH))) for i in range(0, n, BATCH)]
    return [np.concatenate(p) for p in zip(*parts)]


def _compare_all(variant: str, label: str, sig: Signature, got: list, want: list, atol: float) -> dict:
    """Shapes then values of every output; the figures of the worst output (argmax of the first)."""
    worst, first_argmax = None, None
    for j, ((name, _), g, w) in enumerate(zip(sig.outputs, got, want)):
        _require(variant, f"{label} shape of {name!r}", g.shape, w.shape)
        stats = compare(g, w)
        _check_values(variant, f"{label} {name!r}" if len(sig.outputs) > 1 else label, stats, atol)
        first_argmax = stats["argmax_agreement"] if j == 0 else first_argmax
        if worst is None or stats["max_abs_diff"] > worst["max_abs_diff"]:
            worst = stats
    return dict(worst, argmax_agreement=first_argmax)


def validate_full(sess, sig: Signature, xs: list, keras_ys: list, *, atol: float) -> dict:
    """Check a full-variant session on whole sequences; returns the figures."""
    check_names(sess, "full", sig)
    ys = run_full(sess, sig, xs)
    stats = _compare_all("full", "output", sig, ys, keras_ys, atol)
    return {**_public(stats), "n_samples": int(xs[0].shape[0]), "steps": _steps(sig, xs)}


def _steps(sig: Signature, xs: list) -> int | None:
    for (_, has_time), x in zip(sig.inputs, xs):
        if has_time:
            return int(x.shape[1])
    return None


def stream_batched(sess, sig: Signature, xs: list, chunk: int) -> list:
    """`stream` over batches of at most BATCH sequences; returns the outputs only."""
    n = len(xs[0])
    parts = [stream(sess, sig, [x[i:i + BATCH] for x in xs], chunk)[0] for i in range(0, n, BATCH)]
    return [np.concatenate(p) for p in zip(*parts)]


def stream_calls(sess, sig: Signature, xs: list, chunk: int):
    """Every call of a chunk-by-chunk run of `xs` from zero states, in order: yields (feeds, model
    outputs, states after the call). The one feeder of export validation, quantization's
    calibration and its comparisons.

    A stream on a clock (`sig.flush`) also takes a last partial chunk (zero-padded), and is
    flushed at the end: the clock learns the sequence's length and zero chunks give the frames
    still waiting.
    """
    n = xs[0].shape[0]
    steps = _steps(sig, xs)
    states = sig.zero_states(n)
    names = sig.output_names
    n_out = len(sig.outputs)
    ends = steps + (-(steps + sig.flush[1]) % chunk + sig.flush[1] if sig.flush else 0)
    for start in range(0, ends, chunk):
        if sig.flush and start + chunk > steps:   # the clock learns the length before any frame past it
            clock = states[sig.flush[0]].copy()
            clock[:, 1] = steps
            states[sig.flush[0]] = clock
        feeds = {name: (_chunk_of(x, start, chunk) if has_time else x) for (name, has_time), x in zip(sig.inputs, xs)}
        feeds.update(states)
        result = sess.run(names, feeds)
        states = {s[0]: value for s, value in zip(sig.states, result[n_out:])}
        yield feeds, result[:n_out], states


def stream(sess, sig: Signature, xs: list, chunk: int):
    """Feed `xs` chunk by chunk, carrying states (`stream_calls`); returns (outputs, final states).

    An output with a time axis is the concatenation of every call's output; one
    without is the last call's.
    """
    per_call, states = [], None
    for _, outputs, states in stream_calls(sess, sig, xs, chunk):
        per_call.append(outputs)
    outs = []
    for j, (_, has_time) in enumerate(sig.outputs):
        outs.append(np.concatenate([r[j] for r in per_call], axis=1) if has_time else per_call[-1][j])
    return outs, states


def _chunk_of(x: np.ndarray, start: int, chunk: int) -> np.ndarray:
    """Steps start..start+chunk of `x`, zero-padded past its end."""
    part = x[:, start:start + chunk]
    if part.shape[1] == chunk:
        return part
    pad = np.zeros((part.shape[0], chunk - part.shape[1], *part.shape[2:]), part.dtype)
    return np.concatenate([part, pad], axis=1)


def validate_stream(variant: str, sess, sig: Signature, xs: list, *, keras_first: list, keras_full: list,
                    onnx_full: list | None, chunk: int, atol: float) -> dict:
    """Check a stream/unrolled session: one call from zero state, then whole sequences streamed."""
    check_names(sess, variant, sig)
    n = min(xs[0].shape[0], BATCH)  # the single-call check looks at the first batch
    feeds = {name: (x[:n, :chunk] if has_time else x[:n]) for (name, has_time), x in zip(sig.inputs, xs)}
    result = sess.run(sig.output_names, {**feeds, **sig.zero_states(n)})
    n_out = len(sig.outputs)
    for s, value in zip(sig.states, result[n_out:]):
        _require(variant, f"shape of {s[1]}", value.shape, (n, *s[2]))
    if sig.flush:   # the frames that became complete: the first of Keras' whole-sequence output
        ready = [j for j, (_, t) in enumerate(sig.outputs) if t and result[j].shape[1]]
        stats = _compare_all(variant, "first chunk output", Signature((), tuple(sig.outputs[j] for j in ready)),
                             [result[j] for j in ready], [keras_full[j][:n, :result[j].shape[1]] for j in ready],
                             atol) if ready else None
    else:
        stats = _compare_all(variant, "first chunk output", sig, result[:n_out], [k[:n] for k in keras_first], atol)
    streamed = stream_batched(sess, sig, xs, chunk)
    label = f"streamed ({_steps(sig, xs)} steps in chunks of {chunk}) output"
    sstats = _compare_all(variant, label, sig, streamed, keras_full, atol)
    figures = {**_public(stats or sstats), **_public(sstats, "streamed_"),
               "n_samples": int(xs[0].shape[0]), "steps": _steps(sig, xs)}
    if onnx_full is not None:
        figures["streamed_vs_full_max_abs_diff"] = max(
            compare(a, b)["max_abs_diff"] for a, b in zip(streamed, onnx_full))
    return figures
