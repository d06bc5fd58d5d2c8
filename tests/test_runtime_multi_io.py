"""Format-2 models: several inputs (one without a time axis, one of token ids), several
outputs, and states of any shape (a convolution-like (batch, 2, 3) cache next to an RNN's h).

The models are tiny ONNX graphs built with onnx.helper (tests/runtime_fixtures.py), whose
result is known in numpy, so every number below is checked against that reference.
"""

import numpy as np
import pytest

pytest.importorskip("onnx")

import runtime  # noqa: E402
from runtime_fixtures import EMB, VOCAB, W_SPEAKER, multi_io_models, multi_stream_reference  # noqa: E402

ATOL = 1e-6


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return multi_io_models(tmp_path_factory.mktemp("multi"))


def _data(b=2, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((b, steps, 3), dtype=np.float32), rng.integers(0, VOCAB, (b, steps)),
            rng.random((b, 2), dtype=np.float32))


def test_stream_steps_with_several_inputs_and_outputs(paths):
    xs, tokens, speaker = _data()
    model = runtime.load(paths["stream"], batch=2)
    assert isinstance(model, runtime.StreamingModel)
    assert model.input_names == ("x", "tokens", "speaker") and model.output_names == ("y", "z")
    assert model.state_names == ("h_in_0", "conv_in_1")
    assert model.state["conv_in_1"].shape == (2, 2, 3)
    zs = []
    for t in range(xs.shape[1]):
        out = model.step({"x": xs[:, t:t + 1], "tokens": tokens[:, t:t + 1], "speaker": speaker})
        assert set(out) == {"y", "z"} and out["y"].shape == (2, 4) and out["z"].shape == (2, 1, 3)
        zs.append(out["z"])
    h, z, cache = multi_stream_reference(xs, tokens, speaker)
    np.testing.assert_allclose(out["y"], h, atol=ATOL)
    np.testing.assert_allclose(np.concatenate(zs, axis=1), z, atol=ATOL)
    np.testing.assert_allclose(model.state["conv_in_1"], cache, atol=ATOL)


def test_stream_axes_left_out_and_feed(paths):
    xs, tokens, speaker = _data(b=1)
    model = runtime.load(paths["stream"])
    for t in range(xs.shape[1]):  # one frame of one stream: no batch, no time axis; speaker (2,)
        out = model.step({"x": xs[0, t], "tokens": np.asarray(tokens[0, t]), "speaker": speaker[0]})
        assert out["y"].shape == (4,) and out["z"].shape == (3,)
    h, z, _ = multi_stream_reference(xs, tokens, speaker)
    np.testing.assert_allclose(out["y"], h[0], atol=ATOL)
    model.reset()
    fed = model.feed({"x": xs[0], "tokens": tokens[0], "speaker": speaker[0]})
    np.testing.assert_allclose(fed["y"], h[0], atol=ATOL)
    np.testing.assert_allclose(fed["z"], z[0], atol=ATOL)


def test_nd_state_reset_and_restore(paths):
    xs, tokens, speaker = _data(b=3, steps=4)
    model = runtime.load(paths["stream"], batch=3)
    model.feed({"x": xs[:, :2], "tokens": tokens[:, :2], "speaker": speaker})
    saved = model.state
    model.reset(1)
    after = model.state
    assert np.all(after["conv_in_1"][1] == 0) and np.all(after["h_in_0"][1] == 0)
    np.testing.assert_array_equal(after["conv_in_1"][[0, 2]], saved["conv_in_1"][[0, 2]])
    model.state = saved
    rest = model.feed({"x": xs[:, 2:], "tokens": tokens[:, 2:], "speaker": speaker})
    h, z, _ = multi_stream_reference(xs, tokens, speaker)
    np.testing.assert_allclose(rest["y"], h, atol=ATOL)
    np.testing.assert_allclose(rest["z"], z[:, 2:], atol=ATOL)
    with pytest.raises(runtime.StateError, match=r"'conv_in_1' must have shape \(3, 2, 3\)"):
        model.state = dict(saved, conv_in_1=np.zeros((3, 6), np.float32))


def test_stream_several_inputs_need_a_mapping(paths):
    model = runtime.load(paths["stream"])
    with pytest.raises(runtime.InputShapeError, match=r"inputs \['x', 'tokens', 'speaker'\]: pass a mapping"):
        model.step(np.zeros(3, np.float32))
    with pytest.raises(runtime.InputShapeError, match=r"inputs must be exactly"):
        model.step({"x": np.zeros(3, np.float32)})
    with pytest.raises(runtime.InputShapeError, match=r"'speaker' must have shape \(1, 2\) as \(streams, features\)"):
        model.step({"x": np.zeros(3, np.float32), "tokens": np.zeros(1, np.int64),
                    "speaker": np.zeros(3, np.float32)})


def test_full_model_with_several_inputs_and_outputs(paths):
    xs, tokens, speaker = _data(b=3, steps=6)
    model = runtime.load(paths["full"])
    assert isinstance(model, runtime.Model) and model.output_names == ("y", "z")
    out = model.predict({"x": xs, "tokens": tokens, "speaker": speaker})
    np.testing.assert_allclose(out["y"], EMB[tokens].sum(axis=1) + speaker @ W_SPEAKER, atol=1e-5)
    np.testing.assert_allclose(out["z"], 2 * xs, atol=ATOL)
    split = model.predict({"x": xs, "tokens": tokens, "speaker": speaker}, max_batch=2)
    np.testing.assert_allclose(split["y"], out["y"], atol=ATOL)
    tokens32 = tokens.astype(np.int32)  # any integer dtype is accepted for ids
    np.testing.assert_allclose(model.predict({"x": xs, "tokens": tokens32, "speaker": speaker})["y"],
                               out["y"], atol=ATOL)
    with pytest.raises(runtime.InputShapeError, match="same batch size"):
        model.predict({"x": xs, "tokens": tokens[:2], "speaker": speaker})
    with pytest.raises(runtime.InputShapeError, match="pass a mapping"):
        model.predict(xs)


def test_real_keras_model_with_a_side_input(tmp_path):
    """The exporter's format-2 output for a two-input Keras model, streamed and run whole."""
    pytest.importorskip("keras")
    from runtime_fixtures import two_input_exports

    exports = two_input_exports()
    rng = np.random.default_rng(4)
    xs, speaker = rng.random((3, 6, 5), dtype=np.float32), rng.random((3, 3), dtype=np.float32)
    want = exports["keras"].predict([xs, speaker], verbose=0)
    full = runtime.load(exports["full"])
    assert full.input_names == ("x", "speaker") and full.contract.inputs[1].time_axis is None
    np.testing.assert_allclose(full.predict({"x": xs, "speaker": speaker}), want, atol=1e-5)
    stream = runtime.load(exports["stream"], batch=3)
    for t in range(xs.shape[1]):
        y = stream.step({"x": xs[:, t], "speaker": speaker})
    np.testing.assert_allclose(y, want, atol=1e-5)
    stream.reset()
    np.testing.assert_allclose(stream.feed({"x": xs, "speaker": speaker}), want, atol=1e-5)
