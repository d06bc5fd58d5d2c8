"""The one registry of layer handlers: what rnnx can do with each Keras layer class.

A handler is a `LayerHandler` subclass registered for one Keras layer class
(subclasses of that class are matched too, nearest class first). It answers
four questions, and nothing else in rnnx decides them:

- `refuse(layer, variant)`: why this layer cannot be part of `variant`
  ("full", "stream" or "unrolled"), or None when it can;
- `time_local(layer)`: whether it treats each time step alone, so a sequence
  may be cut into chunks before it (recurrent layers are not time-local, but
  carry their past in states instead);
- `states(layer)`: the states it carries from one chunk to the next
  (`StateDecl`: kind, shape without the batch axis, dtype, initial value);
- `emit(ctx, call)`: write its ONNX nodes for one call of the layer.

The walker also asks `keeps_time`, `time_refusal`, `time_window`, `time_clock`,
`look_back`, `follows_clock`, `eats`, `acts_on_last_axis` and the mask hooks (`produces_mask`, `mask_value`,
`emit_mask`, `takes_mask`); the base class declares each with
the answer of a plain time-local layer. A handler whose answers depend on
one call (a Keras operation's constant arguments, the layers around it) gets
that call's `Site` in `bind(site)` and returns a handler that knows it.

Example, a user's layer that scales its input by a learned vector::

    import numpy as np
    from exporters.graph.registry import LayerHandler, register_layer

    class ScaleHandler(LayerHandler):
        summary = "x * scale (last axis)"

        def emit(self, ctx, call):
            scale = ctx.weight(call.layer, "scale", call.layer.scale.numpy())
            return [ctx.g.node("Mul", [call.inputs[0], scale])]

    register_layer(MyScale, ScaleHandler())

`rnnx layers` prints the table of registered handlers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from runtime.contract import VARIANTS  # noqa: F401  (the one list of variant names)


@dataclass(frozen=True)
class StateDecl:
    """One tensor a layer carries between chunks: (batch, *shape) of `dtype`, starting at `init`."""

    kind: str                 # 'h', 'c', 'conv', ... (names the tensors <kind>_in_<k>/<kind>_out_<k>)
    shape: tuple              # without the batch axis
    dtype: str = "float32"
    init: float = 0.0


@dataclass(frozen=True)
class Arg:
    """A tensor among a call's arguments: `index` into `Call.inputs`, its Keras shape (batch first,
    None = dynamic), dtype, and whether its axis 1 is the time axis."""

    index: int
    shape: tuple
    dtype: str
    has_time: bool


@dataclass(frozen=True)
class Site:
    """One call of a layer (or Keras operation) in the model's graph, as the walker plans it.

    `args`/`kwargs` are the call's arguments with every tensor replaced by its `Arg` (constants,
    slices and axes stay as Keras got them); `tensors` the Args in `Call.inputs` order;
    `out_shapes`/`out_dtypes` describe its outputs; `producers` is, per input, the layer that
    computes it (None for a model input) and `consumers` the layers that read any of its outputs
    (None stands for a model output).
    """

    layer: object
    args: tuple
    kwargs: dict
    tensors: tuple
    out_shapes: tuple
    out_dtypes: tuple
    producers: tuple = ()
    consumers: tuple = ()
    clock: object = None      # the stream clock of its sequence input (clocks.Clock); None: the model's own


@dataclass
class Call:
    """One call of a layer in the Keras graph, as the handler sees it.

    `inputs` are ONNX tensor names of the positional inputs (a merge layer gets
    one per merged tensor); `initial_state` those of the `initial_state=`
    argument, if any; `in_shapes`/`out_shapes` the Keras shapes (batch first,
    None = dynamic) of the inputs and outputs. For stream/unrolled,
    `states_in` are the graph inputs holding this call's states (declared by
    `states`), and the handler puts the new states in `states_out`.
    """

    layer: object
    inputs: list
    in_shapes: list
    out_shapes: list
    initial_state: list | None = None
    states_in: list | None = None
    states_out: list = field(default_factory=list)
    prefix: str = ""
    mask: str | None = None   # the (batch, time) bool Keras mask of the input, for handlers that take one


class LayerHandler:
    """Base class of every handler; override what differs from a plain time-local layer."""

    #: one line for `rnnx layers`
    summary: str = ""
    #: the keras.layers classes (by name) a built-in family registers this handler for
    layers: tuple = ()
    #: the variants this handler can emit at all (refuse() may narrow it per layer)
    variants: tuple = VARIANTS
    #: it maps each vector of the last axis alone (any rank): TimeDistributed runs it as it is
    acts_on_last_axis: bool = False

    def bind(self, site: Site) -> "LayerHandler":
        """The handler for this one call of the layer: self, or one that keeps what it needs of `site`."""
        return self

    def refuse(self, layer, variant: str) -> str | None:
        """Why `layer` cannot be part of `variant`, or None."""
        if variant not in self.variants:
            return f"rnnx emits {type(layer).__name__} only in {'/'.join(self.variants)}"
        return None

    def time_local(self, layer) -> bool:
        """Whether the layer treats each time step alone (safe to run one chunk at a time)."""
        return True

    def time_refusal(self, layer) -> str | None:
        """Why the layer cannot run one chunk at a time, asked only when its input has a time axis.

        A per-feature layer (a normalization over the last axis, Dense, an activation) on a
        tensor without time (after a last-step output) is never asked: its axis 1 is not time.
        """
        return None if self.time_local(layer) else "it mixes time steps, so it cannot run one chunk at a time"

    def keeps_time(self, layer) -> bool | None:
        """Whether its output's axis 1 is still the time axis when its input has one; None: the
        walker decides (time-local layers keep it, others when the output's axis 1 has the input's length)."""
        return None

    def states(self, layer) -> list[StateDecl]:
        """The states the layer carries between chunks (recurrent layers, causal caches)."""
        return []

    def eats(self, layer) -> int | None:
        """Frames of left time padding (a ZeroPadding before it) it consumes as a valid window, or None."""
        return None

    def time_window(self, layer) -> tuple[int, int]:
        """(frames of the sequence the layer drops, its stride on time) when it reads a sequence.

        (0, 1) for a layer that gives one output frame per input frame; a valid window over k
        frames drops k-1 of them. Export's shaped random samples are made long enough for every
        window of the model (its receptive field).
        """
        return 0, 1

    def time_clock(self, layer):
        """The stream clock (clocks.Clock) of its output sequence when it moves its input's: a
        window that drops frames, decimates or looks ahead. None: the output's slots are the input's."""
        return None

    def look_back(self, layer) -> int:
        """Input frames of the model before its output frame's last input that the layer reads
        besides that one (a window's (kernel-1)*dilation times its input's stride on time); 0 for a
        layer that reads one frame at a time. `rnnx inspect` shows the sum along the model."""
        return 0

    def follows_clock(self, layer) -> bool:
        """Whether its states follow the stream clock themselves (a window's cache). Other stateful
        layers after a window get the filled slots as a mask (`takes_mask`), or refuse to stream."""
        return False

    def emit(self, ctx, call: Call) -> list[str]:
        """Write the layer's nodes; return the ONNX names of its outputs, in Keras order."""
        raise NotImplementedError

    def produces_mask(self, layer) -> bool:
        """Whether the layer starts a Keras mask (Masking, Embedding(mask_zero=True))."""
        return False

    def mask_value(self, layer):
        """The input value that marks a padded step (for shaped random samples), or None."""
        return None

    def emit_mask(self, ctx, call: Call) -> str:
        """The (batch, time) bool mask the layer starts: True on valid steps, False on padding."""
        raise NotImplementedError

    def takes_mask(self, layer) -> bool | None:
        """What a Keras mask on the input does to a layer whose `call` takes one (`mask=`):
        True: `emit` reads it (`call.mask`); False: nothing at inference (the outputs do not
        depend on it); None: unknown, so the walker refuses the layer when a mask reaches it
        (`full` then comes from tf2onnx, which keeps Keras' masking)."""
        return None


class SiteHandler(LayerHandler):
    """A handler whose answers depend on the call: `bind` keeps the walker's `Site` in `self.site`.

    Unbound (`site` is None) it answers for a layer that a wrapper runs on frames (inside
    `TimeDistributed`, where axis 1 is not time).
    """

    site: Site | None = None

    def bind(self, site: Site) -> "SiteHandler":
        bound = copy.copy(self)
        bound.site = site
        return bound

    @property
    def sees_time(self) -> bool:
        """Whether the model's graph calls the layer (its axis 1 is time), not a wrapper on frames."""
        return self.site is not None


_REGISTRY: dict[type, LayerHandler] = {}
_BUILTINS_LOADED = False


def register_layer(layer_class: type, handler: LayerHandler, *, replace: bool = False) -> None:
    """Teach rnnx a Keras layer class: `handler` (a LayerHandler instance) emits it.

    A second registration for the same class raises ValueError unless
    `replace=True`, so two plugins cannot silently override each other.
    """
    if not isinstance(layer_class, type):
        raise TypeError(f"layer_class must be a Keras layer class; got {layer_class!r}")
    if not isinstance(handler, LayerHandler):
        raise TypeError(f"handler must be a LayerHandler instance; got {type(handler).__name__}")
    if layer_class in _REGISTRY and not replace and _REGISTRY[layer_class] is not handler:
        raise ValueError(f"{layer_class.__name__} already has a handler "
                         f"({type(_REGISTRY[layer_class]).__name__}); pass replace=True to override it")
    _REGISTRY[layer_class] = handler


def keras_layer_handlers(*handler_classes) -> list:
    """(keras.layers class, handler) pairs: one handler of each class, for every layer it names
    in `layers` (a family module's `handlers()`)."""
    import keras

    pairs = []
    for cls in handler_classes:
        if "layers" not in vars(cls):
            raise TypeError(f"{cls.__name__} names no Keras layers of its own (set `layers`)")
        handler = cls()
        pairs += [(getattr(keras.layers, name), handler) for name in cls.layers]
    return pairs


def unregister_layer(layer_class: type) -> None:
    """Forget the handler registered for exactly `layer_class` (no error when there is none)."""
    _REGISTRY.pop(layer_class, None)


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from . import handlers  # noqa: F401  (registers the built-in handlers)


def handler_for(layer) -> LayerHandler | None:
    """The handler of `layer`'s class or of its nearest registered base class, else None."""
    _load_builtins()
    for cls in type(layer).__mro__:
        handler = _REGISTRY.get(cls)
        if handler is not None:
            return handler
    return None


def registered() -> dict[type, LayerHandler]:
    """Every registered class and its handler (built-ins included)."""
    _load_builtins()
    return dict(_REGISTRY)


def display_name(cls: type) -> str:
    """How `rnnx layers` names a class: `LSTM` for a layer, `ops.Add` for a Keras operation."""
    return f"ops.{cls.__name__}" if cls.__module__.startswith("keras.src.ops") else cls.__name__


def table() -> list[dict]:
    """One row per registered layer class (layers first, then Keras operations), for `rnnx layers`
    and the README."""
    rows = []
    for cls, handler in sorted(registered().items(), key=lambda kv: (display_name(kv[0]).startswith("ops."),
                                                                     kv[0].__name__)):
        rows.append({"layer": display_name(cls), "handler": type(handler).__name__,
                     "variants": list(handler.variants), "summary": handler.summary})
    return rows
