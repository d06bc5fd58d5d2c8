"""Keras operations called on symbolic tensors in a functional model: `keras.ops.*`, `h[:, -1]`,
`h * 2 + 1`. Keras 3 keeps each as an Operation node of its own class (`ops.Add` is not
`layers.Add`), so each class has a handler here; `rnnx layers` lists them as `ops.<Name>`.

- element-wise math (unary, binary with constants and broadcasting), comparisons, logic,
  `where`, `cast`, `clip` and the `keras.ops.nn` activations: time-local;
- `GetItem` (`h[...]`): slices and indices of feature axes are time-local; `h[:, -1]` of a
  sequence streams as the last step of each chunk; other slices of the time axis are refused
  for the streams with a reason (they need steps a chunk does not have);
- `concatenate`/`stack`, `reshape`/`expand_dims`/`squeeze`/`transpose`: time-local while the
  batch and time axes stay axes 0 and 1;
- reductions over feature axes; `mean`/`sum`/`max`/`min` over time stream as running
  reductions (running.py); `softmax`/`log_softmax` over a feature axis.

Constants and Python numbers take the dtype Keras computes in (`keras.backend.result_type`),
so `h > 0` and `ids != 0` compare like Keras does.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..onnx_graph import reduce_over
from ..registry import Arg, Call, LayerHandler, SiteHandler
from . import running

_INT64_MAX, _INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min
# Keras dtype -> ONNX TensorProto element type
ONNX_DTYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
               "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "bfloat16": 16}


def _axis(axis: int, rank: int) -> int:
    return int(axis) % rank


def _axes(axis, rank: int) -> list[int] | None:
    if axis is None:
        return None
    return sorted(_axis(a, rank) for a in (axis if isinstance(axis, (list, tuple)) else [axis]))


class OpHandler(SiteHandler):
    """A Keras operation: what it may do depends on this call's arguments (its `Site`)."""

    # the first tensor argument and whether it is a sequence
    @property
    def x(self) -> Arg:
        return self.site.tensors[0]

    def streams(self) -> str | None:
        """Why this call cannot run one chunk at a time (asked when an input is a sequence), or None."""
        return None

    def time_refusal(self, layer) -> str | None:
        return self.streams()

    def time_local(self, layer) -> bool:
        return self.streams() is None

    def refuse(self, layer, variant):
        if self.site is None:
            return "a Keras operation needs the walker's call site"
        return self.unsupported()

    def unsupported(self) -> str | None:
        """Why rnnx cannot emit this call at all (then the whole model goes through tf2onnx), or None."""
        return None

    def out_dtype(self) -> str:
        return self.site.out_dtypes[0]


def _cast(g, name: str, have: str, want: str, hint: str) -> str:
    return name if have == want else g.node("Cast", [name], to=ONNX_DTYPES[want], name_hint=f"{hint}_cast")


def _operands(ctx, call: Call, site, values, dtype: str) -> list[str]:
    """ONNX names of `values` (Args and Python/numpy constants) in `dtype`."""
    names = []
    for k, v in enumerate(values):
        if isinstance(v, Arg):
            names.append(_cast(ctx.g, call.inputs[v.index], v.dtype, dtype, f"{call.prefix}_{k}"))
        else:
            names.append(ctx.g.const(f"{call.prefix}_c{k}", np.asarray(v, dtype=np.dtype(dtype))))
    return names


def _time_varying_constant(site, values) -> str | None:
    """A constant that differs along the time axis of the sequence it meets breaks the streams."""
    rank = max((len(v.shape) for v in values if isinstance(v, Arg) and v.has_time), default=0)
    if not rank:
        return None
    for v in values:
        if not isinstance(v, Arg):
            c = np.asarray(v)
            t = c.ndim - (rank - 1)     # the constant's axis that lines up with time (broadcasting)
            if c.ndim >= rank - 1 and 0 <= t < c.ndim and c.shape[t] != 1:
                return (f"its constant operand has {c.shape[t]} values along the time axis, so each step "
                        "depends on its position in the sequence")
    return None


class ElementwiseHandler(OpHandler):
    """Unary, binary (and `where`'s ternary) element-wise operations, numpy broadcasting."""

    summary = "element-wise"

    def __init__(self, onnx_op: str, kind: str = "math", summary: str | None = None):
        self.onnx_op, self.kind = onnx_op, kind          # kind: math | compare | logic
        self.summary = summary or f"`{onnx_op}` (element-wise, constants broadcast)"

    def unsupported(self):
        if self.onnx_op == "Round" and getattr(self.site.layer, "decimals", 0):
            return "round with decimals has no rnnx emitter"
        if any(isinstance(v, str) for v in self.site.args):
            return "a string operand has no ONNX counterpart"
        return None

    def streams(self):
        return _time_varying_constant(self.site, self.site.args)

    def _dtype(self) -> str:
        import keras

        if self.kind == "logic":
            return "bool"
        if self.kind == "math":
            return self.out_dtype()
        kinds = [v.dtype if isinstance(v, Arg) else type(v) if isinstance(v, (bool, int, float)) else np.asarray(v).dtype.name
                 for v in self.site.args]
        return str(keras.backend.result_type(*kinds))

    def emit(self, ctx, call: Call) -> list[str]:
        g, op, p = ctx.g, self.onnx_op, call.prefix
        if op == "Where":
            c = self.site.args[0]
            cond = (_cast(g, call.inputs[c.index], c.dtype, "bool", f"{p}_cond") if isinstance(c, Arg)
                    else g.const(f"{p}_cond", np.asarray(c, dtype=bool)))
            values = _operands(ctx, call, self.site, self.site.args[1:], self.out_dtype())
            return [g.node("Where", [cond, *values], name_hint=p)]
        dtype = self._dtype()
        ins = _operands(ctx, call, self.site, self.site.args, dtype)
        one = np.ones((), np.dtype(dtype))
        if op == "Square":
            y = g.node("Mul", [ins[0], ins[0]], name_hint=p)
        elif op == "Log1p":
            y = g.node("Log", [g.node("Add", [ins[0], g.const(f"{p}_one", one)])], name_hint=p)
        elif op == "Expm1":
            y = g.node("Sub", [g.node("Exp", [ins[0]]), g.const(f"{p}_one", one)], name_hint=p)
        elif op == "Rsqrt":
            y = g.node("Reciprocal", [g.node("Sqrt", [ins[0]])], name_hint=p)
        elif op == "FloorDiv":
            y = g.node("Div", ins, name_hint=p)
            # float: floor the quotient; integer Div truncates toward zero where numpy floors
            y = _int_floor_div(g, ins, y, p) if _is_int(dtype) else g.node("Floor", [y], name_hint=f"{p}_floor")
        elif op == "Mod":
            if _is_int(dtype):
                y = g.node("Mod", ins, fmod=0, name_hint=p)
            else:    # numpy's mod takes the divisor's sign: x - floor(x / y) * y
                q = g.node("Floor", [g.node("Div", ins)], name_hint=f"{p}_q")
                y = g.node("Sub", [ins[0], g.node("Mul", [q, ins[1]])], name_hint=p)
        elif op == "Clip":
            lay, dt = self.site.layer, np.dtype(dtype)
            y = g.node("Clip", [ins[0], g.const(f"{p}_lo", np.asarray(lay.x_min, dt)),
                                g.const(f"{p}_hi", np.asarray(lay.x_max, dt))], name_hint=p)
        elif op == "NotEqual":
            y = g.node("Not", [g.node("Equal", ins, name_hint=f"{p}_equal")], name_hint=p)
        else:
            y = g.node(op, ins, name_hint=p)
        return [y]


def _is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def _int_floor_div(g, ins, q, p):
    prod = g.node("Mul", ins, name_hint=f"{p}_prod")
    zero = g.node("CastLike", [g.const("i0_scalar", np.array(0, np.int64)), q], name_hint=f"{p}_zero")
    exact = g.node("Equal", [g.node("Mul", [q, ins[1]]), ins[0]], name_hint=f"{p}_exact")
    neg = g.node("Less", [prod, zero], name_hint=f"{p}_neg")
    fix = g.node("And", [neg, g.node("Not", [exact])], name_hint=f"{p}_fix")
    one = g.node("CastLike", [g.const("i1_scalar", np.array(1, np.int64)), q], name_hint=f"{p}_one")
    return g.node("Sub", [q, g.node("Where", [fix, one, zero])], name_hint=f"{p}_floor")


class ActivationOpHandler(OpHandler):
    """A `keras.ops.nn` activation; its constant settings are read from the operation."""

    def __init__(self, name: str):
        self.name = name
        self.summary = f"the `{name}` activation"

    def _name(self) -> str:
        op = self.site.layer
        if self.name == "gelu" and getattr(op, "approximate", True):
            return "gelu_tanh"
        return self.name

    def emit(self, ctx, call: Call) -> list[str]:
        g, x, p, op = ctx.g, call.inputs[0], call.prefix, self.site.layer
        name = self._name()
        if name == "gelu_tanh":    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            cube = g.node("Mul", [g.node("Mul", [x, x]), x], name_hint=f"{p}_cube")
            inner = g.node("Add", [x, g.node("Mul", [cube, g.const("f32_gelu_c", np.float32(0.044715))])])
            t = g.node("Tanh", [g.node("Mul", [inner, g.const("f32_sqrt_2_pi", np.float32(np.sqrt(2 / np.pi)))])])
            one_plus = g.node("Add", [t, g.const("f32_1", np.float32(1.0))])
            return [g.node("Mul", [g.node("Mul", [x, g.const("f32_half", np.float32(0.5))]), one_plus], name_hint=p)]
        if name == "elu":
            return [g.node("Elu", [x], alpha=float(op.alpha), name_hint=p)]
        if name == "leaky_relu":
            return [g.node("LeakyRelu", [x], alpha=float(op.negative_slope), name_hint=p)]
        if name == "log_sigmoid":    # -softplus(-x)
            return [g.node("Neg", [g.node("Softplus", [g.node("Neg", [x])])], name_hint=p)]
        return [activations.emit(g, x, name, p)]


class SoftmaxOpHandler(OpHandler):
    def __init__(self, onnx_op: str):
        self.onnx_op = onnx_op
        self.summary = f"`{onnx_op}` over the operation's axis (a feature axis to stream)"

    def _axis(self) -> int:
        return _axis(self.site.layer.axis, len(self.x.shape))

    def streams(self):
        if self.x.has_time and self._axis() == 1:
            return "it normalizes over the time axis, which needs the whole sequence"
        return None

    def unsupported(self):
        if isinstance(self.site.layer.axis, (list, tuple)):
            return "softmax over several axes has no rnnx emitter"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        return [ctx.g.node(self.onnx_op, [call.inputs[0]], axis=self._axis(), name_hint=call.prefix)]


class CastOpHandler(OpHandler):
    summary = "`Cast` to the operation's dtype"

    def unsupported(self):
        if str(self.site.layer.dtype) not in ONNX_DTYPES:
            return f"cast to {self.site.layer.dtype} has no ONNX counterpart"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        return [_cast(ctx.g, call.inputs[0], self.x.dtype, str(self.site.layer.dtype), call.prefix)]


class GetItemHandler(OpHandler):
    """`x[key]`: Slice for slices, Gather for integers, Unsqueeze for None; Ellipsis expands."""

    summary = "Slice / Gather / Unsqueeze; `h[:, -1]` streams as each chunk's last step"

    def _items(self):
        """[(input axis or None for a new axis, item)] of the key, or a reason it has no emitter."""
        key = self.site.args[1] if len(self.site.args) > 1 else None
        if isinstance(key, list) and any(k is None or k is Ellipsis or isinstance(k, slice) for k in key):
            key = tuple(key)      # a tuple key comes back a list from a saved model's config
        key = key if isinstance(key, tuple) else (key,)
        rank = len(self.x.shape)
        for item in key:
            if isinstance(item, Arg) or not (item is None or item is Ellipsis or isinstance(item, (int, slice))
                                             or isinstance(item, np.integer)):
                return None, "indexing with a tensor, list or array has no rnnx emitter"
            if isinstance(item, slice) and any(isinstance(v, Arg) for v in (item.start, item.stop, item.step)):
                return None, "a slice with tensor bounds has no rnnx emitter"
        if sum(item is Ellipsis for item in key) > 1:
            return None, "more than one Ellipsis in an index"
        used = sum(1 for item in key if item is not None and item is not Ellipsis)
        if used > rank:
            return None, f"an index of {used} axes on a rank-{rank} tensor"
        expanded = []
        for item in key:
            if item is Ellipsis:
                expanded += [slice(None)] * (rank - used)
            else:
                expanded.append(item)
        if Ellipsis not in key:
            expanded += [slice(None)] * (rank - used)
        out, axis = [], 0
        for item in expanded:
            if item is None:
                out.append((None, item))
            else:
                out.append((axis, item))
                axis += 1
        return out, None

    def unsupported(self):
        return self._items()[1]

    @staticmethod
    def _whole(item) -> bool:
        return isinstance(item, slice) and item.start is None and item.stop is None and item.step in (None, 1)

    def _time_item(self):
        items, _ = self._items()
        return next(item for axis, item in items if axis == 1)

    def _time_moves(self) -> bool:
        items, _ = self._items()
        kept = [axis for axis, item in items if axis is None or not isinstance(item, (int, np.integer))]
        return kept[:2] != [0, 1]

    def streams(self):
        if not self.x.has_time:
            return None
        items, _ = self._items()
        if not self._whole(next(it for a, it in items if a == 0)):
            return "it indexes the batch axis (a stream's batch axis holds its streams)"
        item = self._time_item()
        if isinstance(item, (int, np.integer)) and int(item) == -1:
            return None          # the last step: of the sequence in full, of each chunk in a stream
        if not self._whole(item):
            return (f"it takes {_describe(item)} of the time axis; a stream sees one chunk at a time, so only "
                    "the last step (h[:, -1]) or the whole axis can stream")
        if self._time_moves():
            return "it moves the time axis away from axis 1 (a new axis before it)"
        return None

    def keeps_time(self, layer) -> bool:
        return self.x.has_time and self._whole(self._time_item()) and not self._time_moves()

    def emit(self, ctx, call: Call) -> list[str]:
        g, p = ctx.g, call.prefix
        items, _ = self._items()
        y = call.inputs[0]
        slices = [(a, it) for a, it in items if a is not None and isinstance(it, slice) and not self._whole(it)]
        if slices:
            starts, ends, axes, steps = [], [], [], []
            for a, it in slices:
                step = 1 if it.step is None else int(it.step)
                starts.append((0 if step > 0 else _INT64_MAX) if it.start is None else int(it.start))
                ends.append((_INT64_MAX if step > 0 else _INT64_MIN) if it.stop is None else int(it.stop))
                axes.append(a)
                steps.append(step)
            y = g.node("Slice", [y] + [g.const(f"{p}_{n}", np.array(v, np.int64)) for n, v in
                                       (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))],
                       name_hint=f"{p}_slice")
        for a, it in sorted(((a, it) for a, it in items if isinstance(it, (int, np.integer))), reverse=True):
            y = g.node("Gather", [y, g.const(f"{p}_index", np.array(int(it), np.int64))], axis=a,
                       name_hint=f"{p}_gather")
        out_axes, k = [], 0
        for a, it in items:
            if it is None:
                out_axes.append(k)
            if it is None or not isinstance(it, (int, np.integer)):
                k += 1
        if out_axes:
            y = g.node("Unsqueeze", [y, g.const(f"{p}_new_axes", np.array(out_axes, np.int64))], name_hint=f"{p}_new")
        if y == call.inputs[0]:
            y = g.node("Identity", [y], name_hint=p)
        return [y]


def _describe(item) -> str:
    if isinstance(item, (int, np.integer)):
        return f"step {int(item)}"
    return f"steps [{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}" + \
        (f":{item.step}" if item.step not in (None, 1) else "") + "]"


class JoinHandler(OpHandler):
    """`concatenate` (Concat) and `stack` (Unsqueeze each, then Concat) of a list of tensors."""

    def __init__(self, stack: bool):
        self.stack = stack
        self.summary = ("`Unsqueeze` + `Concat` (stack on a feature axis to stream)" if stack else
                        "`Concat` (on a feature axis to stream)")

    def _parts(self):
        return list(self.site.args[0]) if self.site.args and isinstance(self.site.args[0], (list, tuple)) else []

    def _axis(self) -> int:
        rank = len(self.site.out_shapes[0])
        return _axis(self.site.layer.axis, rank)

    def unsupported(self):
        if not self._parts() or not all(isinstance(v, Arg) for v in self._parts()):
            return "joining constants with tensors has no rnnx emitter"
        if self.site.layer.axis is None:
            return "concatenate with axis=None flattens the batch"
        return None

    def streams(self):
        if not any(v.has_time for v in self._parts()):
            return None
        a = self._axis()
        if a == 1:
            return "it joins along the time axis" if not self.stack else "it stacks on the time axis, moving time to axis 2"
        if a == 0:
            return "it joins along the batch axis"
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        g, p, dt = ctx.g, call.prefix, self.out_dtype()
        parts = _operands(ctx, call, self.site, self._parts(), dt)
        if self.stack:
            axis = g.const(f"{p}_axis", np.array([self._axis()], np.int64))
            parts = [g.node("Unsqueeze", [t, axis], name_hint=f"{p}_part") for t in parts]
        return [g.node("Concat", parts, axis=self._axis(), name_hint=p)]


class ShapeOpHandler(OpHandler):
    """`reshape`, `expand_dims`, `squeeze`, `transpose`: time-local while batch and time stay put."""

    def __init__(self, what: str):
        self.what = what
        self.summary = {"reshape": "`Reshape` (batch and time copied when they stay axes 0 and 1)",
                        "expand_dims": "`Unsqueeze` (after the time axis to stream)",
                        "squeeze": "`Squeeze` of size-1 axes (not batch or time, to stream)",
                        "transpose": "`Transpose` (axes 0 and 1 kept, to stream)"}[what]

    def _axes(self):
        op, rank, out_rank = self.site.layer, len(self.x.shape), len(self.site.out_shapes[0])
        if self.what == "expand_dims":
            return _axes(op.axis, out_rank)
        if self.what == "squeeze":
            if op.axis is None:
                return [i for i, d in enumerate(self.x.shape) if d == 1]
            return _axes(op.axis, rank)
        if self.what == "transpose":
            return list(range(rank))[::-1] if op.axes is None else [_axis(a, rank) for a in op.axes]
        return None

    def _keeps(self) -> bool:
        axes = self._axes()
        if self.what == "expand_dims":
            return all(a >= 2 for a in axes)
        if self.what == "squeeze":
            return all(a >= 2 for a in axes)
        if self.what == "transpose":
            return axes[:2] == [0, 1]
        ins, outs = self.x.shape, self.site.out_shapes[0]
        return len(outs) >= 2 and outs[1] == ins[1] and all(d is not None for d in outs[2:])

    def unsupported(self):
        if self.what == "reshape" and not (self.x.has_time and self._keeps()):
            new = self.site.layer.newshape
            if not isinstance(new, (list, tuple)) or not all(d is None or isinstance(d, (int, np.integer)) for d in new):
                return f"reshape to {new!r} (not a tuple of ints) has no rnnx emitter"
            if self._literal().count(-1) > 1:
                return f"reshape to {tuple(new)} has more than one unknown axis"
        if self.what == "squeeze" and self.site.layer.axis is None and None in self.x.shape[1:]:
            return "squeeze without an axis on a tensor with dynamic axes"
        return None

    def streams(self):
        if not self.x.has_time:
            return None
        if not self._keeps():
            return f"this {self.what} moves or merges the batch or time axis"
        return None

    def keeps_time(self, layer) -> bool:
        return self.x.has_time and self._keeps()

    def emit(self, ctx, call: Call) -> list[str]:
        g, p, x = ctx.g, call.prefix, call.inputs[0]
        if self.what == "transpose":
            return [g.node("Transpose", [x], perm=self._axes(), name_hint=p)]
        if self.what in ("expand_dims", "squeeze"):
            op = "Unsqueeze" if self.what == "expand_dims" else "Squeeze"
            return [g.node(op, [x, g.const(f"{p}_axes", np.array(self._axes(), np.int64))], name_hint=p)]
        shape = self.site.out_shapes[0]
        if self.x.has_time and self._keeps():
            dims = [0, 0, *shape[2:]]         # copy batch and time: any length works
        else:
            dims = self._literal()
        return [g.node("Reshape", [x, g.const(f"{p}_shape", np.array(dims, np.int64))], name_hint=p)]

    def _literal(self) -> list[int]:
        return [-1 if d is None else int(d) for d in self.site.layer.newshape]


class ReduceHandler(OpHandler):
    """`mean`/`sum`/`max`/`min`/`prod` over axes; over time (axis 1 of a sequence) a running reduction."""

    _ONNX = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin",
             "prod": "ReduceProd", "any": "ReduceMax", "all": "ReduceMin"}
    _LOGICAL = ("any", "all")   # of a bool tensor: ReduceMax / ReduceMin of it as 0/1 floats

    def __init__(self, kind: str):
        self.kind = kind
        what = f"`{self._ONNX[kind]}`" + (" of the bools as 0/1" if kind in self._LOGICAL else "")
        self.summary = what + (f"; over time a running {kind} in a stream" if kind in running.KINDS
                               else " (over feature axes to stream)")

    def _axes(self):
        return _axes(self.site.layer.axis, len(self.x.shape))

    def _over_time(self) -> bool:
        return self.x.has_time and 1 in self._axes()

    def unsupported(self):
        axes = self._axes()
        if axes is None or 0 in axes:
            return "it reduces over the batch axis"
        if getattr(self.site.layer, "initial", None) is not None:
            return f"{self.kind} with initial= has no rnnx emitter"
        if getattr(self.site.layer, "dtype", None) is not None:
            return f"{self.kind} with dtype= has no rnnx emitter"
        if not self.x.dtype.startswith("float") and self.kind == "mean":
            return "mean of an integer tensor has no rnnx emitter"
        return None

    def streams(self):
        if self._over_time() and self.kind not in running.KINDS:
            return f"{self.kind} over the time axis needs the whole sequence"
        return None

    def keeps_time(self, layer) -> bool:
        return self.x.has_time and not self._over_time()

    def states(self, layer):
        if self.site is None or not self._over_time() or self.kind not in running.KINDS:
            return []
        rest = [a for a in self._axes() if a != 1]
        frame = tuple(1 if i in rest else int(self.x.shape[i]) for i in range(2, len(self.x.shape))
                      if i not in rest or self.site.layer.keepdims)
        return running.state_decls(self.kind, frame)

    def emit(self, ctx, call: Call) -> list[str]:
        g, p, x = ctx.g, call.prefix, call.inputs[0]
        keep = bool(self.site.layer.keepdims)
        axes = self._axes()
        if self.kind in self._LOGICAL:   # Keras' mask of a Masking layer: any(x != value, axis=-1)
            x = g.node("Cast", [x], to=1, name_hint=f"{p}_as_float")                    # 1 = FLOAT
            y = reduce_over(g, self._ONNX[self.kind], x, axes, keep, ctx.opset, p)
            return [g.node("Cast", [y], to=9, name_hint=f"{p}_as_bool")]                  # 9 = BOOL
        if not self._over_time() or self.kind not in running.KINDS:
            return [reduce_over(g, self._ONNX[self.kind], x, axes, keep, ctx.opset, p)]
        rest = [a for a in axes if a != 1]
        if rest:     # the feature axes first, then the running reduction over time
            x = reduce_over(g, self._ONNX[self.kind], x, rest, keep, ctx.opset, f"{p}_features")
        frame_rank = len(self.x.shape) - 2 - (0 if keep else len(rest))
        return [running.emit(ctx, call, x, self.kind, keep, frame_rank)]

    def time_local(self, layer) -> bool:
        return not self._over_time()


_UNARY = {"Absolute": "Abs", "Negative": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Square": "Square",
          "Tanh": "Tanh", "Sin": "Sin", "Cos": "Cos", "Tan": "Tan", "Arcsin": "Asin", "Arccos": "Acos",
          "Arctan": "Atan", "Sinh": "Sinh", "Cosh": "Cosh", "Arcsinh": "Asinh", "Arccosh": "Acosh",
          "Arctanh": "Atanh", "Floor": "Floor", "Ceil": "Ceil", "Sign": "Sign", "Reciprocal": "Reciprocal",
          "Round": "Round", "Log1p": "Log1p", "Expm1": "Expm1", "Erf": "Erf", "Rsqrt": "Rsqrt"}
_BINARY = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Divide": "Div", "TrueDivide": "Div",
           "Power": "Pow", "Maximum": "Max", "Minimum": "Min", "Mod": "Mod", "FloorDivide": "FloorDiv"}
_COMPARE = {"Equal": "Equal", "NotEqual": "NotEqual", "Greater": "Greater", "GreaterEqual": "GreaterOrEqual",
            "Less": "Less", "LessEqual": "LessOrEqual"}
_LOGIC = {"LogicalAnd": "And", "LogicalOr": "Or", "LogicalXor": "Xor", "LogicalNot": "Not"}
_NN = {"Sigmoid": "sigmoid", "Relu": "relu", "Relu6": "relu6", "Softplus": "softplus", "Softsign": "softsign",
       "Silu": "silu", "Gelu": "gelu", "Elu": "elu", "Selu": "selu", "LeakyRelu": "leaky_relu",
       "HardSigmoid": "hard_sigmoid", "HardSilu": "hard_silu", "LogSigmoid": "log_sigmoid"}


def handlers() -> list[tuple[type, LayerHandler]]:
    """(Keras operation class, handler) of every operation this module emits."""
    from keras.src.ops import core, math, nn
    from keras.src.ops import numpy as knp

    found = []

    def add(module, name, handler):
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            found.append((cls, handler))

    for name, op in _UNARY.items():
        add(math if name in ("Erf", "Rsqrt") else knp, name, ElementwiseHandler(op))
    for name, op in _BINARY.items():
        add(knp, name, ElementwiseHandler(op))
    for name, op in _COMPARE.items():
        add(knp, name, ElementwiseHandler(op, "compare"))
    for name, op in _LOGIC.items():
        add(knp, name, ElementwiseHandler(op, "logic"))
    add(knp, "Where", ElementwiseHandler("Where", "where", "`Where` (condition cast to bool, constants broadcast)"))
    add(knp, "Clip", ElementwiseHandler("Clip", "math", "`Clip` to the operation's bounds"))
    add(core, "Cast", CastOpHandler())
    for name, act in _NN.items():
        add(nn, name, ActivationOpHandler(act))
    add(nn, "Softmax", SoftmaxOpHandler("Softmax"))
    add(nn, "LogSoftmax", SoftmaxOpHandler("LogSoftmax"))
    add(knp, "GetItem", GetItemHandler())
    add(knp, "Concatenate", JoinHandler(stack=False))
    add(knp, "Stack", JoinHandler(stack=True))
    for name, what in (("Reshape", "reshape"), ("ExpandDims", "expand_dims"), ("Squeeze", "squeeze"),
                       ("Transpose", "transpose")):
        add(knp, name, ShapeOpHandler(what))
    for name, kind in (("Mean", "mean"), ("Sum", "sum"), ("Max", "max"), ("Min", "min"), ("Amax", "max"),
                       ("Amin", "min"), ("Prod", "prod"), ("Any", "any"), ("All", "all")):
        add(knp, name, ReduceHandler(kind))
    return found
