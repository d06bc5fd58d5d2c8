"""A tiny exported LSTM and one benchmark run of it, shared by the benchmark tests.

Not a test module. The Keras model is saved as .keras (the TF worker loads it
from disk), exported with ``exporters.export.export_model`` and its full
variant quantized to int8-dynamic, so the directory holds every kind of row.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS, FEATURES, CLASSES, SAMPLES = 6, 5, 4, 64
REPS, ROUNDS, BATCHES, STREAMS, SWEEP = 12, 4, [1, 8], [1, 4], [1, "model"]


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="rnnx-bench-tests-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _lstm(features: int, name: str):
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input(shape=(STEPS, features), name="x"), layers.LSTM(8, name="lstm"),
                             layers.Dense(CLASSES, activation="softmax", name="classes")], name=name)


@functools.cache
def exported() -> dict:
    """{'dir', 'keras', 'other_keras' (input with other features), 'data' (.npz), 'x', 'y'}."""
    from exporters.export import export_model
    from exporters.quantize import quantize_model

    root = workdir()
    rng = np.random.default_rng(0)
    x = rng.random((SAMPLES, STEPS, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, SAMPLES)
    np.savez(root / "data.npz", x=x, y=y)
    _lstm(FEATURES, "tiny").save(root / "tiny.keras")
    _lstm(FEATURES + 2, "other").save(root / "other.keras")
    out = root / "tiny"
    export_model(root / "tiny.keras", out, samples=x[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_model(out / "full.onnx", out / "full.int8-dynamic.onnx", "int8-dynamic")
    return {"dir": out, "keras": root / "tiny.keras", "other_keras": root / "other.keras",
            "data": root / "data.npz", "x": x, "y": y}


@functools.cache
def result() -> dict:
    """One benchmark of the tiny model with Keras, the data and every baseline (cpu; cuda absent)."""
    from exporters.bench import benchmark

    case = exported()
    lines = []
    res = benchmark(case["dir"], keras=case["keras"], x=case["x"], y=case["y"], batches=BATCHES,
                    threads=["1", "all"], reps=REPS, rounds=ROUNDS, block_ms=5, streams=STREAMS, sweep=SWEEP,
                    progress=lines.append)
    res["_progress"] = lines
    return res
