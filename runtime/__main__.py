"""``python -m runtime MODEL.onnx --input FILE.npy``: see :mod:`runtime.cli`."""

import sys

from .cli import main

sys.exit(main())
