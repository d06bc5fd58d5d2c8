"""Outputs of the pipeline stages, written through rnnx's one atomic writer (`exporters.atomic`).

Every file goes to a temp file in its folder, is fsynced and renamed into
place with a normal file's mode (``0o666 & ~umask``); folders are created as
needed, and a failure is an ``OutputError`` naming the path. This adds the
per-epoch CSV that DVC plots read and a byte-reproducible `.keras` file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

from exporters.atomic import atomic_path, write_bytes, write_json  # noqa: F401  (the stages' writers)

__all__ = ["atomic_path", "write_bytes", "write_csv", "write_json", "write_keras"]

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)   # the earliest time a zip entry can hold


def write_keras(path: str | Path, model) -> None:
    """Save `model` as a `.keras` file whose bytes depend only on the model.

    Keras stamps the save time into the archive (`date_saved` in metadata.json and the weights
    entry's zip time) and writes Python object ids (`shared_object_id`, memory addresses) into
    config.json, so two saves of the same weights differ and every later stage's inputs with
    them. Here the times are fixed (`date_saved` is SOURCE_DATE_EPOCH when it is set, the
    reproducible-builds convention, else the zip epoch) and the ids are numbered 1, 2, ... in
    order of appearance (Keras only compares them within one file); entries keep their order
    and compression.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    stamp = time.gmtime(int(epoch)) if epoch.isdigit() else time.struct_time((*ZIP_EPOCH, 1, 1, 0))
    if stamp.tm_year < ZIP_EPOCH[0]:
        stamp = time.struct_time((*ZIP_EPOCH, 1, 1, 0))
    with tempfile.TemporaryDirectory(prefix="rnnx-keras-") as scratch:
        raw = Path(scratch) / "model.keras"
        model.save(raw)
        with atomic_path(path) as tmp, zipfile.ZipFile(raw) as src, zipfile.ZipFile(tmp, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "metadata.json":
                    meta = json.loads(data)
                    meta["date_saved"] = time.strftime("%Y-%m-%d@%H:%M:%S", stamp)
                    data = json.dumps(meta).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_numbered_ids(json.loads(data), {})).encode()
                entry = zipfile.ZipInfo(info.filename, date_time=tuple(stamp)[:6])
                entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
                dst.writestr(entry, data)


def _numbered_ids(node, ids: dict):
    """`node` with every `shared_object_id` replaced by its rank of first appearance."""
    if isinstance(node, dict):
        return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else _numbered_ids(v, ids))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_numbered_ids(v, ids) for v in node]
    return node


def write_csv(path: str | Path, rows: list[dict]) -> None:
    """Rows of one mapping each as CSV (header from the first row; floats to 6 significant digits)."""
    fields = list(rows[0]) if rows else []
    lines = [",".join(fields)] + [",".join(_cell(r[f]) for f in fields) for r in rows]
    write_bytes(path, ("\n".join(lines) + "\n").encode())


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
