"""Streaming convolution front-ends (exporters/graph/handlers/conv.py, norm.py).

Keyword-spotting-shaped models (a dilated causal Conv1D stack, or a Conv2D
front-end over (time, frequency) with ZeroPadding2D on the past, then a GRU
and a per-frame softmax) exported with chunk 1 and 4, streamed frame by frame
through `runtime.load(stream.onnx)` with its conv caches and GRU state carried
inside, and compared with `full` and Keras. Layers that need the future are
refused for streaming with a reason naming the layer. The pipeline's
TimeDistributed CNN (seed 000/002) is native: no tf2onnx segment left.

`python tests/test_export_conv_stream.py` prints the worst parity per variant
over these models and the conv cases of the layer matrix.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_cases import pipeline_export, randomize, workdir  # noqa: E402

ATOL = 1e-5
STEPS = 12   # a multiple of every chunk below


def _positive_variances(model):
    """randomize() draws moving variances from N(0, s): make them valid variances again."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.abs(layer.moving_variance.numpy()) + 0.5)
    return model


def kws_conv1d():
    """Causal Conv1D stack with dilations 1, 2, 4 + batch norm + GRU + per-frame softmax."""
    import keras
    from keras import layers as L

    inp = keras.Input((None, 8), name="mfcc")
    y = L.Conv1D(8, 3, padding="causal", activation="relu", name="tcn1")(inp)
    y = L.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu", name="tcn2")(y)
    y = L.Conv1D(8, 3, padding="causal", dilation_rate=4, name="tcn4")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.GRU(8, return_sequences=True, name="gru")(y)
    return keras.Model(inp, L.Dense(4, activation="softmax", name="words")(y), name="kws_conv1d")


def kws_conv2d():
    """Conv2D over (time, frequency): ZeroPadding2D on the past of time + valid Conv2D, twice."""
    import keras
    from keras import layers as L

    inp = keras.Input((None, 10, 1), name="spectrogram")
    y = L.ZeroPadding2D(((2, 0), (1, 1)), name="past1")(inp)
    y = L.Conv2D(4, 3, activation="relu", name="conv1")(y)
    y = L.ZeroPadding2D(((4, 0), (1, 1)), name="past2")(y)
    y = L.Conv2D(4, 3, dilation_rate=(2, 1), activation="relu", name="conv2")(y)
    y = L.MaxPooling2D((1, 2), name="pool")(y)
    y = L.Reshape((-1, 20), name="frames")(y)
    y = L.GRU(8, return_sequences=True, name="gru")(y)
    return keras.Model(inp, L.Dense(4, activation="softmax", name="words")(y), name="kws_conv2d")


BUILDERS = {"kws_conv1d": kws_conv1d, "kws_conv2d": kws_conv2d}
STATES = {  # (input name, kind, shape without batch) in graph order
    "kws_conv1d": [("conv_in_0", "conv", (2, 8)), ("conv_in_1", "conv", (4, 8)), ("conv_in_2", "conv", (8, 8)),
                   ("h_in_3", "h", (8,))],
    "kws_conv2d": [("conv_in_0", "conv", (2, 10, 1)), ("conv_in_1", "conv", (4, 10, 4)), ("h_in_2", "h", (8,))],
}


@functools.cache
def model(name: str):
    import keras

    keras.utils.set_random_seed(5)
    return _positive_variances(randomize(BUILDERS[name](), seed=len(name), scale=0.5))


@functools.cache
def exported(name: str, chunk: int):
    from exporters.export import export_model

    return export_model(model(name), workdir() / "conv_stream" / f"{name}_{chunk}", chunk=chunk)


def _inputs(name: str, n: int = 3, seed: int = 2) -> np.ndarray:
    frame = tuple(d for d in model(name).inputs[0].shape[2:])
    return np.random.default_rng(seed).normal(0.0, 1.0, size=(n, STEPS, *frame)).astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 4])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_exports_every_variant_with_conv_caches(name, chunk):
    res = exported(name, chunk)
    assert set(res.paths) == {"full", "stream", "unrolled"} and res.report["skipped"] == {}
    for variant, entry in res.report["variants"].items():
        assert entry["converter"] == "rnnx"
        assert entry["parity"]["max_abs_diff"] <= ATOL
        assert "Conv" in entry["op_counts"]
        if variant != "full":
            assert entry["parity"]["streamed_vs_full_max_abs_diff"] <= ATOL
    import runtime

    stream = runtime.load(res.paths["stream"], batch=3)
    assert [(s.input, s.kind, tuple(s.shape[1:])) for s in stream.contract.states] == STATES[name]
    assert all(s.init == 0.0 for s in stream.contract.states)


@pytest.mark.parametrize("chunk", [1, 4])
@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("variant", ["stream", "unrolled"])
def test_streamed_frame_by_frame_equals_full_and_keras(name, chunk, variant):
    import runtime

    res = exported(name, chunk)
    x = _inputs(name)
    full = runtime.load(res.paths["full"]).predict(x)
    keras_y = np.asarray(model(name)(x, training=False))
    stream = runtime.load(res.paths[variant], batch=3)
    parts = [stream.step(x[:, t:t + chunk]) for t in range(0, STEPS, chunk)]
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == keras_y.shape == (3, STEPS, 4)
    assert np.abs(streamed - full).max() <= ATOL
    assert np.abs(streamed - keras_y).max() <= ATOL
    assert np.abs(full - keras_y).max() <= ATOL
    # the states are carried: a second pass from the current states differs, a reset repeats the first
    again = np.concatenate([stream.step(x[:, t:t + chunk]) for t in range(0, STEPS, chunk)], axis=1)
    assert np.abs(again - streamed).max() > 1e-4
    stream.reset()
    assert np.abs(stream.feed(x) - streamed).max() <= 1e-6


def _blocker(model, variant="stream") -> str | None:
    from exporters.graph import reference, walker

    ref, time_inputs, _ = reference.build_reference(model)
    return walker.plan(ref, time_inputs).blockers[variant]


def _before_gru(*front, shape=(None, 5)):
    import keras
    from keras import layers as L

    inp = keras.Input(shape)
    y = inp
    for layer in front:
        y = layer(y)
    if len(y.shape) == 4:
        y = L.Reshape((-1, int(y.shape[2]) * int(y.shape[3])))(y)
    return keras.Model(inp, L.GRU(4)(y))


@pytest.mark.parametrize("front, words", [
    (lambda L: [L.Conv1D(4, 3, strides=2, padding="same", name="strided_same")],
     ["layer 'strided_same' (Conv1D)", "stride 2 on time pads the start", "depends on the sequence's length"]),
    (lambda L: [L.ZeroPadding1D((2, 1), name="both_ends"), L.Conv1D(4, 4)],
     ["layer 'both_ends' (ZeroPadding1D)", "pads the end of the sequence with 1 frame(s)"]),
    (lambda L: [L.ZeroPadding1D((1, 0), name="short"), L.Conv1D(4, 3, name="wide")],
     ["layer 'short' (ZeroPadding1D)", "exactly 2 frames", "layer 'wide' (Conv1D) is not"]),
    (lambda L: [L.LayerNormalization(axis=[1, 2], name="ln_time")],
     ["layer 'ln_time' (LayerNormalization)", "across time steps"]),
    (lambda L: [L.BatchNormalization(axis=1, name="bn_time")],
     ["layer 'bn_time' (BatchNormalization)", "per time index"]),
], ids=["strided_same", "pad_end", "pad_mismatch", "ln_time", "bn_time"])
def test_windows_over_time_are_refused_with_the_reason(front, words):
    from keras import layers as L

    shape = (6, 5) if "time" in words[0] else (None, 5)
    why = _blocker(_before_gru(*front(L), shape=shape))
    assert why is not None
    for w in words:
        assert w in why, why


def test_streamable_fronts_have_no_blocker():
    from keras import layers as L

    assert _blocker(_before_gru(L.Conv1D(4, 3, padding="causal", dilation_rate=3))) is None
    assert _blocker(_before_gru(L.Conv1D(4, 1, padding="same"), L.MaxPooling1D(1))) is None
    assert _blocker(_before_gru(L.ZeroPadding1D((4, 0)), L.SeparableConv1D(4, 3, dilation_rate=2))) is None
    assert _blocker(_before_gru(L.Reshape((-1, 5, 1)), L.Conv2D(3, (1, 3), padding="same"),
                                L.AveragePooling2D((1, 2)))) is None
    # windows that drop, decimate or look ahead stream on the clock (tests/test_export_windows.py)
    assert _blocker(_before_gru(L.Conv1D(4, 3, padding="valid"))) is None
    assert _blocker(_before_gru(L.Conv1D(4, 2, strides=2, padding="causal"))) is None
    assert _blocker(_before_gru(L.Conv1D(4, 3, padding="same"))) is None
    assert _blocker(_before_gru(L.AveragePooling1D(2))) is None
    assert _blocker(_before_gru(L.Reshape((-1, 5, 1)), L.Conv2D(3, 3, padding="same"))) is None
    assert _blocker(_before_gru(L.Reshape((-1, 5, 1)), L.MaxPooling2D(2))) is None


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
def test_layer_norm_formula_below_opset_17_and_op_from_17():
    import keras
    from keras import layers as L

    from exporters.export import export_model

    inp = keras.Input((None, 6))
    y = L.LayerNormalization(epsilon=0.01)(L.Dense(6)(inp))
    m = randomize(keras.Model(inp, L.GRU(4, return_sequences=True)(y)), seed=9)
    rms = L.LayerNormalization(rms_scaling=True)(L.Dense(6)(inp))  # Keras' (deprecated) variance scaling
    m_rms = randomize(keras.Model(inp, L.GRU(4, return_sequences=True)(rms)), seed=9)
    for opset, has_op in ((13, False), (17, True), (18, True)):
        res = export_model(m, workdir() / "conv_stream" / f"ln_{opset}", opset=opset, chunk=2)
        res_rms = export_model(m_rms, workdir() / "conv_stream" / f"ln_rms_{opset}", opset=opset, chunk=2)
        for variant, entry in res.report["variants"].items():
            assert ("LayerNormalization" in entry["op_counts"]) == has_op, (opset, variant)
            assert entry["parity"]["max_abs_diff"] <= ATOL
            rms_entry = res_rms.report["variants"][variant]
            assert "LayerNormalization" not in rms_entry["op_counts"]
            assert rms_entry["parity"]["max_abs_diff"] <= ATOL


def test_pipeline_cnn_lstm_is_native_and_within_1e6():
    """Seed 000/002's TimeDistributed CNN: Conv/MaxPool written by rnnx, no tf2onnx segment spliced in."""
    import onnx

    res = pipeline_export("cnn_lstm")
    for variant, path in res.paths.items():
        entry = res.report["variants"][variant]
        assert entry["parity"]["max_abs_diff"] <= 1e-6
        if variant != "full":
            assert entry["parity"]["streamed_vs_full_max_abs_diff"] <= 1e-6
        nodes = onnx.load(str(path)).graph.node
        assert {"Conv", "MaxPool"} <= {n.op_type for n in nodes}
        spliced = [n.name for n in nodes if "/" in n.name]  # segment.splice prefixes '<step>/'
        assert not spliced, f"{variant}: tf2onnx segments left: {spliced[:3]}"


# -- figures -------------------------------------------------------------------------------------

def parity_table() -> dict:
    """Worst |onnx - keras| (and streamed vs full) per variant over the KWS models and the conv cases."""
    import layer_cases_conv
    from test_layer_matrix import exported as matrix_export

    worst: dict = {}

    def add(report):
        for variant, entry in report["variants"].items():
            p = entry["parity"]
            row = worst.setdefault(variant, {"max_abs_diff": 0.0, "streamed_vs_full_max_abs_diff": 0.0})
            row["max_abs_diff"] = max(row["max_abs_diff"], p["max_abs_diff"])
            if "streamed_vs_full_max_abs_diff" in p:
                row["streamed_vs_full_max_abs_diff"] = max(row["streamed_vs_full_max_abs_diff"],
                                                           p["streamed_vs_full_max_abs_diff"])
    for name in BUILDERS:
        for chunk in (1, 4):
            add(exported(name, chunk).report)
    for case in layer_cases_conv.CASES:
        add(matrix_export(case.name)[1].report)
    return worst


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    for variant, row in parity_table().items():
        print(f"{variant:9s} worst max|onnx-keras| {row['max_abs_diff']:.3g}  "
              f"worst streamed-vs-full {row['streamed_vs_full_max_abs_diff']:.3g}")
