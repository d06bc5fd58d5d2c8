"""The rnnx model contract: the JSON entry ``rnnx`` in an ONNX model's metadata.

Exporters write it, the runtime reads it; nothing is configured by hand.
This module is the single place that knows its keys, and it reads every
document through one strict schema: each field is type-checked, and anything
else is a :class:`ModelFormatError` naming the field, e.g.
``rnnx metadata field 'outputs[0].labels': 2 labels for 3 output values``.
It needs only the standard library so that the edge runtime stays
numpy + onnxruntime.

Schema (``format`` 2)::

    {
      "format": 2,
      "variant": "full" | "stream" | "unrolled",
      "chunk": null | int,                 # steps per call for stream/unrolled; null for full
      "precision": "fp32" | "int8-dynamic" | "int8-static" | "fp16" | "mixed",
      "inputs": [                          # graph inputs in order, states excluded
        {"name": "x", "shape": [null, 28, 28], "dtype": "float32",
         "time_axis": 1 | null,            # null: a side input with no time axis
         "preprocessing": {"uint8_scale": 0.0039} | null,
         "range": [0.0, 1.0] | null,       # value range of float inputs
         "vocab_size": 5000 | null}        # token ids (integer, or float ids fed to an Embedding) lie in [0, vocab_size)
      ],
      "outputs": [                         # graph outputs in order, states excluded
        {"name": "y", "shape": [null, 10], "dtype": "float32",
         "meaning": "class_probabilities" | "probabilities" | "values",
         "per_step": false, "labels": ["a", "b", ...] | null,
         "frames_per_output": 1,           # stream/unrolled: input frames per output frame (decimation)
         "emit_after": 0,                  # input frames after the output frame's own (m * frames_per_output)
                                           #   at which a stream gives it: a window's look-back and look-ahead
         "look_back": 0,                   # input frames before the frame's own that its windows read
         "look_ahead": 0}                  # input frames after it that it needs: its latency (a 'same' window)
      ],
      "states": [                          # stream/unrolled only; [] for full
        {"input": "h_in_0", "output": "h_out_0",
         "shape": [null, 128],             # any rank; batch (null) first, the rest fixed
         "dtype": "float32", "init": 0.0, "layer": "lstm", "kind": "h"}
      ],
      "flush": null | {"state": "clock_in_2", "frames": 2},
                                           # streams whose windows drop, decimate or look ahead: the
                                           # clock state, and the zero frames that give the last outputs
      "frame_rate": null | 100.0,          # input frames per second, when the exporter was told (for latencies)
      "source": {...}, "parity": {...}     # free-form objects (other top-level keys are kept)
    }

A stream with a ``flush`` entry returns, per call, the output frames that became complete
(a per-step output's time axis may have any length, 0 included). Its clock state is
``(batch, 2)`` int64: frames seen, and the sequence's length once it ended (0 while it runs).
To end a sequence, set the length column to the frames fed so far and feed zero chunks until
``frames`` zero frames have gone in; the last frames come out with Keras' zero padding.

State names are ``<kind>_in_<k>`` / ``<kind>_out_<k>``. ``null`` in a shape is
a dynamic dimension (the batch, and the time axis of ``full``).

Format 1 (one ``input`` and one ``output`` object, states ``(batch, units)``
without a dtype) still loads: it is read through the same field checks and
converted to the format-2 structure.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelFormatError

METADATA_KEY = "rnnx"
FORMAT_VERSION = 2
FORMATS = (1, 2)
VARIANTS = ("full", "stream", "unrolled")      # the one list of variant names (exporters and pipeline import it)
STREAMING_VARIANTS = VARIANTS[1:]              # chunk by chunk, with explicit states
PRECISIONS = ("fp32", "int8-dynamic", "int8-static", "fp16", "mixed")
MEANINGS = ("class_probabilities", "probabilities", "values")
DTYPES = ("float32", "float16", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
FLOAT_DTYPES = ("float32", "float16", "float64")
INT_DTYPES = ("uint8", "int8", "int16", "int32", "int64")

_KIND = re.compile(r"[a-z][a-z0-9]*\Z")
_STATE_NAME = re.compile(r"([a-z][a-z0-9]*)_(in|out)_(0|[1-9][0-9]*)\Z")

_INPUT_KEYS = {"name", "shape", "dtype", "time_axis", "preprocessing", "range", "vocab_size"}
_OUTPUT_KEYS = {"name", "shape", "dtype", "meaning", "per_step", "labels", "frames_per_output", "emit_after",
                "look_back", "look_ahead"}
_FLUSH_KEYS = {"state", "frames"}
_STATE_KEYS = {"input", "output", "shape", "dtype", "init", "layer", "kind"}
_PREPROCESSING_KEYS = {"uint8_scale"}


def state_names(index: int, kind: str) -> tuple[str, str]:
    """Input and output names of state ``kind`` (a lowercase word: 'h', 'c', 'conv', ...)
    of stateful layer ``index``."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"state kind must be a lowercase word such as 'h', 'c' or 'conv'; got {kind!r}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"state index must be a non-negative integer; got {index!r}")
    return f"{kind}_in_{index}", f"{kind}_out_{index}"


def is_state_name(name: str) -> bool:
    """Whether ``name`` follows the ``<kind>_in_<k>`` / ``<kind>_out_<k>`` pattern."""
    return isinstance(name, str) and _STATE_NAME.match(name) is not None


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output (states excluded).

    ``value_range`` is the declared range, or ``(0, 1)`` implied by ``uint8_scale``
    (floats outside it are unscaled pixels). ``time_axis``, ``uint8_scale``,
    ``value_range`` and ``vocab_size`` describe inputs; ``meaning``, ``per_step`` and
    ``labels`` outputs.
    """

    name: str
    shape: tuple
    dtype: str = "float32"
    time_axis: int | None = None
    uint8_scale: float | None = None
    value_range: tuple[float, float] | None = None
    vocab_size: int | None = None
    meaning: str = ""
    per_step: bool = False
    labels: tuple[str, ...] | None = None
    frames_per_output: int = 1
    emit_after: int = 0
    look_back: int = 0
    look_ahead: int = 0

    @property
    def timed(self) -> bool:
        """Whether windows on time shape when its frames come (any timing field is not the default)."""
        return (self.frames_per_output, self.emit_after, self.look_back, self.look_ahead) != (1, 0, 0, 0)


@dataclass(frozen=True)
class StateSpec:
    """One recurrent state: its input and output names, shape (batch first), dtype and initial value."""

    input: str
    output: str
    shape: tuple
    dtype: str = "float32"
    init: float = 0.0
    layer: str = ""
    kind: str = "h"

    @property
    def units(self) -> int:
        """The last dimension (the units of an RNN state; kept for format-1 callers)."""
        return int(self.shape[-1]) if len(self.shape) > 1 else 1


@dataclass(frozen=True)
class Flush:
    """How a stream with windows on time ends a sequence: the clock state (frames seen, length)
    and the zero frames to feed after the last one."""

    state: str
    frames: int


@dataclass(frozen=True)
class Contract:
    """Parsed ``rnnx`` metadata of one model (always in the format-2 structure)."""

    variant: str
    chunk: int | None
    precision: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    states: tuple[StateSpec, ...]
    source: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    format: int = FORMAT_VERSION
    flush: "Flush | None" = None
    frame_rate: float | None = None

    # -- the first input / output, for single-input callers ---------------------------------

    @property
    def input(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def output(self) -> TensorSpec:
        return self.outputs[0]

    @property
    def input_time_axis(self) -> int | None:
        return self.inputs[0].time_axis

    @property
    def uint8_scale(self) -> float | None:
        return self.inputs[0].uint8_scale

    @property
    def input_range(self) -> tuple[float, float] | None:
        return self.inputs[0].value_range

    @property
    def output_meaning(self) -> str:
        return self.outputs[0].meaning

    @property
    def per_step(self) -> bool:
        return self.outputs[0].per_step

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.outputs[0].labels

    @property
    def streaming(self) -> bool:
        return self.variant in STREAMING_VARIANTS

    # -- reading and writing ----------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str) -> "Contract":
        if not isinstance(text, (str, bytes, bytearray)):
            raise ModelFormatError(f"rnnx metadata must be JSON text; got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"rnnx metadata is not valid JSON: {exc}") from None
        except RecursionError:
            raise ModelFormatError("rnnx metadata is nested too deeply to be read") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelFormatError(f"rnnx metadata is not valid JSON text: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> "Contract":
        """Read a parsed document (format 1 or 2); a ModelFormatError names the first bad field."""
        return _read(data)

    def to_dict(self) -> dict:
        """The contract as a format-2 document (a format-1 file comes out converted)."""
        return {
            "format": FORMAT_VERSION, "variant": self.variant, "chunk": self.chunk,
            "precision": self.precision,
            "inputs": [_input_doc(t) for t in self.inputs],
            "outputs": [_output_doc(t) for t in self.outputs],
            "states": [{"input": s.input, "output": s.output, "shape": list(s.shape), "dtype": s.dtype,
                        "init": s.init, "layer": s.layer, "kind": s.kind} for s in self.states],
            "source": dict(self.source), "parity": dict(self.parity),
            **({"flush": {"state": self.flush.state, "frames": self.flush.frames}} if self.flush else {}),
            **({"frame_rate": self.frame_rate} if self.frame_rate is not None else {}),
        }

    def to_json(self) -> str:
        """The document as it was read (``raw``), as sorted JSON."""
        try:
            return json.dumps(self.raw, sort_keys=True)
        except RecursionError:
            raise ModelFormatError("rnnx metadata is nested too deeply to be written") from None


# -- the schema -------------------------------------------------------------------------------

class _Bad(Exception):
    """A field's problem; turned into a ModelFormatError naming the field."""

    def __init__(self, where: str, problem: str):
        super().__init__(where, problem)
        self.where, self.problem = where, problem


def _read(data: Any) -> Contract:
    try:
        return _read_document(data)
    except _Bad as bad:
        if bad.where:
            raise ModelFormatError(f"rnnx metadata field '{bad.where}': {bad.problem}") from None
        raise ModelFormatError(f"rnnx metadata {bad.problem}") from None
    except RecursionError:
        raise ModelFormatError("rnnx metadata is nested too deeply to be read") from None


def _read_document(data: Any) -> Contract:
    if not isinstance(data, dict):
        raise _Bad("", f"must be a JSON object; got {_kind(data)}")
    fmt = data.get("format")
    if isinstance(fmt, bool) or fmt not in FORMATS:
        raise _Bad("format", f"{fmt!r} is not a supported format; expected one of {list(FORMATS)}")
    legacy = fmt == 1
    variant = _choice(data, "variant", VARIANTS, required=True)
    precision = _choice(data, "precision", PRECISIONS, default="fp32")
    chunk = _opt_int(data, "chunk", "", minimum=1)
    if variant == "full" and chunk is not None:
        raise _Bad("chunk", f"must be null for a 'full' model; got {chunk}")
    if legacy:
        for key in ("inputs", "outputs"):
            if key in data:
                raise _Bad(key, f"is a format-2 field; format {fmt} has '{key[:-1]}'")
        inputs = (_input(_obj(data, "input", required=True), "input"),)
        outputs = (_output(_obj(data, "output", required=True), "output"),)
        states = _states(data, variant, legacy=True)
    else:
        for key in ("input", "output"):
            if key in data:
                raise _Bad(key, f"is a format-1 field; format 2 has '{key}s' (a list)")
        inputs = tuple(_input(item, f"inputs[{i}]") for i, item in enumerate(_list(data, "inputs")))
        outputs = tuple(_output(item, f"outputs[{i}]") for i, item in enumerate(_list(data, "outputs")))
        states = _states(data, variant, legacy=False)
    _check_names(inputs, outputs, states, legacy)
    if variant != "full":
        chunk = _check_chunk(inputs, chunk, legacy)
    flush = _flush(data.get("flush"), states)
    frame_rate = _opt_number(data, "frame_rate", "")
    if frame_rate is not None and not (frame_rate > 0 and math.isfinite(frame_rate)):
        raise _Bad("frame_rate", f"must be a positive number of frames per second; got {frame_rate}")
    return Contract(variant=variant, chunk=chunk, precision=precision, inputs=inputs, outputs=outputs,
                    states=states, source=_free_object(data, "source"), parity=_free_object(data, "parity"),
                    raw=dict(data), format=1 if fmt == 1 else 2, flush=flush, frame_rate=frame_rate)


def _flush(entry: Any, states: tuple) -> Flush | None:
    if entry is None:
        return None
    entry = _entry(entry, "flush", _FLUSH_KEYS)
    name = _name(entry, "state", "flush")
    spec = next((s for s in states if s.input == name), None)
    if spec is None:
        raise _Bad("flush.state", f"{name!r} is not one of the states {[s.input for s in states]}")
    if spec.dtype != "int64" or tuple(spec.shape[1:]) != (2,):
        raise _Bad("flush.state", f"the clock state is (batch, 2) int64; {name!r} is "
                                  f"{_show(spec.shape)} {spec.dtype}")
    frames = _opt_int(entry, "frames", "flush", minimum=0)
    if frames is None:
        raise _Bad("flush.frames", "is missing")
    return Flush(name, frames)


def _input(entry: Any, where: str) -> TensorSpec:
    entry = _entry(entry, where, _INPUT_KEYS)
    name = _name(entry, "name", where)
    shape = _shape(entry, where, state=False)
    dtype = _choice(entry, "dtype", DTYPES, where=where, required=True)
    time_axis = _opt_int(entry, "time_axis", where, minimum=1)
    if time_axis is not None and time_axis >= len(shape):
        raise _Bad(f"{where}.time_axis", f"{time_axis} is not an axis of shape {_show(shape)}")
    prep = entry.get("preprocessing")
    scale = None
    if prep is not None:
        prep = _entry(prep, f"{where}.preprocessing", _PREPROCESSING_KEYS)
        scale = _opt_number(prep, "uint8_scale", f"{where}.preprocessing")
        if scale is not None and not scale > 0:
            raise _Bad(f"{where}.preprocessing.uint8_scale", f"must be a positive number; got {scale}")
        if scale is not None and dtype not in FLOAT_DTYPES:
            raise _Bad(f"{where}.preprocessing.uint8_scale", f"applies to float inputs; this input is {dtype}")
    value_range = _range(entry.get("range"), f"{where}.range")
    if value_range is not None and dtype not in FLOAT_DTYPES:
        raise _Bad(f"{where}.range", f"applies to float inputs; this input is {dtype} (use vocab_size for ids)")
    vocab = _opt_int(entry, "vocab_size", where, minimum=1)
    if vocab is not None and dtype not in INT_DTYPES + FLOAT_DTYPES:
        raise _Bad(f"{where}.vocab_size", f"applies to token-id inputs (integer or float); this input is {dtype}")
    if value_range is None and scale is not None:
        value_range = (0.0, 1.0)  # a model that scales uint8 pixels itself takes floats in [0, 1]
    return TensorSpec(name, shape, dtype, time_axis=time_axis, uint8_scale=scale,
                      value_range=value_range, vocab_size=vocab)


def _output(entry: Any, where: str) -> TensorSpec:
    entry = _entry(entry, where, _OUTPUT_KEYS)
    name = _name(entry, "name", where)
    shape = _shape(entry, where, state=False)
    dtype = _choice(entry, "dtype", DTYPES, where=where, default="float32")
    meaning = _choice(entry, "meaning", MEANINGS, where=where, default="values")
    per_step = entry.get("per_step", False)
    if not isinstance(per_step, bool):
        raise _Bad(f"{where}.per_step", f"must be true or false; got {_kind(per_step)}")
    if per_step and len(shape) < 2:
        raise _Bad(f"{where}.per_step", f"a per-step output has a time axis; shape is {_show(shape)}")
    labels = entry.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not labels:
            raise _Bad(f"{where}.labels", f"must be a non-empty list of strings or null; got {_kind(labels)}")
        for i, label in enumerate(labels):
            if not isinstance(label, str):
                raise _Bad(f"{where}.labels[{i}]", f"must be a string; got {_kind(label)}")
        values = shape[-1] if shape else None
        if values is None or not shape:
            raise _Bad(f"{where}.labels", f"need a fixed last dimension to label; shape is {_show(shape)}")
        if len(labels) != values:
            raise _Bad(f"{where}.labels", f"{len(labels)} labels for {values} output values")
        labels = tuple(labels)
    per_output = _opt_int(entry, "frames_per_output", where, minimum=1)
    timing = {key: _opt_int(entry, key, where, minimum=0) or 0 for key in ("emit_after", "look_back", "look_ahead")}
    return TensorSpec(name, shape, dtype, meaning=meaning, per_step=per_step, labels=labels,
                      frames_per_output=1 if per_output is None else per_output, **timing)


def _states(data: dict, variant: str, *, legacy: bool) -> tuple[StateSpec, ...]:
    items = data.get("states", [])
    if items is None:
        items = []
    if not isinstance(items, list):
        raise _Bad("states", f"must be a list; got {_kind(items)}")
    if variant == "full" and items:
        raise _Bad("states", f"a 'full' model carries no state; got {len(items)}")
    return tuple(_state(item, f"states[{i}]", legacy) for i, item in enumerate(items))


def _state(entry: Any, where: str, legacy: bool) -> StateSpec:
    entry = _entry(entry, where, _STATE_KEYS)
    s_in, s_out = _name(entry, "input", where), _name(entry, "output", where)
    m_in, m_out = _STATE_NAME.match(s_in), _STATE_NAME.match(s_out)
    if not m_in or m_in.group(2) != "in":
        raise _Bad(f"{where}.input", f"{s_in!r} does not follow '<kind>_in_<k>' (e.g. 'h_in_0')")
    if not m_out or m_out.group(2) != "out":
        raise _Bad(f"{where}.output", f"{s_out!r} does not follow '<kind>_out_<k>' (e.g. 'h_out_0')")
    if (m_in.group(1), m_in.group(3)) != (m_out.group(1), m_out.group(3)):
        raise _Bad(f"{where}.output", f"{s_out!r} is not the output of state input {s_in!r}; "
                                      f"expected '{m_in.group(1)}_out_{m_in.group(3)}'")
    shape = _shape(entry, where, state=True)
    if legacy and len(shape) != 2:
        raise _Bad(f"{where}.shape", f"a format-1 state is (batch, units); got {_show(shape)}")
    dtype = _choice(entry, "dtype", DTYPES, where=where, default="float32")
    if legacy and "dtype" in entry:
        raise _Bad(f"{where}.dtype", "is a format-2 field")
    init = entry.get("init", 0.0)
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not math.isfinite(init):
        raise _Bad(f"{where}.init", f"must be a finite number; got {_kind(init)}")
    layer = entry.get("layer", "")
    if not isinstance(layer, str):
        raise _Bad(f"{where}.layer", f"must be a string; got {_kind(layer)}")
    kind = entry.get("kind", m_in.group(1))
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise _Bad(f"{where}.kind", f"must be a lowercase word such as 'h', 'c' or 'conv'; got {kind!r}")
    if kind != m_in.group(1):
        raise _Bad(f"{where}.kind", f"{kind!r} disagrees with the state's name {s_in!r}")
    return StateSpec(s_in, s_out, shape, dtype, float(init), layer, kind)


def _check_names(inputs, outputs, states, legacy: bool) -> None:
    seen: dict[str, str] = {}
    named = [("input" if legacy else f"inputs[{i}]", "name", t.name) for i, t in enumerate(inputs)]
    named += [("output" if legacy else f"outputs[{i}]", "name", t.name) for i, t in enumerate(outputs)]
    for i, s in enumerate(states):
        named += [(f"states[{i}]", "input", s.input), (f"states[{i}]", "output", s.output)]
    for where, key, name in named:
        if name in seen:
            raise _Bad(f"{where}.{key}", f"name {name!r} is used twice (also by {seen[name]})")
        seen[name] = where
        if key == "name" and is_state_name(name):
            raise _Bad(f"{where}.name", f"{name!r} is a state name; declare it under 'states'")


def _check_chunk(inputs, chunk, legacy: bool) -> int | None:
    """A stream model's time inputs take ``chunk`` steps (or chunk is read from them)."""
    for i, spec in enumerate(inputs):
        where = "input" if legacy else f"inputs[{i}]"
        axis = spec.time_axis
        if axis is None:
            continue
        steps = spec.shape[axis]
        if chunk is None:
            chunk = steps
        elif steps is not None and steps != chunk:
            raise _Bad(f"{where}.shape", f"chunk is {chunk} but the input has {steps} steps on axis {axis}")
    return chunk


# -- field readers ----------------------------------------------------------------------------

def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             int: "an integer", float: "a number"}
    return f"{names.get(type(value), type(value).__name__)} ({_short(value)})"


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _show(shape: tuple) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _entry(value: Any, where: str, keys: set) -> dict:
    if not isinstance(value, dict):
        raise _Bad(where, f"must be an object; got {_kind(value)}")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise _Bad(_path(where, unknown[0]), f"is not a field of this entry; expected some of {sorted(keys)}")
    return value


def _obj(data: dict, key: str, *, required: bool) -> dict:
    if key not in data and required:
        raise _Bad(key, "is missing")
    return data.get(key)


def _list(data: dict, key: str) -> list:
    if key not in data:
        raise _Bad(key, "is missing")
    value = data[key]
    if not isinstance(value, list) or not value:
        raise _Bad(key, f"must be a non-empty list; got {_kind(value)}")
    return value


def _free_object(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(key, f"must be an object; got {_kind(value)}")
    return dict(value)


def _name(entry: dict, key: str, where: str) -> str:
    if key not in entry:
        raise _Bad(_path(where, key), "is missing")
    value = entry[key]
    if not isinstance(value, str) or not value:
        raise _Bad(_path(where, key), f"must be a non-empty string; got {_kind(value)}")
    return value


def _choice(entry: dict, key: str, allowed: tuple, *, where: str = "", required: bool = False,
            default: str | None = None) -> str:
    if key not in entry or (entry[key] is None and not required):
        if required:
            raise _Bad(_path(where, key), f"is missing; expected one of {list(allowed)}")
        return default
    value = entry[key]
    if not isinstance(value, str) or value not in allowed:
        raise _Bad(_path(where, key), f"{_short(value)} is not one of {list(allowed)}")
    return value


def _opt_int(entry: dict, key: str, where: str, *, minimum: int) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Bad(_path(where, key), f"must be an integer >= {minimum} or null; got {_kind(value)}")
    return value


def _opt_number(entry: dict, key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(_path(where, key), f"must be a finite number or null; got {_kind(value)}")
    return float(value)


def _shape(entry: dict, where: str, *, state: bool) -> tuple:
    key = _path(where, "shape")
    if "shape" not in entry:
        raise _Bad(key, "is missing")
    dims = entry["shape"]
    if not isinstance(dims, list) or not dims:
        raise _Bad(key, f"must be a non-empty list of dimensions; got {_kind(dims)}")
    for i, d in enumerate(dims):
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1):
            raise _Bad(f"{key}[{i}]", f"must be a positive integer or null; got {_kind(d)}")
    if state and dims[0] is not None:
        raise _Bad(f"{key}[0]", f"a state's first axis is the batch of streams and must be null; got {dims[0]}")
    if state and any(d is None for d in dims[1:]):
        raise _Bad(key, f"a state is (batch, fixed dims...); got {_show(tuple(dims))}")
    return tuple(dims)


def _range(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise _Bad(where, f"must be [low, high] or null; got {_kind(value)}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _Bad(where, f"bounds must be finite numbers; got {_kind(v)}")
    lo, hi = float(value[0]), float(value[1])
    if not lo < hi:
        raise _Bad(where, f"low must be below high; got [{lo:g}, {hi:g}]")
    return lo, hi


def _input_doc(t: TensorSpec) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "time_axis": t.time_axis,
            "preprocessing": {"uint8_scale": t.uint8_scale} if t.uint8_scale is not None else None,
            "range": list(t.value_range) if t.value_range is not None else None,
            "vocab_size": t.vocab_size}


def _output_doc(t: TensorSpec) -> dict:
    doc = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "meaning": t.meaning,
           "per_step": t.per_step, "labels": list(t.labels) if t.labels is not None else None}
    if t.timed:
        doc.update(frames_per_output=t.frames_per_output, emit_after=t.emit_after, look_back=t.look_back,
                   look_ahead=t.look_ahead)
    return doc
