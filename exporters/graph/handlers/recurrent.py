"""Recurrent layers: LSTM, GRU, SimpleRNN, RNN(cell), StackedRNNCells, Bidirectional, and
cells called by the model itself (one step).

`full` and `stream` get native ONNX `LSTM`/`GRU`/`RNN` nodes (one node per
cell; a Bidirectional layer is one node with direction=bidirectional and a
`go_backwards` layer one with direction=reverse); `unrolled` gets plain ops
per step (`emit_unrolled.py`), and so does `stream` for a cell whose
activation the native ops lack (e.g. gelu): its chunk has a known length.
States are (batch, units): h, and c for an LSTM cell, per cell in order.

A recurrent layer that reads a sequence made inside the call (after a
last-step output: `RepeatVector`, a rollout that starts from another layer's
`return_state` through `initial_state=`) carries nothing: it runs whole in
every call from those states, so each call returns what Keras gives for the
prefix seen so far.
"""

from __future__ import annotations

from .. import emit_native, emit_unrolled, masks, rnn_params
from ..registry import Call, LayerHandler, StateDecl, keras_layer_handlers


def cells(layer) -> list:
    """The cells a recurrent layer runs at each step, in order."""
    import keras

    cell = layer.cell
    if isinstance(cell, keras.layers.StackedRNNCells):
        return list(cell.cells)
    return [cell]


def _cell_states(cell) -> list[StateDecl]:
    kind = rnn_params.cell_kind(cell)
    return [StateDecl(k, (int(cell.units),)) for k in rnn_params.STATE_KINDS[kind]]


def _blocker(layer, native: bool) -> str | None:
    for cell in cells(layer):
        why = rnn_params.cell_blocker(cell, native=native)
        if why is not None:
            return why
    return None


class SequenceLayerHandler(LayerHandler):
    """What every recurrent layer answers alike: it mixes time steps (its states carry the past),
    keeps the time axis with return_sequences, and reads a Keras mask. `refuse` asks `blocker` about
    the layer's cells, then refuses a go_backwards layer for the streams."""

    def blocker(self, layer, variant: str) -> str | None:
        """Why rnnx cannot emit the layer's cells in `variant`, or None."""
        return None

    def refuse(self, layer, variant):
        why = self.blocker(layer, variant)
        if why is None and variant != "full" and getattr(layer, "go_backwards", False):
            why = "go_backwards=True reads each sequence from its end, which a stream has not seen yet"
        return why

    def time_local(self, layer) -> bool:
        return False

    def keeps_time(self, layer) -> bool:
        return bool(layer.return_sequences)

    def takes_mask(self, layer) -> bool:
        return True


class RecurrentHandler(SequenceLayerHandler):
    layers = ('RNN', 'LSTM', 'GRU', 'SimpleRNN')
    summary = "native LSTM/GRU/RNN op (full, stream); plain ops per step (unrolled)"

    def blocker(self, layer, variant):
        # full needs the native op; a chunk of known length can always be written as plain ops
        return _blocker(layer, native=variant == "full")

    def states(self, layer) -> list[StateDecl]:
        if _blocker(layer, native=False) is not None:
            return []
        return [s for cell in cells(layer) for s in _cell_states(cell)]

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        stack = cells(layer)
        # a stream's carried states; else (full, or a layer run whole in every call) initial_state=
        states_in = call.states_in if call.states_in is not None else call.initial_state
        steps = ctx.chunk if call.states_in is not None else call.in_shapes[0][1]
        x, valid = call.inputs[0], call.mask
        backwards = layer.go_backwards
        if valid is not None and backwards:  # Keras reverses input and mask, then runs forward
            x, valid = (emit_native.reverse_time(g, v, f"{call.prefix}_{what}") for v, what in ((x, "x"), (valid, "mask")))
            backwards = False
        reverse_input = backwards and len(stack) > 1
        if reverse_input:  # a stack read backwards: feed it reversed, keep Keras' last-first output
            x = emit_native.reverse_time(g, x, call.prefix)
        plain = [ctx.variant == "unrolled" or (ctx.variant == "stream" and rnn_params.cell_blocker(c, native=True) is not None)
                 for c in stack]
        if valid is not None and any(plain):   # one masked form for the whole stack
            plain = [True] * len(stack)
        if valid is not None and steps == 1 and call.states_in is not None and not any(plain):
            return self._one_masked_step(ctx, call, x, valid, stack, states_in)
        packed = masks.compact(g, x, valid, ctx.opset, call.prefix) if valid is not None and not plain[0] else None
        zero_output = bool(getattr(layer, "zero_output_for_mask", False))
        finals, pos = [], 0
        for j, cell in enumerate(stack):
            last = j == len(stack) - 1
            p = rnn_params.read(cell, name=layer.name, return_sequences=layer.return_sequences or not last,
                                go_backwards=backwards and not reverse_input)
            n_states = len(rnn_params.STATE_KINDS[p.kind])
            ins = list(states_in[pos:pos + n_states]) if states_in else None
            pos += n_states
            prefix = call.prefix if len(stack) == 1 else f"{call.prefix}_cell{j}"
            if plain[j]:  # unrolled, or a stream of a cell the native op cannot express: plain ops
                x, cell_finals = emit_unrolled.emit(g, x, p, steps, ins, prefix, valid=valid,
                                                    zero_output=zero_output and last)
            elif packed is not None:   # a mask: the valid steps, compacted, through the native op
                x, cell_finals = emit_native.emit(g, packed.x, p, ins, prefix, seq_lens=packed.seq_lens)
                cell_finals = masks.keep_states(g, cell_finals, ins, packed, prefix)
                if not last:   # the next cell reads the compacted steps
                    packed.x = x
                elif p.return_sequences:
                    x = masks.scatter(g, x, packed, zero_output=zero_output and last,
                                      before=ins[0] if call.states_in is not None else None, prefix=prefix)
                else:
                    x = _zero_if_last_masked(g, cell_finals[0], packed.valid, prefix) if zero_output else cell_finals[0]
            else:
                x, cell_finals = emit_native.emit(g, x, p, ins, prefix)
            finals += cell_finals
        call.states_out = finals
        return [x] + (finals if layer.return_state else [])

    def _one_masked_step(self, ctx, call: Call, x: str, valid: str, stack: list, states_in: list) -> list[str]:
        """A one-step stream under a mask (a Keras mask, or the stream clock's empty slots): the
        native op on the step, then every state kept where the step is masked (two Where per cell
        instead of compacting the chunk), and the output Keras gives a masked step."""
        import numpy as np

        layer, g, prefix = call.layer, ctx.g, call.prefix
        m = masks.step_mask(g, valid, 0, prefix)                        # (batch, 1)
        finals, pos, y = [], 0, None
        for j, cell in enumerate(stack):
            last = j == len(stack) - 1
            p = rnn_params.read(cell, name=layer.name, return_sequences=layer.return_sequences or not last)
            n_states = len(rnn_params.STATE_KINDS[p.kind])
            ins = list(states_in[pos:pos + n_states])
            pos += n_states
            cell_prefix = prefix if len(stack) == 1 else f"{prefix}_cell{j}"
            y, new = emit_native.emit(g, x, p, ins, cell_prefix)
            finals += [g.node("Where", [m, f, i], name_hint=f"{cell_prefix}_kept") for f, i in zip(new, ins)]
            x = y
        zero_output = bool(getattr(layer, "zero_output_for_mask", False))
        h_prev = states_in[pos - len(rnn_params.STATE_KINDS[p.kind])]
        zero = (g.node("CastLike", [g.const("f0_scalar", np.array(0, np.float32)), y], name_hint=f"{prefix}_zero")
                if zero_output else None)
        if layer.return_sequences:   # a masked step repeats the last output (the carried h), or zeros
            other = zero if zero_output else g.node("Unsqueeze", [h_prev, g.const("axes_1", np.array([1], np.int64))],
                                                    name_hint=f"{prefix}_h_prev")
            m3 = g.node("Unsqueeze", [m, g.const("axes_2", np.array([2], np.int64))], name_hint=f"{prefix}_m3")
            out = g.node("Where", [m3, y, other], name_hint=f"{prefix}_masked")
        else:
            out = g.node("Where", [m, y, zero], name_hint=f"{prefix}_last_zeroed") if zero_output else finals[-n_states]
        call.states_out = finals
        return [out] + (finals if layer.return_state else [])


def _zero_if_last_masked(g, h: str, valid: str, prefix: str) -> str:
    """A last-step output with zero_output_for_mask: zeros where the sequence's last step is masked."""
    import numpy as np

    last = masks.step_mask(g, valid, -1, f"{prefix}_last")
    zero = g.node("CastLike", [g.const("f0_scalar", np.array(0, np.float32)), h], name_hint=f"{prefix}_zero")
    return g.node("Where", [last, h, zero], name_hint=f"{prefix}_last_zeroed")


class BidirectionalHandler(SequenceLayerHandler):
    layers = ('Bidirectional',)
    summary = "one native LSTM/GRU/RNN op with direction=bidirectional, every merge_mode (full only)"
    variants = ("full",)

    def refuse(self, layer, variant):
        if variant != "full":
            return ("Bidirectional reads each sequence backwards from its end, which a stream has not "
                    "seen yet; export it as 'full'")
        for side in (layer.forward_layer, layer.backward_layer):
            if len(cells(side)) != 1:
                return "a Bidirectional wrapper of stacked cells has no rnnx emitter"
            why = _blocker(side, native=True)
            if why is not None:
                return why
        return None

    def emit(self, ctx, call: Call) -> list[str]:
        import numpy as np

        layer, g = call.layer, ctx.g
        fw_layer, bw_layer = layer.forward_layer, layer.backward_layer
        fw = rnn_params.read(fw_layer.cell, name=fw_layer.name, return_sequences=layer.return_sequences)
        bw = rnn_params.read(bw_layer.cell, name=bw_layer.name, return_sequences=layer.return_sequences)
        states_in = call.initial_state
        x, packed, lens = call.inputs[0], None, None
        if call.mask is not None:   # the valid steps, compacted; Keras zeroes a masked step's outputs
            packed = masks.compact(g, x, call.mask, ctx.opset, call.prefix)
            x, lens = packed.x, packed.seq_lens
        same = (fw.kind == bw.kind and fw.units == bw.units and fw.activation == bw.activation
                and fw.recurrent_activation == bw.recurrent_activation and fw.reset_after == bw.reset_after)
        if same:
            ys, finals = emit_native.emit(g, x, fw, states_in, call.prefix, backward=bw, seq_lens=lens)
        else:  # two different layers: one node per direction
            n_fw = len(rnn_params.STATE_KINDS[fw.kind])
            bw = rnn_params.read(bw_layer.cell, name=bw_layer.name, return_sequences=layer.return_sequences,
                                 go_backwards=True)
            y_fw, f_fw = emit_native.emit(g, x, fw, states_in[:n_fw] if states_in else None,
                                          f"{call.prefix}_fw", seq_lens=lens)
            y_bw, f_bw = emit_native.emit(g, x, bw, states_in[n_fw:] if states_in else None,
                                          f"{call.prefix}_bw", seq_lens=lens)
            if layer.return_sequences:  # emit_native gives Keras' last-first order; Bidirectional flips it back
                y_bw = emit_native.reverse_time(g, y_bw, f"{call.prefix}_bw")
            ys, finals = (y_fw, y_bw), f_fw + f_bw
        if packed is not None:
            finals = masks.keep_states(g, finals, states_in, packed, call.prefix)
            if layer.return_sequences:
                ys = tuple(masks.scatter(g, y, packed, zero_output=True, before=None, prefix=f"{call.prefix}_{d}")
                           for d, y in zip(("fw", "bw"), ys))
        if not layer.return_sequences:
            ys = (finals[0], finals[len(finals) // 2])
        y_fw, y_bw = ys
        mode = layer.merge_mode
        if mode is None:
            outputs = [y_fw, y_bw]
        elif mode == "concat":
            outputs = [g.node("Concat", [y_fw, y_bw], axis=-1, name_hint=f"{call.prefix}_concat")]
        elif mode == "sum":
            outputs = [g.node("Add", [y_fw, y_bw], name_hint=f"{call.prefix}_sum")]
        elif mode == "mul":
            outputs = [g.node("Mul", [y_fw, y_bw], name_hint=f"{call.prefix}_mul")]
        elif mode == "ave":
            total = g.node("Add", [y_fw, y_bw], name_hint=f"{call.prefix}_sum")
            outputs = [g.node("Mul", [total, g.const("f32_half", np.float32(0.5))], name_hint=f"{call.prefix}_ave")]
        else:
            raise ValueError(f"unknown merge_mode {mode!r}")
        call.states_out = finals
        return outputs + (finals if layer.return_state else [])


class CellHandler(LayerHandler):
    """An LSTMCell/GRUCell/SimpleRNNCell called by the model itself: one step from given states,
    as an autoregressive rollout does (`x, states = cell(prediction, states=states)`)."""
    layers = ('LSTMCell', 'GRUCell', 'SimpleRNNCell')

    summary = "one step as plain ops, from the states it is given (a rollout from another layer's state)"

    def refuse(self, layer, variant):
        return rnn_params.cell_blocker(layer, native=False)

    def states(self, layer) -> list[StateDecl]:
        return []      # its states are its arguments: nothing is carried between calls

    def emit(self, ctx, call: Call) -> list[str]:
        import numpy as np

        g, cell = ctx.g, call.layer
        states_in = call.initial_state or call.inputs[1:] or None    # states= or positional
        p = rnn_params.read(cell, name=cell.name, return_sequences=False)
        x = g.node("Unsqueeze", [call.inputs[0], g.const("axes_1", np.array([1], np.int64))],
                   name_hint=f"{call.prefix}_one_step")
        h, finals = emit_unrolled.emit(g, x, p, 1, list(states_in) if states_in else None, call.prefix)
        return [h] + finals[:len(call.out_shapes) - 1]      # Keras: (output, [h, c]) or (output, [h])


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(RecurrentHandler, BidirectionalHandler, CellHandler)
