"""Keras 3 functional models that call `keras.ops` on symbolic tensors, built the way public
code builds them, stream (stream and unrolled, chunk 1 and chunk K): every prefix's output
equals Keras on that prefix, and the runtime's step, feed and predict agree with it.

The patterns: a classifier reading `h[:, -1, :]` (keras-io functional examples); a character
model sampling with `softmax(logits / temperature)` (keras-io text generation); a sentiment
model pooling with `ops.mean(h, axis=1)` and `GlobalMaxPooling1D` (keras-io text
classification, written with ops); a univariate forecaster that `expand_dims` a (batch, time)
series and `squeeze`s the per-step forecast (the TensorFlow time-series tutorial's shape);
a gated residual `tanh(h) * sigmoid(g) + h` (WaveNet/kws_streaming-style gating).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_cases import random_export, workdir  # noqa: E402

ATOL = 1e-5


def last_step_classifier():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6), name="frames")
    h = L.LSTM(8, return_sequences=True)(inp)
    h = L.LSTM(8, return_sequences=True)(h)
    return keras.Model(inp, L.Dense(4, activation="softmax")(h[:, -1, :]), name="last_step")


def temperature_sampler():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None,), dtype="int32", name="chars")
    h = L.GRU(12, return_sequences=True)(L.Embedding(30, 8)(inp))
    logits = L.Dense(30)(h[:, -1])
    return keras.Model(inp, ops.softmax(logits / 0.8), name="temperature")


def pooled_sentiment():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.LSTM(10, return_sequences=True)(L.Embedding(50, 8)(inp))
    pooled = ops.concatenate([ops.mean(h, axis=1), L.GlobalMaxPooling1D()(h)], axis=-1)
    return keras.Model(inp, L.Dense(1, activation="sigmoid")(pooled), name="pooled")


def series_forecaster():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None,), name="series")
    h = L.GRU(8, return_sequences=True)(ops.expand_dims(inp, -1))
    return keras.Model(inp, ops.squeeze(L.Dense(1)(h), axis=-1), name="forecaster")


def gated_residual():
    import keras
    from keras import layers as L
    from keras import ops

    inp = keras.Input((None, 4), name="audio")
    h = L.GRU(6, return_sequences=True)(inp)
    gate = L.Dense(6)(h)
    y = ops.add(ops.tanh(h) * ops.sigmoid(gate), h)
    return keras.Model(inp, L.Dense(2)(L.LSTM(5)(y)), name="gated")


MODELS = {"last_step": last_step_classifier, "temperature": temperature_sampler, "pooled": pooled_sentiment,
          "forecaster": series_forecaster, "gated": gated_residual}


@functools.cache
def exported(name: str, chunk: int):
    return random_export(MODELS[name], f"keras_ops/{name}_{chunk}", seed=len(name), scale=0.4, chunk=chunk)


def _sequences(model, n=3, steps=6, seed=2):
    rng = np.random.default_rng(seed)
    spec = model.inputs[0]
    rest = [int(d) for d in spec.shape[2:]]
    if "int" in str(spec.dtype):
        vocab = next(layer.input_dim for layer in model.layers if hasattr(layer, "input_dim"))
        return rng.integers(0, vocab, size=(n, steps, *rest)).astype("int32")
    return rng.random((n, steps, *rest), dtype=np.float32)


def _keras(model, x):
    return np.asarray(model(x, training=False))


@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_keras_ops_models_stream_every_prefix_like_keras(name, chunk):
    import onnxruntime as ort

    import runtime

    model, res = exported(name, chunk)
    assert sorted(res.paths) == ["full", "stream", "unrolled"], res.report["skipped"]
    for variant in ("full", "stream", "unrolled"):
        entry = res.report["variants"][variant]
        assert entry["converter"] == "rnnx" and entry["parity"]["max_abs_diff"] <= ATOL, entry
    x = _sequences(model)
    per_step = len(model.outputs[0].shape) >= 2 and model.outputs[0].shape[1] is None
    full = runtime.load(res.paths["full"])
    np.testing.assert_allclose(full.predict(x), _keras(model, x), atol=ATOL)
    for variant in ("stream", "unrolled"):
        stream = runtime.load(res.paths[variant], batch=len(x))
        sess = ort.InferenceSession(str(res.paths[variant]), providers=["CPUExecutionProvider"])
        states = {s.input: np.full((len(x), *s.shape[1:]), s.init, np.dtype(s.dtype)) for s in stream.contract.states}
        in_name = stream.contract.inputs[0].name
        for t in range(0, x.shape[1], chunk):
            piece = x[:, t:t + chunk]
            got = stream.step(piece if chunk > 1 else piece[:, 0])
            outs = sess.run(None, {in_name: piece, **states})
            states = dict(zip([s.input for s in stream.contract.states], outs[1:]))
            want = _keras(model, x[:, :t + chunk])            # Keras on the prefix
            if per_step:
                want = want[:, t:t + chunk]
                got = got if chunk > 1 else got[:, None]
            np.testing.assert_allclose(got, want, atol=ATOL, err_msg=f"{variant} after {t + chunk} steps")
            np.testing.assert_allclose(np.asarray(outs[0]).reshape(np.shape(got)), got, atol=1e-6)
        stream.reset()
        fed = stream.feed(x)
        np.testing.assert_allclose(fed, _keras(model, x) if not per_step else _keras(model, x), atol=ATOL)


def test_running_pooling_states_are_declared_in_the_metadata():
    _, res = exported("pooled", 1)
    import runtime

    kinds = [(s.kind, tuple(s.shape[1:]), s.init) for s in runtime.load(res.paths["stream"]).contract.states]
    assert ("sum", (10,), 0.0) in kinds and ("count", (1,), 0.0) in kinds
    assert any(k == "max" and shape == (10,) and init < -1e38 for k, shape, init in kinds)


def _refusal(build):
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(5)
    model = build()
    return export_model(model, workdir() / "keras_ops_refused" / model.name, chunk=1)


def test_slices_of_the_time_axis_other_than_the_last_step_are_refused_for_streams_with_the_reason():
    import keras
    from keras import layers as L
    from keras import ops

    def first_step():
        inp = keras.Input((None, 3))
        return keras.Model(inp, L.Dense(2)(L.LSTM(4, return_sequences=True)(inp)[:, 0]), name="first_step")

    def tail():
        inp = keras.Input((None, 3))
        return keras.Model(inp, L.LSTM(4, return_sequences=True)(inp)[:, 2:], name="tail")

    def attention_pool():   # softmax over time: needs every step's score
        inp = keras.Input((None, 3))
        h = L.LSTM(4, return_sequences=True)(inp)
        w = ops.softmax(L.Dense(1)(h), axis=1)
        return keras.Model(inp, ops.sum(h * w, axis=1), name="attention_pool")

    for build, why in ((first_step, "step 0 of the time axis"), (tail, "steps [2:] of the time axis"),
                       (attention_pool, "normalizes over the time axis")):
        res = _refusal(build)
        assert sorted(res.paths) == ["full"], res.report["skipped"]
        assert res.report["variants"]["full"]["parity"]["max_abs_diff"] <= ATOL
        for variant in ("stream", "unrolled"):
            reason = res.report["skipped"][variant]
            assert why in reason and "layer '" in reason, reason


def test_an_operation_without_a_handler_exports_full_and_the_refusal_names_it():
    import keras
    from keras import layers as L
    from keras import ops

    def running_total():
        inp = keras.Input((None, 3))
        return keras.Model(inp, ops.cumsum(L.GRU(4, return_sequences=True)(inp), axis=1), name="running_total")

    res = _refusal(running_total)
    assert sorted(res.paths) == ["full"], res.report["skipped"]
    assert res.report["variants"]["full"]["parity"]["max_abs_diff"] <= ATOL
    reason = res.report["skipped"]["stream"]
    assert "(Cumsum) has no rnnx handler" in reason, reason


def test_bench_feeds_a_token_model_token_ids_of_its_vocabulary():
    """`rnnx bench` without --data: random ids in [0, vocab) of the input's dtype, not floats."""
    from exporters.bench.data import default_inputs
    from exporters.bench.ort import describe, outputs

    _, res = exported("temperature", 1)
    info = describe(res.paths["stream"])
    x, described = default_inputs([info], samples=64)
    assert x.dtype == np.int32 and x.min() >= 0 and x.max() < 30 and len(np.unique(x)) > 20
    assert described["range"] == [0, 29] and "vocabulary" in described["range_from"]
    y = outputs(res.paths["stream"], info, x, "cpu", 1)
    assert y.shape == (64, 30) and np.allclose(y.sum(axis=-1), 1.0, atol=1e-5)
