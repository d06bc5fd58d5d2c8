"""The stream clock: streaming windows on time that drop, decimate or look ahead.

A stream call takes `chunk` input frames and every layer of the graph runs on `chunk` slots,
one per input frame (the clock). A layer's output sequence is laid on those slots by a `Clock`:
its element m sits in slot `delay + m * stride` (counted in input frames from the start of the
stream), and slots between are empty. The model's inputs have delay 0 and stride 1.

- a `valid` window over (kernel-1)*dilation = r frames gives its element m when its last input
  arrives: delay + r*stride, and its stride times the window's own;
- `padding="same"` looks r - r//2 frames ahead (TF puts the odd frame at the end): element m is
  given when that future frame arrives, so the stream runs that many frames late (its latency);
- `causal` looks only back: the delay does not change.

Every window keeps the last r*stride slots of its input as a state (zeros at the start, which is
Keras' left padding) and convolves with dilation*stride on time, so the slots of one sequence
line up whatever came before it. Slots without an element are filled (zeros; -inf for a max
pool) before a window reads them, which is the zero padding Keras puts at both ends.

Which slots hold an element is computed in the graph from one state of kind "clock",
(batch, 2) int64: the frames seen so far, and the sequence's length once the caller has said the
sequence ended (0 while it runs). A flush sets that length and feeds zero frames: the look-ahead
windows then give their last elements, read with the zero padding Keras uses at the end, and
every slot past a sequence's last element is empty. Recurrent layers skip the empty slots (they
are masked steps: the states stay), and a per-step model output keeps only the filled slots, so
a stream call returns the frames that became complete, possibly none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .onnx_graph import reduce_over

KIND = "clock"          # the state kind of the stream clock (clock_in_<k> / clock_out_<k>)
INT32 = 6                # ONNX TensorProto type
_UNENDED = 1 << 40      # the length of a sequence that has not ended yet


@dataclass(frozen=True)
class Clock:
    """Where one sequence's elements sit on the stream's slots (see the module docstring)."""

    delay: int = 0         # slot of element 0, in input frames
    stride: int = 1        # input frames per element
    lengths: tuple = ()    # ((add, div), ...): L' = max(L + add, 0) // div, from the input's length
    lookahead: int = 0     # input frames past the end that its last elements read (frames to flush)

    @property
    def plain(self) -> bool:
        return self == BASE

    def frames(self, steps: int) -> int:
        """The length of a sequence on this clock when the input has `steps` frames."""
        for add, div in self.lengths:
            steps = max(steps + add, 0) // div
        return steps


BASE = Clock()


def left_pad(reach: int, stride: int, padding: str) -> int | None:
    """Frames of padding Keras puts before the sequence; None when it depends on the length.

    TF's 'same' pads max((ceil(L/s)-1)*s + r + 1 - L, 0) frames, the smaller half first, so with
    a stride the left half changes with L mod s unless it comes out the same for every remainder.
    """
    if padding == "valid":
        return 0
    if padding == "causal":
        return reach
    halves = {max(reach + 1 - rest, 0) // 2 for rest in range(1, stride + 1)}
    return halves.pop() if len(halves) == 1 else None


def after_window(clock: Clock, reach: int, stride: int, padding: str) -> Clock | None:
    """The clock of a window's output, or None when its alignment depends on the length."""
    pl = left_pad(reach, stride, padding)
    if pl is None:
        return None
    ahead = (reach - pl) * clock.stride
    if padding == "valid":
        lengths = ((stride - reach - 1, stride),)
    elif padding == "same":
        lengths = ((stride - 1, stride),) if stride > 1 else ()
    else:
        lengths = ()
    return Clock(clock.delay + ahead, clock.stride * stride, clock.lengths + lengths,
                 clock.lookahead + (ahead if padding == "same" else 0))


@dataclass
class ClockGraph:
    """The clock tensors of one stream graph: slot indices, the sequence length, and which slots
    of each `Clock` hold an element, each emitted once."""

    g: object
    state_in: str
    chunk: int
    opset: int
    _valid: dict = field(default_factory=dict)

    def __post_init__(self):
        g = self.g
        seen = g.node("Slice", [self.state_in, g.const("i0", np.array([0], np.int64)),
                                g.const("i1", np.array([1], np.int64)), g.const("i1", np.array([1], np.int64))],
                      name_hint="clock_seen")
        ended = g.node("Slice", [self.state_in, g.const("i1", np.array([1], np.int64)),
                                 g.const("i2", np.array([2], np.int64)), g.const("i1", np.array([1], np.int64))],
                       name_hint="clock_ended")
        steps = g.const("clock_steps", np.arange(self.chunk, dtype=np.int64)[None])
        self.seen = seen                                                              # (batch, 1)
        self.slots = g.node("Add", [seen, steps], name_hint="clock_slots")          # (batch, chunk)
        zero = g.const("i0_scalar", np.array(0, np.int64))
        self.frames = g.node("Where", [g.node("Greater", [ended, zero], name_hint="clock_has_ended"), ended,
                                       g.const("clock_unended", np.array(_UNENDED, np.int64))],
                             name_hint="clock_frames")                                 # (batch, 1)
        later = g.node("Add", [seen, g.const("clock_chunk", np.array(self.chunk, np.int64))], name_hint="clock_later")
        self.state_out = g.node("Concat", [later, ended], axis=1, name_hint="clock_next")

    def valid(self, clock: Clock, back: int = 0) -> str:
        """(batch, back + chunk) bool: which of the last `back` slots before this chunk and of the
        chunk's own hold an element of a sequence on `clock` (slots before the stream hold none)."""
        key = (clock, back)
        if key not in self._valid:
            slots = self.slots if not back else self.g.node(
                "Add", [self.seen, self.g.const(f"clock_steps_back{back}", np.arange(-back, self.chunk,
                                                                                    dtype=np.int64)[None])],
                name_hint=f"clock_back{back}_slots")
            self._valid[key] = self._emit_valid(clock, slots, f"clock_d{clock.delay}_s{clock.stride}_b{back}")
        return self._valid[key]

    def _emit_valid(self, clock: Clock, slots: str, tag: str) -> str:
        g = self.g
        if clock.stride == 1 and all(div == 1 for _, div in clock.lengths):
            # element m = slot - delay, inside while m < max(L + sum(add), 0): every add of a
            # stride-1 chain is <= 0 (a valid window's -reach), so the nested maxima are that one
            start = g.const(f"{tag}_delay", np.array(clock.delay, np.int64))
            end = g.node("Add", [self.frames, g.const(f"{tag}_end", np.array(clock.delay + sum(a for a, _ in
                                                                                          clock.lengths), np.int64))],
                         name_hint=f"{tag}_end")
            return g.node("And", [g.node("GreaterOrEqual", [slots, start], name_hint=f"{tag}_started"),
                                  g.node("Less", [slots, end], name_hint=f"{tag}_inside")], name_hint=f"{tag}_ok")
        since = g.node("Sub", [slots, g.const(f"{tag}_delay", np.array(clock.delay, np.int64))],
                       name_hint=f"{tag}_since")
        started = g.node("GreaterOrEqual", [since, g.const("i0_scalar", np.array(0, np.int64))],
                         name_hint=f"{tag}_started")
        since = g.node("Max", [since, g.const("i0_scalar", np.array(0, np.int64))], name_hint=f"{tag}_since0")
        stride = g.const(f"{tag}_stride", np.array(clock.stride, np.int64))
        index = g.node("Div", [since, stride], name_hint=f"{tag}_index") if clock.stride > 1 else since
        length = self.frames
        for k, (add, div) in enumerate(clock.lengths):
            length = g.node("Max", [g.node("Add", [length, g.const(f"{tag}_add{k}", np.array(add, np.int64))]),
                                    g.const("i0_scalar", np.array(0, np.int64))], name_hint=f"{tag}_len{k}")
            if div > 1:
                length = g.node("Div", [length, g.const(f"{tag}_div{k}", np.array(div, np.int64))])
        ok = g.node("And", [started, g.node("Less", [index, length], name_hint=f"{tag}_inside")],
                    name_hint=f"{tag}_ok")
        if clock.stride > 1:
            phase = g.node("Equal", [g.node("Mod", [since, stride]), g.const("i0_scalar", np.array(0, np.int64))],
                           name_hint=f"{tag}_phase")
            ok = g.node("And", [ok, phase], name_hint=f"{tag}_valid")
        return ok

    def filled(self, x: str, clock: Clock, rank: int, fill: float, prefix: str) -> str:
        """`x` (batch, chunk, ...) of rank `rank` with its empty slots set to `fill`."""
        g = self.g
        v = self.valid(clock)
        if rank > 2:
            v = g.node("Unsqueeze", [v, g.const(f"axes_2_{rank}", np.arange(2, rank, dtype=np.int64))],
                       name_hint=f"{prefix}_slots")
        return g.node("Where", [v, x, g.const(f"fill_{fill:g}", np.array(fill, np.float32))],
                      name_hint=f"{prefix}_filled")

    def kept(self, y: str, clock: Clock, prefix: str) -> str:
        """The filled slots of a per-step output `y` (batch, chunk, ...): Compress on axis 1.

        All streams of a batch share one clock (the runtime resets them together), so the slots
        are read across the batch: any stream's element (none for an empty batch).
        """
        g = self.g
        any_row = reduce_over(g, "ReduceMax", g.node("Cast", [self.valid(clock)], to=INT32), [0], False,
                              self.opset, f"{prefix}_slots")
        keep = g.node("Greater", [any_row, g.const("i0_scalar_i32", np.array(0, np.int32))],
                      name_hint=f"{prefix}_keep")
        return g.node("Compress", [y, keep], axis=1, name_hint=f"{prefix}_emitted")
