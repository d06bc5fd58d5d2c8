"""Atomic outputs of the pipeline stages (temp file in the target folder, then rename).

JSON and bytes go through `exporters.atomic` (creating the folder first);
this adds what only the stages need: a temporary path for writers that want a file name (Keras' model.save)
and the per-epoch CSV that DVC plots read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from exporters import atomic


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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, data)


def write_csv(path: str | Path, rows: list[dict]) -> None:
    fields = list(rows[0]) if rows else []
    lines = [",".join(fields)] + [",".join(_cell(r[f]) for f in fields) for r in rows]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, ("\n".join(lines) + "\n").encode())


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
