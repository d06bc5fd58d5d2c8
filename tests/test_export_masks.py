"""Keras masks stream: a masked step leaves every recurrent state as it was, and each output is
what Keras gives, on post-padded, pre-padded and holed batches of different lengths, in full,
stream and unrolled (chunk 1 and chunk K), and through the runtime's step, feed and predict.

The patterns, built as the keras-io guide "Masking and padding with Keras" and public
sequence models build them: an `Embedding(mask_zero=True)` → LSTM sentiment classifier; a
`Masking` → LSTM → TimeDistributed(Dense) per-step tagger; a mask passed by hand (`mask=`
from a boolean input) to a GRU; an `Embedding(mask_zero=True)` → GRU → GlobalAveragePooling1D
text classifier (the masked mean); a stacked tagger whose second LSTM reads the first one's
mask; a SimpleRNN with `zero_output_for_mask=True`; a masked GRU fed backwards and a
Bidirectional LSTM tagger (full only: they read each sequence from its end).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_cases import random_export, workdir  # noqa: E402

ATOL = 1e-5
STEPS = 6


def sentiment():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.LSTM(8)(L.Embedding(40, 6, mask_zero=True)(inp))
    return keras.Model(inp, L.Dense(1, activation="sigmoid")(h), name="sentiment")


def tagger():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 5), name="frames")
    h = L.LSTM(7, return_sequences=True)(L.Masking(mask_value=0.0)(inp))
    return keras.Model(inp, L.TimeDistributed(L.Dense(3))(h), name="tagger")


def explicit_mask():
    import keras
    from keras import layers as L

    x = keras.Input((None, 4), name="x")
    valid = keras.Input((None,), dtype="bool", name="valid")
    h = L.GRU(6, return_sequences=True)(x, mask=valid)
    return keras.Model([x, valid], L.Dense(2)(h), name="explicit_mask")


def masked_mean():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.GRU(6, return_sequences=True)(L.Embedding(30, 5, mask_zero=True)(inp))
    return keras.Model(inp, L.Dense(2)(L.GlobalAveragePooling1D()(h)), name="masked_mean")


def stacked_tagger():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.LSTM(6, return_sequences=True)(L.Embedding(30, 5, mask_zero=True)(inp))
    h = L.LSTM(5, return_sequences=True)(h)
    return keras.Model(inp, L.Dense(4)(h), name="stacked_tagger")


def zero_output():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 3), name="frames")
    h = L.RNN(L.SimpleRNNCell(5), return_sequences=True, zero_output_for_mask=True)(L.Masking()(inp))
    return keras.Model(inp, h, name="zero_output")


def backwards():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.GRU(6, return_sequences=True, go_backwards=True)(L.Embedding(30, 5, mask_zero=True)(inp))
    return keras.Model(inp, L.Dense(2)(h), name="backwards")


def bidirectional():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.Bidirectional(L.LSTM(5, return_sequences=True))(L.Embedding(30, 5, mask_zero=True)(inp))
    last = L.Bidirectional(L.GRU(4))(h)
    return keras.Model(inp, [L.Dense(3)(h), last], name="bidirectional")


STREAMS = {"sentiment": sentiment, "tagger": tagger, "explicit_mask": explicit_mask, "masked_mean": masked_mean,
           "stacked_tagger": stacked_tagger, "zero_output": zero_output}
FULL_ONLY = {"backwards": backwards, "bidirectional": bidirectional}


@functools.cache
def exported(name: str, chunk: int):
    return random_export({**STREAMS, **FULL_ONLY}[name], f"masks/{name}_{chunk}", seed=len(name), scale=0.5, chunk=chunk)


def _batch(model, seed=3) -> dict:
    """Rows of STEPS steps: unpadded, post-padded, pre-padded, with holes, and all padding."""
    rng = np.random.default_rng(seed)
    valid = np.ones((5, STEPS), bool)
    valid[1, 4:] = False
    valid[2, :3] = False
    valid[3, [1, 2, 4]] = False
    valid[4, :] = False
    feeds = {}
    for spec in model.inputs:
        name = spec.name
        if spec.dtype == "bool":
            feeds[name] = valid
        elif "int" in str(spec.dtype):
            vocab = next(layer.input_dim for layer in model.layers if hasattr(layer, "input_dim"))
            feeds[name] = np.where(valid, rng.integers(1, vocab, size=valid.shape), 0).astype("int32")
        else:
            x = rng.random((*valid.shape, *[int(d) for d in spec.shape[2:]]), dtype=np.float32) + 0.1
            feeds[name] = np.where(valid[..., None], x, 0.0).astype(np.float32) if len(model.inputs) == 1 else x
    return feeds


def _keras(model, feeds, upto=None) -> list:
    cut = {k: v[:, :upto] for k, v in feeds.items()} if upto else feeds
    out = model([cut[t.name] for t in model.inputs] if len(model.inputs) > 1 else cut[model.inputs[0].name],
                training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _as_list(y) -> list:
    return list(y.values()) if isinstance(y, dict) else [y]


@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_masked_models_stream_every_prefix_like_keras(name, chunk):
    import runtime

    model, res = exported(name, chunk)
    assert sorted(res.paths) == ["full", "stream", "unrolled"], res.report["skipped"]
    for variant, entry in res.report["variants"].items():
        assert entry["converter"] == "rnnx" and entry["parity"]["max_abs_diff"] <= ATOL, (variant, entry)
    feeds = _batch(model)
    n = len(next(iter(feeds.values())))
    one = len(feeds) == 1
    whole = _keras(model, feeds)
    full = runtime.load(res.paths["full"])
    for got, want in zip(_as_list(full.predict(feeds[model.inputs[0].name] if one else feeds)), whole):
        np.testing.assert_allclose(got, want, atol=ATOL, err_msg="full")
    per_step = [len(o.shape) >= 2 and o.shape[1] is None for o in model.outputs]
    for variant in ("stream", "unrolled"):
        stream = runtime.load(res.paths[variant], batch=n)
        for t in range(0, STEPS, chunk):
            piece = {k: v[:, t:t + chunk] if chunk > 1 else v[:, t] for k, v in feeds.items()}
            got = _as_list(stream.step(piece[model.inputs[0].name] if one else piece))
            want = _keras(model, feeds, t + chunk)        # Keras on the prefix
            for g, w, seq in zip(got, want, per_step):
                if seq:
                    w = w[:, t:t + chunk] if chunk > 1 else w[:, t]
                np.testing.assert_allclose(g, w, atol=ATOL, err_msg=f"{variant} after {t + chunk} steps")
        stream.reset()
        fed = _as_list(stream.feed(feeds[model.inputs[0].name] if one else feeds))
        for g, w in zip(fed, whole):
            np.testing.assert_allclose(g, w, atol=ATOL, err_msg=f"{variant} feed")


def test_a_masked_step_leaves_the_states_as_they_were():
    """The stream's state outputs after an all-padding chunk equal its state inputs."""
    import runtime

    model, res = exported("tagger", 3)
    stream = runtime.load(res.paths["stream"], batch=2)
    x = np.random.default_rng(0).random((2, 3, 5), dtype=np.float32) + 0.1
    stream.step(x)
    before = {k: v.copy() for k, v in stream.state.items()}
    y = stream.step(np.zeros((2, 3, 5), np.float32))
    for k, v in stream.state.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    h = _keras(model, {"frames": x})[0][:, -1]
    np.testing.assert_allclose(y, np.repeat(h[:, None], 3, axis=1), atol=ATOL)   # the last output, held


@pytest.mark.parametrize("name", sorted(FULL_ONLY))
def test_masked_models_that_read_backwards_export_full_like_keras(name):
    import runtime

    model, res = exported(name, 1)
    assert sorted(res.paths) == ["full"], res.report["skipped"]
    assert res.report["variants"]["full"]["converter"] == "rnnx"
    assert res.report["variants"]["full"]["parity"]["max_abs_diff"] <= ATOL
    feeds = _batch(model)
    full = runtime.load(res.paths["full"])
    for got, want in zip(_as_list(full.predict(feeds["tokens"])), _keras(model, feeds)):
        np.testing.assert_allclose(got, want, atol=ATOL)
    for variant in ("stream", "unrolled"):
        assert "from its end" in res.report["skipped"][variant], res.report["skipped"][variant]


def test_a_handler_that_does_not_say_what_a_mask_does_is_refused_and_full_comes_from_tf2onnx():
    """A user's layer whose call reads the mask, with a handler that has no masked form
    (`takes_mask` left unanswered): the walker does not guess. `full` is whole-model tf2onnx,
    which keeps Keras' masking, and the streams are refused naming the layer."""
    import keras
    from keras import layers as L

    from exporters.export import export_model
    from exporters.graph.registry import LayerHandler, register_layer, unregister_layer

    @keras.saving.register_keras_serializable(package="rnnx_tests")
    class ZeroMasked(L.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, x, mask=None):
            return x if mask is None else x * keras.ops.cast(mask, x.dtype)[..., None]

    class Plain(LayerHandler):
        summary = "x, mask ignored"

        def emit(self, ctx, call):
            return [ctx.g.node("Identity", [call.inputs[0]])]

    keras.utils.set_random_seed(5)
    inp = keras.Input((None,), dtype="int32", name="tokens")
    h = L.LSTM(4, return_sequences=True)(L.Embedding(20, 4, mask_zero=True)(inp))
    model = keras.Model(inp, L.Dense(2)(ZeroMasked(name="zero_masked")(h)), name="user_masked")
    register_layer(ZeroMasked, Plain())
    try:
        res = export_model(model, workdir() / "masks" / "user_masked", chunk=1)
    finally:
        unregister_layer(ZeroMasked)
    assert sorted(res.paths) == ["full"], res.report["skipped"]
    entry = res.report["variants"]["full"]
    assert entry["converter"] != "rnnx" and entry["parity"]["max_abs_diff"] <= ATOL, entry
    reason = res.report["skipped"]["stream"]
    assert "reads the Keras mask of its input" in reason and "zero_masked" in reason, reason


@pytest.mark.parametrize("mode", ["int8-dynamic", "int8-static", "fp16"])
def test_a_masked_stream_quantizes_and_benches(mode, tmp_path):
    """quantize (its calibration and data read the export's padded samples) and bench take the
    masked stream file, and the quantized stream still holds its states on padding."""
    import runtime
    from exporters.bench.data import default_inputs
    from exporters.bench.ort import describe, outputs
    from exporters.quantize import quantize_model

    model, res = exported("tagger", 3)
    dst = tmp_path / f"stream.{mode}.onnx"
    calibration = None
    if mode == "int8-static":   # padded sequences, as a tagger's data come
        calibration = tmp_path / "calibration.npz"
        np.savez(calibration, x=_batch(model)["frames"])
    report = quantize_model(res.paths["stream"], dst, mode, calibration=calibration, allow_larger=True,
                            latency_reps=0)
    assert dst.is_file() and report["mode"] == mode
    stream = runtime.load(dst, batch=2)
    stream.step(np.random.default_rng(0).random((2, 3, 5), dtype=np.float32) + 0.1)
    before = {k: v.copy() for k, v in stream.state.items()}
    stream.step(np.zeros((2, 3, 5), np.float32))
    for k, v in stream.state.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    info = describe(dst)
    x, _ = default_inputs([info], samples=8)
    y = outputs(dst, info, x, "cpu", 1)
    assert y.shape[0] == 8 and np.isfinite(y).all()
