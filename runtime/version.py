"""rnnx's version, read from the installed distribution's metadata.

``__version__`` is what ``pip`` installed (``importlib.metadata.version("rnnx")``),
so it never drifts from pyproject.toml. When rnnx is not installed (a source
tree copied onto a device and put on ``sys.path``) it is ``"unknown"``: rnnx
does not guess a number that may be wrong. Export metadata records it as is.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "rnnx"
UNKNOWN = "unknown"


def installed_version(distribution: str = DISTRIBUTION) -> str:
    """The installed version of ``distribution``, or ``"unknown"`` when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN


__version__ = installed_version()
