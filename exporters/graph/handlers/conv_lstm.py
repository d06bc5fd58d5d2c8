"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D (channels_last): a recurrent layer whose states are frames.

`full` is one ONNX `Scan` over time (any length) whose body is one step; `stream` and `unrolled`
write their steps out as plain ops (`emit_conv_lstm.py`). The input convolution of all steps is
one Conv before them. States h and c are (batch, *out_frame, filters), channels_last as Keras
keeps them. A Keras mask (and the stream clock's empty slots) keeps both on a masked step.
"""

from __future__ import annotations

from .. import emit_conv_lstm, emit_native
from ..registry import Call, SiteHandler, StateDecl, keras_layer_handlers
from .recurrent import SequenceLayerHandler


class ConvLstmHandler(SiteHandler, SequenceLayerHandler):
    layers = ('ConvLSTM1D', 'ConvLSTM2D', 'ConvLSTM3D')
    summary = "one Scan over time (full); plain Conv ops per step (stream, unrolled); N-D h/c states"

    def _frame(self, layer) -> tuple:
        """The spatial shape of one input frame."""
        shape = self.site.tensors[0].shape if self.site is not None else layer.input.shape
        return tuple(shape[2:-1])

    def _params(self, layer, return_sequences=None) -> emit_conv_lstm.ConvLstmParams:
        rs = layer.return_sequences if return_sequences is None else return_sequences
        return emit_conv_lstm.read(layer, self._frame(layer), return_sequences=rs)

    def blocker(self, layer, variant):
        return emit_conv_lstm.blocker(layer, self._frame(layer))

    def states(self, layer) -> list[StateDecl]:
        if emit_conv_lstm.blocker(layer, self._frame(layer)) is not None:
            return []
        out = self.site.out_shapes[0] if self.site is not None else layer.output.shape
        shape = tuple(int(d) for d in (out[2:] if layer.return_sequences else out[1:]))   # (*out_frame, filters)
        return [StateDecl("h", shape), StateDecl("c", shape)]

    def emit(self, ctx, call: Call) -> list[str]:
        layer, g = call.layer, ctx.g
        p = self._params(layer)
        states_in = call.states_in if call.states_in is not None else call.initial_state
        x, valid = call.inputs[0], call.mask
        if layer.go_backwards:   # Keras reverses input and mask and gives the steps last-first
            x = emit_native.reverse_time(g, x, f"{call.prefix}_x")
            valid = emit_native.reverse_time(g, valid, f"{call.prefix}_mask") if valid is not None else None
        steps = ctx.chunk if call.states_in is not None else call.in_shapes[0][1]
        if ctx.variant == "full" or steps is None:
            y, finals = emit_conv_lstm.emit_scan(ctx, layer, x, p, states_in, call.prefix, valid=valid)
        else:
            y, finals = emit_conv_lstm.emit_steps(ctx, layer, x, p, steps, states_in, call.prefix, valid=valid)
        call.states_out = finals
        return [y] + (finals if layer.return_state else [])


def handlers() -> list:
    """(Keras class, handler) for every layer this family emits."""
    return keras_layer_handlers(ConvLstmHandler)
