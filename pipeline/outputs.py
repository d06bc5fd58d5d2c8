"""Outputs of the pipeline stages, written through rnnx's one atomic writer (`exporters.atomic`).

Every file goes to a temp file in its folder, is fsynced and renamed into
place with a normal file's mode (``0o666 & ~umask``); folders are created as
needed, and a failure is an ``OutputError`` naming the path. This adds only
the per-epoch CSV that DVC plots read.
"""

from __future__ import annotations

from pathlib import Path

from exporters.atomic import atomic_path, write_bytes, write_json  # noqa: F401  (the stages' writers)

__all__ = ["atomic_path", "write_bytes", "write_csv", "write_json"]


def write_csv(path: str | Path, rows: list[dict]) -> None:
    """Rows of one mapping each as CSV (header from the first row; floats to 6 significant digits)."""
    fields = list(rows[0]) if rows else []
    lines = [",".join(fields)] + [",".join(_cell(r[f]) for f in fields) for r in rows]
    write_bytes(path, ("\n".join(lines) + "\n").encode())


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
