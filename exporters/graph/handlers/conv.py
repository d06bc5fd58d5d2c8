"""Convolution front-ends: Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D,
ZeroPadding1D/2D, the 1D/2D/3D max and average poolings, the 2D global poolings.

`full` is one ONNX `Conv` (or pool) between two Transposes (Keras is
channels_last, ONNX channels_first). Over a sequence, axis 1 is time, and
it decides what streams:

- kernel 1 and stride 1 on time: time-local, streams as it is;
- `Conv1D(padding="causal")`, stride 1: the last (kernel-1)*dilation input
  frames are a state of kind "conv" (zeros at the start: Keras' causal
  padding); each call convolves concat(cache, chunk) without time padding and
  gives exactly `chunk` frames; the new cache is the last frames of that concat;
- `ZeroPadding1D/2D` that pads only the start of time by p frames carries the
  last p input frames as its state (zeros at the start: the padding) and gives
  chunk+p frames per call; the valid convolution or pooling reading it, over
  exactly p+1 frames (p = (kernel-1)*dilation) with stride 1, gives back
  `chunk` frames. This is the streaming form of Conv2D (Keras has no causal
  padding for it) and of the depthwise and separable convolutions;
- any other window on time (padding="same", a valid window without that
  padding, strides, or any window after one of those) runs on the stream
  clock (clocks.py): it caches reach*stride slots of its input and its output
  frames come out late or decimated, as the metadata declares. A strided
  'same' window whose left padding depends on the sequence's length is
  refused for stream and unrolled, with the reason.

Inside `TimeDistributed` the layers run on frames (batch*time, ...) and none of
this applies: axis 1 is a frame axis there. A layer called in the model's graph
is bound by the walker to its call site (with the layers that feed and read
it); one that a wrapper runs is not, which is how the handlers tell the two
apart (`SiteHandler.sees_time`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import activations, clocks, registry
from ..onnx_graph import reduce_over
from ..padding import ints as _ints, same_pads
from ..registry import Call, SiteHandler, StateDecl, keras_layer_handlers

KIND = "conv"           # state kind of every left-context cache (conv_in_<k> / conv_out_<k>)
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Window:
    """A sliding window over the spatial axes (time first when the layer sees time)."""

    kernel: tuple
    dilation: tuple
    strides: tuple
    padding: str

    @property
    def reach(self) -> int:
        """Frames of context on the time axis: (kernel-1)*dilation."""
        return (self.kernel[0] - 1) * self.dilation[0]

    def pads(self) -> dict:
        """ONNX Conv/pool padding attributes equal to Keras' `padding`."""
        r = len(self.kernel)
        reach = [(k - 1) * d for k, d in zip(self.kernel, self.dilation)]
        if self.padding == "valid":
            return {"pads": [0] * (2 * r)}
        if self.padding == "causal":  # Conv1D only: everything before the sequence
            return {"pads": [reach[0], 0]}
        if all(s == 1 for s in self.strides):  # TF's "same": the odd frame goes at the end
            return {"pads": [t // 2 for t in reach] + [t - t // 2 for t in reach]}
        return {"auto_pad": "SAME_UPPER"}


def _pads_off_time(win: Window, in_shape: tuple) -> list:
    """Explicit ONNX pads equal to Keras' on every spatial axis but time (which gets none)."""
    rest = len(win.kernel) - 1
    if win.padding != "same":
        return [0] * (2 * (rest + 1))
    pads = same_pads(in_shape[2:], win.kernel[1:], win.strides[1:], win.dilation[1:])
    return [0, *pads[:rest], 0, *pads[rest:]]


def _to_channels_first(g, x: str, rank: int, prefix: str) -> str:
    return g.node("Transpose", [x], perm=[0, rank + 1, *range(1, rank + 1)], name_hint=f"{prefix}_to_ncw")


def _to_channels_last(g, x: str, rank: int, prefix: str) -> str:
    return g.node("Transpose", [x], perm=[0, *range(2, rank + 2), 1], name_hint=f"{prefix}_to_nwc")


def with_cache(g, x: str, cache: str, frames: int, prefix: str) -> tuple[str, str]:
    """(concat(cache, x) along time, its last `frames` frames: the next cache)."""
    both = g.node("Concat", [cache, x], axis=1, name_hint=f"{prefix}_with_cache")
    start = g.const(f"{prefix}_cache_start", np.array([-frames], np.int64))
    end = g.const("i64_max", np.array([_INT64_MAX], np.int64))
    axis = g.const("i1", np.array([1], np.int64))
    return both, g.node("Slice", [both, start, end, axis], name_hint=f"{prefix}_next_cache")


def _time_padding(layer) -> tuple | None:
    """(before, after) frames a ZeroPadding layer adds on axis 1, or None for another layer."""
    import keras

    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    if isinstance(layer, keras.layers.ZeroPadding1D):
        return tuple(int(p) for p in layer.padding)
    if isinstance(layer, keras.layers.ZeroPadding2D):
        return tuple(int(p) for p in layer.padding[0])
    return None


class WindowHandler(SiteHandler):
    """A convolution or pooling with a window over the spatial axes, channels_last."""

    what = "window"       # 'convolution' or 'pooling', for the refusal messages
    _causal_ok = False    # whether Keras offers padding='causal' for it (Conv1D)

    def window(self, layer) -> Window:
        raise NotImplementedError

    def refuse(self, layer, variant):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return "data_format='channels_first' has no rnnx emitter (rnnx reads axis 1 as time)"
        if not isinstance(layer.padding, str):
            return f"explicit padding {layer.padding!r} has no rnnx emitter (use 'valid', 'same' or 'causal')"
        if getattr(layer, "quantization_mode", None):
            return f"a layer quantized by Keras ({layer.quantization_mode}) has no rnnx emitter"
        act = getattr(layer, "activation", None)
        if act is not None and not activations.supported(activations.name_of(act)):
            return f"activation {activations.name_of(act)!r} has no exact ONNX counterpart"
        if variant != "full" and self.sees_time:
            return self._time_mode(layer)[1]
        return None

    def _time_mode(self, layer) -> tuple:
        """('local' | 'cache' | 'fed' | 'clock', None), or (None, why it cannot run one chunk at a time).

        'clock' is a window on the stream clock (clocks.py): it drops, decimates or looks ahead,
        or reads a sequence that an earlier window did."""
        win = self.window(layer)
        k, d, s, reach = win.kernel[0], win.dilation[0], win.strides[0], win.reach
        upstream = self._upstream
        if reach == 0 and s == 1:
            return "local", None
        if upstream.plain and s == 1:
            if win.padding == "causal":
                return "cache", None
            if all(_time_padding(p) == (reach, 0) for p in self.site.producers):
                return "fed", None
        if clocks.after_window(upstream, reach, s, win.padding) is None:
            return None, (f"padding='same' with stride {s} on time pads the start by a number of frames that "
                          f"depends on the sequence's length (kernel {k}, dilation {d}), which a stream does "
                          "not know; use padding='valid' or 'causal', or a kernel whose padding is the same "
                          "for every length")
        if any(d is None for d in self._frame(layer)):
            return None, f"its frames have a dynamic shape {self._frame(layer)}; its cache needs a fixed one"
        return "clock", None

    @property
    def _upstream(self):
        """The stream clock of the sequence it reads (the model's own frames: clocks.BASE)."""
        return self.site.clock if self.site is not None and self.site.clock is not None else clocks.BASE

    @staticmethod
    def _frame(layer) -> tuple:
        return tuple(layer.input.shape[2:])

    def time_clock(self, layer):
        if not self.sees_time or self._time_mode(layer)[0] != "clock":
            return None
        win = self.window(layer)
        return clocks.after_window(self._upstream, win.reach, win.strides[0], win.padding)

    def look_back(self, layer) -> int:
        return self.window(layer).reach * self._upstream.stride if self.sees_time else 0

    def eats(self, layer) -> int | None:
        """Frames of time context this layer consumes from a left ZeroPadding (valid, stride 1)."""
        win = self.window(layer)
        if win.padding == "valid" and win.strides[0] == 1 and win.reach > 0:
            return win.reach
        return None

    def time_local(self, layer) -> bool:
        return not self.sees_time or self._time_mode(layer)[0] in ("local", "fed")

    def time_refusal(self, layer) -> str | None:
        return self._time_mode(layer)[1] if self.sees_time else None

    def time_window(self, layer) -> tuple[int, int]:
        if not self.sees_time:
            return 0, 1
        win = self.window(layer)
        return (win.reach if win.padding == "valid" else 0), win.strides[0]

    def keeps_time(self, layer) -> bool:
        return True

    def follows_clock(self, layer) -> bool:
        return True

    def states(self, layer) -> list[StateDecl]:
        mode = self._time_mode(layer)[0] if self.sees_time else None
        if mode == "cache":
            return [StateDecl(KIND, (self.window(layer).reach, int(layer.input.shape[-1])))]
        if mode == "clock" and self.window(layer).reach:
            frames = self.window(layer).reach * self._upstream.stride
            return [StateDecl(KIND, (frames, *(int(d) for d in self._frame(layer))), init=self.fill(layer))]
        return []

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        win = self.window(layer)
        rank = len(win.kernel)
        x, pads = call.inputs[0], win.pads()
        if self.on_clock(ctx, layer):
            x, win, pads = self._on_clock(ctx, call, win)
        elif call.states_in:  # a causal cache: the context comes from the state, not from zeros
            x, nxt = with_cache(g, x, call.states_in[0], win.reach, call.prefix)
            call.states_out = [nxt]
            pads = {"pads": [0] * (2 * rank)}
        xc = _to_channels_first(g, x, rank, call.prefix)
        y = _to_channels_last(g, self.window_op(ctx, call, xc, win, pads), rank, call.prefix)
        act = getattr(layer, "activation", None)
        return [activations.emit(g, y, activations.name_of(act), call.prefix) if act is not None else y]

    def _on_clock(self, ctx, call: Call, win: Window) -> tuple:
        """(input, window, pads) of a window on the stream clock: empty slots filled, the last
        reach*stride slots of the input before the chunk, dilation times the input's stride on time."""
        upstream = self._upstream
        x = ctx.clocks.filled(call.inputs[0], upstream, len(call.in_shapes[0]), self.fill(call.layer), call.prefix)
        if call.states_in:
            x, nxt = with_cache(ctx.g, x, call.states_in[0], win.reach * upstream.stride, call.prefix)
            call.states_out = [nxt]
        on_slots = Window(win.kernel, (win.dilation[0] * upstream.stride, *win.dilation[1:]),
                          (1, *win.strides[1:]), win.padding)
        return x, on_slots, {"pads": _pads_off_time(win, call.in_shapes[0])}

    def fill(self, layer) -> float:
        """What an empty slot (and the cache before the stream) reads as: Keras pads with zeros."""
        return 0.0

    def on_clock(self, ctx, layer) -> bool:
        return ctx.streaming and self.sees_time and self._time_mode(layer)[0] == "clock"

    def window_op(self, ctx, call: Call, x: str, win: Window, pads: dict) -> str:
        raise NotImplementedError


def _conv_window(layer) -> Window:
    rank = layer.rank
    return Window(_ints(layer.kernel_size, rank), _ints(layer.dilation_rate, rank), _ints(layer.strides, rank),
                  layer.padding)


def _conv(ctx, call: Call, x: str, w: np.ndarray, b, win: Window, pads: dict, group: int, name: str,
          hint: str) -> str:
    layer, g = call.layer, ctx.g
    ins = [x, ctx.weight(layer, name, w)]
    if b is not None:
        ins.append(ctx.weight(layer, "bias", b))
    return g.node("Conv", ins, kernel_shape=list(win.kernel), strides=list(win.strides),
                  dilations=list(win.dilation), group=int(group), name_hint=f"{call.prefix}_{hint}", **pads)


def _bias(layer):
    return layer.bias.numpy() if getattr(layer, "use_bias", False) and layer.bias is not None else None


class ConvolutionHandler(WindowHandler):
    """A convolution's window: kernel, dilation, strides and padding from the layer."""

    what = "convolution"

    def window(self, layer) -> Window:
        return _conv_window(layer)


class ConvHandler(ConvolutionHandler):
    layers = ('Conv1D', 'Conv2D', 'Conv3D')
    summary = ("Conv (groups, dilation); streams causal, valid (look-back), strided and same (look-ahead, "
               "a latency) on time")
    _causal_ok = True

    def window_op(self, ctx, call, x, win, pads):
        kernel = call.layer.kernel.numpy()  # (*k, in/groups, out) -> (out, in/groups, *k)
        r = len(win.kernel)
        w = np.transpose(kernel, (r + 1, r, *range(r)))
        return _conv(ctx, call, x, w, _bias(call.layer), win, pads, call.layer.groups, "kernel", "conv")


def _depthwise_weight(kernel: np.ndarray) -> np.ndarray:
    """Keras depthwise kernel (*k, in, multiplier) -> ONNX (in*multiplier, 1, *k), channel c*m + j."""
    r = kernel.ndim - 2
    flat = kernel.reshape(*kernel.shape[:r], -1)
    return np.transpose(flat, (r, *range(r)))[:, None]


class DepthwiseConvHandler(ConvolutionHandler):
    layers = ('DepthwiseConv1D', 'DepthwiseConv2D')
    summary = "Conv with group = channels; streams valid, strided and same windows on time (the stream clock)"

    def window_op(self, ctx, call, x, win, pads):
        kernel = call.layer.kernel.numpy()
        return _conv(ctx, call, x, _depthwise_weight(kernel), _bias(call.layer), win, pads, kernel.shape[-2],
                     "kernel", "depthwise")


class SeparableConvHandler(ConvolutionHandler):
    layers = ('SeparableConv1D', 'SeparableConv2D')
    summary = "depthwise Conv + pointwise Conv; streams valid, strided and same windows on time (the stream clock)"

    def window_op(self, ctx, call, x, win, pads):
        layer = call.layer
        depthwise = layer.depthwise_kernel.numpy()
        y = _conv(ctx, call, x, _depthwise_weight(depthwise), None, win, pads, depthwise.shape[-2],
                  "depthwise_kernel", "depthwise")
        pointwise = layer.pointwise_kernel.numpy()  # (1.., in*m, out) -> (out, in*m, 1..)
        r = len(win.kernel)
        ones = Window((1,) * r, (1,) * r, (1,) * r, "valid")
        return _conv(ctx, call, y, np.transpose(pointwise, (r + 1, r, *range(r))), _bias(layer), ones,
                     ones.pads(), 1, "pointwise_kernel", "pointwise")


class PoolingHandler(WindowHandler):
    layers = ('MaxPooling1D', 'AveragePooling1D', 'MaxPooling2D', 'AveragePooling2D', 'MaxPooling3D',
              'AveragePooling3D')
    summary = "MaxPool / AveragePool; streams valid and same windows and strides on time (the stream clock)"
    what = "pooling"

    def window(self, layer) -> Window:
        r = len(layer.pool_size)
        return Window(_ints(layer.pool_size, r), (1,) * r, _ints(layer.strides, r), layer.padding)

    @staticmethod
    def _max(layer) -> bool:
        return "Max" in type(layer).__name__

    def fill(self, layer) -> float:
        return float(np.finfo(np.float32).min) if self._max(layer) else 0.0   # a max ignores the padding

    def window_op(self, ctx, call, x, win, pads):
        g = ctx.g
        attrs = {"kernel_shape": list(win.kernel), "strides": list(win.strides), **pads}
        if self._max(call.layer):   # on the clock: its input's stride is a dilation on time
            dilated = {"dilations": list(win.dilation)} if any(d != 1 for d in win.dilation) else {}
            return g.node("MaxPool", [x], name_hint=f"{call.prefix}_maxpool", **attrs, **dilated)
        if not self.on_clock(ctx, call.layer):   # TF averages real frames only
            return g.node("AveragePool", [x], count_include_pad=0, name_hint=f"{call.prefix}_averagepool", **attrs)
        return self._average_on_clock(ctx, call, x, win, pads)

    def _average_on_clock(self, ctx, call, x, win, pads):
        """An average over slots `dilation` apart on time (AveragePool has no dilations before opset
        19): the sum over time of k shifted slices, the average over the other axes, then / k; a
        'same' pooling divides by the filled slots of its window instead (the empty ones are Keras'
        padding, which TF does not count)."""
        g, rank = ctx.g, len(win.kernel)
        y = _sum_over_time(g, x, win.kernel[0], win.dilation[0], f"{call.prefix}_sum")
        if rank > 1:
            y = g.node("AveragePool", [y], kernel_shape=[1, *win.kernel[1:]], strides=[1, *win.strides[1:]],
                       count_include_pad=0, name_hint=f"{call.prefix}_averagepool_rest", **pads)
        if win.padding != "same":
            k = g.const(f"f32_{win.kernel[0]}", np.array(win.kernel[0], np.float32))
            return g.node("Div", [y, k], name_hint=f"{call.prefix}_averagepool")
        upstream = self._upstream
        v = ctx.clocks.valid(upstream, self.window(call.layer).reach * upstream.stride)   # (batch, slots)
        v = g.node("Unsqueeze", [g.node("Cast", [v], to=1), g.const(f"axes_1_{rank + 2}",
                                                                  np.array([1, *range(3, rank + 2)], np.int64))],
                   name_hint=f"{call.prefix}_slots_ncw")
        count = _sum_over_time(g, v, win.kernel[0], win.dilation[0], f"{call.prefix}_count")
        count = g.node("Max", [count, g.const("f_tiny", np.array(1e-30, np.float32))])
        return g.node("Div", [y, count], name_hint=f"{call.prefix}_averagepool")


def _sum_over_time(g, x: str, k: int, dilation: int, prefix: str) -> str:
    """Sum of x[:, :, j*dilation : j*dilation + n - (k-1)*dilation] over j < k (x channels-first,
    time on axis 2, n slots): a valid window of k slots `dilation` apart."""
    span = (k - 1) * dilation
    axis = g.const("i2", np.array([2], np.int64))
    parts = []
    for j in range(k):
        end = j * dilation - span
        parts.append(g.node("Slice", [x, g.const(f"i{j * dilation}", np.array([j * dilation], np.int64)),
                                      g.const(f"i{end}" if end else "i64_max",
                                              np.array([end if end else _INT64_MAX], np.int64)), axis],
                            name_hint=f"{prefix}_tap{j}"))
    return parts[0] if k == 1 else g.node("Sum", parts, name_hint=prefix)


class ZeroPaddingHandler(SiteHandler):
    layers = ('ZeroPadding1D', 'ZeroPadding2D')
    summary = "Pad; padding the start of time becomes a cache of the last input frames (streams before a valid window)"

    @staticmethod
    def _axes(layer) -> list[int]:
        rank = 1 if "1D" in type(layer).__name__ else 2
        first = 2 if getattr(layer, "data_format", "channels_last") == "channels_first" else 1
        return list(range(first, first + rank))

    @staticmethod
    def _pairs(layer) -> list[tuple]:
        p = layer.padding
        return [tuple(int(v) for v in p)] if "1D" in type(layer).__name__ else [tuple(int(v) for v in q) for q in p]

    def refuse(self, layer, variant):
        if variant == "full" or not self.sees_time:
            return None
        time_pad = _time_padding(layer)
        if time_pad is None:
            return "data_format='channels_first' pads axis 2 of a sequence; rnnx reads axis 1 as time"
        before, after = time_pad
        if (before or after) and self.site.clock is not None and not self.site.clock.plain:
            return ("it pads a sequence that an earlier window on time dropped, decimated or delayed; rnnx "
                    "streams a ZeroPadding on time only before any such window")
        if after:
            return f"it pads the end of the sequence with {after} frame(s), which a stream has not reached"
        if before:
            frame = tuple(layer.input.shape[2:])
            if any(d is None for d in frame):
                return f"its frames have a dynamic shape {frame}; the cache of {before} frames needs a fixed one"
            for c in self.site.consumers or [None]:
                handler = registry.handler_for(c) if c is not None else None
                if c is None or handler is None or handler.eats(c) != before:
                    who = f"layer {c.name!r} ({type(c).__name__})" if c is not None else "the model output"
                    return (f"it pads the start of time with {before} frame(s), which streams only when every "
                            f"layer reading it is a valid convolution or pooling over exactly {before + 1} frames "
                            f"((kernel-1)*dilation = {before}) with stride 1 on time; {who} is not")
        return None

    def time_local(self, layer) -> bool:
        return not self.sees_time or _time_padding(layer) == (0, 0)

    def keeps_time(self, layer) -> bool:
        return True

    def follows_clock(self, layer) -> bool:
        return True

    def states(self, layer) -> list[StateDecl]:
        if not self.sees_time or self.refuse(layer, "stream") is not None:
            return []
        before = _time_padding(layer)[0]
        return [StateDecl(KIND, (before, *(int(d) for d in layer.input.shape[2:])))] if before else []

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        rank = len(call.in_shapes[0])
        begins, ends = [0] * rank, [0] * rank
        for axis, (b, e) in zip(self._axes(layer), self._pairs(layer)):
            begins[axis], ends[axis] = b, e
        x = call.inputs[0]
        if call.states_in:  # the padding before time comes from the cache
            x, nxt = with_cache(g, x, call.states_in[0], begins[1], call.prefix)
            call.states_out = [nxt]
            begins[1] = 0
        if not any(begins) and not any(ends):
            return [g.node("Identity", [x], name_hint=call.prefix)]
        pads = g.const(f"{call.prefix}_pads", np.array(begins + ends, np.int64))
        return [g.node("Pad", [x, pads], mode="constant", name_hint=call.prefix)]


class GlobalPooling2DHandler(SiteHandler):
    layers = ('GlobalAveragePooling2D', 'GlobalMaxPooling2D')
    summary = "ReduceMean / ReduceMax over the two spatial axes (frames in TimeDistributed; over time: full only)"

    def refuse(self, layer, variant):
        if variant != "full" and self.sees_time:
            return "it pools over the time axis, so it needs the whole sequence"
        return None

    def time_local(self, layer) -> bool:
        return not self.sees_time

    def keeps_time(self, layer) -> bool:
        return False

    def emit(self, ctx, call: Call) -> list[str]:
        layer = call.layer
        op = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
        axes = [2, 3] if layer.data_format == "channels_first" else [1, 2]
        return [reduce_over(ctx.g, op, call.inputs[0], axes, bool(layer.keepdims), ctx.opset, call.prefix)]


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(ConvHandler, DepthwiseConvHandler, SeparableConvHandler, PoolingHandler,
                                ZeroPaddingHandler, GlobalPooling2DHandler)
