"""The built-in layer handlers, one module per family; importing this registers them all."""

from . import conv, core, merge, norm, ops, recurrent, shape

for _family in (core, merge, recurrent, shape, conv, norm, ops):
    _family.register()
