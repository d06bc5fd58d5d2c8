"""Recurrent models built the way public Keras examples build theirs, end to end.

Each is written here, small, from its example's architecture (not copied):
weather forecasting, character generation, IMDB sentiment with a
Bidirectional LSTM, the addition seq2seq, the English-French LSTM
encoder/decoder (training model and its two inference models), a speech
recognizer with a Conv2D front-end and Bidirectional GRUs, a captcha OCR
model (CNN + Bidirectional LSTM), ConvLSTM next-frame prediction, a ConvLSTM activity
recognizer, a video
classifier with a frame-mask input, and RNN(LSTMCell) from the RNN guide.
Each exports with the default variants (those it supports), then survives
`quantize_model` and `runtime.load`, whose outputs match Keras.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_cases import randomize, workdir  # noqa: E402

ALL, FULL = ("full", "stream", "unrolled"), ("full",)


def weather():
    import keras
    from keras import layers as L

    inp = keras.Input((12, 7))  # past hours x 7 sensor readings
    return keras.Model(inp, L.Dense(1)(L.LSTM(8)(inp)), name="weather")


def char_generation():
    import keras
    from keras import layers as L

    return keras.Sequential([keras.Input((10, 14)), L.LSTM(16), L.Dense(14, activation="softmax")], name="chars")


def imdb_bidirectional():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32")
    y = L.Embedding(50, 8)(inp)
    y = L.Bidirectional(L.LSTM(6, return_sequences=True))(y)
    y = L.Bidirectional(L.LSTM(6))(y)
    return keras.Model(inp, L.Dense(1, activation="sigmoid")(y), name="imdb")


def addition_seq2seq():
    import keras
    from keras import layers as L

    return keras.Sequential([keras.Input((7, 12)), L.LSTM(16), L.RepeatVector(4),
                             L.LSTM(16, return_sequences=True), L.Dense(12, activation="softmax")], name="addition")


def _translation_layers():
    import keras
    from keras import layers as L

    enc_in = keras.Input((None, 9), name="encoder_inputs")
    _, h, c = L.LSTM(8, return_state=True, name="encoder")(enc_in)
    dec_in = keras.Input((None, 11), name="decoder_inputs")
    dec_lstm = L.LSTM(8, return_sequences=True, return_state=True, name="decoder")
    dense = L.Dense(11, activation="softmax", name="decoder_dense")
    y, _, _ = dec_lstm(dec_in, initial_state=[h, c])
    training = keras.Model([enc_in, dec_in], dense(y), name="translation")
    encoder = keras.Model(enc_in, [h, c], name="translation_encoder")
    h_in, c_in = keras.Input((8,), name="h"), keras.Input((8,), name="c")
    y2, h2, c2 = dec_lstm(dec_in, initial_state=[h_in, c_in])
    decoder = keras.Model([dec_in, h_in, c_in], [dense(y2), h2, c2], name="translation_decoder")
    return training, encoder, decoder


def translation_training():
    return _translation_layers()[0]


def translation_encoder():
    return _translation_layers()[1]


def translation_decoder():
    return _translation_layers()[2]


def speech_recognizer():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 16), name="spectrogram")
    y = L.Reshape((-1, 16, 1))(inp)
    y = L.Conv2D(4, (3, 5), strides=(2, 2), padding="same", use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.Conv2D(4, (3, 3), strides=(1, 2), padding="same", use_bias=False)(y)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.Reshape((-1, 4 * 4))(y)
    for _ in range(2):
        y = L.Bidirectional(L.GRU(6, return_sequences=True, reset_after=True))(y)
        y = L.Dropout(0.5)(y)
    y = L.ReLU()(L.Dense(12)(y))
    return keras.Model(inp, L.Dense(9, activation="softmax")(y), name="speech")


def captcha_ocr():
    import keras
    from keras import layers as L

    inp = keras.Input((24, 8, 1), name="image")  # width is time
    y = L.Conv2D(4, (3, 3), activation="relu", padding="same")(inp)
    y = L.MaxPooling2D((2, 2))(y)
    y = L.Conv2D(4, (3, 3), activation="relu", padding="same")(y)
    y = L.MaxPooling2D((2, 2))(y)
    y = L.Reshape((24 // 4, (8 // 4) * 4))(y)
    y = L.Dropout(0.2)(L.Dense(8, activation="relu")(y))
    y = L.Bidirectional(L.LSTM(6, return_sequences=True, dropout=0.25))(y)
    y = L.Bidirectional(L.LSTM(4, return_sequences=True))(y)
    return keras.Model(inp, L.Dense(7, activation="softmax")(y), name="ocr")


def convlstm_next_frame():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 8, 8, 1))
    y = L.ConvLSTM2D(3, (3, 3), padding="same", return_sequences=True)(inp)
    y = L.BatchNormalization()(y)
    return keras.Model(inp, L.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same")(y), name="nextframe")


def har_convlstm():
    import keras
    from keras import layers as L

    # activity recognition: 4 sub-sequences of 8 samples x 3 axes each, one ConvLSTM2D row
    inp = keras.Input((4, 1, 8, 3))
    y = L.ConvLSTM2D(6, (1, 3), activation="relu")(inp)
    y = L.Dense(10, activation="relu")(L.Dropout(0.5)(L.Flatten()(y)))
    return keras.Model(inp, L.Dense(5, activation="softmax")(y), name="har_convlstm")


def video_classifier():
    import keras
    from keras import layers as L

    frames = keras.Input((6, 10), name="frame_features")
    mask = keras.Input((6,), dtype="bool", name="frame_mask")
    y = L.GRU(8, return_sequences=True)(frames, mask=mask)
    y = L.GRU(4)(y)
    y = L.Dense(4, activation="relu")(L.Dropout(0.4)(y))
    return keras.Model([frames, mask], L.Dense(3, activation="softmax")(y), name="video")


def rnn_lstm_cell():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 5))
    y = L.RNN(L.LSTMCell(8), return_sequences=True)(inp)
    return keras.Model(inp, L.Dense(3)(L.RNN(L.LSTMCell(6))(y)), name="rnn_cell")


def kws_valid_conv():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 40))  # log-mel frames of any length, as keyword spotters take them
    y = L.Conv1D(16, 15, padding="valid")(inp)     # a long valid window: 14 frames of look-back
    y = L.Activation("relu")(L.BatchNormalization()(y))
    return keras.Model(inp, L.Dense(4, activation="softmax")(L.GRU(12)(y)), name="kws_valid")


def har_lstm_batchnorm():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 9))  # accelerometer + gyroscope frames, as activity recognizers take them
    y = L.BatchNormalization()(L.LSTM(16)(inp))    # per-feature statistics on the last step
    return keras.Model(inp, L.Dense(6, activation="softmax")(L.Dropout(0.3)(y)), name="har_bn")


def flatten_sequence():
    import keras
    from keras import layers as L

    inp = keras.Input((12, 3))    # a fixed window of readings; the whole sequence flattened for the head
    y = L.Flatten()(L.LSTM(5, return_sequences=True)(inp))
    return keras.Model(inp, L.Dense(2)(y), name="flat_seq")


# name -> (builder, variants the default export makes, whether full is rnnx's own graph)
MODELS = {
    "weather": (weather, ALL, True),
    "chars": (char_generation, ALL, True),
    "imdb": (imdb_bidirectional, FULL, True),
    "addition": (addition_seq2seq, ALL, True),
    "translation": (translation_training, FULL, True),
    "translation_encoder": (translation_encoder, ALL, True),
    "translation_decoder": (translation_decoder, FULL, True),
    "speech": (speech_recognizer, FULL, True),
    "ocr": (captcha_ocr, FULL, True),
    "nextframe": (convlstm_next_frame, ALL, True),
    "har_convlstm": (har_convlstm, ALL, True),
    "video": (video_classifier, ALL, True),
    "rnn_cell": (rnn_lstm_cell, ALL, True),
    "kws_valid": (kws_valid_conv, ALL, True),
    "har_bn": (har_lstm_batchnorm, ALL, True),
    "flat_seq": (flatten_sequence, FULL, True),
}


def _export(name):
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(7)
    model = randomize(MODELS[name][0](), seed=len(name), scale=0.3)
    for layer in model.layers:  # a variance must be positive
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.abs(layer.moving_variance.numpy()) + 0.5)
    return model, export_model(model, workdir() / "user" / name, chunk=2)


@pytest.fixture(scope="module")
def exports():
    return {}


def _get(exports, name):
    if name not in exports:
        exports[name] = _export(name)
    return exports[name]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_user_model_exports_quantizes_and_runs(name, exports, tmp_path):
    import runtime
    from exporters.quantize import quantize_model

    _, variants, native = MODELS[name]
    model, res = _get(exports, name)
    assert tuple(v for v in ALL if v in res.paths) == variants, res.report["skipped"]
    for variant in variants:
        entry = res.report["variants"][variant]
        assert entry["parity"]["max_abs_diff"] <= 1e-5
        assert (entry["converter"] == "rnnx") == (native or variant != "full"), entry["fallback_reason"]
        assert "Loop" not in entry["op_counts"] or not native
    # the runtime runs the full export and agrees with Keras on fresh inputs
    full = runtime.load(res.paths["full"])
    contract = full.contract
    rng = np.random.default_rng(3)
    feeds = {}
    own = {t.name: t.shape for t in model.inputs}
    for spec in contract.inputs:
        shape = [2 if d is None else d for d in spec.shape]
        if spec.time_axis is not None and spec.shape[1] is None:  # the model's own length, else the validated one
            keras_len = (own.get(spec.name) or model.inputs[0].shape)[1]
            shape[1] = keras_len or contract.parity["steps"]
        if spec.dtype == "bool":
            feeds[spec.name] = np.ones(shape, bool)
        elif spec.vocab_size is not None:
            feeds[spec.name] = rng.integers(0, spec.vocab_size, size=shape).astype(spec.dtype)
        else:
            feeds[spec.name] = rng.random(shape, dtype=np.float32)
    got = full.predict(feeds if len(feeds) > 1 else next(iter(feeds.values())))
    xs = [feeds[s.name] for s in contract.inputs]
    want = model(xs[0] if len(xs) == 1 else xs, training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    got = [got[s.name] for s in contract.outputs] if isinstance(got, dict) else [got]
    for g, w in zip(got, want):
        assert np.abs(g - w).max() <= 1e-5
    # int8 dynamic quantization survives and loads (no gate: random weights, no labels)
    dst = tmp_path / "full.int8.onnx"
    report = quantize_model(res.paths["full"], dst, "int8-dynamic", allow_larger=True, latency_reps=0)
    assert dst.is_file() and report["mode"] == "int8-dynamic"
    assert runtime.load(dst).contract.precision in ("int8-dynamic", "mixed")


def test_the_ocr_and_speech_refusals_name_the_layer_that_needs_the_future(exports):
    """Their pooling and valid windows stream on the clock now, and OCR's Reshape to a fixed number
    of frames (keras-io writes width // 4) keeps each frame: what still cannot stream is named,
    every layer of it: OCR's and IMDB's Bidirectional layers, and deep-speech's Conv2D strided 2 with
    padding 'same' on time (its left padding depends on the length) before its Bidirectional ones."""
    expected = {"ocr": ("(Bidirectional): Bidirectional reads", "also refused: layer 'bidirectional"),
                "speech": ("(Conv2D): padding='same' with stride 2", "depends on the sequence's length",
                           "also refused: layer 'bidirectional"),
                "imdb": ("(Bidirectional): Bidirectional reads",)}
    for name, words in expected.items():
        _, res = _get(exports, name)
        why = res.report["skipped"]["stream"]
        assert all(w in why for w in words), why
        assert "Pooling" not in why and "Reshape" not in why, why


def test_a_long_valid_window_on_a_free_time_axis_is_validated_on_a_length_it_fits(exports, tmp_path):
    """Kernel 15 'valid' on a dynamic time axis: random samples leave 8 frames after the window,
    the full file keeps its free time axis, and quantize and bench take that length from the metadata."""
    from exporters.bench.data import default_inputs
    from exporters.bench.ort import describe
    from exporters.quantize import quantize_model

    _, res = _get(exports, "kws_valid")
    assert res.report["samples"]["steps"] == 15 - 1 + 8
    full = res.report["variants"]["full"]["parity"]
    assert full["other_lengths"]["steps"] == [15, 25], full
    import onnx

    graph = onnx.load(str(res.paths["full"])).graph
    assert graph.input[0].type.tensor_type.shape.dim[1].dim_param  # still any length
    dst = tmp_path / "full.fp16.onnx"
    quantize_model(res.paths["full"], dst, "fp16", allow_larger=True, latency_reps=2)
    assert dst.is_file()
    x, described = default_inputs([describe(res.paths["full"])], samples=4)
    assert x.shape[:2] == (4, 22) and "validated" in described["steps_from"], described


def test_an_encoder_and_a_decoder_input_keep_their_own_lengths(exports):
    """The English-French training model: 6 encoder steps and 9 decoder steps in one call."""
    import onnx

    import runtime

    model, res = _get(exports, "translation")
    graph = onnx.load(str(res.paths["full"])).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(graph.input) + list(graph.output)}
    assert dims == {"encoder_inputs": ["batch", "encoder_inputs_time", 9],
                    "decoder_inputs": ["batch", "decoder_inputs_time", 11], "y": ["batch", "decoder_inputs_time", 11]}
    assert [io["time_dim"] for io in res.report["inputs"] + res.report["outputs"]] == [
        "encoder_inputs_time", "decoder_inputs_time", "decoder_inputs_time"]
    other = res.report["variants"]["full"]["parity"]["other_lengths"]
    assert other["time_axes"]["encoder_inputs_time"] != other["time_axes"]["decoder_inputs_time"]
    rng = np.random.default_rng(0)
    enc, dec = rng.random((3, 6, 9), dtype=np.float32), rng.random((3, 9, 11), dtype=np.float32)
    got = runtime.load(res.paths["full"]).predict({"encoder_inputs": enc, "decoder_inputs": dec})
    assert got.shape == (3, 9, 11)
    assert np.abs(got - np.asarray(model([enc, dec], training=False))).max() <= 1e-5


def test_metadata_says_what_the_graph_gives(exports):
    """Flatten folds time into features: the output has no time axis, and the runtime reads it so."""
    import runtime

    _, res = _get(exports, "flat_seq")
    (out,) = res.report["outputs"]
    assert out["shape"] == [None, 2] and out["time_axis"] is None and out["per_step"] is False
    assert runtime.load(res.paths["full"]).contract.output.per_step is False
    _, res = _get(exports, "har_bn")   # a last step's per-feature layers stream
    assert res.report["skipped"] == {} and res.report["outputs"][0]["time_axis"] is None


def test_an_export_whose_metadata_disagrees_with_its_graph_is_never_written(exports):
    import onnx

    from exporters.errors import ModelFormatError
    from exporters.export import _check_readable
    from exporters import metadata

    _, res = _get(exports, "flat_seq")
    proto = onnx.load(str(res.paths["full"]))
    meta = metadata.read(proto)
    meta["outputs"][0].update(shape=[None, None, 2], per_step=True)   # a time axis the graph does not have
    metadata.attach(proto, meta)
    with pytest.raises(ModelFormatError, match="full export's metadata disagrees with its graph"):
        _check_readable("full", proto.SerializeToString())


def test_the_decoder_has_the_stream_layout_as_it_stands(exports):
    _, res = _get(exports, "translation_decoder")
    import onnx

    graph = onnx.load(str(res.paths["full"])).graph
    assert [i.name for i in graph.input] == ["decoder_inputs", "h", "c"]
    assert len(graph.output) == 3


def test_two_sensor_branches_stream_together_and_full_takes_any_two_lengths(tmp_path):
    """A multimodal activity recognizer: accelerometer and gyroscope, each through its own LSTM."""
    import keras
    import onnx
    from keras import layers as L

    from exporters.errors import InputShapeError
    from exporters.export import export_model

    keras.utils.set_random_seed(5)
    acc, gyro = keras.Input((None, 3), name="acc"), keras.Input((None, 3), name="gyro")
    y = L.Concatenate()([L.LSTM(6)(acc), L.LSTM(5)(gyro)])
    model = keras.Model([acc, gyro], L.Dense(4, activation="softmax")(y), name="two_sensors")
    rng = np.random.default_rng(1)
    uneven = {"acc": rng.random((3, 6, 3), dtype=np.float32), "gyro": rng.random((3, 7, 3), dtype=np.float32)}
    with pytest.raises(InputShapeError, match="one chunk of every sequence input per call"):
        export_model(model, tmp_path / "streams", samples=uneven)
    assert not (tmp_path / "streams").exists()
    res = export_model(model, tmp_path / "full", variants=["full"], samples=uneven)
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in onnx.load(str(res.paths["full"])).graph.input]
    assert dims == [["batch", "acc_time", 3], ["batch", "gyro_time", 3]]
    res = export_model(model, tmp_path / "all")      # random samples: one length, so both streams advance together
    assert sorted(res.paths) == ["full", "stream", "unrolled"], res.report["skipped"]


@pytest.mark.parametrize("variant", ALL)
def test_convlstm_files_quantize_int8_dynamic_and_fp16_and_stay_close(exports, tmp_path, variant):
    """rnnx's own ConvLSTM graphs: full is a Scan whose body int8-dynamic quantizes too (its
    recurrent Conv becomes a ConvInteger) and fp16 converts into a file onnxruntime loads; stream
    and unrolled are plain Conv ops. Every file stays close to the fp32 one, stream fed by the runtime."""
    import onnx

    import runtime
    from exporters.quantize import quantize_model

    model, res = _get(exports, "nextframe")
    src = res.paths[variant]
    x = np.random.default_rng(5).random((2, 6, 8, 8, 1), dtype=np.float32)
    want = np.asarray(model(x, training=False))
    for mode, tol in (("int8-dynamic", 0.05), ("fp16", 5e-3)):
        dst = tmp_path / f"{variant}.{mode}.onnx"
        report = quantize_model(src, dst, mode, allow_larger=True, latency_reps=0)
        assert report["recurrent_weights"] == ("int8" if mode == "int8-dynamic" else "float16"), report["notes"]
        if variant == "full" and mode == "int8-dynamic":
            scan = next(n for n in onnx.load(str(dst)).graph.node if n.op_type == "Scan")
            assert "ConvInteger" in {n.op_type for n in scan.attribute[0].g.node}
        m = runtime.load(dst, batch=2) if variant != "full" else runtime.load(dst)
        got = m.feed(x) if variant != "full" else m.predict(x)
        assert np.abs(np.asarray(got) - want).max() <= tol * max(1.0, float(np.abs(want).max()))
