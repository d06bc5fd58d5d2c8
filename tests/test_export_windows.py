"""Windows on time that drop, decimate or look ahead stream on the clock (exporters/graph/clocks.py).

Models shaped like public keyword-spotting, wake-word, activity and text examples, written the
plain Keras way (no causal rewrite): a valid Conv1D + BatchNorm + ReLU before a GRU; a
Conv1D(kernel 5, padding same) before a per-step LSTM (2 frames of latency); a strided Conv1D
trigger-word detector; a causal Conv1D, MaxPooling1D(2), then a last-step LSTM; a valid
Conv2D over (time, freq), Reshape, GRU (kws_streaming's crnn); Embedding, valid Conv1D,
MaxPooling1D(4), LSTM (a text classifier); same-padded average pooling between two same
convolutions; a dilated depthwise and a separable valid convolution.

Each is exported (stream and unrolled at chunk 1 and 3, which does not divide the strides),
then fed through the runtime on every prefix length: `feed(x)` (which flushes) gives Keras'
output on that prefix, and step by step the frames arrive `emit_after` frames late, one per
`frames_per_output` input frames.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from export_cases import random_export, workdir  # noqa: E402

ATOL = 1e-5


def kws_valid():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6))
    h = L.Conv1D(8, 5, padding="valid")(inp)
    h = L.ReLU()(L.BatchNormalization()(h))
    h = L.GRU(12, return_sequences=True)(h)
    return keras.Model(inp, L.Dense(3, activation="softmax")(h))


def same_lstm():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6))
    h = L.Conv1D(8, 5, padding="same", activation="relu")(inp)
    return keras.Model(inp, L.Dense(3)(L.LSTM(12, return_sequences=True)(h)))


def trigger_word():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6))
    h = L.Conv1D(8, 7, strides=2)(inp)
    h = L.Activation("relu")(L.BatchNormalization()(h))
    h = L.GRU(10, return_sequences=True)(h)
    return keras.Model(inp, L.TimeDistributed(L.Dense(1, activation="sigmoid"))(h))


def causal_pool_last():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6))
    h = L.MaxPooling1D(2)(L.Conv1D(8, 3, padding="causal")(inp))
    return keras.Model(inp, L.Dense(4, activation="softmax")(L.LSTM(12)(h)))


def crnn():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 10, 1))
    h = L.Conv2D(4, (3, 3), padding="valid", activation="relu")(inp)
    h = L.Reshape((-1, 8 * 4))(h)
    return keras.Model(inp, L.Dense(3)(L.GRU(8, return_sequences=True)(h)))


def text_cnn_lstm():
    import keras
    from keras import layers as L

    inp = keras.Input((None,), dtype="int32")
    h = L.Embedding(50, 8)(inp)
    h = L.MaxPooling1D(4)(L.Conv1D(8, 3, padding="valid", activation="relu")(h))
    return keras.Model(inp, L.Dense(1, activation="sigmoid")(L.LSTM(8)(h)))


def same_avg_pool():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6))
    h = L.Conv1D(8, 3, padding="same")(inp)
    h = L.AveragePooling1D(2, padding="same")(h)
    h = L.Conv1D(8, 3, padding="same")(h)
    return keras.Model(inp, L.Dense(3)(L.GRU(8, return_sequences=True)(h)))


def depthwise_separable():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6))
    h = L.DepthwiseConv1D(3, dilation_rate=2, padding="valid")(inp)
    h = L.SeparableConv1D(8, 3, padding="valid")(h)
    return keras.Model(inp, L.Dense(3)(L.SimpleRNN(8, return_sequences=True)(h)))


#: model -> (frames_per_output, emit_after, flush frames, look_back, look_ahead) of its output frames
MODELS = {
    "kws_valid": (kws_valid, (1, 4, 0, 4, 0)),
    "same_lstm": (same_lstm, (1, 2, 2, 2, 2)),
    "trigger_word": (trigger_word, (2, 6, 0, 6, 0)),
    "causal_pool_last": (causal_pool_last, None),
    "crnn": (crnn, (1, 2, 0, 2, 0)),
    "text_cnn_lstm": (text_cnn_lstm, None),
    "same_avg_pool": (same_avg_pool, (2, 4, 4, 3, 4)),     # x[2m-3 .. 2m+4] make frame m
    "depthwise_separable": (depthwise_separable, (1, 6, 0, 6, 0)),
}


@functools.cache
def exported(name: str, chunk: int):
    return random_export(MODELS[name][0], f"windows/{name}_c{chunk}", seed=len(name), scale=0.5, chunk=chunk)


def _inputs(model, steps: int, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[2:])
    if "int" in str(model.inputs[0].dtype):
        return rng.integers(0, 50, size=(2, steps)).astype("int32")
    return rng.normal(size=(2, steps, *shape)).astype("float32")


@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_windows_stream_every_prefix_like_keras(name, chunk):
    import runtime

    model, res = exported(name, chunk)
    assert {"full", "stream", "unrolled"} <= set(res.paths), res.report["skipped"]
    x = _inputs(model, 21)
    for variant in ("stream", "unrolled"):
        stream = runtime.load(res.paths[variant], batch=2)
        out = stream.contract.outputs[0]
        assert stream.contract.flush is not None
        if MODELS[name][1] is not None:
            assert (out.frames_per_output, out.emit_after, stream.contract.flush.frames, out.look_back,
                    out.look_ahead) == MODELS[name][1]
        for steps in range(9, 22):
            want = model(x[:, :steps], training=False).numpy()
            got = stream.feed(x[:, :steps])
            assert got.shape == want.shape, (variant, steps)
            assert np.abs(got - want).max() <= ATOL, (variant, steps, np.abs(got - want).max())


@pytest.mark.parametrize("name", ["kws_valid", "same_lstm", "trigger_word", "same_avg_pool"])
def test_frames_arrive_emit_after_frames_late_and_the_flush_gives_the_rest(name):
    import runtime

    model, res = exported(name, 1)
    stream = runtime.load(res.paths["stream"], batch=2)
    out = stream.contract.outputs[0]
    x = _inputs(model, 17)
    want = model(x, training=False).numpy()
    got, arrived = [], []
    for t in range(x.shape[1]):
        frames = stream.step(x[:, t])
        assert frames.ndim == 3 and frames.shape[0] == 2
        arrived += [t] * frames.shape[1]
        got.append(frames)
    tail = stream.flush()
    got = np.concatenate(got + [tail], axis=1)
    assert got.shape == want.shape and np.abs(got - want).max() <= ATOL
    # output frame m comes with input frame m * frames_per_output + emit_after
    assert arrived == [m * out.frames_per_output + out.emit_after for m in range(len(arrived))]
    assert len(arrived) + tail.shape[1] == want.shape[1]
    # the flush started the stream over: the same sequence again gives the same frames
    again = np.concatenate([stream.step(x[:, t]) for t in range(x.shape[1])] + [stream.flush()], axis=1)
    assert np.abs(again - want).max() <= ATOL


def test_a_stream_on_a_clock_resets_its_streams_together():
    import runtime
    from runtime.errors import StateError

    _, res = exported("kws_valid", 1)
    stream = runtime.load(res.paths["stream"], batch=2)
    with pytest.raises(StateError, match="one clock"):
        stream.reset(1)
    stream.reset()
    stream.reset([0, 1])


def test_strided_same_padding_that_depends_on_the_length_is_refused_naming_it():
    import keras
    from keras import layers as L

    from exporters.export import export_model

    inp = keras.Input((None, 6))
    h = L.Conv1D(4, 3, strides=2, padding="same", name="halves")(inp)
    m = keras.Model(inp, L.GRU(4)(h))
    res = export_model(m, workdir() / "windows" / "refused")
    assert set(res.paths) == {"full"}
    why = res.report["skipped"]["stream"]
    assert "layer 'halves' (Conv1D)" in why and "depends on the sequence's length" in why


@pytest.mark.parametrize("mode", ["int8-dynamic", "int8-static", "fp16"])
def test_a_stream_on_a_clock_quantizes_and_keeps_its_flush(mode, tmp_path):
    """Calibration (int8-static) and quantize's own comparison feed whole sequences chunk by chunk
    with the flush (validation.parity.stream_calls), so every frame is compared."""
    import runtime
    from exporters.quantize import quantize_model

    model, res = exported("same_lstm", 3)
    dst = tmp_path / f"stream.{mode}.onnx"
    cal = None
    if mode == "int8-static":
        cal = tmp_path / "cal.npz"
        np.savez(cal, x=np.concatenate([_inputs(model, 20, seed=k) for k in range(7, 15)]))   # 16 sequences
    report = quantize_model(res.paths["stream"], dst, mode, allow_larger=True, latency_reps=0, calibration=cal)
    compared = report["agreement"]
    assert compared["steps"] >= 9 and compared["max_abs_diff"] > 0, compared   # whole sequences, not one chunk
    if mode == "int8-static":
        assert compared["steps"] == 20, compared      # any length: not trimmed to a multiple of the chunk
    if mode == "int8-static":
        assert report["calibration"]["batches"] >= 20 // 3 + 1, report["calibration"]   # chunks plus the flush
    stream = runtime.load(dst, batch=2)
    assert stream.contract.flush == runtime.load(res.paths["stream"]).contract.flush
    x = _inputs(model, 16)
    got, want = stream.feed(x), model(x, training=False).numpy()
    scale, err = float(np.abs(want).max()), np.abs(got - want)
    assert got.shape == want.shape and err.mean() <= 0.02 * scale, (err.mean(), scale)
    # static activation ranges clip a frame the 16 calibration sequences did not reach
    assert err.max() <= (0.25 if mode == "int8-static" else 0.05) * scale, (err.max(), scale)


def test_export_and_inspect_say_when_frames_come_with_the_latency_in_milliseconds(tmp_path):
    """`rnnx export --frame-rate` reports each stream output's decimation, arrival, latency and
    look-back, keeps the frame rate in the metadata, and `rnnx inspect` shows the same lines."""
    import subprocess

    from export_cases import randomize

    model = randomize(same_avg_pool(), seed=1, scale=0.5)
    src = tmp_path / "m.keras"
    model.save(src)
    rnnx = str(os.path.join(os.path.dirname(sys.executable), "rnnx"))
    run = subprocess.run([rnnx, "export", str(src), "--out", str(tmp_path / "out"), "--chunk", "2",
                          "--frame-rate", "100"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    want = ("output 'y': 1 frame per 2 input frames, frame m arrives with input frame 2*m + 4, latency 4 frames "
            "of look-ahead (40 ms at 100 frames/s), look-back 3 frames")
    assert f"rnnx export: stream: {want}" in run.stderr, run.stderr
    assert "stream: a sequence ends with flush() (4 zero frames" in run.stderr
    assert "full: output" not in run.stderr
    shown = subprocess.run([rnnx, "inspect", str(tmp_path / "out" / "unrolled.onnx")], capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert want.replace("output 'y'", "timing     y") in shown.stdout, shown.stdout
    assert "flush      feed 4 zero frames after a sequence" in shown.stdout
    import runtime

    assert runtime.load(tmp_path / "out" / "stream.onnx", batch=2).contract.frame_rate == 100.0


def test_bench_takes_a_stream_on_a_clock():
    """`rnnx bench` feeds a clocked stream through the runtime (flush included): its parity against
    the full file holds on every frame, and its per-stream step cost is measured."""
    from exporters.bench import benchmark

    _, res = exported("same_avg_pool", 3)
    x = np.random.default_rng(4).normal(size=(5, 20, 6)).astype(np.float32)   # 20 steps: not a multiple of 3
    out = benchmark(res.paths["stream"].parent, keras=None, x=x, batches=[1], threads=["1"], reps=2, rounds=2,
                    streams=[1], sweep=[], providers=["cpu"])
    rows = {r["file"]: r for r in out["rows"]}
    for name in ("stream.onnx", "unrolled.onnx"):
        assert rows[name]["parity"]["max_abs_diff"] <= ATOL, rows[name]["parity"]
        assert rows[name]["step_us"], rows[name]


def test_a_running_max_after_a_window_skips_the_empty_slots():
    """A text classifier (Embedding -> Conv1D 'same' -> LSTM -> GlobalMaxPooling1D) streams: the
    running max reads only the filled slots of the clock (it used to raise a bare ValueError)."""
    import keras
    from keras import layers as L

    import runtime

    def text_max():
        inp = keras.Input((None,), dtype="int32")
        h = L.Conv1D(6, 3, padding="same", activation="relu")(L.Embedding(30, 6)(inp))
        h = L.GlobalMaxPooling1D()(L.LSTM(6, return_sequences=True)(h))
        return keras.Model(inp, L.Dense(2, activation="softmax")(h))

    model, res = random_export(text_max, "windows/text_max", seed=2, scale=0.5, chunk=3)
    assert {"stream", "unrolled"} <= set(res.paths), res.report["skipped"]
    stream = runtime.load(res.paths["stream"], batch=2)
    for steps in range(4, 14):
        x = np.random.default_rng(steps).integers(0, 30, size=(2, steps)).astype("int32")
        assert np.abs(stream.feed(x) - model(x, training=False).numpy()).max() <= ATOL, steps
