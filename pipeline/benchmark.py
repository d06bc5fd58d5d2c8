"""DVC stage `benchmark`: every export of one model against Keras, TensorFlow and LiteRT.

    python -m pipeline.benchmark NAME [--params params.yaml] [--models models]
        [--reports reports] [--metrics metrics] [--plots plots]

Runs ``exporters.bench.benchmark`` over ``models/onnx/NAME`` (every variant
and precision file) with ``models/NAME.keras`` as the original, on the
model's test set (``pipeline.export.evaluation_set``), knobs from the
``benchmark`` section of params.yaml (``per_model.NAME`` overrides them for one
model). Writes:

- ``reports/benchmark/NAME.json``: every figure (the report stage reads it);
- ``metrics/benchmark/NAME.json``: the headline figures per file and baseline;
- ``plots/benchmark/NAME.csv``: one line per runtime (p50, throughput, accuracy, size).

A provider that is not available here (CUDA without onnxruntime-gpu and a GPU)
is skipped and the reason recorded, so the same stage runs on CPU and GPU machines.
"""

from __future__ import annotations

import sys
from pathlib import Path

from exporters.errors import ConfigError
from pipeline import models
from pipeline.outputs import write_csv, write_json
from pipeline.params import integer
from pipeline.stage import stage_main

DEFAULTS = {"batches": [1, 64, 256], "threads": ["1", "all"], "reps": 300, "rounds": 15, "block_ms": 20.0,
            "streams": [1, 8, 64, 256], "sweep": [1, 8, "model", 100, 500], "providers": ["cpu", "cuda"],
            "litert": True, "samples": None}


def settings(params: dict, name: str | None = None) -> dict:
    """The benchmark section of params.yaml, with ``per_model[name]`` laid over it."""
    section = dict(params.get("benchmark") or {})
    per_model = section.pop("per_model", None) or {}
    if not isinstance(per_model, dict):
        raise ConfigError(f"benchmark.per_model must map model names to settings; got {per_model!r}")
    cfg = {**DEFAULTS, **section, **(per_model.get(name) or {})}
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown benchmark settings {unknown}; expected some of {sorted(DEFAULTS)}")
    cfg["reps"] = integer(cfg, "reps")
    cfg["rounds"] = integer(cfg, "rounds")
    cfg["streams"] = list(cfg["streams"] or [])
    cfg["sweep"] = [str(v) for v in (cfg["sweep"] or [])]
    if cfg["samples"] is not None:
        cfg["samples"] = integer(cfg, "samples")
    cfg["threads"] = [str(t) for t in cfg["threads"]]
    return cfg


METRIC_KEYS = ("accuracy", "max_abs_diff", "argmax_agreement", "p50_ms", "p99_ms", "throughput", "step_p50_us",
               "per_stream_us_64", "size_bytes", "speedup_tf_function", "speedup_tf_function_xla", "speedup_litert",
               "throughput_ratio_tf_function_xla")


def metrics_of(result: dict) -> dict:
    """Headline figures: per variant.precision.provider, per baseline, and the Keras accuracy."""
    from exporters.bench.text import headline, one_thread, all_threads, big_batch

    out = {"keras_accuracy": (result.get("keras") or {}).get("accuracy"), "samples": result["data"]["samples"]}
    for row in result["rows"]:
        h = headline(row, result)
        key = f"{row['variant']}.{row['precision']}.{row['provider']}"
        out[key] = {k: h[k] for k in METRIC_KEYS if h.get(k) is not None}
        for k in METRIC_KEYS:
            ci = h.get(f"{k}_ci")
            if ci:
                out[key][f"{k}_low"], out[key][f"{k}_high"] = ci
    t1, tall, bb = one_thread(result), all_threads(result), big_batch(result)
    for base in result.get("baselines", []):
        entry = out.setdefault("baselines", {}).setdefault(f"{base['name']}.{base['provider']}", {})
        if base["status"] != "ok":
            entry["status"] = "failed"
            continue
        if base["threads"] == t1 and base.get("latency_ms"):
            entry["p50_ms"] = base["latency_ms"]["p50"]
        thr = (base.get("throughput") or {}).get(bb) if bb else None
        if base["threads"] == tall and thr:
            entry["throughput"] = thr["samples_per_s"]
        if base.get("accuracy") is not None:
            entry["accuracy"] = base["accuracy"]
    sweep = result.get("sweep")
    if sweep:
        out["sweep_winner"] = {f"T{t}": w["engine"] for t, w in sweep["winners"].items()}
    load = result.get("load") or {}
    out["load1_max"], out["load_warning"] = load.get("load1_max"), bool(load.get("warning"))
    return out


def plot_rows(result: dict) -> list[dict]:
    """One CSV line per runtime: onnxruntime rows and baselines (1-thread p50, all-core throughput)."""
    from exporters.bench.text import headline, one_thread, all_threads, big_batch

    t1, tall, bb = one_thread(result), all_threads(result), big_batch(result)
    lines = []
    for row in result["rows"]:
        h = headline(row, result)
        lines.append({"runtime": f"ort {row['variant']} {row['precision']} {row['provider']}", "kind": "onnxruntime",
                      "variant": row["variant"], "precision": row["precision"], "provider": row["provider"],
                      "p50_ms": h["p50_ms"], "throughput": h["throughput"], "accuracy": h["accuracy"],
                      "size_kib": row["size_bytes"] / 1024})
    for base in result.get("baselines", []):
        if base["status"] != "ok" or base["threads"] != t1:
            continue
        other = next((b for b in result["baselines"] if b["name"] == base["name"]
                      and b["provider"] == base["provider"] and b["threads"] == tall), {})
        thr = (other.get("throughput") or {}).get(bb) if bb else None
        lines.append({"runtime": f"{base['name']} {base['provider']}", "kind": "baseline", "variant": "-",
                      "precision": "fp32", "provider": base["provider"], "p50_ms": base["latency_ms"]["p50"],
                      "throughput": thr["samples_per_s"] if thr else "", "accuracy": base.get("accuracy", ""),
                      "size_kib": base["file_bytes"] / 1024 if base.get("file_bytes") else ""})
    return [{k: ("" if v is None else v) for k, v in line.items()} for line in lines]


def run(name: str, params: dict, models_dir: Path, reports_dir: Path, metrics_dir: Path, plots_dir: Path) -> dict:
    from exporters.bench import benchmark
    from pipeline.export import evaluation_set

    if name not in models.MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; expected one of {list(models.MODEL_NAMES)}")
    cfg = settings(params, name)
    x, y, _labels, _scale = evaluation_set(name, params)
    if cfg["samples"]:
        x, y = x[:cfg["samples"]], y[:cfg["samples"]]
    result = benchmark(models_dir / "onnx" / name, keras=models_dir / f"{name}.keras", x=x, y=y,
                       providers=cfg["providers"], strict_providers=False, batches=cfg["batches"],
                       threads=cfg["threads"], reps=cfg["reps"], rounds=cfg["rounds"], block_ms=cfg["block_ms"],
                       streams=cfg["streams"], sweep=cfg["sweep"], litert=bool(cfg["litert"]), name=name,
                       progress=lambda msg: print(f"[benchmark {name}] {msg}", file=sys.stderr, flush=True))
    write_json(reports_dir / "benchmark" / f"{name}.json", result)
    write_json(metrics_dir / "benchmark" / f"{name}.json", metrics_of(result))
    write_csv(plots_dir / "benchmark" / f"{name}.csv", plot_rows(result))
    return result


def _action(name, params, models, reports, metrics, plots) -> int:
    from exporters.bench.text import render

    print(render(run(name, params, models, reports, metrics, plots)), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return stage_main(argv, module="pipeline.benchmark", doc=__doc__, action=_action,
                      dirs=("models", "reports", "metrics", "plots"))


if __name__ == "__main__":
    sys.exit(main())
