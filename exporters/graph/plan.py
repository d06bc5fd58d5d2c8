"""Plan an export: walk a linear chain of Keras layers into emit steps.

A step is one recurrent layer (`rnn`), one layer rnnx emits itself
(`native`: Dense, Dropout, Activation, Embedding, also inside
TimeDistributed), a run of TimeDistributed layers for tf2onnx (`per_step`),
or a run of other layers for tf2onnx (`plain`).

The plan also records why the model cannot be emitted natively
(`native_blocker`: the full variant then falls back to tf2onnx) and why it
cannot stream (`stream_blocker`: stream/unrolled are then refused). Shapes
come from the (stateless, dynamic) reference model and are read here, before
any conversion calls the layers again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import emit_layers, rnn_params
from ..errors import ModelFormatError

# Non-recurrent layers that treat every time step alone (safe to run one chunk at a time).
_STEPWISE = ("Dense", "Dropout", "Activation", "Embedding", "TimeDistributed",
             "LayerNormalization", "BatchNormalization", "GaussianNoise", "GaussianDropout",
             "SpatialDropout1D", "Identity", "Softmax", "ReLU", "LeakyReLU", "PReLU", "ELU")


@dataclass(frozen=True)
class Step:
    kind: str                 # "rnn" | "native" | "per_step" | "plain"
    layers: tuple
    input_shape: tuple        # batch first, None = dynamic
    output_shape: tuple
    index: int = -1           # recurrent layer index k (rnn steps only)


@dataclass(frozen=True)
class Plan:
    steps: tuple
    recurrent: tuple          # the recurrent layers in model order
    input_shape: tuple        # batch first
    input_dtype: str
    output_shape: tuple
    native_blocker: str | None
    stream_blocker: str | None
    layer_names: tuple = field(default=())

    @property
    def per_step_output(self) -> bool:
        """Whether the output keeps the time axis (one prediction per step)."""
        last = self.recurrent[-1] if self.recurrent else None
        return bool(getattr(last, "return_sequences", False)) and len(self.output_shape) >= 3


def chain_layers(model) -> list | None:
    """The layers of a Sequential or single-chain functional model in order, else None."""
    import keras

    if isinstance(model, keras.Sequential):
        return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    prev = model.inputs[0]
    for layer in layers:
        nodes = layer._inbound_nodes
        if len(nodes) != 1 or len(nodes[0].input_tensors) != 1 or nodes[0].input_tensors[0] is not prev:
            return None
        prev = layer.output
    return layers if prev is model.outputs[0] else None


def _shape(t) -> tuple:
    return tuple(None if d is None else int(d) for d in t.shape)


def _all_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        yield layer
        inner = getattr(layer, "layer", None)
        if inner is not None:
            yield inner


def make(model) -> Plan:
    """Plan the export of `model` (a stateless reference model, see `clone.py`)."""
    import keras

    if not any(rnn_params.is_recurrent(layer) for layer in _all_layers(model)):
        raise ModelFormatError(
            f"model {model.name!r} has no recurrent layer (expected LSTM, GRU or SimpleRNN); "
            "rnnx exports recurrent models")
    in_shape, dtype = _shape(model.inputs[0]), str(model.inputs[0].dtype)
    out_shape = _shape(model.outputs[0])
    layers = chain_layers(model)
    if layers is None:
        recurrent = tuple(layer for layer in model.layers if rnn_params.is_recurrent(layer))
        reason = "the model is not a single chain of layers"
        return Plan((), recurrent, in_shape, dtype, out_shape, reason,
                    f"{reason}; only chains can stream")

    steps, recurrent = [], []
    native_blocker = stream_blocker = None
    has_time = True
    for layer in layers:
        cls = type(layer).__name__
        shapes = (_shape(layer.input), _shape(layer.output))
        if rnn_params.is_recurrent(layer):
            why = rnn_params.native_blocker(layer)
            if why is not None:
                native_blocker = native_blocker or f"layer {layer.name!r} ({cls}): {why}"
                if stream_blocker is None:
                    stream_blocker = _stream_refusal(layer, why)
            if not has_time and stream_blocker is None:
                stream_blocker = (f"layer {layer.name!r} ({cls}) follows a recurrent layer that returns "
                                  "only its last step, so it needs the whole sequence; it cannot stream")
            steps.append(Step("rnn", (layer,), *shapes, index=len(recurrent)))
            recurrent.append(layer)
            if not getattr(layer, "return_sequences", False):
                has_time = False
            continue
        if _masks(layer):
            native_blocker = native_blocker or (
                f"layer {layer.name!r} ({cls}) produces a mask, which native ONNX RNN ops ignore")
            stream_blocker = stream_blocker or (
                f"layer {layer.name!r} ({cls}) produces a mask; masked sequences cannot stream")
        if has_time and cls not in _STEPWISE and stream_blocker is None:
            stream_blocker = (f"layer {layer.name!r} ({cls}) mixes time steps, so it cannot run "
                              "one chunk at a time")
        kind = "per_step" if isinstance(layer, keras.layers.TimeDistributed) else "plain"
        joins_run = kind == "per_step" and steps and steps[-1].kind == "per_step"
        if emit_layers.emitter_for(layer) is not None and not joins_run:
            steps.append(Step("native", (layer,), *shapes))
            continue
        if steps and steps[-1].kind == kind:
            last = steps.pop()
            steps.append(Step(kind, last.layers + (layer,), last.input_shape, shapes[1]))
        else:
            steps.append(Step(kind, (layer,), *shapes))
    return Plan(tuple(steps), tuple(recurrent), in_shape, dtype, out_shape,
                native_blocker, stream_blocker, tuple(layer.name for layer in layers))


def _stream_refusal(layer, why: str) -> str:
    import keras

    cls = type(layer).__name__
    if isinstance(layer, keras.layers.Bidirectional):
        return (f"layer {layer.name!r} (Bidirectional) reads each sequence backwards from its end, "
                "so it cannot stream; export it as 'full' only")
    return f"layer {layer.name!r} ({cls}) cannot stream: {why}"


def _masks(layer) -> bool:
    import keras

    if isinstance(layer, keras.layers.Masking):
        return True
    return isinstance(layer, keras.layers.Embedding) and bool(getattr(layer, "mask_zero", False))
