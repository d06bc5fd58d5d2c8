"""Bad input never gives a silently wrong result: typed errors that say what was expected."""

import warnings

import numpy as np
import pytest

pytest.importorskip("keras")

import runtime  # noqa: E402
from runtime_fixtures import lstm_exports, sequences  # noqa: E402


@pytest.fixture(scope="module")
def paths():
    return lstm_exports()


@pytest.fixture
def stream(paths):
    return runtime.load(paths["stream"], batch=2)


@pytest.fixture(scope="module")
def full(paths):
    return runtime.load(paths["full"])


@pytest.mark.parametrize("shape, match", [
    ((6, 5), r"rank 3.*got shape \(6, 5\).*x\[None\]"),
    ((2, 6, 4), r"axis 2 is 4, expected 5"),
    ((2, 6, 5, 1), r"rank 3.*got shape \(2, 6, 5, 1\) \(rank 4\)"),
])
def test_full_wrong_shape(full, shape, match):
    with pytest.raises(runtime.InputShapeError, match=match):
        full.predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("x", [np.zeros((2, 6, 5), np.int64), np.zeros((2, 6, 5), bool),
                               np.full((2, 6, 5), "a")])
def test_full_wrong_dtype(full, x):
    with pytest.raises(runtime.InputShapeError, match=rf"must be float32 \(or uint8.*got {x.dtype}"):
        full.predict(x)


@pytest.mark.parametrize("bad, match", [(np.nan, "1 NaN and 0 inf"), (np.inf, "0 NaN and 1 inf"),
                                        (-np.inf, "0 NaN and 1 inf")])
def test_non_finite_values_are_refused(full, stream, bad, match):
    xs = sequences(2)
    xs[1, 2, 3] = bad
    with pytest.raises(runtime.InputValueError, match=match + r" \(first at index \(1, 2, 3\)\)"):
        full.predict(xs)
    before = stream.state
    with pytest.raises(runtime.InputValueError, match=match):
        stream.step(xs[:, 2])
    for name, arr in stream.state.items():  # the failed step left the states alone
        np.testing.assert_array_equal(arr, before[name])


def test_negative_values_are_refused_but_negative_zero_is_not(stream):
    frames = sequences(2)[:, 0]
    frames[1, 4] = -0.25
    with pytest.raises(runtime.InputValueError, match=r"lie in \[0, 1\]; got min -0.25"):
        stream.step(frames)
    frames[1, 4] = -0.0
    assert stream.step(frames).shape == (2, 4)


def test_unscaled_pixels_as_floats_are_refused(full, stream):
    pixels = sequences(2) * 255
    with pytest.raises(runtime.InputValueError, match=r"lie in \[0, 1\].*max 25\d.*uint8"):
        full.predict(pixels)
    with pytest.raises(runtime.InputValueError, match=r"lie in \[0, 1\]"):
        stream.step(pixels[:, 0].astype(np.float32))


@pytest.mark.parametrize("shape", [(2, 4), (3, 5), (2, 2, 5), (5,), (2, 1, 1, 5)])
def test_stream_wrong_shape_lists_the_accepted_ones(stream, shape):
    with pytest.raises(runtime.InputShapeError,
                       match=rf"\(2, 1, 5\) as \(streams, chunk, features\).*\(2, 5\) without the time "
                             rf"axis; got shape \({shape[0]},"):
        stream.step(np.zeros(shape, np.float32))


def test_stream_wrong_dtype(stream):
    with pytest.raises(runtime.InputShapeError, match="got int32"):
        stream.step(np.zeros((2, 5), np.int32))


@pytest.mark.parametrize("index", [2, -1, 1.0, True, [0, 5], "0", object()])
def test_stream_index_out_of_range(stream, index):
    with pytest.raises(runtime.StateError, match=r"runs 2 stream\(s\), indices 0..1"):
        stream.reset(index)


def test_state_of_wrong_shape_or_keys(stream):
    good = stream.state
    wrong = dict(good, h_in_1=np.zeros((2, 7), np.float32))
    with pytest.raises(runtime.StateError, match=r"'h_in_1' must have shape \(2, 6\).*got \(2, 7\)"):
        stream.state = wrong
    with pytest.raises(runtime.StateError, match="exactly the keys"):
        stream.state = {"h_in_0": good["h_in_0"]}
    with pytest.raises(runtime.StateError, match="finite"):
        stream.state = dict(good, c_in_0=np.full((2, 8), np.nan, np.float32))
    with pytest.raises(runtime.StateError, match="mapping"):
        stream.state = list(good.values())
    stream.state = good  # a refused assignment changed nothing and the right one still works


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(runtime.ModelFormatError, match="does not exist"):
        runtime.load(tmp_path / "missing.onnx")
    with pytest.raises(runtime.ModelFormatError, match="is a directory"):
        runtime.load(tmp_path)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(runtime.ModelFormatError, match="cannot load .*corrupt.onnx as an ONNX model"):
        runtime.load(corrupt)


def test_truncated_model_file(paths, tmp_path):
    data = paths["stream"].read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(runtime.ModelFormatError):
        runtime.load(cut)


def test_wrong_class_for_variant(paths):
    with pytest.raises(runtime.ModelFormatError, match="StreamingModel"):
        runtime.Model(paths["stream"])
    with pytest.raises(runtime.ModelFormatError, match="'full' model"):
        runtime.StreamingModel(paths["full"])


def test_unavailable_provider_is_an_error(paths):
    with pytest.raises(runtime.ProviderError, match="NoSuchExecutionProvider is not available"):
        runtime.load(paths["stream"], providers=["NoSuchExecutionProvider"])


def test_plain_onnx_loads_as_model_with_a_warning(paths, tmp_path):
    import onnx  # test-only: strip the metadata to make a plain ONNX file

    proto = onnx.load(paths["full"])
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, plain)
    with pytest.warns(runtime.UncheckedModelWarning, match="shapes cannot be checked"):
        model = runtime.load(plain)
    assert isinstance(model, runtime.Model) and model.labels is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(model.predict(sequences(2)), runtime.load(paths["full"]).predict(sequences(2)))
    with pytest.raises(runtime.InputValueError):
        model.predict(np.full((1, 6, 5), np.nan, np.float32))
