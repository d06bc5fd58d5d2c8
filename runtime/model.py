"""Full-sequence inference: :class:`Model`, for the ``full`` variant and plain ONNX files."""

from __future__ import annotations

import numpy as np

from .errors import ModelFormatError
from .inputs import InputChecker
from .session import LoadedModel, ModelBase, open_model

DEFAULT_MAX_BATCH = 1024


class Model(ModelBase):
    """Run a whole sequence (or any single-input model) on a batch in one call.

    Args:
        model: path to an ``.onnx`` file (or an already opened :class:`LoadedModel`).
        providers: execution providers, see :func:`runtime.providers.resolve_providers`.
        threads: intra-op threads (``None``: onnxruntime's default).
        max_batch: larger batches are split into calls of at most this many samples.

    Example::

        model = runtime.load("lstm_full.onnx")
        probs = model.predict(images)            # (n, 10) float32
        names = model.predict_labels(images)     # ['Ankle boot', ...]
    """

    def __init__(self, model, *, providers=None, threads: int | None = None,
                 max_batch: int = DEFAULT_MAX_BATCH):
        loaded = model if isinstance(model, LoadedModel) else open_model(
            model, providers=providers, threads=threads)
        contract = loaded.contract
        if contract is not None and contract.streaming:
            raise ModelFormatError(
                f"{loaded.path} is a '{contract.variant}' model with recurrent state inputs; "
                "run it with StreamingModel (runtime.load picks it)")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer; got {max_batch!r}")
        self._loaded = loaded
        self._session = loaded.session
        self.contract = contract
        self.max_batch = max_batch
        inputs = self._session.get_inputs()
        if contract is not None:
            name = contract.input.name
            self._checker = InputChecker(
                name, contract.input.shape, loaded.input_dtype(name),
                uint8_scale=contract.uint8_scale, value_range=contract.input_range,
                axis_names=_axis_names(len(contract.input.shape), contract.input_time_axis))
            self._output_names = [contract.output.name]
        else:
            first = inputs[0]
            shape = tuple(d if isinstance(d, int) else None for d in (first.shape or []))
            self._checker = InputChecker(first.name, shape, loaded.input_dtype(first.name),
                                         axis_names=_axis_names(len(shape), None))
            self._output_names = [o.name for o in self._session.get_outputs()]
        self._n_inputs = len(inputs)
        fixed_batch = self._checker.shape[0] if self._checker.shape else None
        self._call_batch = min(max_batch, fixed_batch) if fixed_batch else max_batch

    # -- what the model is -------------------------------------------------------------------

    @property
    def input_name(self) -> str:
        return self._checker.name

    @property
    def input_shape(self) -> tuple:
        """The input's shape, ``None`` for dynamic axes."""
        return self._checker.shape

    # -- inference ---------------------------------------------------------------------------

    def predict(self, x, *, max_batch: int | None = None):
        """Run the model on a batch.

        Args:
            x: array of the input's shape with a leading batch axis; float in the
                declared range, or uint8 when the model scales pixels itself.
            max_batch: override the split size for this call.

        Returns:
            The output as a numpy array (batch first). A plain ONNX file with
            several outputs gives a dict name -> array.

        Raises:
            InputShapeError: wrong rank, shape or dtype.
            InputValueError: NaN/inf, or values outside the declared range.
        """
        if self._n_inputs != 1:
            names = [i.name for i in self._session.get_inputs()]
            raise ModelFormatError(f"{self.path} has inputs {names} and no rnnx metadata saying what "
                                   "they are; Model.predict feeds a single input")
        hint = ""
        x = self._checker.as_array(x)
        if x.ndim == len(self._checker.shape) - 1:
            hint = "; add the batch axis for a single sample: x[None]"
        shape = self._checker.shape
        arr = self._checker.prepare(x, shape=(None,) + shape[1:] if shape else shape, hint=hint)
        step = self._call_batch if max_batch is None else min(max_batch, self._call_batch)
        if arr.shape[0] <= step:
            outs = self._run(arr)
        else:
            parts = [self._run(arr[i:i + step]) for i in range(0, arr.shape[0], step)]
            outs = [np.concatenate(chunks, axis=0) for chunks in zip(*parts)]
        if len(outs) == 1:
            return outs[0]
        return dict(zip(self._output_names, outs))

    def predict_labels(self, x) -> list:
        """The most probable class of each sample: its label, or its index without labels."""
        y = self.predict(x)
        if isinstance(y, dict):
            raise ModelFormatError(f"{self.path} has several outputs; predict_labels needs one")
        idx = np.asarray(y).argmax(axis=-1)
        labels = self.labels
        if labels is None:
            return idx.tolist()
        return np.asarray(labels, dtype=object)[idx].tolist()

    def _run(self, arr: np.ndarray) -> list:
        fixed = self._checker.shape[0] if self._checker.shape else None
        if fixed is None or arr.shape[0] == fixed:
            return self._session.run(self._output_names, {self._checker.name: arr})
        # a model exported with a fixed batch gets exactly that many rows per call:
        # pad the last rows with copies of the first, then drop their outputs
        rows = arr.shape[0]
        padded = np.concatenate([arr, np.repeat(arr[:1], fixed - rows, axis=0)], axis=0)
        return [out[:rows] for out in self._session.run(self._output_names, {self._checker.name: padded})]

    def __repr__(self) -> str:
        variant = self.contract.variant if self.contract else "plain"
        return (f"Model({self.path!r}, variant={variant}, input={self._checker.describe()}, "
                f"providers={self.providers})")


def _axis_names(rank: int, time_axis: int | None) -> dict:
    names = {0: "batch"} if rank else {}
    if rank > 1:
        names[1 if time_axis is None else time_axis] = "time"
    return names
