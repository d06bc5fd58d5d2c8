"""The report's figures (matplotlib, Agg): latency by runtime, accuracy drop and size by precision.

Each figure has one panel per model, so a person compares runtimes within a
model at a glance; every bar carries its value.
"""

from __future__ import annotations

from pathlib import Path

from exporters.bench.text import baseline, headline, one_thread

BASELINE_LABELS = {"keras_call": "Keras model(x)", "tf_function": "tf.function",
                   "tf_function_xla": "tf.function XLA", "predict_on_batch": "predict_on_batch",
                   "litert": "LiteRT (batch 1)"}
PRECISION_ORDER = ("fp32", "fp16", "int8-dynamic", "int8-static")
PRECISION_COLORS = {"fp32": "#1f77b4", "fp16": "#ff7f0e", "int8-dynamic": "#2ca02c", "int8-static": "#d62728"}
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

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    fig.clf()
    return path


def latency(results: dict, path: Path) -> Path:
    """Batch-1 p50 on one thread: onnxruntime fp32 variants (cpu) next to every baseline, log scale."""
    plt = _pyplot()
    fig, axes = _panels(plt, len(results), 3.6)
    for ax, (name, res) in zip(axes, results.items()):
        t1 = one_thread(res)
        bars = [(f"ORT {r['variant']}", headline(r, res)["p50_ms"], ORT_COLOR) for r in res["rows"]
                if r["precision"] == "fp32" and r["provider"] == "cpu"]
        for key, label in BASELINE_LABELS.items():
            base = baseline(res, key, "cpu", t1)
            if base and base["status"] == "ok":
                bars.append((label, base["latency_ms"]["p50"], LITERT_COLOR if key == "litert" else TF_COLOR))
        bars = [b for b in bars if b[1]]
        ys = range(len(bars))
        ax.barh(list(ys), [b[1] for b in bars], color=[b[2] for b in bars])
        ax.set_yticks(list(ys), [b[0] for b in bars])
        ax.invert_yaxis()
        ax.set_xscale("log")
        for y, (_, value, _) in zip(ys, bars):
            ax.text(value, y, f" {value:.3g} ms", va="center", fontsize=8)
        ax.set_xlim(right=max(b[1] for b in bars) * 8 if bars else 1)
        ax.set_title(f"{name}: batch-1 latency p50, {t1} thread (lower is better)", fontsize=10)
        ax.legend(handles=_legend(), fontsize=8, loc="lower right")
        ax.set_xlabel("milliseconds (log scale)")
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
        ax.legend(fontsize=8, title="precision", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.text(0.5, 0.5, "only fp32 files: nothing to compare", ha="center", transform=ax.transAxes)


def _by(res: dict) -> tuple[list, list, dict]:
    rows = {(r["variant"], r["precision"]): r for r in res["rows"] if r["provider"] == "cpu"}
    variants = sorted({v for v, _ in rows}, key=lambda v: ("full", "stream", "unrolled").index(v)
                      if v in ("full", "stream", "unrolled") else 9)
    precisions = sorted({p for _, p in rows}, key=lambda p: PRECISION_ORDER.index(p) if p in PRECISION_ORDER else 9)
    return variants, precisions, rows


def accuracy_drop(results: dict, path: Path) -> Path:
    """Accuracy lost against the fp32 file of the same variant, in percentage points."""
    plt = _pyplot()
    fig, axes = _panels(plt, len(results), 3.4)
    for ax, (name, res) in zip(axes, results.items()):
        variants, precisions, rows = _by(res)

        def drop(v, p):
            base, row = rows.get((v, "fp32")), rows.get((v, p))
            if not base or not row or base.get("accuracy") is None or row.get("accuracy") is None:
                return None
            return 100 * (base["accuracy"] - row["accuracy"])

        _grouped(ax, variants, [p for p in precisions if p != "fp32"], drop, ".2f", "accuracy drop vs fp32 (points)")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(f"{name}: accuracy drop by precision (lower is better)", fontsize=10)
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
