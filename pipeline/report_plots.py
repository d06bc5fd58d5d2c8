"""The report's figures (matplotlib, Agg): latency by runtime, latency against sequence length,
per-stream step cost, accuracy drop and size by precision.

Each figure has one panel per model, so a person compares runtimes within a
model at a glance; every bar carries its value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from exporters.bench.text import baseline, headline, one_thread
from exporters.quant_modes import REGISTRY as QUANT_MODES
from runtime.contract import VARIANTS

BASELINE_LABELS = {"keras_call": "Keras model(x)", "tf_function": "tf.function",
                   "tf_function_xla": "tf.function XLA", "predict_on_batch": "predict_on_batch",
                   "litert": "LiteRT (batch 1)"}
# fp32, then float16 modes before the integer ones, each in its registry order
PRECISION_ORDER = ("fp32", *sorted(QUANT_MODES, key=lambda name: QUANT_MODES[name].integer))
PRECISION_COLORS = {"fp32": "#1f77b4", **{name: m.color for name, m in QUANT_MODES.items()}}
ORT_COLOR, TF_COLOR, LITERT_COLOR = "#1f77b4", "#a0a0a0", "#ff7f0e"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(plt, n: int, height: float):
    cols = min(2, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, height * rows), squeeze=False)
    flat = [ax for line in axes for ax in line]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat


def _save(fig, path: Path) -> Path:
    from pipeline.outputs import atomic_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    fig.clf()
    return path


def latency(results: dict, path: Path, targets: dict | None = None) -> Path:
    """Batch-1 p50 on one thread (bars) with p90 and p99 whiskers: onnxruntime fp32 variants (cpu)
    next to every baseline, log scale; ``targets`` (model -> ms) is drawn as a dashed line."""
    plt = _pyplot()
    fig, axes = _panels(plt, len(results), 3.8)
    for ax, (name, res) in zip(axes, results.items()):
        t1 = one_thread(res)
        bars = []
        for r in res["rows"]:
            if r["precision"] == "fp32" and r["provider"] == "cpu" and r["latency_ms"].get(t1):
                bars.append((f"ORT {r['variant']}", r["latency_ms"][t1], ORT_COLOR))
        for key, label in BASELINE_LABELS.items():
            base = baseline(res, key, "cpu", t1)
            if base and base["status"] == "ok" and base.get("latency_ms"):
                bars.append((label, base["latency_ms"], LITERT_COLOR if key == "litert" else TF_COLOR))
        ys = list(range(len(bars)))
        p50 = [b[1]["p50"] for b in bars]
        ax.barh(ys, p50, color=[b[2] for b in bars])
        for y, (_, stats, _) in zip(ys, bars):
            ax.plot([stats["p50"], stats["p99"]], [y, y], color="black", linewidth=0.8)
            ax.plot([stats["p90"]], [y], marker="|", color="black", markersize=8)
            ax.plot([stats["p99"]], [y], marker="|", color="black", markersize=5)
            ax.text(stats["p99"], y, f"  {stats['p50']:.3g} ms", va="center", fontsize=8)
        ax.set_yticks(ys, [b[0] for b in bars])
        ax.invert_yaxis()
        ax.set_xscale("log")
        limit = (targets or {}).get(name)
        if limit:
            ax.axvline(limit, color="red", linestyle="--", linewidth=1)
            ax.text(limit, -0.6, f" target {limit:g} ms", color="red", fontsize=7, va="bottom")
        if bars:
            ax.set_xlim(min(p50) / 2, max(b[1]["p99"] for b in bars) * 8)
        ax.set_title(f"{name}: batch-1 latency, {t1} thread: bar p50, whisker to p99, tick p90", fontsize=9)
        ax.legend(handles=_legend(), fontsize=7, loc="lower right")
        ax.set_xlabel("milliseconds (log scale, lower is better)")
    return _save(fig, path)


def sweep(results: dict, path: Path) -> Path | None:
    """Batch-1 p50 against sequence length, one line per engine (log-log), for models with a sweep."""
    swept = {n: r["sweep"] for n, r in results.items() if r.get("sweep") and r["sweep"]["p50_ms"]}
    if not swept:
        return None
    plt = _pyplot()
    fig, axes = _panels(plt, len(swept), 4.2)
    for ax, (name, sw) in zip(axes, swept.items()):
        engines = sorted(sw["p50_ms"], key=lambda e: (not e.startswith("ort"), e))
        for k, engine in enumerate(engines):
            by_t = sw["p50_ms"][engine]
            ts = [t for t in sw["lengths"] if str(t) in by_t]
            if not ts:
                continue
            style = "-" if engine.startswith("ort") else "--"
            width = 2.0 if engine.startswith("ort full") or not engine.startswith("ort") else 0.9
            ax.plot(ts, [by_t[str(t)] for t in ts], style, marker="o", markersize=3, linewidth=width, label=engine,
                    color=plt.cm.tab20(k % 20))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sw["lengths"], [str(t) for t in sw["lengths"]])
        ax.set_xlabel("sequence length T (steps)")
        ax.set_ylabel("p50 ms, batch 1")
        ax.set_title(f"{name}: latency against length, {sw['threads']} thread (lower is better)", fontsize=9)
        ax.legend(fontsize=6, loc="upper left", ncol=2)
        ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


def streams(results: dict, path: Path, target_us: float | None = None, at: int = 64,
            target_model: str | None = None) -> Path | None:
    """Per-stream cost of one StreamingModel.step against the number of streams (log-log); the goal
    (``target_us`` at ``at`` streams) is drawn on ``target_model``'s panel (every panel when None)."""
    have = {n: r for n, r in results.items() if any(row.get("streams") for row in r["rows"])}
    if not have:
        return None
    plt = _pyplot()
    fig, axes = _panels(plt, len(have), 4.0)
    for ax, (name, res) in zip(axes, have.items()):
        streamed = [row for row in res["rows"] if row.get("streams")]
        for k, row in enumerate(streamed):
            for label, by_n in row["streams"].items():
                ns = sorted(int(n) for n in by_n)
                style = "-" if label == one_thread(res) else ":"
                ax.plot(ns, [by_n[str(n)]["per_stream_us"] for n in ns], style, marker="o", markersize=3,
                        label=f"{row['variant']} {row['precision']}, {label} thr", color=plt.cm.tab10(k % 10))
        if target_us and target_model in (None, name):
            ax.axhline(target_us, color="red", linestyle="--", linewidth=1)
            ax.text(at, target_us, f" goal {target_us:g} us at {at} streams", color="red", fontsize=7,
                    va="bottom")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("streams per step call")
        ax.set_ylabel("us per stream-step (p50 / streams)")
        ax.set_title(f"{name}: StreamingModel.step cost per stream (lower is better)", fontsize=9)
        ax.legend(fontsize=6, loc="upper right", ncol=2)
        ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


def _legend():
    from matplotlib.patches import Patch

    return [Patch(color=ORT_COLOR, label="onnxruntime (rnnx runtime)"), Patch(color=TF_COLOR, label="TensorFlow"),
            Patch(color=LITERT_COLOR, label="LiteRT")]


def _grouped(ax, variants, precisions, value_of, fmt, ylabel):
    import numpy as np

    width = 0.8 / max(1, len(precisions))
    for k, prec in enumerate(precisions):
        xs = np.arange(len(variants)) + (k - (len(precisions) - 1) / 2) * width
        vals = [value_of(v, prec) for v in variants]
        shown = [(x, v) for x, v in zip(xs, vals) if v is not None]
        if not shown:
            continue
        ax.bar([s[0] for s in shown], [s[1] for s in shown], width, label=prec,
               color=PRECISION_COLORS.get(prec))
        for x, v in shown:
            ax.text(x, v, format(v, fmt), ha="center", va="bottom" if v >= 0 else "top", fontsize=7)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.15)
    if precisions:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, title="precision", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.text(0.5, 0.5, "only fp32 files: nothing to compare", ha="center", transform=ax.transAxes)


def _by(res: dict) -> tuple[list, list, dict]:
    rows = {(r["variant"], r["precision"]): r for r in res["rows"] if r["provider"] == "cpu"}
    variants = sorted({v for v, _ in rows}, key=lambda v: VARIANTS.index(v) if v in VARIANTS else 9)
    precisions = sorted({p for _, p in rows}, key=lambda p: PRECISION_ORDER.index(p) if p in PRECISION_ORDER else 9)
    return variants, precisions, rows


def accuracy_drop(results: dict, path: Path, gate: float | None = None) -> Path:
    """Accuracy lost against the fp32 file of the same variant, in percentage points, every panel on
    one scale, with the quantization gate (``gate`` points) drawn."""
    plt = _pyplot()
    fig, axes = _panels(plt, len(results), 3.4)
    drops = {}
    for name, res in results.items():
        variants, precisions, rows = _by(res)

        def drop(v, p, rows=rows):
            base, row = rows.get((v, "fp32")), rows.get((v, p))
            if not base or not row or base.get("accuracy") is None or row.get("accuracy") is None:
                return None
            return 100 * (base["accuracy"] - row["accuracy"])

        drops[name] = (variants, [p for p in precisions if p != "fp32"], drop)
    values = [d(v, p) for variants, precs, d in drops.values() for v in variants for p in precs]
    values = [v for v in values if v is not None] + [0.0] + ([gate] if gate else [])
    lo, hi = min(values), max(values)
    pad = 0.15 * (hi - lo or 1)
    for ax, (name, (variants, precisions, drop)) in zip(axes, drops.items()):
        _grouped(ax, variants, precisions, drop, ".2f", "accuracy drop vs fp32 (points)")
        ax.axhline(0, color="black", linewidth=0.6)
        if gate:
            ax.axhline(gate, color="red", linestyle="--", linewidth=1)
            ax.text(len(variants) - 0.5, gate, f"gate {gate:g} pt", color="red", fontsize=7, ha="right",
                    va="bottom")
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"{name}: accuracy drop by precision (lower is better; same scale in every panel)",
                     fontsize=9)
    return _save(fig, path)


def size(results: dict, path: Path) -> Path:
    """File size per variant and precision, KiB."""
    plt = _pyplot()
    fig, axes = _panels(plt, len(results), 3.4)
    for ax, (name, res) in zip(axes, results.items()):
        variants, precisions, rows = _by(res)
        _grouped(ax, variants, precisions,
                 lambda v, p: rows[(v, p)]["size_bytes"] / 1024 if (v, p) in rows else None, ".3g", "KiB")
        ax.set_title(f"{name}: model file size by precision", fontsize=10)
    return _save(fig, path)


def empty(path: Path, message: str) -> Path:
    """A small figure that says why there is nothing to draw (so the report's image links hold)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10)
    return _save(fig, path)
