"""Walk a Keras model's functional graph into an export plan, then emit it.

`plan(model, time_inputs)` follows the graph (Sequential, or any functional
DAG: several inputs and outputs, merges, residuals, shared layers, nested
models) in topological order and asks each layer's handler (registry.py)
what it can do: which variants it blocks and why, whether it keeps the time
axis, which states it carries. Nothing is emitted yet.

`emit(plan, variant, ...)` writes one variant: model inputs first (`x` when
there is one, else the Keras input names), then one input per state
(`<kind>_in_<k>`); outputs `y` (or the Keras output names), then the
`<kind>_out_<k>` states in the same order. A layer without a handler is
converted alone by tf2onnx (`segment.py`) and spliced in; it cannot stream
unless it runs frame by frame inside `TimeDistributed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from runtime.contract import STREAMING_VARIANTS

from ..errors import ModelFormatError, UnsupportedLayerError
from . import clocks as clocks_mod
from . import masks, registry, segment
from .onnx_graph import GraphBuilder
from .registry import Call

STREAMING = STREAMING_VARIANTS


@dataclass
class IO:
    """One model input or output."""

    name: str                 # the ONNX name
    key: tuple                # the walker's tensor key
    shape: tuple              # Keras shape, batch first, None = dynamic
    dtype: str
    has_time: bool            # axis 1 is the time axis
    vocab_size: int | None = None
    producer: object = None   # outputs: the layer that computes it
    pad_value: float | None = None  # inputs that feed a mask: the value of a padded step
    time_dim: str | None = None     # the name of its time axis: IOs with the same name share one length
    clock: object = None            # outputs with time: the stream clock of their frames (clocks.Clock)
    reach: int = 0                  # outputs with time: input frames its windows span before its last one

    @property
    def look_ahead(self) -> int:
        """Input frames after an output frame's own that it reads: its latency in a stream."""
        return self.clock.lookahead if self.clock is not None else 0

    @property
    def look_back(self) -> int:
        """Input frames before an output frame's own that its windows read (states carry the rest)."""
        return self.reach - self.look_ahead


@dataclass
class StateRow:
    """One state tensor of the stream/unrolled variants."""

    input: str
    output: str
    shape: tuple              # without the batch axis
    dtype: str
    init: float
    layer: str
    kind: str
    step: int                 # index into Plan.steps
    position: int             # index among the step's states


@dataclass
class Step:
    """One call of one layer (or operation)."""

    layer: object
    handler: object           # a LayerHandler, or None for a tf2onnx segment
    node: object              # the Keras Node
    in_keys: list
    state_keys: list          # keys of the `initial_state=` tensors, if any
    out_keys: list
    in_shapes: list
    out_shapes: list
    has_time: bool            # any input has a time axis
    state_index: int | None = None   # k of <kind>_in_<k>, for stateful steps
    mask_from: tuple | None = None   # the mask a recurrent step consumes: ("step", i) or ("tensor", key)
    mask_key: tuple | None = None    # the tensor of an explicit `mask=` argument
    clock: object = None             # the stream clock of its sequence input (clocks.Clock), if any
    clock_mask: bool = False         # a stateful step after a window: it skips the stream's empty slots


@dataclass
class Plan:
    inputs: list
    outputs: list
    steps: list
    states: list
    blockers: dict            # variant -> why it cannot be made (naming the layer), or None
    fallback: str | None      # why `full` needs whole-model tf2onnx, or None
    recurrent: list = field(default_factory=list)   # recurrent layers in graph order
    tensors: dict = field(default_factory=dict)     # key -> (shape, dtype, has_time)
    clocks: dict = field(default_factory=dict)      # key -> clocks.Clock of every tensor with time

    @property
    def clocked(self) -> bool:
        """Whether a window on time drops, decimates or delays frames (the stream has a clock)."""
        return any(not c.plain for c in self.clocks.values())

    @property
    def flush_frames(self) -> int:
        """Zero frames a stream must be fed after the sequence ends to give its last frames."""
        return max((c.lookahead for c in self.clocks.values()), default=0)

    @property
    def input(self) -> IO:
        return self.inputs[0]

    @property
    def output(self) -> IO:
        return self.outputs[0]


# -- planning ---------------------------------------------------------------------------------

def _shape(t) -> tuple:
    return tuple(None if d is None else int(d) for d in t.shape)


def _input_layer_name(t) -> str:
    return t._keras_history[0].name


def _key(t) -> tuple:
    op, node_index, tensor_index = t._keras_history
    return (id(op), node_index, tensor_index)


def _flat(value) -> list:
    import keras

    return [t for t in keras.tree.flatten(value) if isinstance(t, keras.KerasTensor)]


def _onnx_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


def _unique(names: list[str]) -> list[str]:
    out, seen = [], {}
    for n in names:
        n = _onnx_name(n)
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        else:
            seen[n] = 0
        out.append(n)
    return out


def _nodes(model):
    """(node, operation) of a functional model in topological order, nested models inlined lazily."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if not node.is_input:
                yield node


def _functional(model):
    import keras

    if isinstance(model, keras.Sequential):
        inner = getattr(model, "_functional", None)
        if inner is None:
            raise ModelFormatError(f"Sequential model {model.name!r} has no input shape; build it with "
                                   "keras.Input(...) first so its layers have shapes")
        return inner
    return model


def vocab_of(model, key) -> int | None:
    """The vocabulary size of an input that feeds an Embedding directly, else None."""
    import keras

    for node in _nodes(_functional(model)):
        op = node.operation
        if isinstance(op, keras.layers.Embedding) and any(_key(t) == key for t in node.input_tensors):
            return int(op.input_dim)
    return None


def plan(model, time_inputs: set) -> Plan:
    """Plan the export of `model` (a stateless reference model, see reference.py).

    `time_inputs` are the names of the Keras inputs whose axis 1 is time.
    """
    fmodel = _functional(model)
    walker = _Walker(model, _model_inputs(model, fmodel, time_inputs))
    key_map: dict = {}
    walker.walk(fmodel, key_map, top=True)
    outputs = walker.outputs(fmodel, key_map)
    if not any(_is_recurrent(s.layer) for s in walker.steps):
        raise ModelFormatError(
            f"model {model.name!r} has no recurrent layer (expected LSTM, GRU, SimpleRNN, RNN or "
            "Bidirectional); rnnx exports recurrent models")
    taken = {io.name for io in walker.inputs} | {io.name for io in outputs}
    result = Plan(walker.inputs, outputs, walker.steps, _state_rows(walker.steps, taken), walker.name_later_blockers(),
                  walker.fallback, walker.recurrent, walker.tensors, walker.clocks)
    if result.clocked:
        _on_clock(result, walker.block, taken)
    _name_time_axes(result)
    return result


def _model_inputs(model, fmodel, time_inputs: set) -> list:
    """One IO per Keras input: `x` alone, else the Keras names; token ids get their vocabulary."""
    names = _unique(["x"] if len(fmodel.inputs) == 1 else [t.name for t in fmodel.inputs])
    inputs = [IO(name, _key(t), _shape(t), str(t.dtype), _input_layer_name(t) in time_inputs and len(t.shape) >= 2)
              for t, name in zip(fmodel.inputs, names)]
    for io in inputs:   # token ids: integer inputs, and float ones (Keras casts them) that feed an Embedding
        if io.dtype != "bool":
            io.vocab_size = vocab_of(model, io.key)
    return inputs


class _Walker:
    """What `plan` learns walking the Keras graph in order: each tensor's shape, time axis, clock
    and window reach; the steps; and why a variant cannot be made."""

    def __init__(self, model, inputs: list):
        self.inputs = inputs
        self.tensors = {io.key: (io.shape, io.dtype, io.has_time) for io in inputs}
        self.clocks = {io.key: clocks_mod.BASE for io in inputs if io.has_time}
        self.reach: dict = {}      # tensor key -> input frames its windows span before a frame's last input
        self.mask_of: dict = {}    # tensor key -> the source of its Keras mask (see _follow_masks)
        self.producer_of: dict = {}    # tensor key -> the layer that computes it
        self.steps, self.recurrent = [], []
        self.blockers = {v: None for v in registry.VARIANTS}
        self.also = {v: [] for v in registry.VARIANTS}     # later layers that block a variant too
        self.fallback = None

    def block(self, variant, why):
        if self.blockers[variant] is None:
            self.blockers[variant] = why
        elif (who := _blocking_layer(why)) and who not in self.blockers[variant] and who not in self.also[variant]:
            self.also[variant].append(who)

    def name_later_blockers(self) -> dict:
        """`blockers`, each stream variant's first reason followed by the later layers that block it too."""
        for v in STREAMING:
            if self.also[v]:
                more = ", ..." if len(self.also[v]) > 3 else ""
                self.blockers[v] += f"; also refused: {', '.join(self.also[v][:3])}{more}"
        return self.blockers

    def walk(self, fm, key_map: dict, *, top: bool) -> None:
        import keras

        readers = _readers(fm, key_map)
        for node in _nodes(fm):
            if isinstance(node.operation, keras.Model):
                self._inline(node, key_map)
            else:
                self._call(node, key_map, readers, top)

    def _inline(self, node, key_map: dict) -> None:
        """A nested model: walk its graph with its inputs mapped to the tensors it is called on."""
        inner = _functional(node.operation)
        ins = [key_map.get(_key(t), _key(t)) for t in _flat(node.arguments.args)]
        sub_map = dict(key_map)
        for t_in, k in zip(inner.inputs, ins):
            sub_map[_key(t_in)] = k
        self.walk(inner, sub_map, top=False)
        for t_out, t in zip(inner.outputs, node.output_tensors):
            key_map[_key(t)] = sub_map.get(_key(t_out), _key(t_out))

    def _call(self, node, key_map: dict, readers: dict, top: bool) -> None:
        step = self._step(node, key_map, readers)
        op, what = step.layer, f"layer {step.layer.name!r} ({type(step.layer).__name__})"
        if _is_recurrent(op):
            self.recurrent.append(op)
        if step.handler is None:
            if step.has_time:
                for v in STREAMING:
                    self.block(v, f"{what} has no rnnx handler, so rnnx cannot tell whether it mixes time "
                                  "steps (register one with exporters.graph.register_layer)")
        else:
            self._judge(step, what)
        self._record_outputs(step, node)
        _follow_masks(step, len(self.steps), step.handler, self.mask_of, self.inputs, self.block, what, top)
        if decls_of(step) and getattr(op, "return_state", False):
            for k in step.out_keys[1:]:
                shape, dtype, _ = self.tensors[k]
                self.tensors[k] = (shape, dtype, False)
                self.clocks.pop(k, None)
        self.producer_of.update((k, op) for k in step.out_keys)
        self.steps.append(step)

    def _step(self, node, key_map: dict, readers: dict) -> Step:
        """The Step of one call: its inputs' keys and shapes, its bound handler, its clock."""
        op, kwargs = node.operation, node.arguments.kwargs
        ins = [key_map.get(_key(t), _key(t)) for t in _flat(node.arguments.args)]
        states = [key_map.get(_key(t), _key(t)) for t in _flat(kwargs.get("initial_state", kwargs.get("states", [])))]
        if any(k not in self.tensors for k in ins + states):
            raise ModelFormatError(f"layer {op.name!r} reads a tensor the walker has not seen; "
                                   "the model graph is not connected as Keras reports it")
        has_time = any(self.tensors[k][2] for k in ins)
        clock = _clock_in(ins, self.tensors, self.clocks, self.block, f"layer {op.name!r} ({type(op).__name__})")
        handler = registry.handler_for(op)
        if handler is not None:
            handler = handler.bind(_site(node, ins, self.tensors, self.producer_of, readers, key_map, clock))
        step = Step(op, handler, node, ins, states, [_key(t) for t in node.output_tensors],
                    [self.tensors[k][0] for k in ins], [_shape(t) for t in node.output_tensors], has_time,
                    clock=clock)
        mask_ts = _flat(kwargs.get("mask", []))
        if mask_ts:
            step.mask_key = key_map.get(_key(mask_ts[0]), _key(mask_ts[0]))
        return step

    def _judge(self, step: Step, what: str) -> None:
        """The variants the handler refuses, and how a stateful layer runs in a stream."""
        op, handler = step.layer, step.handler
        for variant in registry.VARIANTS:
            why = handler.refuse(op, variant)
            if why is not None:
                self.block(variant, f"{what}: {why}")
                if variant == "full" and self.fallback is None:
                    self.fallback = f"{what}: {why}"
        decls = handler.states(op)
        if decls and not step.has_time:
            # it reads a sequence made inside the call (RepeatVector, a rollout from a last step,
            # initial_state= from another layer): it runs whole in every call, carrying nothing
            shape = step.in_shapes[0] if step.in_shapes else ()
            if len(shape) < 3 or shape[1] is None:
                self.block("unrolled", f"{what} runs over a sequence made inside the model whose length "
                                       "is not fixed, and unrolled writes every step out")
        elif decls:
            if step.state_keys:
                for v in STREAMING:
                    self.block(v, f"{what} reads a sequence and takes its initial state from other tensors "
                                  "(initial_state=); a stream carries its own states: export it as 'full'")
            step.state_index = sum(1 for s in self.steps if s.state_index is not None)
        elif step.has_time and (why := handler.time_refusal(op)) is not None:
            for v in STREAMING:
                self.block(v, f"{what}: {why}")

    def _record_outputs(self, step: Step, node) -> None:
        """Each output's shape, whether it keeps the time axis, its clock and its windows' reach."""
        op, handler = step.layer, step.handler
        keeps = _keeps_time(handler, op, step)
        out_clock = (handler.time_clock(op) if handler is not None else None) or step.clock
        out_reach = max((self.reach.get(k, 0) for k in step.in_keys), default=0)
        if handler is not None and step.has_time:
            out_reach += handler.look_back(op)
        for k, t in zip(step.out_keys, node.output_tensors):
            self.tensors[k] = (_shape(t), str(t.dtype), keeps and len(t.shape) >= 2)
            if self.tensors[k][2]:
                self.clocks[k], self.reach[k] = out_clock, out_reach

    def outputs(self, fmodel, key_map: dict) -> list:
        names = _unique(["y"] if len(fmodel.outputs) == 1 else list(fmodel.output_names))
        outputs = []
        for t, name in zip(fmodel.outputs, names):
            key = key_map.get(_key(t), _key(t))
            if key not in self.tensors:
                raise ModelFormatError(f"model output {t.name!r} is not produced by any layer the walker saw")
            _, dtype, has_time = self.tensors[key]
            producer = next((s.layer for s in self.steps if key in s.out_keys), None)
            outputs.append(IO(name, key, _shape(t), dtype, has_time, producer=producer, clock=self.clocks.get(key),
                              reach=self.reach.get(key, 0)))
        return outputs


def _blocking_layer(why: str) -> str | None:
    """The "layer 'name' (Class)" a refusal starts with, if it names one."""
    found = re.match(r"layer '[^']*' \([^)]*\)", why)
    return found.group(0) if found else None


def _readers(fm, key_map) -> dict:
    """tensor key -> the operations that read it in functional model `fm` (None: a model output)."""
    found: dict = {}
    for node in _nodes(fm):
        for t in _flat(node.arguments.args) + _flat(node.arguments.kwargs):
            found.setdefault(key_map.get(_key(t), _key(t)), []).append(node.operation)
    for t in fm.outputs:
        found.setdefault(key_map.get(_key(t), _key(t)), []).append(None)
    return found


def _clock_in(ins, tensors, clocks, block, what):
    """The stream clock of a step's sequence inputs (None without one); several must agree."""
    found = list(dict.fromkeys(clocks[k] for k in ins if tensors[k][2] and k in clocks))
    if len(found) > 1:
        for v in STREAMING:
            block(v, f"{what} combines sequences whose frames arrive at different times or rates "
                     f"(delays {[c.delay for c in found]}, strides {[c.stride for c in found]} input frames) "
                     "after windows on time; rnnx streams a merge of sequences on one clock only")
    return found[0] if found else None


def _on_clock(plan: Plan, block, taken: set) -> None:
    """A stream with windows that drop, decimate or delay frames: stateful steps after them skip
    the empty slots (as masked steps) or refuse, and one state carries the clock."""
    for step in plan.steps:
        handler = step.handler
        if step.state_index is None or handler is None or handler.follows_clock(step.layer):
            continue
        if handler.takes_mask(step.layer):
            step.clock_mask = True
        else:
            for v in STREAMING:
                block(v, f"layer {step.layer.name!r} ({type(step.layer).__name__}) carries a state over a "
                         "sequence that a window on time dropped, decimated or delayed, and has no masked "
                         "form to skip the frames that are not there yet")
    k = sum(1 for s in plan.steps if s.state_index is not None)
    s_in, s_out = state_names(clocks_mod.KIND, k, taken, plan.states)
    plan.states.append(StateRow(s_in, s_out, (2,), "int64", 0.0, "", clocks_mod.KIND, -1, 0))


def state_names(kind: str, k: int, taken: set, rows: list) -> tuple[str, str]:
    """`<kind>_in_<k>`/`<kind>_out_<k>`; a Keras name or another state took it: keep the kind,
    move the index far away."""
    s_in, s_out = f"{kind}_in_{k}", f"{kind}_out_{k}"
    while s_in in taken or s_out in taken or any(r.input == s_in for r in rows):
        k += 1000
        s_in, s_out = f"{kind}_in_{k}", f"{kind}_out_{k}"
    return s_in, s_out


def _site(node, ins, tensors, producer_of, readers, key_map, clock=None) -> registry.Site:
    """What a handler may know of one call: its arguments (tensors as Args), shapes, neighbours."""
    import keras

    flat = _flat(node.arguments.args)
    index = {id(t): i for i, t in reversed(list(enumerate(flat)))}
    args_ = [registry.Arg(i, tensors[k][0], tensors[k][1], tensors[k][2]) for i, k in enumerate(ins)]

    def swap(value):
        if isinstance(value, keras.KerasTensor):
            return args_[index[id(value)]] if id(value) in index else value
        if isinstance(value, (list, tuple)):
            return type(value)(swap(v) for v in value)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    outs = [_key(t) for t in node.output_tensors]
    consumers = tuple(dict.fromkeys(c for k in outs for c in readers.get(k, [])))
    return registry.Site(node.operation, tuple(swap(a) for a in node.arguments.args),
                         {k: v for k, v in node.arguments.kwargs.items() if not isinstance(v, keras.KerasTensor)},
                         tuple(args_), tuple(_shape(t) for t in node.output_tensors),
                         tuple(str(t.dtype) for t in node.output_tensors),
                         tuple(producer_of.get(k) for k in ins), consumers, clock)


def _name_time_axes(plan: Plan) -> None:
    """Give every sequence input its own time axis, and each output the axis it follows.

    Inputs are independent until a layer combines them step by step (a merge, an element-wise
    op, a `mask=` argument): then they must have one length. An attention layer's output follows its query (its
    first input), whatever the length of the sequence it attends to. One axis overall is
    `time`; several are `<input>_time`. (Only `full` has time axes: a stream call takes one
    chunk of every sequence input, which advance together, as synchronized sensors do.)
    """
    parent: dict = {}

    def root(g):
        while parent[g] != g:
            g = parent[g]
        return g

    group = {}
    for io in plan.inputs:
        if io.has_time:
            group[io.key] = parent[io.name] = io.name
    for step in plan.steps:
        keys = step.in_keys + ([step.mask_key] if step.mask_key is not None else [])   # a mask= has its length
        roots = [root(group[k]) for k in keys if k in group and plan.tensors[k][2]]
        if len(set(roots)) > 1 and not _follows_query(step.layer):
            for r in roots[1:]:
                parent[root(r)] = root(roots[0])
        for k in step.out_keys:
            if roots and plan.tensors.get(k, (None, None, False))[2]:
                group[k] = roots[0]
    axes = sorted({root(group[io.key]) for io in plan.inputs + plan.outputs if io.has_time and io.key in group})
    for io in plan.inputs + plan.outputs:
        if io.has_time and io.key in group:
            io.time_dim = "time" if len(axes) == 1 else f"{root(group[io.key])}_time"


def _follows_query(layer) -> bool:
    import keras

    return isinstance(layer, (keras.layers.Attention, keras.layers.AdditiveAttention,
                              keras.layers.MultiHeadAttention))


def _follow_masks(step, index, handler, mask_of, inputs, block, what, top: bool) -> None:
    """Track Keras masks: started by Masking/Embedding(mask_zero) or given as `mask=`, passed on
    by layers that support masking, read by the layers whose call takes one (`takes_mask`).

    `mask_of` maps a tensor key to the mask's source: ("step", i), the step that starts it, or
    ("tensor", key), a boolean tensor. On the model's own graph (`top`) Keras says which tensors
    carry a mask (`_keras_mask`); inside a nested model the walker follows Keras' rule itself.
    """
    op, node = step.layer, step.node
    source = next((mask_of[k] for k in step.in_keys if k in mask_of), None)
    if step.mask_key is not None:  # an explicit mask= argument: a (batch, time) boolean tensor
        source = ("tensor", step.mask_key)
        for io in inputs:
            if io.key == step.mask_key:
                io.pad_value = False
    if source is not None and getattr(op, "_call_has_mask_arg", False):
        takes = handler.takes_mask(op) if handler is not None else None
        if takes:
            step.mask_from = source
        elif takes is None:
            for v in registry.VARIANTS:
                block(v, f"{what} reads the Keras mask of its input, and rnnx has no masked form of it")
    if handler is not None and handler.produces_mask(op):
        for io in inputs:
            if io.key in step.in_keys:
                io.pad_value = handler.mask_value(op)
        mask_of[step.out_keys[0]] = ("step", index)
        return
    for k, t in zip(step.out_keys, node.output_tensors):
        if top:
            carried = getattr(t, "_keras_mask", None) is not None
        else:
            carried = source is not None and getattr(op, "supports_masking", False) and step.has_time
        if carried and source is None:
            for v in registry.VARIANTS:
                block(v, f"{what} gives a Keras mask that rnnx cannot trace to the layer that made it")
        elif carried:
            mask_of[k] = source


def decls_of(step) -> list:
    return step.handler.states(step.layer) if step.handler is not None else []


def _keeps_time(handler, op, step) -> bool:
    if not step.has_time:
        return False
    keeps = handler.keeps_time(op) if handler is not None else None
    if keeps is not None:
        return bool(keeps)
    if handler is not None and handler.time_local(op):
        return True
    ins, outs = step.in_shapes, step.out_shapes
    return bool(ins and outs and len(outs[0]) >= 2 and len(ins[0]) >= 2 and outs[0][1] == ins[0][1])


def _is_recurrent(layer) -> bool:
    import keras

    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def _state_rows(steps, taken: set) -> list[StateRow]:
    rows = []
    for i, step in enumerate(steps):
        if step.state_index is None:
            continue
        for pos, decl in enumerate(decls_of(step)):
            s_in, s_out = state_names(decl.kind, step.state_index, taken, rows)
            rows.append(StateRow(s_in, s_out, tuple(decl.shape), decl.dtype, decl.init,
                                 step.layer.name, decl.kind, i, pos))
    return rows


# -- emission ---------------------------------------------------------------------------------

class EmitContext:
    """What a handler's `emit` gets besides its call: the graph builder and the variant."""

    def __init__(self, g: GraphBuilder, variant: str, chunk: int, opset: int, cache: dict):
        self.g, self.variant, self.chunk, self.opset = g, variant, chunk, opset
        self._cache = cache
        self._weights: dict = {}
        self.masks: dict = {}   # mask source -> (batch, time) bool tensor
        self.clocks = None      # clocks.ClockGraph of a stream whose windows move frames

    def mask(self, source: tuple, names: dict, tensors: dict, prefix: str) -> str:
        """The (batch, time) bool tensor of a mask: started by a layer, or a tensor given as `mask=`."""
        if source not in self.masks:  # ("tensor", key)
            self.masks[source] = masks.as_bool(self.g, names[source[1]], tensors[source[1]][1], prefix)
        return self.masks[source]

    @property
    def streaming(self) -> bool:
        return self.variant in STREAMING

    def weight(self, layer, name: str, value, dtype=np.float32) -> str:
        """An initializer for `layer`'s weight `name`, stored once however often the layer is called."""
        key = (id(layer), name)
        if key not in self._weights:
            self._weights[key] = self.g.const(f"{layer.name}_{name}", np.asarray(value, dtype=dtype))
        return self._weights[key]

    def segment(self, op, call: Call, node=None, in_shapes=None) -> list[str]:
        """Convert one operation with tf2onnx (cached across variants) and splice it in."""
        shapes = in_shapes if in_shapes is not None else call.in_shapes
        key = (id(op), tuple(map(tuple, shapes)), self.opset)
        if key not in self._cache:
            self._cache[key] = segment.convert(op, node, shapes, self.opset)
        proto, n_in = self._cache[key]
        feeds = {f"seg_in_{i}": name for i, name in enumerate(call.inputs[:n_in])}
        return self.g.splice(proto.graph, feeds, f"{call.prefix}/", proto.opset_import)


def emit(plan: Plan, variant: str, *, chunk: int, opset: int, name: str, cache: dict | None = None,
         fixed_time: int | None = None):
    """The ModelProto of `variant` (no metadata yet). `cache` shares tf2onnx segments between variants.

    `fixed_time` declares the time axis of `full` with that exact length.
    """
    if plan.blockers[variant] is not None:
        raise UnsupportedLayerError(f"cannot export {variant}: {plan.blockers[variant]}")
    g = GraphBuilder(f"{name}_{variant}")
    ctx = EmitContext(g, variant, chunk, opset, {} if cache is None else cache)
    names = {io.key: g.reserve(io.name) for io in plan.inputs}
    states = plan.states if ctx.streaming else []
    for s in states:
        g.reserve(s.input)
    finals = {}
    if ctx.streaming and plan.clocked:
        row = next(s for s in states if s.kind == clocks_mod.KIND and s.step == -1)
        ctx.clocks = clocks_mod.ClockGraph(g, row.input, chunk, opset)
        finals[row.output] = ctx.clocks.state_out
    for i, step in enumerate(plan.steps):
        prefix = f"s{i}_{_onnx_name(step.layer.name)}"
        call = Call(step.layer, [names[k] for k in step.in_keys], step.in_shapes, step.out_shapes,
                    initial_state=[names[k] for k in step.state_keys] or None, prefix=prefix)
        mine = [s for s in states if s.step == i]
        if mine:
            call.states_in = [s.input for s in mine]
        if step.mask_from is not None:
            call.mask = ctx.mask(step.mask_from, names, plan.tensors, prefix)
        if step.clock_mask and ctx.clocks is not None:
            slots = ctx.clocks.valid(step.clock)
            call.mask = slots if call.mask is None else g.node("And", [call.mask, slots], name_hint=f"{prefix}_slots")
        if step.handler is None:
            outs = ctx.segment(step.layer, call, step.node)
        else:
            outs = step.handler.emit(ctx, call)
            if step.handler.produces_mask(step.layer):
                ctx.masks[("step", i)] = step.handler.emit_mask(ctx, call)
        if len(outs) != len(step.out_keys):
            raise UnsupportedLayerError(
                f"the handler of layer {step.layer.name!r} gave {len(outs)} outputs; Keras has {len(step.out_keys)}")
        names.update(zip(step.out_keys, outs))
        for s in mine:
            finals[s.output] = call.states_out[s.position]
    for io in plan.outputs:
        g.reserve(io.name)
        y = names[io.key]
        if ctx.clocks is not None and io.has_time:
            y = ctx.clocks.kept(y, io.clock, f"output_{io.name}")
        g.node("Identity", [y], outputs=[io.name], name_hint=f"output_{io.name}")
    for s in states:
        g.reserve(s.output)
        g.node("Identity", [finals[s.output]], outputs=[s.output], name_hint=s.output)
    ins = [(io.name, np.dtype(io.dtype), io_dims(io, variant, chunk, fixed_time)) for io in plan.inputs]
    ins += [(s.input, np.dtype(s.dtype), ["batch", *s.shape]) for s in states]
    outs = [(io.name, np.dtype("float32") if io.dtype.startswith("float") else np.dtype(io.dtype),
             io_dims(io, variant, chunk, fixed_time, clocked=plan.clocked)) for io in plan.outputs]
    outs += [(s.output, np.dtype(s.dtype), ["batch", *s.shape]) for s in states]
    return g.to_model(ins, outs, opset)


def io_dims(io: IO, variant: str, chunk: int, fixed_time: int | None = None, *, clocked: bool = False) -> list:
    """Dims of a model input/output: 'batch', then time ('time', fixed, or the chunk; the frames
    that became complete for an output of a clocked stream), then the rest."""
    dims = ["batch"] + [d if d is not None else f"{io.name}_dim{i}" for i, d in enumerate(io.shape[1:], 1)]
    if io.has_time:
        if variant in STREAMING and clocked and io.clock is not None:
            dims[1] = f"{io.name}_frames"
        elif variant in STREAMING:
            dims[1] = chunk
        elif fixed_time is not None:
            dims[1] = fixed_frames(io, fixed_time)
        elif io.shape[1] is None:
            dims[1] = io.time_dim or "time"
    return dims


def fixed_frames(io: IO, steps: int) -> int:
    """The length of sequence `io` when the model's inputs have exactly `steps` frames: its own
    fixed length, else what the windows before it make of `steps`."""
    if io.shape[1] is not None:
        return int(io.shape[1])
    return io.clock.frames(steps) if io.clock is not None else steps


def receptive_field(plan: Plan) -> tuple[int, int]:
    """(frames, stride): the input frames one output frame needs, and the input frames per output frame.

    Every layer that reads a sequence is taken as one chain (an upper bound for branches), so a
    sequence of `frames + (n - 1) * stride` steps gives every time axis of the model n frames.
    """
    frames, stride = 1, 1
    for step in plan.steps:
        if step.has_time and step.handler is not None:
            dropped, s = step.handler.time_window(step.layer)
            frames += dropped * stride
            stride *= max(1, int(s))
    return frames, stride
