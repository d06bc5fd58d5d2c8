"""The built-in layer handlers, one module per family; importing this registers them all.

Each family module has `handlers()`: its (Keras class, handler) pairs (most handlers name their
Keras layers in `layers`). `FAMILIES` is the registration order.
"""

from . import conv, conv_lstm, core, merge, norm, ops, recurrent, shape
from ..registry import register_layer

FAMILIES = (core, merge, recurrent, conv_lstm, shape, conv, norm, ops)

for _family in FAMILIES:
    for _cls, _handler in _family.handlers():
        register_layer(_cls, _handler)
