"""Bad inputs to export: typed errors with clear messages, nothing half-written.

Also the tf2onnx fallback for layers rnnx cannot emit (Bidirectional in full).
"""

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

from export_cases import extra_model, op_types  # noqa: E402

from exporters.errors import (ConfigError, InputShapeError, ModelFormatError, ParityError,  # noqa: E402
                              UnsupportedLayerError)
from exporters.export import export_model  # noqa: E402
from exporters.keras_io import load_keras  # noqa: E402


def _bidirectional():
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((5, 3)), layers.Bidirectional(layers.LSTM(4), name="both_ways"),
                             layers.Dense(2, activation="softmax")], name="bidi")


def _lambda_model():
    import keras
    from keras import layers

    return keras.Sequential([keras.Input((5, 3)), layers.Lambda(lambda t: t * 2.0, name="times_two"),
                             layers.LSTM(4), layers.Dense(2)], name="with_lambda")


def _no_files(path):
    return not path.exists() or not any(path.iterdir())


def test_not_a_keras_file(tmp_path):
    bogus = tmp_path / "model.keras"
    bogus.write_text("this is not a model")
    with pytest.raises(ModelFormatError, match="not a Keras model"):
        load_keras(bogus)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(ModelFormatError, match="expected a name ending in"):
        load_keras(notes)
    with pytest.raises(ModelFormatError, match="no Keras model file"):
        export_model(tmp_path / "missing.keras", tmp_path / "out")
    assert _no_files(tmp_path / "out")


def test_model_without_recurrent_layer(tmp_path):
    import keras

    dense = keras.Sequential([keras.Input((5, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ModelFormatError, match="no recurrent layer"):
        export_model(dense, tmp_path / "out")
    assert _no_files(tmp_path / "out")


def test_bidirectional_full_is_one_native_bidirectional_op(tmp_path):
    res = export_model(_bidirectional(), tmp_path / "out", variants=("full",))
    entry = res.report["variants"]["full"]
    assert entry["converter"] == "rnnx" and entry["fallback_reason"] is None
    assert entry["parity"]["max_abs_diff"] <= 1e-5
    import onnx

    nodes = onnx.load(res.paths["full"]).graph.node
    rnn = [n for n in nodes if n.op_type in ("LSTM", "GRU", "RNN")]
    assert len(rnn) == 1 and not any(n.op_type in ("Loop", "Scan") for n in nodes)
    assert onnx.helper.get_attribute_value(next(a for a in rnn[0].attribute if a.name == "direction")) == b"bidirectional"
    import onnxruntime as ort

    sess = ort.InferenceSession(str(res.paths["full"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"] and [o.name for o in sess.get_outputs()] == ["y"]
    x = np.random.default_rng(0).random((3, 5, 3), dtype=np.float32)
    assert sess.run(["y"], {"x": x})[0].shape == (3, 2)


@pytest.mark.parametrize("variant", ["stream", "unrolled"])
def test_bidirectional_refused_for_streaming(tmp_path, variant):
    with pytest.raises(UnsupportedLayerError, match=f"cannot export {variant}: layer 'both_ways' "
                                                    r"\(Bidirectional\).*backwards from its end"):
        export_model(_bidirectional(), tmp_path / "out", variants=("full", variant))
    assert _no_files(tmp_path / "out")


def test_default_variants_skip_what_the_model_cannot_stream_and_say_why(tmp_path):
    lines = []
    res = export_model(_bidirectional(), tmp_path / "out", progress=lines.append)
    assert set(res.paths) == {"full"} and set(res.report["skipped"]) == {"stream", "unrolled"}
    assert "both_ways" in res.report["skipped"]["stream"]
    assert any(line.startswith("stream: skipped: layer 'both_ways'") for line in lines)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["export.json", "full.onnx"]


def test_lambda_in_a_file_is_refused_in_safe_mode(tmp_path):
    path = tmp_path / "lambda.keras"
    _lambda_model().save(path)
    with pytest.raises(UnsupportedLayerError, match="safe_mode") as info:
        export_model(path, tmp_path / "out")
    assert "safe_mode=False" in str(info.value)  # says it will not be switched off
    assert _no_files(tmp_path / "out")


def test_lambda_in_memory_is_refused(tmp_path):
    with pytest.raises(UnsupportedLayerError, match="Lambda.*safe_mode"):
        export_model(_lambda_model(), tmp_path / "out")


def test_samples_of_the_wrong_shape(tmp_path):
    model = extra_model("lstm_no_bias")  # input (6, 3)
    with pytest.raises(InputShapeError, match=r"samples for input 'x' have shape \(4, 6, 5\); expected \(N, T, 3\)"):
        export_model(model, tmp_path / "out", samples=np.zeros((4, 6, 5), np.float32))
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 3), np.float32))
    with pytest.raises(InputShapeError):
        export_model(model, tmp_path / "out", samples=tmp_path / "bad.npz")
    assert _no_files(tmp_path / "out")


def test_output_dir_that_is_a_file(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        export_model(extra_model("lstm_no_bias"), target)
    assert target.read_text() == "keep me"


def test_parity_miss_leaves_no_model_and_names_the_worst_element(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ParityError, match=r"max \|onnx - keras\| = .* > atol 1e-30; worst element y\[\d+, \d+\]: "
                                          r"onnx .*, keras "):
        export_model(extra_model("wide_lstm_relu"), out, atol=1e-30)
    assert _no_files(out)


@pytest.mark.parametrize("kwargs, match", [
    ({"variants": ("full", "sideways")}, "variants"),
    ({"chunk": 0}, "chunk"),
    ({"opset": 7}, "opset"),
    ({"atol": -1.0}, "atol"),
    ({"labels": ["a", "b"]}, "2 labels given; the model output has 3"),
])
def test_bad_options(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        export_model(extra_model("lstm_no_bias"), tmp_path / "out", **kwargs)
    assert _no_files(tmp_path / "out")


def test_fallback_keeps_unrolled_free_of_loops(tmp_path):
    res = export_model(extra_model("gru_reset_before"), tmp_path / "out", variants=("unrolled",), chunk=2)
    assert not op_types(res.paths["unrolled"]) & {"Loop", "Scan", "If", "LSTM", "GRU", "RNN"}


def test_a_residual_model_exports_natively_and_streams(tmp_path):
    import keras
    from keras import layers

    keras.utils.set_random_seed(4)
    inp = keras.Input((5, 3))
    seq = layers.LSTM(4, return_sequences=True)(inp)
    skip = layers.Dense(4)(inp)
    out = layers.Dense(2)(layers.LSTM(3)(layers.Add()([seq, skip])))
    model = keras.Model(inp, out, name="residual")
    res = export_model(model, tmp_path / "out")
    assert set(res.paths) == {"full", "stream", "unrolled"}
    for entry in res.report["variants"].values():
        assert entry["converter"] == "rnnx" and entry["parity"]["max_abs_diff"] <= 1e-5
    assert res.report["variants"]["stream"]["parity"]["streamed_vs_full_max_abs_diff"] <= 1e-5


def test_a_subclassed_model_is_refused(tmp_path):
    import keras

    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.rnn = keras.layers.LSTM(3)

        def call(self, x):
            return self.rnn(x)

    model = Custom()
    model(np.zeros((1, 4, 2), np.float32))
    with pytest.raises(UnsupportedLayerError, match="subclassed"):
        export_model(model, tmp_path / "out")


def test_sample_token_ids_outside_the_vocabulary_are_refused(tmp_path):
    from runtime.errors import InputValueError

    model = extra_model("embedding_gru")  # Embedding(20, ...) over int32 ids
    ids = np.full((3, 6), 5, np.int32)
    ids[1, 2] = 20
    with pytest.raises(InputValueError, match=r"token ids outside \[0, 20\); found 5\.\.20"):
        export_model(model, tmp_path / "out", samples=ids)
    assert _no_files(tmp_path / "out")
