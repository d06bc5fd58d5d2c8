"""DVC stage `quantize`: one model's ONNX exports -> int8/fp16 copies, gated on accuracy.

    python -m pipeline.quantize NAME [--params params.yaml] [--models models] [--metrics metrics]

For every mode in ``quantize.modes`` and every exported variant where the mode
makes the recurrent weights smaller (`exporters.quantize.applicable`: not the
native GRU op of ``full`` for int8, not native LSTM/GRU ops of ``full`` for
static QDQ; stream variants get their recurrence unrolled into int8 matmuls),
writes ``models/onnx/NAME/<variant>.<mode>.onnx``. With ``quantize.mixed:
auto`` a model that misses the gate ``max_drop`` keeps its most sensitive
layers in fp32 (precision "mixed"). Calibration samples come from the model's
training split, evaluation samples from its test split (char_gru: the
sentence). ``metrics/quantize/NAME.json`` holds every figure (drop, size,
latency, the layers kept in float), the skipped pairs with the reason, and any
gate failure; a gate failure fails the stage.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from exporters.errors import ConfigError, QuantizationError
from exporters import quant_modes
from runtime.contract import VARIANTS
from pipeline import models, tasks
from pipeline.outputs import write_json
from pipeline.params import integer, section
from pipeline.stage import stage_main



def data_for(name: str, params: dict, n_cal: int, n_eval: int | None):
    """(calibration x, evaluation x, evaluation y) of model `name`, without building whole splits."""
    if name == "char_gru":
        task = tasks.chars(section(params, "tasks", "chars").get("sentence", tasks.DEFAULT_SENTENCE))
        return task.x, task.x, task.y.argmax(-1)
    from pipeline import data
    from pipeline.train import task_splits

    p = copy.deepcopy(params)
    p["data"]["train_limit"] = n_cal
    if n_eval:
        p["data"]["test_limit"] = n_eval
    if models.TASK_OF[name] == "clips":
        p.setdefault("train", {}).setdefault(name, {})["train_clips"] = n_cal
    dcfg = section(p, "data")
    ds = data.load(dcfg.get("dataset", "fashion_mnist"), dcfg.get("dir"), dcfg.get("allow_download"))
    splits = task_splits(name, p, ds)
    return splits["train"].x[:n_cal], splits["test"].x, splits["test"].y


def settings(params: dict, name: str | None = None, mode: str | None = None) -> dict:
    """The quantize section for model ``name`` (and ``mode``).

    ``quantize.per_model.<name>`` is laid over the section, and its entry
    named after ``mode`` (e.g. ``int8-static: {per_channel: true}``) over that.
    """
    from exporters.quantize import METHODS, MODES

    cfg = dict(section(params, "quantize"))
    overrides = cfg.pop("per_model", None) or {}
    if not isinstance(overrides, dict) or any(not isinstance(v, dict) for v in overrides.values()):
        raise ConfigError(f"quantize.per_model must map model names to settings; got {overrides!r}")
    mine = dict(overrides.get(name, {}))
    for_modes = {m: mine.pop(m) for m in list(mine) if m in MODES}
    if any(not isinstance(v, dict) for v in for_modes.values()):
        raise ConfigError(f"quantize.per_model.{name}.<mode> must be a mapping of settings; got {for_modes!r}")
    cfg.update(mine)
    cfg.update(for_modes.get(mode, {}))
    modes = cfg.get("modes", list(MODES))
    variants = cfg.get("variants", list(VARIANTS))
    if not isinstance(modes, list) or not modes or any(m not in MODES for m in modes):
        raise ConfigError(f"quantize.modes must be a list among {list(MODES)}; got {modes!r}")
    if not isinstance(variants, list) or any(v not in VARIANTS for v in variants):
        raise ConfigError(f"quantize.variants must be a list among {list(VARIANTS)}; got {variants!r}")
    method = cfg.get("calibration_method", "minmax")
    if method not in METHODS:
        raise ConfigError(f"quantize.calibration_method must be one of {list(METHODS)}; got {method!r}")
    n_eval = cfg.get("eval_samples")
    mixed = cfg.get("mixed", "auto")
    if mixed not in ("auto", "off"):
        raise ConfigError(f"quantize.mixed must be auto or off; got {mixed!r}")
    reduce_range = cfg.get("reduce_range", "auto")
    if reduce_range not in ("auto", True, False):
        raise ConfigError(f"quantize.reduce_range must be auto, true or false; got {reduce_range!r}")
    return {"modes": modes, "variants": variants, "method": method, "mixed": mixed, "reduce_range": reduce_range,
            "allow_larger": bool(cfg.get("allow_larger", False)),
            "per_channel": bool(cfg.get("per_channel", False)), "max_drop": cfg.get("max_drop", 1.0),
            "n_cal": integer(cfg, "calibration_samples", 256),
            "n_eval": integer(cfg, "eval_samples") if n_eval is not None else None}


def run(name: str, params: dict, models_dir: Path, metrics_dir: Path) -> tuple[dict, list[str]]:
    """Quantize every applicable (variant, mode) of `name`; returns (metrics, gate failures)."""
    from exporters.quantize import applicable, model_info

    if name not in models.MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; expected one of {list(models.MODEL_NAMES)}")
    cfg = settings(params, name)
    cal_x, eval_x, eval_y = data_for(name, params, cfg["n_cal"], cfg["n_eval"])
    say = lambda msg: print(f"[quantize {name}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    say(f"calibration {cal_x.shape}, evaluation {eval_x.shape}")
    onnx_dir = models_dir / "onnx" / name
    metrics: dict = {"calibration_samples": int(len(cal_x)), "eval_samples": int(len(eval_x)),
                     "max_drop": cfg["max_drop"], "method": cfg["method"], "per_channel": cfg["per_channel"],
                     "mixed": cfg["mixed"], "reduce_range": cfg["reduce_range"]}
    failures = []
    for mode in cfg["modes"]:
        figures = metrics.setdefault(mode, {})
        for variant in cfg["variants"]:
            src = onnx_dir / f"{variant}.onnx"
            if not src.is_file():
                figures[variant] = {"skipped": f"{src} was not exported"}
                continue
            info = model_info(src)
            reason = applicable(mode, info.op_counts, chunk=info.chunk)
            if reason:
                figures[variant] = {"skipped": reason}
                say(f"{variant}.{mode}: skipped: {reason}")
                continue
            mcfg = settings(params, name, mode)
            try:
                rep = _quantize(src, onnx_dir / f"{variant}.{mode}.onnx", mode, mcfg, (cal_x, eval_x, eval_y),
                                lambda msg, v=variant: say(f"{v}: {msg}"))
            except QuantizationError as exc:
                failures.append(f"{variant}.{mode}: {exc}")
                rep = getattr(exc, "report", None)
                figures[variant] = {"failed": str(exc), **(_figures(rep) if rep else {})}
                continue
            figures[variant] = _figures(rep)
            if (mcfg["per_channel"], mcfg["method"]) != (cfg["per_channel"], cfg["method"]):
                figures[variant].update(per_channel=mcfg["per_channel"], method=mcfg["method"])
    metrics["failures"] = failures
    write_json(metrics_dir / "quantize" / f"{name}.json", metrics)
    return metrics, failures


def _quantize(src: Path, dst: Path, mode: str, mcfg: dict, data: tuple, say) -> dict:
    """One quantize_model run; with `reduce_range: auto`, 7-bit int8 weights first and 8-bit
    when 7-bit misses the accuracy gate (the report's `reduce_range` says which was kept)."""
    from exporters.quantize import quantize_model

    cal_x, eval_x, eval_y = data
    auto = mcfg["reduce_range"] == "auto" and quant_modes.get(mode).integer
    ranges = [True, False] if auto else [mcfg["reduce_range"] is not False]
    for k, reduce_range in enumerate(ranges):
        try:
            return quantize_model(src, dst, mode, calibration=cal_x if quant_modes.get(mode).calibrates else None,
                                  per_channel=mcfg["per_channel"], method=mcfg["method"],
                                  evaluation=(eval_x, eval_y), max_drop=mcfg["max_drop"], force=True,
                                  mixed=mcfg["mixed"], allow_larger=mcfg["allow_larger"],
                                  reduce_range=reduce_range, progress=say)
        except QuantizationError as exc:
            if k + 1 == len(ranges) or getattr(exc, "report", None) is None:
                raise
            say(f"{mode}: 7-bit weights miss the gate; trying 8-bit weights (full range)")
    raise AssertionError("unreachable")


def _figures(rep: dict) -> dict:
    """The numbers DVC shows (flat where possible)."""
    acc, agree, lat = rep["accuracy"] or {}, rep["agreement"] or {}, rep.get("latency") or {}
    return {
        "precision": rep.get("precision"), "kept_float": rep.get("kept_float", []), "layers": rep.get("layers", {}),
        "fp32_bytes": rep["size"]["fp32_bytes"], "bytes": rep["size"]["bytes"], "size_ratio": rep["size"]["ratio"],
        "accuracy_fp32": acc.get("fp32"), "accuracy": acc.get("quantized"), "drop_points": acc.get("drop_points"),
        "max_abs_diff": agree.get("max_abs_diff"), "argmax_agreement": agree.get("argmax_agreement"),
        "latency_fp32_ms": lat.get("fp32_ms"), "latency_ms": lat.get("ms"), "speedup": lat.get("speedup"),
        "recurrent_weights": rep["recurrent_weights"], "reduce_range": rep.get("reduce_range"),
        "notes": rep["notes"], "warnings": rep["warnings"],
    }


def _stage(name: str, params: dict, models: Path, metrics: Path) -> int:
    _, failures = run(name, params, models, metrics)
    for line in failures:
        print(f"rnnx: QuantizationError: {line}", file=sys.stderr)
    return 1 if failures else 0


def main(argv=None) -> int:
    return stage_main(argv, module="pipeline.quantize", doc=__doc__, action=_stage)


if __name__ == "__main__":
    sys.exit(main())
