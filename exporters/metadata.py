"""The `rnnx` metadata entry of an exported model (schema: runtime/contract.py).

`describe` builds the dict, `attach` stores it in the model's metadata_props
after checking that `runtime.contract.Contract` parses it back.
"""

from __future__ import annotations

import json

from runtime.contract import FORMAT_VERSION, METADATA_KEY, Contract

from .graph import activations


TIMING_KEYS = ("frames_per_output", "emit_after", "look_back", "look_ahead")


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


def describe(*, variant: str, chunk: int | None, inputs: list, outputs: list, states: list,
             labels, uint8_scale, source: dict, parity: dict, flush: dict | None = None,
             frame_rate: float | None = None) -> dict:
    """The format-2 metadata dict.

    `inputs` rows: dict(name, dims, dtype, has_time, vocab_size); `outputs` rows:
    dict(name, dims, dtype, per_step, meaning[, TIMING_KEYS]); the first output gets `labels`.
    `flush` (clocked streams): {"state", "frames"}; `frame_rate`: input frames per second, if known.
    `states` rows: walker StateRows. `uint8_scale` applies to the first input.
    """
    ins = []
    for k, io in enumerate(inputs):
        scaled = uint8_scale if k == 0 and io["dtype"].startswith("float") else None
        ins.append({"name": io["name"], "shape": _shape(io["dims"]), "dtype": io["dtype"],
                    "time_axis": 1 if io["has_time"] else None,
                    "preprocessing": {"uint8_scale": scaled} if scaled else None,
                    "vocab_size": io.get("vocab_size")})
    outs = [{"name": io["name"], "shape": _shape(io["dims"]), "dtype": io["dtype"], "meaning": io["meaning"],
             "per_step": bool(io["per_step"]), "labels": list(labels) if labels and k == 0 else None,
             **{key: io[key] for key in TIMING_KEYS if key in io}}
            for k, io in enumerate(outputs)]
    return {
        "format": FORMAT_VERSION,
        "variant": variant,
        "chunk": chunk if variant != "full" else None,
        "precision": "fp32",
        "inputs": ins,
        "outputs": outs,
        "states": [{"input": s.input, "output": s.output, "shape": [None, *s.shape], "dtype": s.dtype,
                    "init": float(s.init), "layer": s.layer, "kind": s.kind} for s in states],
        "source": dict(source),
        "parity": dict(parity),
        **({"flush": dict(flush)} if flush else {}),
        **({"frame_rate": float(frame_rate)} if frame_rate else {}),
    }


def timing_text(out: dict, frame_rate: float | None = None) -> str | None:
    """One line on when a stream gives the frames of output `out` (a metadata output entry), or
    None when it gives each with its input frame and reads no window of past frames."""
    per, after = out.get("frames_per_output", 1), out.get("emit_after", 0)
    back, ahead = out.get("look_back", 0), out.get("look_ahead", 0)
    if (per, after, back, ahead) == (1, 0, 0, 0):
        return None
    parts = [f"1 frame per {per} input frames" if per > 1 else "1 frame per input frame",
             f"frame m arrives with input frame {f'{per}*m' if per > 1 else 'm'}"
             + (f" + {after}" if after else "")]
    latency = f"latency {ahead} frame{'s' if ahead != 1 else ''}" + (" of look-ahead" if ahead else "")
    if frame_rate:
        latency += f" ({ahead / frame_rate * 1000:.4g} ms at {frame_rate:g} frames/s)"
    parts.append(latency)
    parts.append(f"look-back {back} frame{'s' if back != 1 else ''}")
    return ", ".join(parts)


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
