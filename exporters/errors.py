"""Errors raised while exporting, validating or quantizing a model."""

from runtime.errors import InputShapeError, ModelFormatError, RnnxError  # noqa: F401  (re-exported)


class UnsupportedLayerError(RnnxError):
    """A layer cannot be exported in the requested variant (e.g. Bidirectional for stream)."""


class ParityError(RnnxError):
    """An exported model's outputs differ from the Keras original beyond the tolerance."""


class QuantizationError(RnnxError):
    """A quantized model could not be made, or lost more accuracy than allowed."""


class ConfigError(RnnxError, ValueError):
    """A parameter or option value is invalid."""


class DataError(RnnxError):
    """A dataset file is missing, truncated, or not the data it claims to be."""


class OutputError(RnnxError):
    """An output file or folder could not be written (read-only, full disk, a file in the path, no permission)."""
