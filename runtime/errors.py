"""Typed errors shared by every rnnx layer (runtime, exporters, pipeline).

Each message says what was expected and what came, so that the CLI can print
it as one line and an app can log it without a traceback.
"""


class RnnxError(Exception):
    """Base class of every error rnnx raises on purpose."""


class ModelFormatError(RnnxError):
    """A model file is missing, unreadable, or not what rnnx expects."""


class InputShapeError(RnnxError, ValueError):
    """An input tensor has the wrong rank, shape or dtype."""


class InputValueError(RnnxError, ValueError):
    """An input tensor holds values rnnx refuses (NaN, inf, out of range)."""


class StateError(RnnxError, ValueError):
    """A recurrent state or stream index does not match the model."""


class ProviderError(RnnxError, ValueError):
    """An execution provider was asked for that this onnxruntime cannot run."""


class UncheckedModelWarning(UserWarning):
    """A model has no ``rnnx`` metadata, so its inputs are checked against the graph only."""


class SettingError(RnnxError, ValueError):
    """A runtime setting (max_batch, batch, ...) is out of its range."""
