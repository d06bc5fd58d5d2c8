"""Read params.yaml and check it against one schema before any work.

``SCHEMA`` (below) lists every key a stage reads, section by section, with
what its value must be. ``load_params`` checks the whole file against it, so
a typo (``epoch: 1`` where ``epochs`` is meant) or a bad value (``seed:
'abc'``, a ``data.val_size`` that leaves nothing to train on) stops a stage
with one line naming the key and what was expected, before data is loaded
or a model is built. Keys may be left out: each stage has its defaults.

To add a key: add one line to the section's table in ``SCHEMA`` with a rule
(``an_int``, ``a_number``, ``a_bool``, ``one_of``, ``a_string``, ``a_list``,
``either``); a cross-field rule goes in ``CROSS_CHECKS``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from exporters.errors import ConfigError
from exporters import quant_modes
from runtime.contract import VARIANTS

DEFAULT_PATH = Path("params.yaml")


# --------------------------------------------------------------------------- rules for one value

@dataclass(frozen=True)
class Rule:
    """What a value must be: ``expected`` says it in words, ``test`` checks it."""

    expected: str
    test: Callable[[Any], bool]
    null: bool = False          # null (~ in YAML) is allowed: the stage's default

    def check(self, value) -> bool:
        return (self.null and value is None) or (value is not None and self.test(value))

    def describe(self) -> str:
        return self.expected + (" or null" if self.null else "")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def an_int(lo: int = 1, hi: int | None = None, *, null: bool = False) -> Rule:
    words = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    return Rule(words, lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi), null)


def a_number(lo: float | None = None, hi: float | None = None, *, lo_open=False, hi_open=False,
             null: bool = False) -> Rule:
    parts = [f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else "",
             f"{'<' if hi_open else '<='} {hi:g}" if hi is not None else ""]
    words = "a number" + (" " + " and ".join(p for p in parts if p) if any(parts) else "")

    def test(v) -> bool:
        if not _is_number(v):
            return False
        above = lo is None or (v > lo if lo_open else v >= lo)
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below

    return Rule(words, test, null)


def a_bool(*, null: bool = False) -> Rule:
    return Rule("true or false", lambda v: isinstance(v, bool), null)


def one_of(*choices, null: bool = False) -> Rule:
    return Rule("one of " + ", ".join(map(str, choices)), lambda v: isinstance(v, str) and v in choices, null)


def a_string(min_len: int = 1, *, null: bool = False) -> Rule:
    words = "a string" if min_len <= 1 else f"a string of at least {min_len} characters"
    return Rule(words, lambda v: isinstance(v, str) and len(v) >= min_len, null)


def either(*rules: Rule, null: bool = False) -> Rule:
    return Rule(" or ".join(r.expected for r in rules), lambda v: any(r.check(v) for r in rules), null)


def a_list(item: Rule, *, nonempty: bool = False, distinct: bool = False, null: bool = False) -> Rule:
    words = f"a {'non-empty ' if nonempty else ''}list{' of distinct items' if distinct else ''}, each {item.expected}"

    def test(v) -> bool:
        return (isinstance(v, list) and (len(v) > 0 or not nonempty) and all(item.check(x) for x in v)
                and (not distinct or len({repr(x) for x in v}) == len(v)))

    return Rule(words, test, null)


@dataclass(frozen=True)
class MapOf:
    """A mapping whose keys are among ``keys`` (e.g. model names), each value checked against ``value``."""

    keys: tuple
    value: dict
    null: bool = True


# The quantization modes come from their registry, which loads no quantizer. Other names are
# written out so that reading params loads no provider table or contract code (every stage,
# training included, reads params: see dvc.yaml's deps); tests/test_params.py checks them.
QUANT_MODES, QUANT_METHODS = quant_modes.MODES, quant_modes.METHODS
PROVIDERS = ("cpu", "cuda", "gpu", "tensorrt", "openvino", "coreml", "dml")   # runtime.providers.ALIASES


def _provider(v) -> bool:
    return isinstance(v, str) and (v.lower() in PROVIDERS or v.endswith("ExecutionProvider"))


def _names():
    from pipeline.data import DATASETS
    from pipeline.distribute import KINDS
    from pipeline.models import MODEL_NAMES

    return MODEL_NAMES, tuple(DATASETS), KINDS


MODEL_NAMES, DATASET_NAMES, DISTRIBUTE_KINDS = _names()

# --------------------------------------------------------------------------- the schema

positive = an_int(1)
rate = a_number(0, 1, hi_open=True)                            # a dropout rate: [0, 1)
learning_rate = a_number(0, 1, lo_open=True, hi_open=True)     # (0, 1)

CLASSIFIER = {                   # train.lstm, train.gru (pipeline/train.py, pipeline/models.py)
    "units": positive, "epochs": positive, "batch_size": positive, "learning_rate": learning_rate,
    "cosine_decay": a_bool(), "keep_best": a_bool(),
}
QUANTIZE = {                     # pipeline/quantize.py settings()
    "modes": a_list(one_of(*QUANT_MODES), nonempty=True, distinct=True),
    "variants": a_list(one_of(*VARIANTS), distinct=True),
    "max_drop": a_number(0),
    "mixed": one_of("auto", "off"),
    "allow_larger": a_bool(),
    "per_channel": a_bool(),
    "reduce_range": either(one_of("auto"), a_bool()),
    "calibration_method": one_of(*QUANT_METHODS),
    "calibration_samples": positive,
    "eval_samples": an_int(1, null=True),
}
BENCHMARK = {                    # pipeline/benchmark.py DEFAULTS
    "batches": a_list(positive, nonempty=True),
    "threads": a_list(either(positive, Rule("'all' or a positive integer as text",
                                            lambda v: v == "all" or (isinstance(v, str) and v.isdigit()
                                                                     and int(v) >= 1))), nonempty=True),
    "reps": positive,
    "rounds": positive,
    "block_ms": a_number(0, lo_open=True),
    "streams": a_list(positive, null=True),
    "sweep": a_list(either(positive, one_of("model")), null=True),
    "providers": a_list(Rule("a provider (cpu, cuda, ... or an onnxruntime provider name)", _provider),
                        nonempty=True),
    "litert": a_bool(),
    "samples": an_int(1, null=True),
}

SCHEMA = {
    "seed": an_int(0, 2**32 - 1),
    "data": {                    # pipeline/data.py load(), pipeline/train.py task_splits()
        "dataset": one_of(*DATASET_NAMES),
        "dir": a_string(null=True),
        "allow_download": a_bool(null=True),
        "val_size": positive,    # and fewer than the training split: CROSS_CHECKS
        "train_limit": an_int(1, null=True),
        "test_limit": an_int(1, null=True),
    },
    "tasks": {                   # pipeline/tasks.py clips(), chars()
        "clips": {"frames": an_int(2), "canvas": positive, "item": an_int(2)},
        "chars": {"sentence": a_string(2)},
    },
    "train": {                   # pipeline/train.py, pipeline/models.py, pipeline/distribute.py
        "distribute": one_of(*DISTRIBUTE_KINDS, null=True),
        "lstm": CLASSIFIER,
        "gru": CLASSIFIER,
        "cnn_lstm": {
            "filters": a_list(positive, nonempty=True), "kernel": positive, "units": positive,
            "dense": positive, "conv_dropout": rate, "dropout": rate, "epochs": positive,
            "batch_size": positive, "train_clips": an_int(1, null=True), "learning_rate": learning_rate,
            "cosine_decay": a_bool(), "keep_best": a_bool(),
        },
        "char_gru": {"units": positive, "max_epochs": positive, "check_every": positive,
                     "learning_rate": learning_rate},
    },
    "export": {                  # pipeline/export.py run()
        "variants": a_list(one_of(*VARIANTS), nonempty=True, distinct=True),
        "chunk": positive,
        "opset": an_int(13),
        "atol": a_number(0, lo_open=True),
        "samples": an_int(1, null=True),
    },
    "quantize": {
        **QUANTIZE,
        # per model, and within it per mode: settings laid over the section's
        "per_model": MapOf(MODEL_NAMES, {**QUANTIZE, **{mode: {k: v for k, v in QUANTIZE.items() if k != "modes"}
                                                      for mode in QUANT_MODES}}),
    },
    "benchmark": {
        **BENCHMARK,
        "per_model": MapOf(MODEL_NAMES, BENCHMARK),
    },
}


# --------------------------------------------------------------------------- checking

def _fail(source: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {message}")


def _hint(value) -> str:
    if isinstance(value, str):
        try:
            float(value)
            return " (YAML reads a number like 1e-5 as text: write 1.0e-5)"
        except ValueError:
            pass
    return ""


def _check(node, schema, path: str, source: str) -> None:
    if isinstance(schema, Rule):
        if not schema.check(node):
            raise _fail(source, f"{path} must be {schema.describe()}, got {node!r}{_hint(node)}")
        return
    if isinstance(schema, MapOf):
        if node is None and schema.null:
            return
        if not isinstance(node, dict):
            raise _fail(source, f"{path} must be a mapping of {', '.join(schema.keys)} to settings, got {node!r}")
        for key, value in node.items():
            if key not in schema.keys:
                raise _fail(source, f"{path} has unknown entry {key!r}; expected some of {', '.join(schema.keys)}")
            _check(value, schema.value, f"{path}.{key}", source)
        return
    if not isinstance(node, dict):
        raise _fail(source, f"{path or 'the file'} must be a mapping of settings, got {node!r}")
    for key, value in node.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in schema:
            close = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(source, f"unknown key {where!r}{maybe}; expected some of {', '.join(map(str, schema))}")
        _check(value, schema[key], where, source)


def _val_size_leaves_training(params: dict, source: str) -> None:
    from pipeline.data import PARTS

    data = params.get("data") or {}
    split = PARTS["train_images"][1]
    if data.get("val_size") is not None and data["val_size"] >= split:
        raise _fail(source, f"data.val_size must be smaller than the {split} samples of the training split "
                            f"(the rest is what trains), got {data['val_size']}")


def _clips_fit_the_canvas(params: dict, source: str) -> None:
    clips = (params.get("tasks") or {}).get("clips") or {}
    frames, canvas, item = clips.get("frames", 8), clips.get("canvas", 28), clips.get("item", 14)
    if canvas - item < frames - 1:
        raise _fail(source, f"tasks.clips must leave the item room to move one pixel per frame: expected "
                            f"canvas - item >= frames - 1, got canvas={canvas}, item={item}, frames={frames}")


CROSS_CHECKS = (_val_size_leaves_training, _clips_fit_the_canvas)


def validate(params, source: str = "params.yaml") -> dict:
    """Check ``params`` against SCHEMA and CROSS_CHECKS; returns it unchanged.

    Raises:
        ConfigError: one line, ``<source>: <key path> must be <what>, got <value>``
            or ``<source>: unknown key <path> ...``.
    """
    if not isinstance(params, dict):
        raise _fail(source, f"must hold a mapping of stage names to settings, got {type(params).__name__}")
    _check(params, SCHEMA, "", source)
    for rule in CROSS_CHECKS:
        rule(params, source)
    return params


def load_params(path: str | Path = DEFAULT_PATH) -> dict:
    """Read and validate a params.yaml (see SCHEMA)."""
    import yaml

    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; run from the repository root or pass --params") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"{path} is not valid YAML: {first}") from None
    return validate(params, str(path))


def section(params: dict, *keys: str) -> dict:
    """params[k1][k2]..., requiring each level to be a mapping."""
    node = params
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(keys[:depth + 1])
            raise ConfigError(f"params.yaml has no {where!r} section")
        node = node[key]
    if not isinstance(node, dict):
        raise ConfigError(f"params.yaml: {'.'.join(keys)!r} must be a mapping, got {node!r}")
    return node


def integer(cfg: dict, key: str, default: int | None = None, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"parameter {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


# --------------------------------------------------------------------------- the `params` stage

CHECKED = Path("params.checked")
CHECKED_TEXT = "params.yaml passed the schema of pipeline/params.py\n"


def main(argv=None) -> int:
    """DVC stage `params`: check params.yaml before any other stage runs.

    Every stage depends on its output, so a bad value stops `dvc repro` here, before DVC removes
    any stage's outputs to rerun it (the last run's metrics and plots, which no cache holds, stay).
    The output's content never changes, so a good edit reruns only the stages whose parameters it
    touched.
    """
    import argparse
    import sys

    from exporters.atomic import write_bytes
    from exporters.errors import RnnxError

    ap = argparse.ArgumentParser(prog="python -m pipeline.params", description=main.__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(DEFAULT_PATH), help="pipeline parameters (default: params.yaml)")
    ap.add_argument("--out", default=str(CHECKED), help=f"the mark it writes (default: {CHECKED})")
    args = ap.parse_args(argv)
    try:
        load_params(args.params)
        write_bytes(args.out, CHECKED_TEXT.encode())
    except RnnxError as exc:
        print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
