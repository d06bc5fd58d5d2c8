"""Export-set integrity: a model file is the one its folder's ``export.json`` lists.

The exporter writes ``export.json`` beside the models it exports, with the size
and sha256 of each file::

    {"files": {"full.onnx": {"sha256": "...", "bytes": 123456}, ...}, ...}

A file listed there that has another size or hash was replaced or damaged
after the export (a copy from another run, a truncated download): the runtime
refuses to open it. Files the manifest does not list (e.g. quantized copies
made later) are not checked, nor are folders without an ``export.json`` or
with one that has no ``files`` entry (written before rnnx recorded them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import ModelFormatError

MANIFEST = "export.json"
_CHUNK = 1 << 20


def read_manifest(folder) -> dict | None:
    """The ``files`` entry of ``folder/export.json``: ``{file name: {"sha256", "bytes"}}``,
    or ``None`` when there is no manifest or it lists no files.

    Raises:
        ModelFormatError: the manifest is unreadable, not JSON, or its ``files`` entry is malformed.
    """
    path = Path(folder) / MANIFEST
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ModelFormatError(f"{path} is a directory; expected the export set's JSON manifest") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise ModelFormatError(f"{path} is corrupt: not valid JSON ({detail})") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path} is corrupt: expected a JSON object, got {type(data).__name__}")
    files = data.get("files")
    if files is None:
        return None
    if not isinstance(files, dict):
        raise ModelFormatError(f"{path} is corrupt: 'files' must be an object {{name: {{sha256, bytes}}}}")
    for name, entry in files.items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
              and len(entry["sha256"]) == 64 and isinstance(entry.get("bytes"), int)
              and not isinstance(entry.get("bytes"), bool) and entry["bytes"] >= 0)
        if not ok or not name or "/" in name or "\\" in name:
            raise ModelFormatError(f"{path} is corrupt: files[{name!r}] must be a plain file name with "
                                   f"{{'sha256': 64 hex digits, 'bytes': a size}}; got {entry!r}"[:300])
    return files


def file_problem(path, entry: dict) -> str | None:
    """How ``path`` differs from its manifest ``entry``, or ``None`` when it matches."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "the file is missing"
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"
    if size != entry["bytes"]:
        return f"it has {size} bytes, the manifest lists {entry['bytes']}"
    digest = sha256_of(path)
    if digest != entry["sha256"].lower():
        return f"its sha256 is {digest[:12]}..., the manifest lists {entry['sha256'][:12]}..."
    return None


def check_export_set(folder) -> list[str]:
    """Every problem with the export set in ``folder``: one line per listed file that is
    missing or differs from ``export.json`` (an empty list when all match or nothing is listed).

    Raises:
        ModelFormatError: ``export.json`` is corrupt.
    """
    files = read_manifest(folder)
    if not files:
        return []
    problems = []
    for name, entry in sorted(files.items()):
        problem = file_problem(Path(folder) / name, entry)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def check_file_in_export_set(path) -> None:
    """Raise unless ``path`` matches its folder's ``export.json`` (when that lists it)."""
    path = Path(path)
    folder = path.parent
    files = read_manifest(folder)
    if not files or path.name not in files:
        return
    problem = file_problem(path, files[path.name])
    if problem:
        raise ModelFormatError(f"{path} does not belong to the export set in {folder / MANIFEST}: {problem}")


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(os.fspath(path), "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
