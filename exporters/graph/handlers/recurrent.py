"""Recurrent layers: LSTM, GRU, SimpleRNN, RNN(cell), StackedRNNCells, Bidirectional.

`full` and `stream` get native ONNX `LSTM`/`GRU`/`RNN` nodes (one node per
cell; a Bidirectional layer is one node with direction=bidirectional and a
`go_backwards` layer one with direction=reverse); `unrolled` gets plain ops
per step (`emit_unrolled.py`), and so does `stream` for a cell whose
activation the native ops lack (e.g. gelu): its chunk has a known length. States are (batch, units): h, and c for an
LSTM cell, per cell in order.
"""

from __future__ import annotations

from .. import emit_native, emit_unrolled, rnn_params
from ..registry import Call, LayerHandler, StateDecl


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


class RecurrentHandler(LayerHandler):
    summary = "native LSTM/GRU/RNN op (full, stream); plain ops per step (unrolled)"

    def refuse(self, layer, variant):
        # full needs the native op; a chunk of known length can always be written as plain ops
        why = _blocker(layer, native=variant == "full")
        if why is not None:
            return why
        if variant != "full" and layer.go_backwards:
            return "go_backwards=True reads each sequence from its end, which a stream has not seen yet"
        return None

    def time_local(self, layer) -> bool:
        return False

    def states(self, layer) -> list[StateDecl]:
        if _blocker(layer, native=False) is not None:
            return []
        return [s for cell in cells(layer) for s in _cell_states(cell)]

    def keeps_time(self, layer) -> bool:
        return bool(layer.return_sequences)

    def emit(self, ctx, call: Call) -> list[str]:
        layer = call.layer
        stack = cells(layer)
        states_in = call.states_in if ctx.streaming else call.initial_state
        x = call.inputs[0]
        reverse_input = layer.go_backwards and len(stack) > 1
        if reverse_input:  # a stack read backwards: feed it reversed, keep Keras' last-first output
            x = emit_native.reverse_time(ctx.g, x, call.prefix)
        finals, pos = [], 0
        for j, cell in enumerate(stack):
            last = j == len(stack) - 1
            p = rnn_params.read(cell, name=layer.name, return_sequences=layer.return_sequences or not last,
                                go_backwards=layer.go_backwards and not reverse_input)
            n_states = len(rnn_params.STATE_KINDS[p.kind])
            ins = list(states_in[pos:pos + n_states]) if states_in else None
            pos += n_states
            prefix = call.prefix if len(stack) == 1 else f"{call.prefix}_cell{j}"
            plain = ctx.variant == "unrolled" or (
                ctx.variant == "stream" and rnn_params.cell_blocker(cell, native=True) is not None)
            if plain:  # stream of a cell the native op cannot express: its chunk as plain ops
                x, cell_finals = emit_unrolled.emit(ctx.g, x, p, ctx.chunk, ins, prefix)
            else:
                x, cell_finals = emit_native.emit(ctx.g, x, p, ins, prefix, seq_lens=call.mask)
            finals += cell_finals
        call.states_out = finals
        return [x] + (finals if layer.return_state else [])


class BidirectionalHandler(LayerHandler):
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

    def time_local(self, layer) -> bool:
        return False

    def keeps_time(self, layer) -> bool:
        return bool(layer.return_sequences)

    def emit(self, ctx, call: Call) -> list[str]:
        import numpy as np

        layer, g = call.layer, ctx.g
        fw_layer, bw_layer = layer.forward_layer, layer.backward_layer
        fw = rnn_params.read(fw_layer.cell, name=fw_layer.name, return_sequences=layer.return_sequences)
        bw = rnn_params.read(bw_layer.cell, name=bw_layer.name, return_sequences=layer.return_sequences)
        states_in = call.initial_state
        same = (fw.kind == bw.kind and fw.units == bw.units and fw.activation == bw.activation
                and fw.recurrent_activation == bw.recurrent_activation and fw.reset_after == bw.reset_after)
        if same:
            (y_fw, y_bw), finals = emit_native.emit(g, call.inputs[0], fw, states_in, call.prefix, backward=bw,
                                                    seq_lens=call.mask)
        else:  # two different layers: one node per direction
            n_fw = len(rnn_params.STATE_KINDS[fw.kind])
            bw = rnn_params.read(bw_layer.cell, name=bw_layer.name, return_sequences=layer.return_sequences,
                                 go_backwards=True)
            y_fw, f_fw = emit_native.emit(g, call.inputs[0], fw, states_in[:n_fw] if states_in else None,
                                          f"{call.prefix}_fw", seq_lens=call.mask)
            y_bw, f_bw = emit_native.emit(g, call.inputs[0], bw, states_in[n_fw:] if states_in else None,
                                          f"{call.prefix}_bw", seq_lens=call.mask)
            if layer.return_sequences:  # emit_native gives Keras' last-first order; Bidirectional flips it back
                y_bw = emit_native.reverse_time(g, y_bw, f"{call.prefix}_bw")
            finals = f_fw + f_bw
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


def register() -> None:
    import keras

    from ..registry import register_layer

    recurrent = RecurrentHandler()
    for cls in (keras.layers.RNN, keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN):
        register_layer(cls, recurrent)
    register_layer(keras.layers.Bidirectional, BidirectionalHandler())
