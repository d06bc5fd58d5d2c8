"""``runtime.load``: open an rnnx export as the model class its metadata calls for."""

from __future__ import annotations

from .model import Model
from .session import open_model
from .streaming import StreamingModel


def load(path, *, providers=None, threads: int | None = None, batch: int = 1) -> Model | StreamingModel:
    """Open an ONNX model for inference.

    Args:
        path: the ``.onnx`` file, or its ORT-format copy ``.ort`` (``rnnx pack``), or the
            bytes of either. When its folder holds an ``export.json`` listing the file, the
            file's size and sha256 must be the listed ones.
        providers: ``None`` for CUDA when onnxruntime-gpu sees a GPU, else CPU; or
            an explicit list such as ``["cpu"]`` or ``["CUDAExecutionProvider"]``.
        threads: intra-op threads (``None``: onnxruntime's default).
        batch: independent streams per call, for ``stream``/``unrolled`` models
            (full models take any batch per call and ignore it).

    Returns:
        A :class:`StreamingModel` for a ``stream`` or ``unrolled`` export, else a
        :class:`Model` (also for a plain ONNX file without ``rnnx`` metadata,
        with an :class:`UncheckedModelWarning`).

    Raises:
        ModelFormatError: missing or corrupt file, a file that is not the one its
            export set lists, metadata that does not match the graph.
        ProviderError: an explicitly requested provider is not available.
    """
    loaded = open_model(path, providers=providers, threads=threads)
    if loaded.contract is not None and loaded.contract.streaming:
        return StreamingModel(loaded, batch=batch)
    return Model(loaded)
