"""The reference model: a stateless copy with a dynamic batch (and time axis).

Exports and Keras reference outputs both come from this copy, so a model
saved with `stateful=True` and a fixed (1, 1, ...) input still exports with a
dynamic batch. The time axis becomes dynamic where the model allows it.
Weights are copied, never retrained. Rebuilding goes through Keras'
`from_config` with safe mode on: a Lambda layer is refused, not executed.
"""

from __future__ import annotations

import copy

from ..errors import UnsupportedLayerError


def _edit(cfg, dynamic: set):
    """Make every InputLayer batch-dynamic (those named in `dynamic` time-dynamic too) and every
    layer stateless."""
    if isinstance(cfg, dict):
        if cfg.get("class_name") == "InputLayer":
            inner = cfg.get("config", {})
            shape = inner.get("batch_shape")
            if shape:
                shape = list(shape)
                shape[0] = None
                if inner.get("name") in dynamic and len(shape) >= 2:
                    shape[1] = None
                inner["batch_shape"] = shape
        if cfg.get("stateful") is True:
            cfg["stateful"] = False
        for value in cfg.values():
            _edit(value, dynamic)
    elif isinstance(cfg, list):
        for value in cfg:
            _edit(value, dynamic)


def input_layer_name(t) -> str:
    """The name of the InputLayer behind a model input tensor (the key of `time_inputs`)."""
    return t._keras_history[0].name


def sequence_inputs(model) -> set:
    """The inputs whose axis 1 is time: rank >= 3, or rank 2 of integer token ids, of a boolean mask,
    or of a univariate series (a dynamic axis 1, or one that `expand_dims`/`Reshape` makes the
    time axis of a (batch, time, features) sequence)."""
    names = set()
    for t in model.inputs:
        rank, dtype = len(t.shape), str(t.dtype)
        if rank >= 3 or (rank == 2 and ("int" in dtype or dtype == "bool" or t.shape[1] is None
                                        or _feeds_embedding(model, t) or _becomes_sequence(model, t))):
            names.add(input_layer_name(t))
    return names


def _feeds_embedding(model, t) -> bool:
    import keras

    return any(isinstance(node.operation, keras.layers.Embedding) for node in _readers(model, t))


def _becomes_sequence(model, t) -> bool:
    """A (batch, n) input read first by expand_dims(-1) or Reshape((n, k)): a series of n steps."""
    import keras
    from keras.src.ops.numpy import ExpandDims

    for node in _readers(model, t):
        op = node.operation
        if isinstance(op, ExpandDims) and op.axis in (-1, 2, [-1], [2], (-1,), (2,)):
            return True
        if isinstance(op, keras.layers.Reshape) and len(op.target_shape) >= 2 and op.target_shape[0] == t.shape[1]:
            return True
    return False


def _readers(model, t) -> list:
    return [node for depth in model._nodes_by_depth.values() for node in depth
            if not node.is_input and any(x is t for x in node.input_tensors)]


def _rebuild(model, dynamic: set):
    cfg = copy.deepcopy(model.get_config())
    _edit(cfg, dynamic)
    cfg.pop("build_input_shape", None)
    with _safe_mode():
        clone = type(model).from_config(cfg)
    weights = model.get_weights()
    if len(clone.weights) == len(weights):
        clone.set_weights(weights)
    else:   # a layer the model shares (a cell in an RNN and called alone) comes back as two
        for layer in clone.layers:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


def _safe_mode():
    """Keras' safe-mode scope (deserializing code objects is refused inside it)."""
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # pragma: no cover - older/newer Keras layout
        import contextlib

        return contextlib.nullcontext()
    return SafeModeScope(True)


def has_lambda(model) -> bool:
    import keras

    def walk(layers):
        for layer in layers:
            if isinstance(layer, keras.layers.Lambda):
                return True
            inner = getattr(layer, "layer", None)
            if inner is not None and walk([inner]):
                return True
            if isinstance(layer, keras.Model) and walk(layer.layers):
                return True
        return False

    return walk(model.layers)


def reference_model(model):
    """A stateless, batch-dynamic copy of `model` with the same weights: (copy, time_is_dynamic)."""
    ref, _, dynamic = build_reference(model)
    return ref, dynamic


def build_reference(model):
    """A stateless, batch-dynamic copy of `model` with the same weights.

    Tries a dynamic time axis first and keeps the model's own time length when
    the layers need it. Returns (copy, names of the sequence inputs, time_is_dynamic).
    """
    import keras

    if not isinstance(model, keras.Sequential) and type(model).__name__ != "Functional":
        raise UnsupportedLayerError(
            f"model {model.name!r} is a subclassed {type(model).__name__}; rnnx exports Sequential and "
            "functional Keras models, whose layers it can read from their config")
    if has_lambda(model):
        raise UnsupportedLayerError(
            f"model {model.name!r} has a Lambda layer; rnnx keeps Keras safe_mode on and never runs "
            "arbitrary Python code from a model (safe_mode=False is not an option); replace the Lambda "
            "with a built-in or registered layer")
    seq = sequence_inputs(model)
    if seq:
        try:
            return _rebuild(model, seq), seq, True
        except Exception:  # the layers need a fixed time length; keep it
            pass
    try:
        return _rebuild(model, set()), seq, False
    except UnsupportedLayerError:
        raise
    except Exception as exc:
        raise UnsupportedLayerError(
            f"model {model.name!r} cannot be rebuilt from its config for export: {exc}") from None
