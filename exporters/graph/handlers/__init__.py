"""The built-in layer handlers, one module per family; importing this registers them all."""

from . import conv, conv_lstm, core, merge, norm, ops, recurrent, shape

for _family in (core, merge, recurrent, conv_lstm, shape, conv, norm, ops):
    _family.register()
