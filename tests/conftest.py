"""Shared pytest settings: quiet TensorFlow, a tiny pipeline configuration."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The stage locks (pipeline/lock.py) of this test session live apart from the machine's, so a
# pipeline running beside the tests neither waits for them nor makes them wait.
os.environ.setdefault("RNNX_LOCK_DIR", tempfile.mkdtemp(prefix="rnnx-test-locks-"))

import copy  # noqa: E402

import pytest  # noqa: E402

TINY_PARAMS = {
    "seed": 1,
    "data": {"dataset": "fashion_mnist", "dir": None, "allow_download": False,
             "val_size": 200, "train_limit": 1500, "test_limit": 400},
    "tasks": {"clips": {"frames": 4, "canvas": 20, "item": 14},
              "chars": {"sentence": "*hello world."}},
    "train": {
        "distribute": "none",
        "lstm": {"units": 24, "epochs": 2, "batch_size": 32},
        "gru": {"units": 24, "epochs": 2, "batch_size": 32},
        "cnn_lstm": {"filters": [4], "kernel": 3, "units": 12, "dense": 32, "epochs": 3,
                     "batch_size": 32, "train_clips": 1500, "learning_rate": 0.003},
        "char_gru": {"units": 24, "max_epochs": 600, "check_every": 50, "learning_rate": 0.01},
    },
}


@pytest.fixture
def tiny_params():
    """A fresh copy of a pipeline configuration that trains in seconds."""
    return copy.deepcopy(TINY_PARAMS)


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST, loaded and verified once per session."""
    from pipeline import data

    return data.load("fashion_mnist")
