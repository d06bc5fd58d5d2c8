"""Atomic outputs: write to a temporary name in the target folder, then rename.

A stage that fails half-way leaves the previous output (or none), never a
half-written one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, rows: list[dict]) -> None:
    fields = list(rows[0]) if rows else []
    lines = [",".join(fields)] + [",".join(_cell(r[f]) for f in fields) for r in rows]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
