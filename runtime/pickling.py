"""What a runtime model ships to another process when pickled: the model's bytes and the
settings it was opened with, never the onnxruntime session (which does not pickle).

multiprocessing, Ray or Spark pickle a :class:`runtime.Model` or
:class:`runtime.StreamingModel` this way; the receiving process opens a new
session on the same bytes with the same providers and threads.
"""

from __future__ import annotations

from .session import LoadedModel, open_model

SHIP_VERSION = 1


def shipped_settings(loaded: LoadedModel) -> dict:
    """The picklable description of an open model."""
    return {"rnnx_ship": SHIP_VERSION, "model": loaded.model_bytes(), "path": loaded.path,
            "providers": loaded.requested_providers, "threads": loaded.threads}


def reopen_model(shipped: dict) -> LoadedModel:
    """Open the model described by :func:`shipped_settings` (its original path kept for messages)."""
    if not isinstance(shipped, dict) or shipped.get("rnnx_ship") != SHIP_VERSION:
        from .errors import ModelFormatError

        raise ModelFormatError("this pickled rnnx model was made by another rnnx version; load the file again")
    loaded = open_model(shipped["model"], providers=shipped["providers"], threads=shipped["threads"])
    return LoadedModel(loaded.session, loaded.contract, shipped["path"], shipped["providers"],
                       shipped["threads"], shipped["model"], None)
