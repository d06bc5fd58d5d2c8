"""The built-in layer handlers, one module per family; importing this registers them all."""

from . import core, merge, recurrent, shape

for _family in (core, merge, recurrent, shape):
    _family.register()
