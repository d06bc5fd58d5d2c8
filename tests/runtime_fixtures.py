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
