"""Small Keras models and their exports, built once per test session.

Not a test module: the export tests import these cached builders, so every
model is saved and exported once however many tests look at it. Weights are
random (seeded): parity does not need training.
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

FORBIDDEN_IN_UNROLLED = {"Loop", "Scan", "If", "LSTM", "GRU", "RNN"}
VARIANTS = ("full", "stream", "unrolled")

# name -> (cfg, input_shape, n_out) for pipeline.models.build
PIPELINE = {
    "lstm": ({"units": 12}, (7, 6), 4),
    "gru": ({"units": 12}, (7, 6), 4),
    "cnn_lstm": ({"filters": [4, 8], "kernel": 3, "units": 8, "dense": 16, "dropout": 0.25},
                 (3, 12, 12, 1), 5),
    "char_gru": ({"units": 10}, (9, 7), 7),
}
RNN_OP = {"lstm": "LSTM", "gru": "GRU", "cnn_lstm": "LSTM", "char_gru": "GRU", "char_gru_stateful": "GRU"}


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="rnnx-export-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def randomize(model, seed: int = 0, scale: float = 0.4):
    """Random non-zero weights everywhere, biases included, so bias layouts are tested too."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(0.0, scale, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    for k, w in enumerate(model.weights):   # a variance is positive (a negative one gives NaN)
        if w.path.endswith("moving_variance"):
            values[k] = np.abs(values[k]) + np.asarray(0.5, values[k].dtype)
    model.set_weights(values)
    return model


def random_export(build, folder: str, *, seed: int, scale: float, chunk: int):
    """Build a model (Keras seed 5), give it random weights (`randomize`) and export it with the
    default variants into workdir()/folder: (model, ExportResult)."""
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(5)
    model = randomize(build(), seed=seed, scale=scale)
    return model, export_model(model, workdir() / folder, chunk=chunk)


@functools.cache
def pipeline_model(name: str):
    """A pipeline zoo model (random weights); 'char_gru_stateful' is its stateful deploy copy."""
    import keras

    from pipeline import models

    keras.utils.set_random_seed(11)
    if name == "char_gru_stateful":
        return models.stateful_copy(pipeline_model("char_gru"))
    cfg, shape, n_out = PIPELINE[name]
    return randomize(models.build(name, cfg, shape, n_out), seed=len(name))


def saved(name: str, model) -> Path:
    path = workdir() / "models" / f"{name}.keras"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        model.save(path)
    return path


@functools.cache
def pipeline_export(name: str):
    """export_model of a saved pipeline model, all three variants, chunk 1."""
    from exporters.export import export_model

    path = saved(name, pipeline_model(name))
    return export_model(path, workdir() / "out" / name, variants=VARIANTS, chunk=1)


@functools.cache
def extra_model(name: str):
    """Models the pipeline does not train (random, seeded weights)."""
    return randomize(_extra_model(name), seed=len(name))


def _extra_model(name: str):
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    if name == "stacked_lstm_gru":
        return keras.Sequential([keras.Input((6, 5)), layers.LSTM(9, return_sequences=True),
                                 layers.GRU(7), layers.Dense(3, activation="softmax")], name=name)
    if name == "simple_rnn":
        return keras.Sequential([keras.Input((5, 4)), layers.SimpleRNN(6, return_sequences=True),
                                 layers.TimeDistributed(layers.Dense(2))], name=name)
    if name == "gru_reset_before":
        return keras.Sequential([keras.Input((6, 3)), layers.GRU(5, reset_after=False, return_sequences=True),
                                 layers.GRU(4, reset_after=False), layers.Dense(2, activation="sigmoid")], name=name)
    if name == "lstm_no_bias":
        return keras.Sequential([keras.Input((6, 3)), layers.LSTM(5, use_bias=False),
                                 layers.Dense(3, activation="softmax")], name=name)
    if name == "wide_lstm_relu":  # another size, relu cell activation, functional API
        inp = keras.Input((4, 20))
        y = layers.LSTM(32, activation="relu", return_sequences=True)(inp)
        y = layers.Dropout(0.3)(y)
        y = layers.LSTM(16)(y)
        return keras.Model(inp, layers.Dense(10, activation="softmax")(y), name=name)
    if name == "embedding_gru":
        return keras.Sequential([keras.Input((6,), dtype="int32"), layers.Embedding(20, 4),
                                 layers.GRU(6), layers.Dense(3, activation="softmax")], name=name)
    raise KeyError(name)


EXTRA = ("stacked_lstm_gru", "simple_rnn", "gru_reset_before", "lstm_no_bias", "wide_lstm_relu", "embedding_gru")


@functools.cache
def extra_export(name: str, chunk: int = 1):
    from exporters.export import export_model

    return export_model(extra_model(name), workdir() / "out" / f"{name}_c{chunk}", variants=VARIANTS, chunk=chunk)


def session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def stream_through(path, x: np.ndarray, chunk: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Feed x chunk by chunk through a stream/unrolled model, zero initial states.

    Returns the outputs of every call concatenated on the time axis when they
    have one (per-step models) or the last call's output, and the final states.
    """
    sess = session(path)
    ins = sess.get_inputs()[1:]
    states = {i.name: np.zeros((x.shape[0], i.shape[1]), np.float32) for i in ins}
    outs = []
    for t in range(0, x.shape[1], chunk):
        res = sess.run(None, {"x": x[:, t:t + chunk], **states})
        outs.append(res[0])
        states = {i.name: v for i, v in zip(ins, res[1:])}
    per_step = outs[0].ndim == 3
    return (np.concatenate(outs, axis=1) if per_step else outs[-1]), list(states.values())


def op_types(path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}
