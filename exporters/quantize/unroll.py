"""Rewrite native ONNX `GRU`/`LSTM` nodes over a fixed number of steps into plain ops.

onnxruntime has no int8 GRU op, and static QDQ leaves LSTM/GRU ops in float.
A stream variant runs its recurrence over a chunk of T steps, T fixed in the
graph, so each recurrent node can be written out step by step in pure ONNX
graph surgery: one MatMul for the inputs of the whole chunk, then per step a
MatMul with the recurrent weights and the gate arithmetic (Add, Mul, Sigmoid,
Tanh). Gates that share an activation get one activation call (LSTM i, o, f;
GRU z, r). For int8-dynamic, a chunk of one step reads [x, h] through one
matrix instead: one integer GEMM per call (a GRU's matrix keeps the x and h
parts of its candidate apart with zero blocks). onnxruntime's quantizers make
those MatMuls int8. Graph inputs and outputs (the states included) are
untouched; only the recurrent node changes.

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
        self.zero_weights = 0   # padding in fused weight matrices
        self.fused = False      # a one-step chunk read through one [x, h] matrix

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


def _one_step_gates(b: _Builder, ins: list, h: str, weights: np.ndarray, bias: np.ndarray, axes0: str) -> str:
    """[x, h] @ weights + bias for a chunk of one step: one GEMM (one integer GEMM once quantized).
    The weights and bias keep the layer's names (`<layer>_WRt`, `<layer>_bx`) for mixed precision."""
    b.fused = True
    step_in = b.op("Concat", [b.op("Squeeze", [ins[0], axes0], "x0"), h], "xh", axis=-1)
    wr = b.const("WRt", weights.astype(np.float32), exact=f"{_stem(ins[1])}_WRt")
    return b.op("Add", [b.op("MatMul", [step_in, wr], "t0_xhw"),
                        b.const("bx", bias.astype(np.float32), exact=f"{_stem(ins[1])}_bx")], "t0_gates")


def _gru(b: _Builder, node, attrs, inits, steps: int, axes0: str, axes01: str, fuse: bool) -> list:
    ins = list(node.input) + [""] * 6
    W, R = inits[ins[1]][0], inits[ins[2]][0]                  # (3H, I), (3H, H)
    H = int(attrs.get("hidden_size", R.shape[-1]))
    B = inits[ins[3]][0] if ins[3] else np.zeros(6 * H, np.float32)
    wb, rb = B[:3 * H], B[3 * H:]
    lbr = bool(attrs.get("linear_before_reset", 0))
    f, g = _activations(attrs, 2, ["Sigmoid", "Tanh"])
    if not ins[5]:
        raise ValueError("no initial_h")
    # biases that are not gated by r go with the input projection
    bx = wb + np.concatenate([rb[:2 * H], rb[2 * H:] if not lbr else np.zeros(H, rb.dtype)])
    Wt, Rt = W.T.astype(np.float32), R.T.astype(np.float32)     # (I, 3H), (H, 3H)
    split_zr = b.const("split_zr_h", np.array([2 * H, H], np.int64))
    split2 = b.const("split2", np.array([H, H], np.int64))
    h = _initial(b, ins[5], axes0)
    if steps == 1 and fuse:
        fixed = _gru_fused_step(b, ins, h, Wt, Rt, bx, rb, H, lbr, axes0)
        step_parts = lambda t, h: fixed  # noqa: E731
    else:
        step_parts = _gru_step_inputs(b, ins, Wt, Rt, bx, rb, H, lbr, split_zr)
    if not lbr:
        r_h = b.const("Rt_h", np.ascontiguousarray(Rt[:, 2 * H:]), exact=f"{_stem(ins[1])}_Rt_h")
    ys = []
    for t in range(steps):
        zr_in, xh, hh = step_parts(t, h)
        # z and r are side by side: one activation over both
        z, r = b.op("Split", [_act(b, f, zr_in, f"t{t}_zr"), split2], f"t{t}_zr_split", n_out=2, axis=-1)
        if lbr:
            gated = b.op("Mul", [r, hh], f"t{t}_rh")
        else:
            gated = b.op("MatMul", [b.op("Mul", [r, h], f"t{t}_rh"), r_h], f"t{t}_rhR")
        n = _act(b, g, b.op("Add", [xh, gated], f"t{t}_n_in"), f"t{t}_n")
        # h' = (1 - z) * n + z * h = n + z * (h - n)
        h = b.op("Add", [n, b.op("Mul", [z, b.op("Sub", [h, n], f"t{t}_hn")], f"t{t}_zhn")], f"t{t}_h")
        ys.append(h)
    return _outputs(b, node, ys, [h], axes0, axes01)


def _gru_fused_step(b: _Builder, ins, h, Wt, Rt, bx, rb, H: int, lbr: bool, axes0: str) -> tuple:
    """One step: a single MatMul of [x, h] with the weights of both, as columns
    [z r (x and h) | h-candidate from x | from h (lbr)]; one integer GEMM once quantized.
    Returns the step's (z r pre-activation, x's candidate part, h's candidate part or None)."""
    I = Wt.shape[0]
    cols = [np.concatenate([Wt[:, :2 * H], Rt[:, :2 * H]]), np.concatenate([Wt[:, 2 * H:], np.zeros((H, H))])]
    bias = [bx[:2 * H], bx[2 * H:]]
    if lbr:
        cols.append(np.concatenate([np.zeros((I, H)), Rt[:, 2 * H:]]))
        bias.append(rb[2 * H:])
    b.zero_weights += (I + H) * H if lbr else H * H
    gates = _one_step_gates(b, ins, h, np.concatenate(cols, axis=1), np.concatenate(bias), axes0)
    sizes = [2 * H, H] + ([H] if lbr else [])
    parts = b.op("Split", [gates, b.const("split_gates", np.array(sizes, np.int64))], "t0_split",
                 n_out=len(sizes), axis=-1)
    return parts[0], parts[1], (parts[2] if lbr else None)


def _gru_step_inputs(b: _Builder, ins, Wt, Rt, bx, rb, H: int, lbr: bool, split_zr: str):
    """The input projection of every step (one MatMul), and a function (t, h) -> step t's
    (z r pre-activation, x's candidate part, h's candidate part or None)."""
    xw = b.op("MatMul", [ins[0], b.const("Wt", Wt, exact=f"{_stem(ins[1])}_Wt")], "xw")
    xw = b.op("Add", [xw, b.const("bx", bx.astype(np.float32), exact=f"{_stem(ins[1])}_bx")], "xw_b")
    if lbr:
        r_all = b.const("Rt", Rt, exact=f"{_stem(ins[1])}_Rt")
        bh = b.const("bh", np.concatenate([np.zeros(2 * H), rb[2 * H:]]).astype(np.float32),
                     exact=f"{_stem(ins[1])}_bh")
    else:
        r_zr = b.const("Rt_zr", np.ascontiguousarray(Rt[:, :2 * H]), exact=f"{_stem(ins[1])}_Rt_zr")

    def step_parts(t, h):
        xt = b.op("Gather", [xw, b.const(f"t{t}", np.array(t, np.int64))], f"x{t}", axis=0)
        xzr, xh = b.op("Split", [xt, split_zr], f"t{t}_xgates", n_out=2, axis=-1)
        if lbr:
            hr = b.op("Add", [b.op("MatMul", [h, r_all], f"t{t}_hr"), bh], f"t{t}_hr_b")
            hzr, hh = b.op("Split", [hr, split_zr], f"t{t}_hgates", n_out=2, axis=-1)
        else:
            hzr, hh = b.op("MatMul", [h, r_zr], f"t{t}_hr"), None
        return b.op("Add", [xzr, hzr], f"t{t}_zr_in"), xh, hh

    return step_parts


def _lstm(b: _Builder, node, attrs, inits, steps: int, axes0: str, axes01: str, fuse: bool) -> list:
    ins = list(node.input) + [""] * 8
    W, R = inits[ins[1]][0], inits[ins[2]][0]                  # (4H, I), (4H, H): gates i, o, f, c
    H = int(attrs.get("hidden_size", R.shape[-1]))
    B = inits[ins[3]][0] if ins[3] else np.zeros(8 * H, np.float32)
    f, g, hact = _activations(attrs, 3, ["Sigmoid", "Tanh", "Tanh"])
    if not ins[5] or not ins[6]:
        raise ValueError("no initial_h/initial_c")
    bias = (B[:4 * H] + B[4 * H:]).astype(np.float32)
    h, c = _initial(b, ins[5], axes0), _initial(b, ins[6], axes0)
    if steps == 1 and fuse:
        fused = _one_step_gates(b, ins, h, np.concatenate([W.T, R.T]), bias, axes0)  # [x, h] @ [W; R]
        step_gates = lambda t: fused  # noqa: E731
    else:
        xw = b.op("MatMul", [ins[0], b.const("Wt", W.T.astype(np.float32), exact=f"{_stem(ins[1])}_Wt")], "xw")
        xw = b.op("Add", [xw, b.const("bx", bias, exact=f"{_stem(ins[1])}_bx")], "xw_b")
        r_all = b.const("Rt", R.T.astype(np.float32), exact=f"{_stem(ins[1])}_Rt")

        def step_gates(t):
            xt = b.op("Gather", [xw, b.const(f"t{t}", np.array(t, np.int64))], f"x{t}", axis=0)
            return b.op("Add", [xt, b.op("MatMul", [h, r_all], f"t{t}_hr")], f"t{t}_gates")
    split_ofc = b.const("split_iof_c", np.array([3 * H, H], np.int64))
    split3 = b.const("split3", np.array([H] * 3, np.int64))
    ys = []
    for t in range(steps):
        # i, o, f are side by side: one activation over the three of them
        iof, gc = b.op("Split", [step_gates(t), split_ofc], f"t{t}_split", n_out=2, axis=-1)
        i, o, fg = b.op("Split", [_act(b, f, iof, f"t{t}_iof"), split3], f"t{t}_iof_split", n_out=3, axis=-1)
        cand = _act(b, g, gc, f"t{t}_c_cand")
        c = b.op("Add", [b.op("Mul", [fg, c], f"t{t}_fc"), b.op("Mul", [i, cand], f"t{t}_ic")], f"t{t}_c")
        h = b.op("Mul", [o, _act(b, hact, c, f"t{t}_hc")], f"t{t}_h")
        ys.append(h)
    return _outputs(b, node, ys, [h, c], axes0, axes01)


def _outputs(b: _Builder, node, ys: list, finals: list, axes0: str, axes01: str) -> list:
    outs = list(node.output)
    if outs and outs[0]:
        parts = ys if len(ys) == 1 else [b.op("Unsqueeze", [y, axes01], f"y{t}") for t, y in enumerate(ys)]
        if len(parts) == 1:
            b.op("Unsqueeze", [ys[0], axes01], "y0", out=[outs[0]])
        else:
            b.op("Concat", parts, "y", out=[outs[0]], axis=0)
    for name, value in zip(outs[1:], finals):
        if name:
            b.op("Unsqueeze", [value, axes0], "final", out=[name])
    return outs


def unroll_recurrent(model, ops=("GRU", "LSTM"), *, fuse_one_step: bool = True) -> dict:
    """Rewrite each node of `ops` in `model`'s main graph in place; returns
    {"unrolled": [node names], "kept": {node name: reason}}, plus "one_step_fused" (the nodes
    read through one [x, h] matrix) and "zero_weights" when a one-step GRU's fused matrix
    holds zeros (the blocks that keep x and h apart).
    `fuse_one_step=False` keeps x and h apart in a one-step chunk too: static QDQ gives the
    input of a MatMul one scale, and [x, h] under one scale cost char_gru a character."""
    from onnx import numpy_helper

    from .graph import _drop_unused_initializers, names_in

    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    taken = names_in(model)
    steps_of = _leading_dims(model)
    done, kept, new_nodes, zeros, fused = [], {}, [], 0, []
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
            (_lstm if lstm else _gru)(b, node, attrs, inits, steps_of[node.input[0]], axes0, axes01, fuse_one_step)
        except ValueError as exc:
            kept[node.name] = str(exc)
            new_nodes.append(node)
            continue
        new_nodes.extend(b.nodes)
        g.initializer.extend(b.inits)
        done.append(node.name)
        zeros += b.zero_weights
        if b.fused:
            fused.append(node.name)
    if done:
        g.initializer.extend(root.inits)
    del g.node[:]
    g.node.extend(new_nodes)
    if done:
        del g.value_info[:]
        _drop_unused_initializers(g)
    report = {"unrolled": done, "kept": kept}
    if fused:
        report["one_step_fused"] = fused
    if zeros:
        report["zero_weights"] = zeros
    return report
