"""The `rnnx` metadata entry of an exported model (schema: runtime/contract.py).

`describe` builds the dict, `attach` stores it in the model's metadata_props
after checking that `runtime.contract.Contract` parses it back.
"""

from __future__ import annotations

import json

from runtime.contract import FORMAT_VERSION, METADATA_KEY, Contract

from .graph import activations


def _shape(dims) -> list:
    return [d if isinstance(d, int) else None for d in dims]


def output_meaning(last_layer) -> str:
    """What `y` holds, read from the activation of the model's last layer."""
    layer = getattr(last_layer, "layer", last_layer)  # unwrap TimeDistributed
    name = type(layer).__name__
    act = activations.name_of(getattr(layer, "activation", None)) if hasattr(layer, "activation") else None
    if name == "Softmax" or act == "softmax":
        return "class_probabilities"
    if act == "sigmoid":
        return "probabilities"
    return "values"


def describe(*, variant: str, chunk: int | None, x_dims, x_dtype: str, y_dims, per_step: bool,
             meaning: str, labels, uint8_scale, states, source: dict, parity: dict) -> dict:
    """The metadata dict; `states` rows are (input, output, units, layer, kind)."""
    return {
        "format": FORMAT_VERSION,
        "variant": variant,
        "chunk": chunk if variant != "full" else None,
        "precision": "fp32",
        "input": {"name": "x", "shape": _shape(x_dims), "dtype": x_dtype, "time_axis": 1,
                  "preprocessing": {"uint8_scale": uint8_scale} if uint8_scale else None},
        "output": {"name": "y", "shape": _shape(y_dims), "dtype": "float32", "meaning": meaning,
                   "per_step": bool(per_step), "labels": list(labels) if labels else None},
        "states": [{"input": s_in, "output": s_out, "shape": [None, units], "init": 0.0,
                    "layer": layer, "kind": kind} for s_in, s_out, units, layer, kind in states],
        "source": dict(source),
        "parity": dict(parity),
    }


def attach(model, meta: dict) -> None:
    """Store `meta` under the `rnnx` key (replacing any earlier entry); it must parse back."""
    text = json.dumps(meta, sort_keys=True)
    Contract.from_json(text)
    for i in reversed(range(len(model.metadata_props))):
        if model.metadata_props[i].key == METADATA_KEY:
            del model.metadata_props[i]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, text


def read(model) -> dict | None:
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    return None
