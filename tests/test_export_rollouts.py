"""Recurrent layers that run from another layer's state inside the model stream: the warm-up
RNN streams step by step, and the bounded rollout runs from its carried state in every call,
so each call returns the forecast Keras gives for the prefix seen so far.

The patterns: the TensorFlow time-series tutorial's autoregressive FeedBack model (a warm-up
`RNN(LSTMCell, return_state=True)`, then the same cell called on its own prediction for a
fixed number of steps); the same rollout written as the warm-up layer called again on a
one-step sequence with `initial_state=`; a GRU warm-up with a GRUCell rollout; and the LSTM
autoencoder of many public examples (last step → RepeatVector → LSTM → TimeDistributed).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_cases import random_export, workdir  # noqa: E402

ATOL = 1e-5
FEATURES, OUT_STEPS = 3, 4


def feedback():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None, FEATURES), name="series")
    cell = L.LSTMCell(8)
    dense = L.Dense(FEATURES)
    x, *state = L.RNN(cell, return_state=True)(inp)       # warm-up
    prediction = dense(x)
    predictions = [prediction]
    for _ in range(1, OUT_STEPS):
        x, state = cell(prediction, states=state)
        prediction = dense(x)
        predictions.append(prediction)
    return keras.Model(inp, ops.stack(predictions, axis=1), name="feedback")


def feedback_initial_state():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None, FEATURES), name="series")
    rnn = L.LSTM(6, return_state=True)
    dense = L.Dense(FEATURES)
    x, h, c = rnn(inp)
    prediction = dense(x)
    predictions = [prediction]
    for _ in range(1, OUT_STEPS):
        x, h, c = rnn(ops.expand_dims(prediction, 1), initial_state=[h, c])
        prediction = dense(x)
        predictions.append(prediction)
    return keras.Model(inp, ops.stack(predictions, axis=1), name="feedback_initial_state")


def gru_rollout():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None, FEATURES), name="series")
    cell = L.GRUCell(5)
    head = L.Dense(FEATURES)
    x, h = L.RNN(cell, return_state=True)(inp)
    prediction = head(x)
    predictions = [prediction]
    for _ in range(1, OUT_STEPS):
        x, (h,) = cell(prediction, states=[h])
        prediction = head(x)
        predictions.append(prediction)
    return keras.Model(inp, ops.stack(predictions, axis=1), name="gru_rollout")


def autoencoder():
    import keras
    from keras import layers as L

    inp = keras.Input((None, FEATURES), name="series")
    code = L.LSTM(6)(inp)
    h = L.LSTM(6, return_sequences=True)(L.RepeatVector(OUT_STEPS)(code))
    return keras.Model(inp, L.TimeDistributed(L.Dense(FEATURES))(h), name="autoencoder")


MODELS = {"feedback": feedback, "feedback_initial_state": feedback_initial_state, "gru_rollout": gru_rollout,
          "autoencoder": autoencoder}


@functools.cache
def exported(name: str, chunk: int):
    return random_export(MODELS[name], f"rollouts/{name}_{chunk}", seed=len(name), scale=0.5, chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_rollout_from_the_carried_state_gives_keras_forecast_for_every_prefix(name, chunk):
    import onnxruntime as ort

    import runtime

    model, res = exported(name, chunk)
    assert sorted(res.paths) == ["full", "stream", "unrolled"], res.report["skipped"]
    for variant, entry in res.report["variants"].items():
        assert entry["converter"] == "rnnx" and entry["parity"]["max_abs_diff"] <= ATOL, (variant, entry)
    x = np.random.default_rng(4).random((3, 6, FEATURES), dtype=np.float32)
    np.testing.assert_allclose(runtime.load(res.paths["full"]).predict(x), np.asarray(model(x)), atol=ATOL)
    for variant in ("stream", "unrolled"):
        stream = runtime.load(res.paths[variant], batch=len(x))
        assert [s.kind for s in stream.contract.states] == [k for k in ("h", "c") if k == "h" or name != "gru_rollout"]
        sess = ort.InferenceSession(str(res.paths[variant]), providers=["CPUExecutionProvider"])
        states = {s.input: np.zeros((len(x), *s.shape[1:]), np.float32) for s in stream.contract.states}
        for t in range(0, x.shape[1], chunk):
            piece = x[:, t:t + chunk]
            got = stream.step(piece if chunk > 1 else piece[:, 0])
            outs = sess.run(None, {stream.contract.inputs[0].name: piece, **states})
            states = dict(zip(states, outs[1:]))
            want = np.asarray(model(x[:, :t + chunk]))            # Keras' forecast for the prefix
            assert got.shape == (len(x), OUT_STEPS, FEATURES)
            np.testing.assert_allclose(got, want, atol=ATOL, err_msg=f"{variant} after {t + chunk} steps")
            np.testing.assert_allclose(outs[0], got, atol=1e-6)
        stream.reset()
        np.testing.assert_allclose(stream.feed(x), np.asarray(model(x)), atol=ATOL)


def test_a_sequence_input_with_initial_state_from_another_layer_is_still_refused_for_streams():
    """A decoder that reads a sequence of its own (teacher forcing) from the encoder's state:
    the stream would have to carry two time axes, so it stays `full` and says why."""
    import keras
    from keras import layers as L

    from exporters.export import export_model

    keras.utils.set_random_seed(5)
    enc = keras.Input((None, 3), name="encoder")
    dec = keras.Input((None, 3), name="decoder")
    _, h, c = L.LSTM(4, return_state=True)(enc)
    y = L.LSTM(4, return_sequences=True)(dec, initial_state=[h, c])
    model = keras.Model([enc, dec], L.Dense(3)(y), name="seq2seq")
    res = export_model(model, workdir() / "rollouts" / "seq2seq", chunk=1)
    assert sorted(res.paths) == ["full"], res.report["skipped"]
    assert "initial_state=" in res.report["skipped"]["stream"], res.report["skipped"]
