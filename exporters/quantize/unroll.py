"""Rewrite native ONNX `GRU`/`LSTM` nodes over a fixed number of steps into plain ops.

onnxruntime has no int8 GRU op, and static QDQ leaves LSTM/GRU ops in float.
A stream variant runs its recurrence over a chunk of T steps, T fixed in the
graph, so each recurrent node can be written out step by step in pure ONNX
graph surgery: one MatMul for the inputs of the whole chunk, then per step a
MatMul with the recurrent weights and the gate arithmetic (Add, Mul, Sigmoid,
Tanh). onnxruntime's quantizers make those MatMuls int8. Graph inputs and
outputs (the states included) are untouched; only the recurrent node changes.

Follows the ONNX operator spec (opset 14+): gates z, r, h for GRU (with
`linear_before_reset`), i, o, f, c for LSTM; forward direction, layout 0, no
`sequence_lens`, `clip`, `input_forget` or peepholes. A node outside that
(or whose T is not fixed) is left as it is, with the reason.
"""

from __future__ import annotations

import numpy as np

SUPPORTED_ACTIVATIONS = ("Sigmoid", "Tanh", "Relu", "HardSigmoid")


class _Builder:
    def __init__(self, graph, prefix: str, taken: set):
        self.graph, self.prefix, self.taken = graph, prefix, taken
        self.nodes, self.inits = [], []

    def name(self, hint: str) -> str:
        base = f"{self.prefix}_{hint}"
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def const(self, hint: str, value: np.ndarray, *, exact: str | None = None) -> str:
        from onnx import numpy_helper

        name = exact if exact and exact not in self.taken else self.name(hint)
        self.taken.add(name)
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def op(self, op_type: str, inputs: list, hint: str, n_out: int = 1, out: list | None = None, **attrs):
        from onnx import helper

        name = self.name(hint)
        outs = out or ([f"{name}_out"] + [f"{name}_out_{i}" for i in range(1, n_out)])
        self.taken.update(outs)
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _activations(attrs: dict, count: int, defaults: list) -> list | str:
    names = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])] or defaults
    alphas, betas = list(attrs.get("activation_alpha", [])), list(attrs.get("activation_beta", []))
    out = []
    for name in names[:count]:
        if name not in SUPPORTED_ACTIVATIONS:
            return f"activation {name} is not one rnnx unrolls ({', '.join(SUPPORTED_ACTIVATIONS)})"
        if name == "HardSigmoid":
            out.append((name, alphas.pop(0) if alphas else 0.2, betas.pop(0) if betas else 0.5))
        else:
            out.append((name, None, None))
    return out


def _act(b: _Builder, act, x: str, hint: str) -> str:
    name, alpha, beta = act
    if name == "HardSigmoid":
        return b.op("HardSigmoid", [x], hint, alpha=float(alpha), beta=float(beta))
    return b.op(name, [x], hint)


def _why_not(node, attrs: dict, inits: dict, steps: int | None) -> str | None:
    if steps is None:
        return "its number of time steps is not fixed in the graph"
    if attrs.get("direction", b"forward") not in (b"forward", "forward"):
        return f"direction {attrs['direction']!r} (only forward is unrolled)"
    if attrs.get("layout", 0) != 0:
        return "layout 1 (batch-major)"
    if "clip" in attrs:
        return "a cell clip"
    if attrs.get("input_forget", 0):
        return "input_forget"
    ins = list(node.input) + [""] * 8
    if ins[4]:
        return "sequence_lens"
    for k in (1, 2) + ((3,) if ins[3] else ()):
        if ins[k] not in inits:
            return f"weights {ins[k]!r} that are not initializers"
    if node.op_type == "LSTM" and ins[7]:
        peep = inits.get(ins[7])
        if peep is None or np.any(peep != 0):
            return "peephole weights"
    return None


def _leading_dims(model) -> dict:
    """{tensor: its static first dimension} by ONNX shape inference (T of a time-major X)."""
    from onnx import shape_inference

    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # an op the checker does not know: no static T anywhere
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            out[vi.name] = int(dims[0].dim_value)
    return out


def _stem(weight: str) -> str:
    return weight[:-2] if weight.endswith("_W") else weight


def _initial(b: _Builder, name: str, axes0: str) -> str:
    return b.op("Squeeze", [name, axes0], "h0")


def _gru(b: _Builder, node, attrs, inits, steps: int, axes0: str, axes01: str) -> list:
    ins = list(node.input) + [""] * 6
    W, R = inits[ins[1]][0], inits[ins[2]][0]                  # (3H, I), (3H, H)
    H = int(attrs.get("hidden_size", R.shape[-1]))
    B = inits[ins[3]][0] if ins[3] else np.zeros(6 * H, np.float32)
    wb, rb = B[:3 * H], B[3 * H:]
    lbr = bool(attrs.get("linear_before_reset", 0))
    acts = _activations(attrs, 2, ["Sigmoid", "Tanh"])
    f, g = acts
    if not ins[5]:
        raise ValueError("no initial_h")
    # input projection for the whole chunk, with every bias that is not gated by r
    bx = wb + np.concatenate([rb[:2 * H], rb[2 * H:] if not lbr else np.zeros(H, rb.dtype)])
    xw = b.op("MatMul", [ins[0], b.const("Wt", W.T.astype(np.float32), exact=f"{_stem(ins[1])}_Wt")], "xw")
    xw = b.op("Add", [xw, b.const("bx", bx.astype(np.float32), exact=f"{_stem(ins[1])}_bx")], "xw_b")
    split3 = b.const("split3", np.array([H, H, H], np.int64))
    split2 = b.const("split2", np.array([H, H], np.int64))
    Rt = R.T.astype(np.float32)                                 # (H, 3H)
    if lbr:
        r_all = b.const("Rt", Rt, exact=f"{_stem(ins[1])}_Rt")
        bh = b.const("bh", np.concatenate([np.zeros(2 * H), rb[2 * H:]]).astype(np.float32),
                     exact=f"{_stem(ins[1])}_bh")
    else:
        r_zr = b.const("Rt_zr", np.ascontiguousarray(Rt[:, :2 * H]), exact=f"{_stem(ins[1])}_Rt_zr")
        r_h = b.const("Rt_h", np.ascontiguousarray(Rt[:, 2 * H:]), exact=f"{_stem(ins[1])}_Rt_h")
    h = _initial(b, ins[5], axes0)
    ys = []
    for t in range(steps):
        xt = b.op("Gather", [xw, b.const(f"t{t}", np.array(t, np.int64))], f"x{t}", axis=0)
        xz, xr, xh = b.op("Split", [xt, split3], f"t{t}_xgates", n_out=3, axis=-1)
        if lbr:
            hr = b.op("Add", [b.op("MatMul", [h, r_all], f"t{t}_hr"), bh], f"t{t}_hr_b")
            hz, hrr, hh = b.op("Split", [hr, split3], f"t{t}_hgates", n_out=3, axis=-1)
        else:
            hz, hrr = b.op("Split", [b.op("MatMul", [h, r_zr], f"t{t}_hr"), split2], f"t{t}_hgates",
                           n_out=2, axis=-1)
        z = _act(b, f, b.op("Add", [xz, hz], f"t{t}_z_in"), f"t{t}_z")
        r = _act(b, f, b.op("Add", [xr, hrr], f"t{t}_r_in"), f"t{t}_r")
        if lbr:
            gated = b.op("Mul", [r, hh], f"t{t}_rh")
        else:
            gated = b.op("MatMul", [b.op("Mul", [r, h], f"t{t}_rh"), r_h], f"t{t}_rhR")
        n = _act(b, g, b.op("Add", [xh, gated], f"t{t}_n_in"), f"t{t}_n")
        # h' = (1 - z) * n + z * h = n + z * (h - n)
        h = b.op("Add", [n, b.op("Mul", [z, b.op("Sub", [h, n], f"t{t}_hn")], f"t{t}_zhn")], f"t{t}_h")
        ys.append(h)
    return _outputs(b, node, ys, [h], axes0, axes01)


def _lstm(b: _Builder, node, attrs, inits, steps: int, axes0: str, axes01: str) -> list:
    ins = list(node.input) + [""] * 8
    W, R = inits[ins[1]][0], inits[ins[2]][0]                  # (4H, I), (4H, H): gates i, o, f, c
    H = int(attrs.get("hidden_size", R.shape[-1]))
    B = inits[ins[3]][0] if ins[3] else np.zeros(8 * H, np.float32)
    f, g, hact = _activations(attrs, 3, ["Sigmoid", "Tanh", "Tanh"])
    if not ins[5] or not ins[6]:
        raise ValueError("no initial_h/initial_c")
    xw = b.op("MatMul", [ins[0], b.const("Wt", W.T.astype(np.float32), exact=f"{_stem(ins[1])}_Wt")], "xw")
    xw = b.op("Add", [xw, b.const("bx", (B[:4 * H] + B[4 * H:]).astype(np.float32), exact=f"{_stem(ins[1])}_bx")],
              "xw_b")
    r_all = b.const("Rt", R.T.astype(np.float32), exact=f"{_stem(ins[1])}_Rt")
    split4 = b.const("split4", np.array([H] * 4, np.int64))
    h, c = _initial(b, ins[5], axes0), _initial(b, ins[6], axes0)
    ys = []
    for t in range(steps):
        xt = b.op("Gather", [xw, b.const(f"t{t}", np.array(t, np.int64))], f"x{t}", axis=0)
        gates = b.op("Add", [xt, b.op("MatMul", [h, r_all], f"t{t}_hr")], f"t{t}_gates")
        gi, go, gf, gc = b.op("Split", [gates, split4], f"t{t}_split", n_out=4, axis=-1)
        i, o, fg = _act(b, f, gi, f"t{t}_i"), _act(b, f, go, f"t{t}_o"), _act(b, f, gf, f"t{t}_f")
        cand = _act(b, g, gc, f"t{t}_c_cand")
        c = b.op("Add", [b.op("Mul", [fg, c], f"t{t}_fc"), b.op("Mul", [i, cand], f"t{t}_ic")], f"t{t}_c")
        h = b.op("Mul", [o, _act(b, hact, c, f"t{t}_hc")], f"t{t}_h")
        ys.append(h)
    return _outputs(b, node, ys, [h, c], axes0, axes01)


def _outputs(b: _Builder, node, ys: list, finals: list, axes0: str, axes01: str) -> list:
    outs = list(node.output)
    if outs and outs[0]:
        parts = [b.op("Unsqueeze", [y, axes01], f"y{t}") for t, y in enumerate(ys)]
        if len(parts) == 1:
            b.op("Identity", parts, "y", out=[outs[0]])
        else:
            b.op("Concat", parts, "y", out=[outs[0]], axis=0)
    for name, value in zip(outs[1:], finals):
        if name:
            b.op("Unsqueeze", [value, axes0], "final", out=[name])
    return outs


def unroll_recurrent(model, ops=("GRU", "LSTM")) -> dict:
    """Rewrite each node of `ops` in `model`'s main graph in place; returns
    {"unrolled": [node names], "kept": {node name: reason}}."""
    from onnx import numpy_helper

    from .graph import _drop_unused_initializers, names_in

    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    taken = names_in(model)
    steps_of = _leading_dims(model)
    done, kept, new_nodes = [], {}, []
    root = _Builder(g, "unroll", taken)
    axes0, axes01 = root.const("axes0", np.array([0], np.int64)), root.const("axes01", np.array([0, 1], np.int64))
    for idx, node in enumerate(list(g.node)):
        if node.op_type not in ops or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        attrs = _attrs(node)
        lstm = node.op_type == "LSTM"
        why = _why_not(node, attrs, inits, steps_of.get(node.input[0]))
        acts = None if why else _activations(attrs, 3 if lstm else 2, ["Sigmoid", "Tanh", "Tanh"][:3 if lstm else 2])
        if isinstance(acts, str):
            why = acts
        if why:
            kept[node.name or f"{node.op_type}#{idx}"] = why
            new_nodes.append(node)
            continue
        b = _Builder(g, node.name or f"{node.op_type.lower()}{idx}", taken)
        try:
            (_lstm if lstm else _gru)(b, node, attrs, inits, steps_of[node.input[0]], axes0, axes01)
        except ValueError as exc:
            kept[node.name] = str(exc)
            new_nodes.append(node)
            continue
        new_nodes.extend(b.nodes)
        g.initializer.extend(b.inits)
        done.append(node.name)
    if done:
        g.initializer.extend(root.inits)
    del g.node[:]
    g.node.extend(new_nodes)
    if done:
        del g.value_info[:]
        _drop_unused_initializers(g)
    return {"unrolled": done, "kept": kept}
