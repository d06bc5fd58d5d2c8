"""Real exported models for the runtime tests, built once per test session.

Small Keras models exported by ``exporters.export.export_model``; each builder
is cached so that several test modules share one export. Not a test module
(pytest collects only ``test_*.py``); test modules import the builders.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS, FEATURES, CLASSES = 6, 5, 4
LABELS = ["cat", "dog", "owl", "yak"]
UINT8_SCALE = 1 / 255
SENTENCE = "*hello world."


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="rnnx-runtime-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _lstm_keras():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input(shape=(STEPS, FEATURES), name="x"),
        layers.LSTM(8, return_sequences=True, name="lstm_0"),
        layers.LSTM(6, name="lstm_1"),
        layers.Dense(CLASSES, activation="softmax", name="classes"),
    ], name="tiny_lstm")


@functools.cache
def lstm_exports() -> dict[str, Path]:
    """A two-layer LSTM classifier as full, stream and unrolled (chunk 1), with labels
    and uint8 scaling in its metadata."""
    from exporters.export import export_model

    res = export_model(_lstm_keras(), workdir() / "lstm", variants=("full", "stream", "unrolled"),
                       chunk=1, labels=LABELS, uint8_scale=UINT8_SCALE)
    return dict(res.paths)


@functools.cache
def lstm_stream_chunk3() -> Path:
    """The same LSTM's stream variant taking 3 steps per call."""
    from exporters.export import export_model

    res = export_model(_lstm_keras(), workdir() / "lstm_chunk3", variants=("stream",), chunk=3,
                       labels=LABELS, uint8_scale=UINT8_SCALE)
    return res.paths["stream"]


def sequences(n: int, seed: int = 0) -> np.ndarray:
    """n float32 sequences (n, STEPS, FEATURES) in [0, 1]."""
    return np.random.default_rng(seed).random((n, STEPS, FEATURES), dtype=np.float32)


@functools.cache
def char_gru_stream() -> tuple[Path, str]:
    """Seed 003's char GRU, tiny: trained until greedy generation repeats SENTENCE,
    exported as a stream model whose labels are the vocabulary. Returns (path, sentence)."""
    import keras
    from keras import layers

    from exporters.export import export_model

    vocab = sorted(set(SENTENCE))
    idx = np.array([vocab.index(ch) for ch in SENTENCE])
    onehot = np.eye(len(vocab), dtype=np.float32)
    x, y = onehot[idx][None], onehot[np.roll(idx, -1)][None]
    keras.utils.set_random_seed(7)
    model = keras.Sequential([
        keras.Input(shape=(None, len(vocab)), name="x"),
        layers.GRU(24, return_sequences=True, name="gru_0"),
        layers.GRU(24, return_sequences=True, name="gru_1"),
        layers.TimeDistributed(layers.Dense(len(vocab), activation="softmax"), name="chars"),
    ], name="char_gru")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    for _ in range(20):
        model.fit(x, y, epochs=50, verbose=0)
        if (model(x).numpy()[0].argmax(-1) == np.roll(idx, -1)).all():
            break
    res = export_model(model, workdir() / "char_gru", variants=("stream",), chunk=1, labels=vocab)
    return res.paths["stream"], SENTENCE


def read_metadata(path) -> dict:
    """The rnnx metadata dict of an exported file (test-only: uses the onnx package)."""
    import json

    import onnx

    proto = onnx.load(str(path))
    return json.loads(next(p.value for p in proto.metadata_props if p.key == "rnnx"))


def with_metadata(src, dst, meta) -> Path:
    """Copy the model ``src`` to ``dst`` with its rnnx metadata replaced by ``meta``
    (a dict, or raw text written as is), simulating a tampered or hand-edited file."""
    import json

    import onnx

    proto = onnx.load(str(src))
    for i in reversed(range(len(proto.metadata_props))):
        if proto.metadata_props[i].key == "rnnx":
            del proto.metadata_props[i]
    entry = proto.metadata_props.add()
    entry.key, entry.value = "rnnx", meta if isinstance(meta, str) else json.dumps(meta)
    onnx.save(proto, str(dst))
    return Path(dst)


def format2(meta: dict) -> dict:
    """A format-1 metadata dict as the equivalent format-2 document."""
    from runtime.contract import Contract

    return Contract.from_dict(meta).to_dict()


# -- hand-built format-2 models: several inputs and outputs, N-D states ---------------------------

VOCAB = 7
EMB = np.arange(VOCAB * 4, dtype=np.float32).reshape(VOCAB, 4) / 10
W_SPEAKER = np.array([[0.5, -0.5, 1.0, 0.0], [0.25, 0.0, -1.0, 2.0]], np.float32)


def multi_stream_reference(xs, tokens, speaker, h=None, cache=None):
    """What the hand-built stream model computes over a whole sequence, in numpy:
    h_t = tanh(h_{t-1} + EMB[token_t] + speaker @ W); y = h_T;
    cache = the last two frames of x; z_t = x_t + sum(cache_t)."""
    b, steps, _ = xs.shape
    h = np.zeros((b, 4), np.float32) if h is None else h
    cache = np.zeros((b, 2, 3), np.float32) if cache is None else cache
    zs = []
    for t in range(steps):
        h = np.tanh(h + EMB[tokens[:, t]] + speaker @ W_SPEAKER)
        cache = np.concatenate([cache[:, 1:], xs[:, t:t + 1]], axis=1)
        zs.append(xs[:, t:t + 1] + cache.sum(axis=1, keepdims=True))
    return h, np.concatenate(zs, axis=1), cache


def multi_io_models(folder) -> dict[str, Path]:
    """Two tiny ONNX graphs built with onnx.helper, with format-2 metadata:

    - ``stream``: inputs x (b, 1, 3) float32 in [0, 1], tokens (b, 1) int64 ids < VOCAB,
      speaker (b, 2) (no time axis); states h (b, 4) and a convolution-like cache (b, 2, 3);
      outputs y (b, 4) and the per-step z (b, 1, 3). See multi_stream_reference.
    - ``full``: the same inputs over T steps; y = sum_t EMB[token_t] + speaker @ W (b, 4),
      z = 2 x (b, T, 3).
    """
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    consts = [numpy_helper.from_array(EMB, "emb"), numpy_helper.from_array(W_SPEAKER, "w"),
              numpy_helper.from_array(np.array([1], np.int64), "one"),
              numpy_helper.from_array(np.array([2], np.int64), "two"),
              numpy_helper.from_array(np.array([1], np.int64), "axis1"),
              numpy_helper.from_array(np.array(2.0, np.float32), "two_f")]
    n = helper.make_node
    stream_nodes = [
        n("Gather", ["emb", "tokens"], ["e3"]),                     # (b, 1, 4)
        n("Squeeze", ["e3", "axis1"], ["e"]),                       # (b, 4)
        n("MatMul", ["speaker", "w"], ["s"]),
        n("Add", ["h_in_0", "e"], ["a"]), n("Add", ["a", "s"], ["a2"]),
        n("Tanh", ["a2"], ["h_out_0"]), n("Identity", ["h_out_0"], ["y"]),
        n("Slice", ["conv_in_1", "one", "two", "axis1"], ["tail"]),  # (b, 1, 3)
        n("Concat", ["tail", "x"], ["conv_out_1"], axis=1),         # (b, 2, 3)
        n("ReduceSum", ["conv_out_1", "axis1"], ["csum"], keepdims=1),
        n("Add", ["x", "csum"], ["z"]),
    ]
    stream = helper.make_graph(
        stream_nodes, "multi_stream",
        [helper.make_tensor_value_info("x", f32, ["b", 1, 3]),
         helper.make_tensor_value_info("tokens", i64, ["b", 1]),
         helper.make_tensor_value_info("speaker", f32, ["b", 2]),
         helper.make_tensor_value_info("h_in_0", f32, ["b", 4]),
         helper.make_tensor_value_info("conv_in_1", f32, ["b", 2, 3])],
        [helper.make_tensor_value_info("y", f32, ["b", 4]),
         helper.make_tensor_value_info("z", f32, ["b", 1, 3]),
         helper.make_tensor_value_info("h_out_0", f32, ["b", 4]),
         helper.make_tensor_value_info("conv_out_1", f32, ["b", 2, 3])],
        consts)
    full_nodes = [
        n("Gather", ["emb", "tokens"], ["e3"]),                     # (b, T, 4)
        n("ReduceSum", ["e3", "axis1"], ["e"], keepdims=0),
        n("MatMul", ["speaker", "w"], ["s"]), n("Add", ["e", "s"], ["y"]),
        n("Mul", ["x", "two_f"], ["z"]),
    ]
    full = helper.make_graph(
        full_nodes, "multi_full",
        [helper.make_tensor_value_info("x", f32, ["b", "t", 3]),
         helper.make_tensor_value_info("tokens", i64, ["b", "t"]),
         helper.make_tensor_value_info("speaker", f32, ["b", 2])],
        [helper.make_tensor_value_info("y", f32, ["b", 4]),
         helper.make_tensor_value_info("z", f32, ["b", "t", 3])],
        consts)

    def inputs(steps):
        return [{"name": "x", "shape": [None, steps, 3], "dtype": "float32", "time_axis": 1,
                 "preprocessing": None, "range": [0.0, 1.0], "vocab_size": None},
                {"name": "tokens", "shape": [None, steps], "dtype": "int64", "time_axis": 1,
                 "preprocessing": None, "range": None, "vocab_size": VOCAB},
                {"name": "speaker", "shape": [None, 2], "dtype": "float32", "time_axis": None,
                 "preprocessing": None, "range": None, "vocab_size": None}]

    def outputs(steps):
        return [{"name": "y", "shape": [None, 4], "dtype": "float32", "meaning": "values",
                 "per_step": False, "labels": ["a", "b", "c", "d"]},
                {"name": "z", "shape": [None, steps, 3], "dtype": "float32", "meaning": "values",
                 "per_step": True, "labels": None}]

    metas = {
        "stream": {"format": 2, "variant": "stream", "chunk": 1, "precision": "fp32",
                   "inputs": inputs(1), "outputs": outputs(1),
                   "states": [{"input": "h_in_0", "output": "h_out_0", "shape": [None, 4], "dtype": "float32",
                               "init": 0.0, "layer": "rnn", "kind": "h"},
                              {"input": "conv_in_1", "output": "conv_out_1", "shape": [None, 2, 3],
                               "dtype": "float32", "init": 0.0, "layer": "conv", "kind": "conv"}],
                   "source": {"name": "multi"}, "parity": {}},
        "full": {"format": 2, "variant": "full", "chunk": None, "precision": "fp32",
                 "inputs": inputs(None), "outputs": outputs(None), "states": [],
                 "source": {"name": "multi"}, "parity": {}},
    }
    paths = {}
    for variant, graph in (("stream", stream), ("full", full)):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        entry = model.metadata_props.add()
        entry.key, entry.value = "rnnx", json.dumps(metas[variant])
        paths[variant] = folder / f"{variant}.onnx"
        onnx.save(model, str(paths[variant]))
    return paths


def counter_stream_model(folder) -> Path:
    """A stream model whose state counts its steps: n_out = n_in + 1, y = n_out + x (x: (b, 1, 1)).
    Fed zeros, step k of a stream returns k: a lost or doubled step shows in the numbers."""
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("Add", ["n_in_0", "one"], ["n_out_0"]),
         helper.make_node("Flatten", ["x"], ["xf"], axis=1),
         helper.make_node("Add", ["n_out_0", "xf"], ["y"])],
        "counter",
        [helper.make_tensor_value_info("x", f32, ["b", 1, 1]),
         helper.make_tensor_value_info("n_in_0", f32, ["b", 1])],
        [helper.make_tensor_value_info("y", f32, ["b", 1]),
         helper.make_tensor_value_info("n_out_0", f32, ["b", 1])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"format": 2, "variant": "stream", "chunk": 1, "precision": "fp32",
            "inputs": [{"name": "x", "shape": [None, 1, 1], "dtype": "float32", "time_axis": 1}],
            "outputs": [{"name": "y", "shape": [None, 1], "dtype": "float32", "meaning": "values",
                         "per_step": False, "labels": None}],
            "states": [{"input": "n_in_0", "output": "n_out_0", "shape": [None, 1], "dtype": "float32",
                        "init": 0.0, "layer": "counter", "kind": "n"}]}
    entry = model.metadata_props.add()
    entry.key, entry.value = "rnnx", json.dumps(meta)
    path = Path(folder) / "counter.onnx"
    onnx.save(model, str(path))
    return path


@functools.cache
def two_input_exports() -> dict[str, Path]:
    """A real Keras model with two inputs: a sequence x (T, 5) through an LSTM, and a side
    input `speaker` (3,) without a time axis, merged before the softmax; full and stream."""
    import keras
    from keras import layers

    from exporters.export import export_model

    keras.utils.set_random_seed(1)
    x = keras.Input(shape=(None, FEATURES), name="x")
    speaker = keras.Input(shape=(3,), name="speaker")
    h = layers.LSTM(6, name="lstm")(x)
    merged = layers.Concatenate(name="merge")([h, layers.Dense(4, name="speaker_dense")(speaker)])
    y = layers.Dense(CLASSES, activation="softmax", name="classes")(merged)
    model = keras.Model([x, speaker], y, name="two_inputs")
    res = export_model(model, workdir() / "two_inputs", variants=("full", "stream"), chunk=1)
    return dict(res.paths) | {"keras": model}
