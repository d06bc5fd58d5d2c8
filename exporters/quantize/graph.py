"""Graph clean-up after quantization: one copy of each weight, no dead tensors.

An unrolled variant uses each recurrent weight once per time step. After
quantization every step must read the same int8 initializer through one
DequantizeLinear, never a copy of its own, or the int8 file grows with the
chunk length. `share_weights` merges initializers with identical content and
nodes that compute the same thing from constants only (e.g. two
DequantizeLinear of one weight), drops initializers nothing reads, and drops
`value_info` (shape annotations added by pre-processing, which onnxruntime
re-infers). It returns what it merged so the report can show it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

NONDETERMINISTIC = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial")


def _graphs(graph):
    """`graph` and every subgraph in it (Loop/If/Scan bodies), outermost first."""
    yield graph
    for node in graph.node:
        yield from _graphs_of(node)


def float_ops_in_bodies(model, ops=("MatMul", "Gemm", "Conv")) -> int:
    """How many float `ops` the Loop/Scan/If bodies of `model` hold (0: quantization reached them)."""
    bodies = [sub for node in model.graph.node for sub in _graphs_of(node)]
    return sum(1 for body in bodies for node in body.node if node.op_type in ops)


def _rename_inputs(graph, rename: dict) -> None:
    """Point every node input (in subgraphs too: ONNX names are unique across scopes) at its new name."""
    if not rename:
        return
    for g in _graphs(graph):
        for node in g.node:
            for i, name in enumerate(node.input):
                if name in rename:
                    node.input[i] = rename[name]


def _content_key(tensor) -> bytes:
    from onnx import TensorProto

    copy = TensorProto()
    copy.CopyFrom(tensor)
    copy.name = ""
    copy.ClearField("doc_string")
    return copy.SerializeToString()


def _merge_initializers(graph) -> int:
    protected = {i.name for i in graph.input} | {o.name for o in graph.output}
    first, rename, keep = {}, {}, []
    for init in graph.initializer:
        if init.name in protected or init.data_location == 1:  # external data: leave alone
            keep.append(init)
            continue
        key = _content_key(init)
        if key in first:
            rename[init.name] = first[key]
        else:
            first[key] = init.name
            keep.append(init)
    if rename:
        del graph.initializer[:]
        graph.initializer.extend(keep)
        _rename_inputs(graph, rename)
    return len(rename)


def _merge_constant_nodes(graph) -> int:
    """Merge nodes of the main graph that read only initializers and compute the same thing."""
    consts = {i.name for i in graph.initializer}
    protected = {o.name for o in graph.output}
    seen, rename, drop = {}, {}, []
    for idx, node in enumerate(graph.node):
        if (not node.input or not all(n in consts for n in node.input) or node.op_type in NONDETERMINISTIC
                or any(o in protected for o in node.output)):
            continue
        key = (node.domain, node.op_type, tuple(node.input),
               tuple(a.SerializeToString() for a in sorted(node.attribute, key=lambda a: a.name)))
        if key in seen:
            kept = graph.node[seen[key]]
            rename.update(zip(node.output, kept.output))
            drop.append(idx)
        else:
            seen[key] = idx
    if drop:
        for idx in reversed(drop):
            del graph.node[idx]
        _rename_inputs(graph, rename)
    return len(drop)


def _drop_unused_initializers(graph) -> int:
    used = {o.name for o in graph.output}
    for g in _graphs(graph):
        for node in g.node:
            used.update(node.input)
    used.update(x.name for x in graph.input)
    keep = [i for i in graph.initializer if i.name in used]
    dropped = len(graph.initializer) - len(keep)
    if dropped:
        del graph.initializer[:]
        graph.initializer.extend(keep)
    return dropped


def share_weights(model) -> dict:
    """Deduplicate `model` in place; returns counts of what was merged or dropped."""
    graph = model.graph
    merged_init = _merge_initializers(graph)
    merged_nodes = _merge_constant_nodes(graph)
    merged_init += _merge_initializers(graph)  # merged nodes can expose more equal constants
    dropped = _drop_unused_initializers(graph)
    value_info = len(graph.value_info)
    del graph.value_info[:]
    return {"initializers_merged": merged_init, "constant_nodes_merged": merged_nodes,
            "initializers_dropped": dropped, "value_info_dropped": value_info}


def weight_bytes(model) -> dict:
    """Bytes of initializers by element type name ('int8', 'float', ...), to see where the size is."""
    from onnx import TensorProto

    out = Counter()
    for init in model.graph.initializer:
        size = len(init.raw_data) or (len(init.float_data) * 4 + len(init.int32_data) * 4
                                      + len(init.int64_data) * 8 + len(init.double_data) * 8)
        out[TensorProto.DataType.Name(init.data_type).lower()] += size
    return dict(sorted(out.items()))



def names_in(model) -> set:
    """Every tensor and node name of a model's main graph."""
    g = model.graph
    names = {i.name for i in g.initializer} | {i.name for i in g.input} | {o.name for o in g.output}
    for node in g.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def shorten_new_names(model, original: set) -> int:
    """Give tensors and nodes the quantizer created (names not in `original`) short names.

    onnxruntime names each tensor it adds after its source with suffixes such as
    `_QuantizeLinear_Output`; in an unrolled graph with a Q/DQ pair per step
    those strings outweigh the int8 weights. Original names, graph inputs and
    outputs are kept, and so are the names of new weight tensors (one per weight,
    e.g. `<weight>_quantized`). Returns how many names changed.
    """
    g = model.graph
    protected = {i.name for i in g.input} | {o.name for o in g.output}
    taken = set(original) | names_in(model)
    rename, counter = {}, 0

    def short(prefix: str) -> str:
        nonlocal counter
        while f"{prefix}{counter}" in taken:
            counter += 1
        name = f"{prefix}{counter}"
        taken.add(name)
        return name

    for init in g.initializer:
        weight = sum(1 for _ in init.dims) and _elements(init) > 16  # e.g. `<weight>_quantized`: keep
        if init.name not in original and init.name not in protected and not weight:
            rename[init.name] = init.name = short("q")
    for node in g.node:
        for i, out in enumerate(node.output):
            if out and out not in original and out not in protected:
                rename[out] = node.output[i] = short("q")
        if node.name and node.name not in original:
            node.name = short("n")
    _rename_inputs(g, rename)
    return len(rename)


def _axes(node, consts: dict) -> list | None:
    """The `axes` of a Squeeze/Unsqueeze (attribute before opset 13, input from 13), or None."""
    from onnx import helper

    for attr in node.attribute:
        if attr.name == "axes":
            return [int(a) for a in helper.get_attribute_value(attr)]
    if len(node.input) > 1 and node.input[1] in consts:
        return [int(a) for a in consts[node.input[1]].reshape(-1)]
    return None


def fold_round_trips(model) -> int:
    """Remove the reshaping a recurrent op needed once rnnx has unrolled it; returns nodes removed.

    A native LSTM/GRU reads time-major 3-D inputs and 3-D states, so an export wraps it in
    Transpose/Unsqueeze and unwraps it with Squeeze. Unrolled, each step works on 2-D
    tensors, and those wrappers become round trips that cost onnxruntime a kernel call
    (and a copy) each, per call of the stream model. Three rewrites, main graph only:

    - Squeeze(Unsqueeze(t, axes), axes) -> t (and dropping fewer axes than were inserted,
      an Unsqueeze of what remains);
    - Squeeze(Transpose(t, perm), [a]) -> Squeeze(t, [perm[a]]) when the other axes keep
      their order (a length-1 axis moved, then dropped);
    - an Identity from a node's output to a graph output: the node writes the graph output.

    Repeated until nothing changes (a fold can expose the next one between two layers).
    """
    total = 0
    while True:
        before = len(model.graph.node)
        total += _fold_once(model)
        if len(model.graph.node) == before:
            return total


def _fold_once(model) -> int:
    from onnx import numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    outputs = {o.name for o in g.output}
    protected = outputs | {i.name for i in g.input} | set(consts)
    removed = _fold_squeezes(g, consts, outputs)
    kept = _outputs_written_by_producers(g, outputs, protected)
    removed += len(g.node) - len(kept)
    removed += _drop_dead(g, kept)
    _drop_unused_initializers(g)
    return removed


def _fold_squeezes(g, consts: dict, outputs: set) -> int:
    """Squeeze(Unsqueeze(x)) -> x (or one Unsqueeze of the axes left), Squeeze(Transpose(x)) of an
    axis whose removal leaves the order -> Squeeze(x); returns the nodes removed."""
    from onnx import helper

    producer = {out: node for node in g.node for out in node.output}
    rename: dict = {}
    removed = 0
    new_nodes = []

    def resolve(name):
        while name in rename:
            name = rename[name]
        return name

    for node in g.node:
        src = producer.get(resolve(node.input[0])) if node.input else None
        if node.op_type != "Squeeze" or src is None or src.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        axes = _axes(node, consts)
        inserted = _axes(src, consts) if src.op_type == "Unsqueeze" else None
        if (inserted is not None and axes is not None and min(axes + inserted) >= 0
                and set(axes) <= set(inserted)):
            left = sorted(set(inserted) - set(axes))
            if left:  # fewer axes inserted than dropped: one Unsqueeze of what remains
                left = [p - sum(q < p for q in axes) for p in left]
                new_nodes.append(_axes_op(g, consts, "Unsqueeze", node, resolve(src.input[0]), left))
                producer[node.output[0]] = new_nodes[-1]
                continue
            target = resolve(src.input[0])
        elif src.op_type == "Transpose" and axes is not None and len(axes) == 1:
            perm = [int(p) for attr in src.attribute if attr.name == "perm" for p in attr.ints]
            dropped = axes[0] % len(perm) if perm else None
            rest = [p for i, p in enumerate(perm) if i != dropped]
            if perm and rest == sorted(rest):
                node = _axes_op(g, consts, "Squeeze", node, resolve(src.input[0]), [perm[dropped]])
                producer[node.output[0]] = node
            new_nodes.append(node)
            continue
        else:
            new_nodes.append(node)
            continue
        if node.output[0] in outputs:
            new_nodes.append(helper.make_node("Identity", [target], [node.output[0]], name=node.name))
        else:
            rename[node.output[0]] = target
            removed += 1
    del g.node[:]
    g.node.extend(new_nodes)
    _rename_inputs(g, {k: resolve(k) for k in rename})
    return removed


def _outputs_written_by_producers(g, outputs: set, protected: set) -> set:
    """An Identity into a graph output: let the producer write the output itself. Returns the
    nodes left (the message objects of `g.node`, while this function holds them: their ids are
    only stable while referenced)."""
    producer = {out: node for node in g.node for out in node.output}
    drop = set()
    for node in g.node:
        if node.op_type != "Identity" or node.output[0] not in outputs:
            continue
        t = node.input[0]
        if t in protected or t not in producer:
            continue
        out = node.output[0]
        src = producer[t]
        src.output[list(src.output).index(t)] = out
        _rename_inputs(g, {t: out})
        drop.add(id(node))
        protected.add(out)
    return [n for n in g.node if id(n) not in drop]


def _axes_op(graph, consts: dict, op: str, like, source: str, axes: list):
    """A Squeeze/Unsqueeze `op` of `source` at `axes` that writes `like`'s outputs, its axes
    an attribute or an input as `like` (a Squeeze/Unsqueeze of the same opset) holds them."""
    from onnx import helper, numpy_helper

    if any(attr.name == "axes" for attr in like.attribute):   # before opset 13
        return helper.make_node(op, [source], list(like.output), name=like.name, axes=axes)
    value = np.array(axes, np.int64)
    init = numpy_helper.from_array(value, f"{like.name or like.output[0]}_axes")
    graph.initializer.append(init)
    consts[init.name] = value
    return helper.make_node(op, [source, init.name], list(like.output), name=like.name)


def _drop_dead(graph, nodes: list) -> int:
    """Keep in `graph` only the nodes of `nodes` whose outputs something reads; returns how many went."""
    used = {o.name for o in graph.output}
    alive = []
    for node in reversed(nodes):
        if any(o in used for o in node.output if o) or node.op_type in NONDETERMINISTIC:
            alive.append(node)
            used.update(node.input)
            for sub in _graphs_of(node):
                for inner in sub.node:
                    used.update(inner.input)
    alive.reverse()
    del graph.node[:]
    graph.node.extend(alive)
    return len(nodes) - len(alive)


def _graphs_of(node):
    """Every subgraph of `node` (its Loop/If/Scan bodies and theirs), outermost first."""
    from onnx import AttributeProto

    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield from _graphs(attr.g)
        elif attr.type == AttributeProto.GRAPHS:
            for sub in attr.graphs:
                yield from _graphs(sub)


def _elements(tensor) -> int:
    n = 1
    for d in tensor.dims:
        n *= d
    return n


_PASS_THROUGH = ("Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose")


def vocab_sizes(model) -> dict:
    """{graph input: rows of the embedding table it indexes}, for integer inputs that reach a
    `Gather` of a 2-D initializer (an Embedding) through casts and reshapes only."""
    g = model.graph
    tables = {i.name: list(i.dims) for i in g.initializer}
    consumers: dict = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = {}
    for inp in g.input:
        if inp.name in tables:
            continue
        frontier, seen = [inp.name], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in consumers.get(name, []):
                if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name \
                        and len(tables.get(node.input[0], [])) == 2:
                    found[inp.name] = min(found.get(inp.name, 1 << 62), int(tables[node.input[0]][0]))
                elif node.op_type in _PASS_THROUGH and node.input[0] == name:
                    frontier.extend(node.output)
    return found
