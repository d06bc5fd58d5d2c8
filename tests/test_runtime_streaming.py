"""StreamingModel on real exports: streaming equals full, multi-stream batches, states."""

import numpy as np
import pytest

pytest.importorskip("keras")

import runtime  # noqa: E402
from runtime_fixtures import LABELS, lstm_exports, lstm_stream_chunk3, sequences  # noqa: E402

ATOL = 1e-5


@pytest.fixture(scope="module")
def paths():
    return lstm_exports()


@pytest.fixture(scope="module")
def full_out(paths):
    return runtime.load(paths["full"]).predict(sequences(3))


@pytest.mark.parametrize("variant", ["stream", "unrolled"])
def test_streaming_frame_by_frame_reproduces_full(paths, full_out, variant):
    xs = sequences(3)
    model = runtime.load(paths[variant], batch=3)
    assert isinstance(model, runtime.StreamingModel)
    assert model.chunk == 1 and model.labels == tuple(LABELS)
    for t in range(xs.shape[1]):
        y = model.step(xs[:, t])  # one frame per stream, no time axis
    assert y.shape == full_out.shape
    np.testing.assert_allclose(y, full_out, atol=ATOL)


def test_single_stream_accepts_bare_frames_and_feed(paths, full_out):
    xs = sequences(3)
    model = runtime.load(paths["stream"])
    for t in range(xs.shape[1]):
        y = model.step(xs[2, t])  # (features,): no batch, no time axis
    assert y.shape == (len(LABELS),)
    np.testing.assert_allclose(y, full_out[2], atol=ATOL)
    model.reset()
    np.testing.assert_allclose(model.feed(xs[2]), full_out[2], atol=ATOL)


def test_chunk_of_three_steps_reproduces_full(full_out):
    xs = sequences(3)
    model = runtime.load(lstm_stream_chunk3(), batch=3)
    assert model.chunk == 3
    model.step(xs[:, :3])
    np.testing.assert_allclose(model.step(xs[:, 3:]), full_out, atol=ATOL)
    model.reset()
    np.testing.assert_allclose(model.feed(xs), full_out, atol=ATOL)
    with pytest.raises(runtime.InputShapeError, match="multiple of chunk=3"):
        model.feed(xs[:, :4])


def test_streams_are_independent_and_reset_alone(paths, full_out):
    xs = sequences(3)
    model = runtime.load(paths["stream"], batch=3)
    model.step(sequences(3, seed=9)[:, 0])  # pollute every stream, then start over
    model.reset()
    for t in range(3):
        model.step(xs[:, t])
    before = model.state
    model.reset(1)  # stream 1 starts over; 0 and 2 go on
    after = model.state
    for name in after:
        assert np.all(after[name][1] == 0)
        np.testing.assert_array_equal(after[name][[0, 2]], before[name][[0, 2]])
    frames = xs[:, 3:].copy()
    frames[1] = xs[1, :3]  # stream 1 is fed its sequence from the start
    for t in range(3):
        y = model.step(frames[:, t])
    np.testing.assert_allclose(y[[0, 2]], full_out[[0, 2]], atol=ATOL)
    alone = runtime.load(paths["stream"])
    np.testing.assert_allclose(y[1], alone.feed(xs[1, :3]), atol=ATOL)


def test_state_round_trip_resumes_exactly(paths, full_out, tmp_path):
    xs = sequences(3)
    model = runtime.load(paths["stream"], batch=3)
    model.feed(xs[:, :4])
    saved = model.state
    assert set(saved) == {"h_in_0", "c_in_0", "h_in_1", "c_in_1"}
    assert saved["h_in_0"].shape == (3, 8) and saved["h_in_1"].shape == (3, 6)
    np.savez(tmp_path / "state.npz", **saved)

    restarted = runtime.load(paths["stream"], batch=3)  # an app restart
    with np.load(tmp_path / "state.npz") as stored:
        restarted.state = dict(stored)
    for name, arr in restarted.state.items():
        np.testing.assert_array_equal(arr, saved[name])
    np.testing.assert_allclose(restarted.feed(xs[:, 4:]), full_out, atol=ATOL)


def test_step_output_is_a_copy(paths):
    xs = sequences(1)
    model = runtime.load(paths["stream"])
    first = model.step(xs[0, 0])
    kept = first.copy()
    model.step(xs[0, 1])
    np.testing.assert_array_equal(first, kept)


def test_uint8_frames_are_scaled_like_floats(paths):
    pixels = np.random.default_rng(1).integers(0, 256, (2, 6, 5), dtype=np.uint8)
    model = runtime.load(paths["stream"], batch=2)
    y_u8 = model.feed(pixels)
    model.reset()
    y_f = model.feed(pixels.astype(np.float32) / 255)
    np.testing.assert_allclose(y_u8, y_f, atol=1e-6)
