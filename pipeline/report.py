"""DVC stage `report`: the benchmark results as reports/report.md, PNG figures and target verdicts.

    python -m pipeline.report [NAME ...] [--reports reports] [--metrics metrics]

Reads ``reports/benchmark/NAME.json`` (every model of the zoo by default) and
writes ``reports/report.md`` (the targets, then one table per model: variant
x precision x provider with accuracy, parity, p50/p90/p99, throughput, size
and speed-ups vs TensorFlow and LiteRT with their 95% intervals; per-stream
step cost; latency against sequence length with the winner of each length),
``reports/latency.png``, ``reports/sweep.png``, ``reports/streams.png``,
``reports/accuracy_drop.png`` (gate: quantize.max_drop of ``--params``),
``reports/size.png``, and
``metrics/report/targets.json`` (each target: value, limit, met).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from exporters import atomic
from exporters.bench.machine import summary
from exporters.bench.text import (all_threads, baselines_shown, big_batch, data_line, headline, load_line, one_thread,
                                  ratio_text, winner_margin)
from exporters.errors import ConfigError, RnnxError
from pipeline import models, report_plots
from pipeline.outputs import write_json

FIGURES = {"latency": "latency.png", "sweep": "sweep.png", "streams": "streams.png",
           "accuracy_drop": "accuracy_drop.png", "size": "size.png"}
STREAMS_GOAL = ("lstm", 64, 1.0)   # model, streams, us per stream-step

# (key, what, model -> limit, row selector, figure, comparison, unit)
TARGETS = (
    ("full_p50", "full-variant p50, batch 1, 1 thread", {"lstm": 0.07, "gru": 0.06},
     ("full", "fp32"), "p50_ms", "<=", "ms"),
    ("vs_tf_function", "speed-up vs tf.function (batch 1, 1 thread)", {"lstm": 25.0, "gru": 25.0},
     ("full", "fp32"), "speedup_tf_function", ">=", "x"),
    ("vs_litert", "faster than LiteRT (batch 1, 1 thread)", {"lstm": 1.0, "gru": 1.0},
     ("full", "fp32"), "speedup_litert", ">", "x"),
    ("step_p50", "streaming step p50 (stream variant)", {"lstm": 10.0, "gru": 10.0},
     ("stream", "fp32"), "step_p50_us", "<=", "us"),
    ("vs_xla_throughput", "batch-256 throughput on all cores vs TF with XLA", {"lstm": 1.3, "gru": 1.3},
     ("full", "fp32"), "throughput_ratio_tf_function_xla", ">=", "x"),
    ("streams64", "per-stream step cost at 64 streams (stream variant, 1 thread)", {"lstm": 1.0},
     ("stream", "fp32"), "per_stream_us_64", "<=", "us"),
    # the int8 stream file the quantize stage ships (it passed the accuracy gate to exist)
    ("streams64_int8", "per-stream step cost at 64 streams (stream variant, int8-dynamic, 1 thread)",
     {"lstm": 1.0}, ("stream", "int8-dynamic"), "per_stream_us_64", "<=", "us"),
)


def load_results(reports_dir: Path, names) -> dict:
    results = {}
    for name in names:
        path = reports_dir / "benchmark" / f"{name}.json"
        if not path.is_file():
            raise ConfigError(f"no benchmark result at {path}; run the benchmark stage first")
        results[name] = json.loads(path.read_text())
    if not results:
        raise ConfigError("no models to report on")
    return results


def _row(result: dict, variant: str, precision: str, provider: str = "cpu") -> dict | None:
    for row in result["rows"]:
        if (row["variant"], row["precision"], row["provider"]) == (variant, precision, provider):
            return headline(row, result)
    return None


def evaluate_targets(results: dict) -> list[dict]:
    """One verdict per (model, target) for the models the targets name."""
    verdicts = []
    for key, what, limits, (variant, precision), figure, op, unit in TARGETS:
        for name, limit in limits.items():
            if name not in results:
                continue
            row = _row(results[name], variant, precision)
            value = row.get(figure) if row else None
            ci = row.get(f"{figure}_ci") if row else None
            entry = {"model": name, "target": key, "what": what, "limit": limit, "op": op, "unit": unit,
                     "value": value, "ci": ci, "met": None, "gap": None, "certain": None}
            if value is not None:
                met = value <= limit if op == "<=" else value >= limit if op == ">=" else value > limit
                entry["met"] = bool(met)
                entry["gap"] = None if met else abs(value - limit)
                entry["certain"] = None if not ci else not (ci[0] <= limit <= ci[1])
            if key == "vs_xla_throughput":
                entry["what"] = what.replace("256", big_batch(results[name]) or "?")
            verdicts.append(entry)
    order = list(results)
    return sorted(verdicts, key=lambda v: order.index(v["model"]))  # stable: targets in order per model


def _num(v, fmt=".3g", dash="–") -> str:
    return dash if v is None or v == "" else format(v, fmt)


def _verdict(v: dict) -> str:
    if v["met"] is None:
        return "not measured"
    shaky = " (the 95% interval straddles the limit)" if v.get("certain") is False else ""
    if v["met"]:
        return "**met**" + shaky
    rel = v["gap"] / v["limit"] if v["limit"] else None
    return f"**missed** by {v['gap']:.3g} {v['unit']}" + (f" ({rel:.0%})" if rel is not None else "") + shaky


def _ratio(value, ci, fmt=".2f") -> str:
    return "–" if value is None else ratio_text(value, ci, fmt)


def targets_table(verdicts: list[dict]) -> list[str]:
    lines = ["| model | target | limit | measured [95% interval] | verdict |", "|---|---|---|---|---|"]
    for v in verdicts:
        measured = _ratio(v["value"], v.get("ci"), ".3g") if v.get("ci") else _num(v["value"])
        lines.append(f"| {v['model']} | {v['what']} | {v['op']} {v['limit']:g} {v['unit']} | "
                     f"{measured} {v['unit']} | {_verdict(v)} |")
    return lines


def model_section(name: str, res: dict) -> list[str]:
    t1, tall, bb = one_thread(res), all_threads(res), big_batch(res)
    keras = res.get("keras") or {}
    data = res["data"]
    lines = [f"## {name}", "",
             f"{data_line(res)}. {data['samples']} samples of shape {data['shape'][1:]}; "
             f"Keras accuracy {_num(keras.get('accuracy'), '.4f')}; parity against "
             f"{res.get('parity_reference') or 'nothing'}; {res['settings'].get('rounds', '?')} interleaved rounds; "
             f"{res.get('seconds', '?')} s.", "", f"Machine {load_line(res)}.", "",
             f"Speed-ups (×) are medians of per-round paired ratios of the fastest calls, baseline / "
             f"onnxruntime, with the 95% interval in brackets; > 1: onnxruntime is faster.", "",
             f"| variant | precision | provider | accuracy | max \\|Δ\\| | mean \\|Δ\\| | argmax agree | "
             f"p50 ms ({t1} thr) | p90 ms | p99 ms | samples/s @{bb or '-'} ({tall} thr) | step p50 µs | size KiB | "
             f"load ms | × tf.function | × XLA | × LiteRT | × XLA throughput @{bb or '-'} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in res["rows"]:
        h = headline(row, res)
        lines.append(
            f"| {h['variant']} | {h['precision']} | {h['provider']} | {_num(h['accuracy'], '.4f')} | "
            f"{_num(h['max_abs_diff'], '.1e')} | {_num(h['mean_abs_diff'], '.1e')} | "
            f"{_num(h['argmax_agreement'], '.4f')} | {_num(h['p50_ms'], '.4f')} | {_num(h['p90_ms'], '.4f')} | "
            f"{_num(h['p99_ms'], '.4f')} | "
            f"{_num(h['throughput'], ',.0f')} | {_num(h['step_p50_us'], '.1f')} | {h['size_bytes'] / 1024:.1f} | "
            f"{h['load_ms']:.1f} | {_ratio(h['speedup_tf_function'], h['speedup_tf_function_ci'], '.1f')} | "
            f"{_ratio(h['speedup_tf_function_xla'], h['speedup_tf_function_xla_ci'], '.2f')} | "
            f"{_ratio(h['speedup_litert'], h['speedup_litert_ci'])} | "
            f"{_ratio(h['throughput_ratio_tf_function_xla'], h['throughput_ratio_tf_function_xla_ci'])} |")
    lines += ["", f"Baselines on the same inputs (p50 at batch 1 on {t1} thread; throughput at batch "
              f"{bb or '-'} on {tall} threads):", "",
              "| baseline | provider | p50 ms | p99 ms | samples/s | accuracy | note |", "|---|---|---|---|---|---|---|"]
    for base, thr in baselines_shown(res, t1, tall, bb):
        if base["status"] != "ok":
            lines.append(f"| {base['name']} | {base['provider']} | – | – | – | – | not run: {base['reason']} |")
            continue
        note = "" if thr else "no throughput: " + base.get("throughput_reason", "not measured")
        if base.get("method"):
            note = f"converted as {base['method']}; {note}".strip("; ")
        lat = base["latency_ms"]
        lines.append(f"| {base['name']} | {base['provider']} | {lat['p50']:.4f} | {lat['p99']:.4f} | "
                     f"{_num(thr['samples_per_s'] if thr else None, ',.0f')} | "
                     f"{_num(base.get('accuracy'), '.4f')} | {note} |")
    lines += streams_table(res) + sweep_section(res)
    for skip in res.get("skipped_providers", []):
        lines.append(f"\n*Provider {skip['provider']} not measured:* {skip['reason']}")
    for note in res.get("notes", []):
        lines.append(f"\n*Note:* {note}")
    return lines + [""]


def streams_table(res: dict) -> list[str]:
    counts = [str(n) for n in res["settings"].get("streams") or []]
    rows = [r for r in res["rows"] if r.get("streams")]
    if not counts or not rows:
        return []
    lines = ["", "`StreamingModel.step`, cost per stream-step in µs (p50 of one step call / streams):", "",
             "| file | threads | " + " | ".join(f"{n} streams" for n in counts) + " |",
             "|---|---|" + "---|" * len(counts)]
    for row in rows:
        for label, by_n in row["streams"].items():
            lines.append(f"| {row['file']} | {label} | " + " | ".join(
                _num((by_n.get(n) or {}).get("per_stream_us"), ".3f") for n in counts) + " |")
    return lines


def sweep_section(res: dict) -> list[str]:
    sw = res.get("sweep")
    if not sw or not sw.get("p50_ms"):
        return []
    ts = [str(t) for t in sw["lengths"]]
    lines = ["", f"Latency p50 in ms against sequence length T (batch 1, {sw['threads']} thread, "
             f"{sw['provider']}); the winner of each T in bold:", "",
             "| engine | " + " | ".join(f"T={t}" for t in ts) + " |", "|---|" + "---|" * len(ts)]
    for engine, by_t in sw["p50_ms"].items():
        cells = []
        for t in ts:
            win = (sw["winners"].get(t) or {}).get("engine") == engine
            cell = _num(by_t.get(t), ".4f")
            cells.append(f"**{cell}**" if win and by_t.get(t) is not None else cell)
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    lines += [""]
    for t in ts:
        w = sw["winners"].get(t)
        if w:
            lines.append(f"- T={t}: **{w['engine']}** ({w['p50_ms']:.4f} ms{winner_margin(w, '×')})")
    return lines


COMMANDS = """\
| figure | command |
|---|---|
| every table and figure of a model (JSON) | `python -m pipeline.benchmark NAME` (knobs: `benchmark:` in params.yaml), or `rnnx bench models/onnx/NAME --keras models/NAME.keras --data test.npz --json NAME.json` |
| this report and its figures | `python -m pipeline.report lstm gru cnn_lstm char_gru` |
| session-option figures | `python scripts/bench_session_options.py models/onnx/lstm/stream.onnx` |
| int8 GRU candidates | `python scripts/bench_int8_gru.py models/gru.keras` |
| int8 stream graphs (one GEMM of [x, h] vs DynamicQuantizeLSTM) | `python scripts/bench_int8_stream.py models/onnx/lstm/stream.onnx` |
| CUDA rows (GPU machine) | `scripts/bench-gpu.sh` |
"""


def cuda_line(results: dict) -> str:
    measured = any(r["provider"] == "cuda" for res in results.values() for r in res["rows"])
    if measured:
        return "CUDA rows were measured (provider `cuda`)."
    reasons = {s["reason"] for res in results.values() for s in res.get("skipped_providers", [])
               if s["provider"] == "cuda"}
    why = f": {sorted(reasons)[0]}" if reasons else ""
    return f"**CUDA rows were not measured** on this machine{why}. `scripts/bench-gpu.sh` adds them on a GPU machine."


def render(results: dict, verdicts: list[dict]) -> str:
    first = next(iter(results.values()))
    lines = ["# rnnx benchmark report", "",
             f"Machine: {summary(first['machine'])}.", "", cuda_line(results), "",
             "Latency is per call (batch 1), throughput is whole sequences per second; stream and unrolled "
             "variants are fed chunk by chunk through the edge runtime. Speed-ups are baseline time / "
             "onnxruntime time on the same inputs and threads, timed interleaved in rounds (each engine a block "
             "of calls per round): each is the median over rounds of the ratio of the engines' fastest call "
             "in that round, with its 95% interval. Load from other processes lengthens calls, unevenly "
             "between engines; the fastest call of a block is the steadiest estimate of an engine's own cost, "
             "while p50/p90/p99 show every call, load included. The winner of each sequence length is "
             "decided the same way.", "",
             "## Targets", "", *targets_table(verdicts), "",
             "## Figures", "",
             *[f"![{k}]({v})" for k, v in FIGURES.items()], "",
             "## Commands", "", COMMANDS]
    for name, res in results.items():
        lines += model_section(name, res)
    return "\n".join(lines)


def run(names, reports_dir: Path, metrics_dir: Path, gate: float | None = 1.0) -> dict:
    results = load_results(reports_dir, names)
    verdicts = evaluate_targets(results)
    reports_dir.mkdir(parents=True, exist_ok=True)
    report_plots.latency(results, reports_dir / FIGURES["latency"], targets=TARGETS[0][2])
    for key, draw in (("sweep", report_plots.sweep), ("streams", report_plots.streams)):
        extra = {"target_us": STREAMS_GOAL[2], "at": STREAMS_GOAL[1], "target_model": STREAMS_GOAL[0]} \
            if key == "streams" else {}
        if draw(results, reports_dir / FIGURES[key], **extra) is None:
            report_plots.empty(reports_dir / FIGURES[key], f"no {key} figures in these results")
    report_plots.accuracy_drop(results, reports_dir / FIGURES["accuracy_drop"], gate=gate)
    report_plots.size(results, reports_dir / FIGURES["size"])
    atomic.write_bytes(reports_dir / "report.md", render(results, verdicts).encode())
    write_json(metrics_dir / "report" / "targets.json",
               {f"{v['model']}.{v['target']}": {"value": v["value"], "limit": v["limit"], "met": v["met"]}
                for v in verdicts})
    return {"verdicts": verdicts, "models": list(results)}


def accuracy_gate(params_path: Path) -> float:
    """quantize.max_drop of params.yaml (the gate quantized models must pass), 1.0 without the file."""
    from pipeline.params import load_params

    if not Path(params_path).is_file():
        return 1.0
    value = (load_params(params_path).get("quantize") or {}).get("max_drop", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"quantize.max_drop must be a number; got {value!r}")
    return float(value)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"models (default: {', '.join(models.MODEL_NAMES)})")
    ap.add_argument("--reports", default="reports", type=Path)
    ap.add_argument("--metrics", default="metrics", type=Path)
    ap.add_argument("--params", default="params.yaml", type=Path,
                    help="for the accuracy gate drawn (quantize.max_drop; default 1.0 without the file)")
    args = ap.parse_args(argv)
    try:
        out = run(args.names or models.MODEL_NAMES, args.reports, args.metrics, gate=accuracy_gate(args.params))
    except RnnxError as exc:
        print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    met = sum(1 for v in out["verdicts"] if v["met"])
    print(f"[report] {args.reports / 'report.md'}: {len(out['models'])} models, "
          f"targets met {met}/{len(out['verdicts'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
