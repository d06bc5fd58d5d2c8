"""The rnnx model contract: the JSON entry ``rnnx`` in an ONNX model's metadata.

Exporters write it, the runtime reads it; nothing is configured by hand.
This module is the single place that knows its keys. It needs only the
standard library so that the edge runtime stays numpy + onnxruntime.

Schema (``format`` 1)::

    {
      "format": 1,
      "variant": "full" | "stream" | "unrolled",
      "chunk": null | int,            # steps per call for stream/unrolled
      "precision": "fp32" | "int8-dynamic" | "int8-static" | "fp16",
      "input": {"name": "x", "shape": [null, 28, 28], "dtype": "float32",
                "time_axis": 1 | null,
                "preprocessing": {"uint8_scale": 0.00392156862745098} | null,
                "range": [0.0, 1.0] | null},  # optional; implied [0, 1] by uint8_scale
      "output": {"name": "y", "shape": [null, 10], "meaning": "class_probabilities",
                 "per_step": false, "labels": ["T-shirt/top", ...] | null},
      "states": [{"input": "h_in_0", "output": "h_out_0", "shape": [null, 128],
                  "init": 0.0, "layer": "lstm", "kind": "h"}, ...],
      "source": {"name": "lstm", "sha256": "...", "keras_version": "3.15.1",
                 "rnnx_version": "0.1.0"},
      "parity": {"atol": 1e-5, "max_abs_diff": ..., "argmax_agreement": ..., ...}
    }

``null`` in a shape is a dynamic dimension (the batch, and the time axis of
``full``). State shapes are (batch, units).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelFormatError

METADATA_KEY = "rnnx"
FORMAT_VERSION = 1
VARIANTS = ("full", "stream", "unrolled")
PRECISIONS = ("fp32", "int8-dynamic", "int8-static", "fp16")


def state_names(index: int, kind: str) -> tuple[str, str]:
    """Input and output names of state ``kind`` ('h' or 'c') of recurrent layer ``index``."""
    if kind not in ("h", "c"):
        raise ValueError(f"state kind must be 'h' or 'c', got {kind!r}")
    return f"{kind}_in_{index}", f"{kind}_out_{index}"


@dataclass(frozen=True)
class StateSpec:
    input: str
    output: str
    shape: tuple
    init: float = 0.0
    layer: str = ""
    kind: str = "h"

    @property
    def units(self) -> int:
        return int(self.shape[-1])


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple
    dtype: str = "float32"


@dataclass(frozen=True)
class Contract:
    """Parsed ``rnnx`` metadata of one model."""

    variant: str
    chunk: int | None
    precision: str
    input: TensorSpec
    output: TensorSpec
    states: tuple[StateSpec, ...]
    input_time_axis: int | None = None
    uint8_scale: float | None = None
    input_range: tuple[float, float] | None = None
    output_meaning: str = ""
    per_step: bool = False
    labels: tuple[str, ...] | None = None
    source: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def streaming(self) -> bool:
        return self.variant in ("stream", "unrolled")

    @classmethod
    def from_json(cls, text: str) -> "Contract":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"rnnx metadata is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Contract":
        try:
            fmt = data.get("format")
            if fmt != FORMAT_VERSION:
                raise ModelFormatError(
                    f"rnnx metadata format {fmt!r} is not supported; expected {FORMAT_VERSION}"
                )
            variant = data["variant"]
            if variant not in VARIANTS:
                raise ModelFormatError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
            inp, out = data["input"], data["output"]
            prep = inp.get("preprocessing") or {}
            labels = out.get("labels")
            return cls(
                variant=variant,
                chunk=data.get("chunk"),
                precision=data.get("precision", "fp32"),
                input=TensorSpec(inp["name"], _shape(inp["shape"]), inp.get("dtype", "float32")),
                output=TensorSpec(out["name"], _shape(out["shape"]), out.get("dtype", "float32")),
                states=tuple(
                    StateSpec(s["input"], s["output"], _shape(s["shape"]), float(s.get("init", 0.0)),
                              s.get("layer", ""), s.get("kind", "h"))
                    for s in data.get("states", [])
                ),
                input_time_axis=inp.get("time_axis"),
                uint8_scale=prep.get("uint8_scale"),
                input_range=_range(inp.get("range"), prep.get("uint8_scale")),
                output_meaning=out.get("meaning", ""),
                per_step=bool(out.get("per_step", False)),
                labels=tuple(labels) if labels else None,
                source=dict(data.get("source", {})),
                parity=dict(data.get("parity", {})),
                raw=dict(data),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ModelFormatError(f"rnnx metadata is missing or has a malformed field: {exc!r}") from None

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True)


def _range(declared, uint8_scale) -> tuple[float, float] | None:
    """The value range float inputs must lie in: declared, else [0, 1] when the
    model scales uint8 pixels itself (floats outside it are unscaled pixels)."""
    if declared is not None:
        lo, hi = declared
        return float(lo), float(hi)
    return (0.0, 1.0) if uint8_scale else None


def _shape(values) -> tuple:
    return tuple(None if v is None else int(v) for v in values)
