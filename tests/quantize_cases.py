"""Small trained models on real Fashion-MNIST and their exports, for the quantization tests.

Not a test module. Each model is trained for a few epochs on a slice of the
real data (so accuracy figures mean something), exported once in all three
variants, and its calibration (training slice) and evaluation (test slice)
sets are saved as .npz files beside the exports.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_TRAIN, N_CAL, N_EVAL = 1200, 128, 300
# units big enough that weights, not graph structure, dominate the file size
UNITS = {"lstm": 96, "gru": 96, "cnn_lstm": 24}
EPOCHS = {"lstm": 3, "gru": 3, "cnn_lstm": 4}
CLIPS = {"frames": 4, "canvas": 20, "item": 14}


@dataclass(frozen=True)
class Case:
    name: str
    keras_model: object
    paths: dict          # variant -> Path of the fp32 export
    calibration: Path    # .npz with x
    evaluation: Path     # .npz with x, y
    fp32_accuracy: float  # Keras test accuracy on the evaluation set


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="rnnx-quantize-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _views(name: str, ds):
    from pipeline import tasks

    rng = np.random.default_rng(5)
    train_idx = rng.permutation(len(ds.x_train))[:N_TRAIN]
    if name == "cnn_lstm":
        train = tasks.clips(ds.x_train[train_idx], ds.y_train[train_idx], ds.labels, seed=1, **CLIPS)
        test = tasks.clips(ds.x_test[:N_EVAL], ds.y_test[:N_EVAL], ds.labels, seed=2, **CLIPS)
    else:
        train = tasks.rows(ds.x_train[train_idx], ds.y_train[train_idx], ds.labels)
        test = tasks.rows(ds.x_test[:N_EVAL], ds.y_test[:N_EVAL], ds.labels)
    return train, test


def _build(name: str, n_in: tuple, n_out: int):
    from pipeline import models

    cfg = {"units": UNITS[name], "learning_rate": 0.005}
    if name == "cnn_lstm":
        cfg.update(filters=[4], kernel=3, dense=32, conv_dropout=0.0, dropout=0.0)
    return models.build(name, cfg, n_in, n_out)


_CASES: dict = {}


def case(name: str, ds) -> Case:
    """Train, export and write the data files of model `name` (lstm, gru or cnn_lstm) once;
    `ds` is the real Fashion-MNIST (the `fashion` fixture)."""
    if name not in _CASES:
        _CASES[name] = _make(name, ds)
    return _CASES[name]


def _make(name: str, ds) -> Case:
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(7)
    train, test = _views(name, ds)
    model = _build(name, train.x.shape[1:], len(train.labels))
    model.fit(train.x, train.y, epochs=EPOCHS[name], batch_size=32, verbose=0)
    _, acc = model.evaluate(test.x, test.y, batch_size=300, verbose=0)
    out = workdir() / name
    res = export_model(model, out, chunk=1, samples=test.x[:8], labels=list(train.labels),
                       uint8_scale=1 / 255, name=name)
    np.savez(out / "cal.npz", x=train.x[:N_CAL])
    np.savez(out / "eval.npz", x=test.x, y=test.y)
    return Case(name, model, dict(res.paths), out / "cal.npz", out / "eval.npz", float(acc))
