"""ConvLSTM1D/2D (and a Conv3D look-ahead after one) on every prefix length, through the runtime.

Each model is exported at chunk 1 and chunk 3 with random weights. `full` (one Scan) is
run by the runtime on every prefix length 1..12, `stream` and `unrolled` fed every prefix
(a multiple of the chunk; any length for the next-frame model, whose Conv3D 'same' on time
puts it on the stream clock and is flushed), and each matches Keras within 1e-5. The files
carry no Loop, and unrolled no Scan either.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from export_cases import FORBIDDEN_IN_UNROLLED, random_export  # noqa: E402
from layer_cases_conv import conv_lstm1d, conv_lstm2d  # noqa: E402
from test_export_user_models import convlstm_next_frame, har_convlstm  # noqa: E402

ATOL = 1e-5
MODELS = {"conv_lstm1d": conv_lstm1d, "conv_lstm2d": conv_lstm2d, "nextframe": convlstm_next_frame,
          "har": har_convlstm}


@functools.cache
def exported(name: str, chunk: int):
    return random_export(MODELS[name], f"conv_lstm/{name}_c{chunk}", seed=len(name), scale=0.5, chunk=chunk)


def _x(model, steps: int) -> np.ndarray:
    frame = tuple(model.inputs[0].shape[2:])
    return np.random.default_rng(steps).random((2, steps, *frame), dtype=np.float32)


def _lengths(model, chunk: int, clocked: bool) -> list[int]:
    fixed = model.inputs[0].shape[1]
    if fixed is not None:
        return [fixed] if fixed % chunk == 0 or clocked else []
    return [t for t in range(1, 13) if clocked or t % chunk == 0]


@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_conv_lstm_matches_keras_on_every_prefix_in_every_variant(name, chunk):
    import onnx

    import runtime

    model, res = exported(name, chunk)
    assert set(res.paths) == {"full", "stream", "unrolled"}, res.report["skipped"]
    for variant, path in res.paths.items():
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert "Loop" not in ops and res.report["variants"][variant]["converter"] == "rnnx"
        assert ("Scan" in ops) == (variant == "full") and not (variant == "unrolled" and ops & FORBIDDEN_IN_UNROLLED)
    full = runtime.load(res.paths["full"])
    fixed = model.inputs[0].shape[1]
    for steps in ([fixed] if fixed else range(1, 13)):
        x = _x(model, steps)
        assert np.abs(full.predict(x) - model(x, training=False).numpy()).max() <= ATOL, ("full", steps)
    for variant in ("stream", "unrolled"):
        stream = runtime.load(res.paths[variant], batch=2)
        clocked = stream.contract.flush is not None
        assert clocked == (name == "nextframe")
        lengths = _lengths(model, chunk, clocked)
        assert lengths or fixed, (name, chunk)
        for steps in lengths:
            x = _x(model, steps)
            want = model(x, training=False).numpy()
            stream.reset()     # a feed without a flush leaves the states where the sequence ended
            got = stream.feed(x)
            assert got.shape == want.shape and np.abs(got - want).max() <= ATOL, (variant, steps)


def test_conv_lstm_states_are_frames_and_carry_between_calls():
    """A stream's h/c states are (batch, *out_frame, filters); fed in two halves with the states
    carried, the stream gives what one whole feed gives."""
    import runtime

    model, res = exported("conv_lstm2d", 1)
    stream = runtime.load(res.paths["stream"], batch=2)
    shapes = {s.input: tuple(s.shape) for s in stream.contract.states}
    assert shapes == {"h_in_0": (None, 5, 6, 3), "c_in_0": (None, 5, 6, 3),
                      "h_in_1": (None, 4, 2, 2), "c_in_1": (None, 4, 2, 2)}, shapes
    x = _x(model, 8)
    whole = stream.feed(x)
    stream.reset()
    first = stream.feed(x[:, :5])
    rest = stream.feed(x[:, 5:])
    assert np.abs(np.concatenate([first, rest], axis=1) - whole).max() <= ATOL
    stream.reset()
    assert np.abs(stream.feed(x) - whole).max() == 0.0


def test_a_conv_lstm_decoder_started_from_an_encoders_states_exports_full():
    """initial_state= from another ConvLSTM's return_state: `full` (one Scan each, the decoder's
    starting from the encoder's channels_last states) matches Keras; the streams refuse, naming it."""
    import keras
    from keras import layers as L

    import runtime

    def encoder_decoder():
        past, future = keras.Input((None, 5, 2), name="past"), keras.Input((None, 5, 2), name="future")
        _, h, c = L.ConvLSTM1D(3, 3, padding="same", return_state=True)(past)
        return keras.Model([past, future], L.ConvLSTM1D(3, 3, padding="same", return_sequences=True)(
            future, initial_state=[h, c]))

    model, res = random_export(encoder_decoder, "conv_lstm/encdec", seed=3, scale=0.5, chunk=1)
    assert set(res.paths) == {"full"} and "initial_state=" in res.report["skipped"]["stream"]
    assert res.report["variants"]["full"]["converter"] == "rnnx"
    rng = np.random.default_rng(0)
    past, future = rng.random((2, 7, 5, 2), dtype=np.float32), rng.random((2, 4, 5, 2), dtype=np.float32)
    got = runtime.load(res.paths["full"]).predict({"past": past, "future": future})
    assert np.abs(got - model([past, future], training=False).numpy()).max() <= ATOL
