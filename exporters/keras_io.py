"""Load Keras models safely and fingerprint them.

`load_keras` always keeps Keras' safe mode on: a model that would need
`safe_mode=False` (a Lambda layer, a pickled function) is refused with a
typed error instead of running code from the file.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from .errors import ModelFormatError, UnsupportedLayerError

_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_keras(path) -> "object":
    """Load the Keras model at `path` (safe mode on) or raise a typed error.

    Raises ModelFormatError for a missing or unreadable file or one that is
    not a Keras model, UnsupportedLayerError for a model that only loads with
    safe_mode=False (e.g. a Lambda layer).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"no Keras model file at {str(path)!r}")
    if path.suffix.lower() not in _SUFFIXES:
        raise ModelFormatError(f"{path.name!r} is not a Keras model file: expected a name ending in "
                               f"{', '.join(_SUFFIXES)}")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelFormatError(f"{path.name!r} is not a Keras model: a .keras file is a zip archive "
                               "and this one is not")
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError...
        text = str(exc)
        if "safe_mode" in text or "lambda" in text.lower():
            raise UnsupportedLayerError(
                f"{path.name!r} holds a Lambda layer or Python code; rnnx loads models with Keras "
                "safe_mode on and never with safe_mode=False, so it is refused: "
                f"{text.splitlines()[0] if text else type(exc).__name__}") from None
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ModelFormatError(f"{path.name!r} could not be loaded as a Keras model: {first}") from None


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model) -> str:
    """A fingerprint of an in-memory model: its weights' shapes, dtypes and bytes, in order."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(f"{w.dtype.str}{w.shape}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def keras_version() -> str:
    import keras

    return keras.__version__
