"""A small ONNX graph builder: nodes, initializers and merged sub-graphs.

The exporters emit every variant through one `GraphBuilder`, so that tensor
names stay unique, each weight is stored once as an initializer, and graphs
converted by tf2onnx can be spliced in under a prefix.

Example::

    g = GraphBuilder("lstm")
    w = g.const("W", np.ones((3, 4), np.float32))
    y = g.node("MatMul", ["x", w])
    model = g.to_model(inputs=[("x", np.float32, ["batch", 3])],
                       outputs=[(y, np.float32, ["batch", 4])], opset=17)
"""

from __future__ import annotations

import numpy as np


class GraphBuilder:
    """Accumulates nodes and initializers; `to_model` turns them into a ModelProto."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list = []
        self.initializers: dict = {}
        self.opsets: dict[str, int] = {}
        self._used: set[str] = set()
        self._consts: dict = {}

    def fresh(self, hint: str) -> str:
        """A tensor name not used yet, derived from `hint`."""
        base, i = hint.replace(":", "_").replace("/", "_"), 0
        name = base
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact name (a graph input or output); it must be free."""
        if name in self._used:
            raise ValueError(f"tensor name {name!r} is already used")
        self._used.add(name)
        return name

    def const(self, hint: str, value, dtype=None) -> str:
        """Add an initializer; identical small constants (indices, shapes) are shared."""
        from onnx import numpy_helper

        arr = np.asarray(value, dtype=dtype)
        small = arr.size <= 16
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if small else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers[name] = numpy_helper.from_array(arr, name)
        if key is not None:
            self._consts[key] = name
        return name

    def node(self, op: str, inputs, n_out: int = 1, outputs=None, name_hint=None, **attrs):
        """Append a node; returns its output name (or a list when `n_out` > 1)."""
        from onnx import helper

        hint = name_hint or op.lower()
        if outputs is None:
            outputs = [self.fresh(f"{hint}_out") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=self.fresh(hint), **attrs))
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def child(self, name: str) -> "GraphBuilder":
        """A builder for a sub-graph (a Scan or Loop body): its tensor names are unique across both
        graphs, and it may read this graph's tensors (its weights) as outer-scope values."""
        sub = GraphBuilder(name)
        sub._used = self._used
        return sub

    def to_graph(self, inputs, outputs):
        """This builder's nodes as a GraphProto (a sub-graph body); `inputs`/`outputs` are
        (name, ONNX element type, dims) triples, dims None where unknown."""
        from onnx import helper

        info = helper.make_tensor_value_info
        used = _referenced(self.nodes) | {o[0] for o in outputs}
        return helper.make_graph(self.nodes, self.name, [info(*i) for i in inputs], [info(*o) for o in outputs],
                                 initializer=[t for n, t in self.initializers.items() if n in used])

    def splice(self, graph, inputs: dict[str, str], prefix: str, opsets=()) -> list[str]:
        """Copy a sub-graph in, renaming its tensors under `prefix`.

        `inputs` maps the sub-graph's input names to tensors of this graph.
        Returns this graph's names of the sub-graph's outputs, in order.
        """
        from onnx import compose

        g = compose.add_prefix_graph(graph, prefix)
        for inp in g.input:
            original = inp.name[len(prefix):]
            if original not in inputs:
                raise ValueError(f"sub-graph input {original!r} is not connected")
            for node in g.node:
                _rename_input(node, inp.name, inputs[original])
            for out in g.output:
                if out.name == inp.name:
                    raise ValueError("a sub-graph that passes its input through is not supported")
        for init in g.initializer:
            self._used.add(init.name)
            self.initializers[init.name] = init
        for node in g.node:
            self._used.update(node.output)
            self.nodes.append(node)
        for op in opsets:
            if op.domain not in ("", "ai.onnx"):
                self.opsets[op.domain] = max(self.opsets.get(op.domain, 0), op.version)
        return [o.name for o in g.output]

    def to_model(self, inputs, outputs, opset: int, metadata: dict[str, str] | None = None):
        """Build the ModelProto; `inputs`/`outputs` are (name, numpy dtype, dims) triples."""
        from onnx import helper

        def info(name, dtype, dims):
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            return helper.make_tensor_value_info(name, elem, list(dims))

        used = _referenced(self.nodes) | {o[0] for o in outputs}
        graph = helper.make_graph(
            self.nodes, self.name,
            [info(*i) for i in inputs], [info(*o) for o in outputs],
            initializer=[t for n, t in self.initializers.items() if n in used],
        )
        opsets = [helper.make_opsetid("", opset)]
        opsets += [helper.make_opsetid(d, v) for d, v in sorted(self.opsets.items())]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="rnnx")
        # The lowest IR version the opsets allow: older runtimes load it too.
        model.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        return model


def reduce_over(g: GraphBuilder, op: str, x: str, axes: list, keepdims: bool, opset: int, hint: str) -> str:
    """ONNX Reduce* (ReduceMean, ReduceMax, ...) over `axes`: an input from opset 18 (ReduceSum: 13),
    an attribute before."""
    if opset >= (13 if op == "ReduceSum" else 18):
        return g.node(op, [x, g.const(f"axes_{'_'.join(map(str, axes))}", np.array(axes, np.int64))],
                      keepdims=int(keepdims), name_hint=f"{hint}_{op.lower()}")
    return g.node(op, [x], axes=list(axes), keepdims=int(keepdims), name_hint=f"{hint}_{op.lower()}")


def _rename_input(node, old: str, new: str) -> None:
    """Point every use of `old` in `node` (and its sub-graphs) at `new`."""
    for i, name in enumerate(node.input):
        if name == old:
            node.input[i] = new
    for attr in node.attribute:
        subs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for sub in subs:
            for inner in sub.node:
                _rename_input(inner, old, new)


def _referenced(nodes) -> set[str]:
    """Every tensor name read by `nodes` or by the nodes of their sub-graphs."""
    names: set[str] = set()
    for node in nodes:
        names.update(node.input)
        for attr in node.attribute:
            for sub in list(attr.graphs) + ([attr.g] if attr.HasField("g") else []):
                names |= _referenced(sub.node)
    return names
