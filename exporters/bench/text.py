"""Headline figures of a benchmark result, and its plain-text summary for the CLI.

``headline`` picks the numbers a person compares first (batch-1 p50 on one
thread, throughput at the largest batch on all cores, step p50, speed-ups);
the report stage builds its tables from the same function.
"""

from __future__ import annotations

from . import machine as bench_machine

SPEEDUP_BASELINES = ("keras_call", "tf_function", "tf_function_xla", "predict_on_batch", "litert")


def one_thread(result: dict) -> str:
    """The thread label with the fewest threads (latency comparisons)."""
    threads = result["settings"]["threads"]
    return min(threads, key=lambda k: threads[k])


def all_threads(result: dict) -> str:
    threads = result["settings"]["threads"]
    return max(threads, key=lambda k: threads[k])


def big_batch(result: dict) -> str | None:
    sizes = [b for b in result["settings"]["batches"] if b > 1]
    return str(max(sizes)) if sizes else None


def headline(row: dict, result: dict) -> dict:
    """Flat figures of one row (None where not measured)."""
    t1, tall, bb = one_thread(result), all_threads(result), big_batch(result)
    lat = row["latency_ms"].get(t1) or {}
    thr = (row["throughput"].get(tall) or {}).get(bb) if bb else None
    step = (row.get("step_us") or {}).get(t1) or {}
    parity = row.get("parity") or {}
    speed = row.get("speedup", {}).get(t1, {})
    ratio = ((row.get("throughput_ratio", {}).get(tall) or {}).get(bb) or {}) if bb else {}
    out = {"file": row["file"], "variant": row["variant"], "precision": row["precision"],
           "provider": row["provider"], "accuracy": row.get("accuracy"),
           "max_abs_diff": parity.get("max_abs_diff"), "mean_abs_diff": parity.get("mean_abs_diff"),
           "argmax_agreement": parity.get("argmax_agreement"),
           "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
           "throughput": thr["samples_per_s"] if thr else None, "step_p50_us": step.get("p50"),
           "size_bytes": row["size_bytes"], "load_ms": row["load_ms"]}
    for name in SPEEDUP_BASELINES:
        out[f"speedup_{name}"] = speed.get(name)
        out[f"throughput_ratio_{name}"] = ratio.get(name)
    return out


def baseline(result: dict, name: str, provider: str = "cpu", threads: str | None = None) -> dict | None:
    threads = threads or one_thread(result)
    for base in result.get("baselines", []):
        if base["name"] == name and base["provider"] == provider and base["threads"] == threads:
            return base
    return None


def _f(value, fmt: str, dash: str = "-") -> str:
    return dash if value is None else format(value, fmt)


def render(result: dict) -> str:
    """The result as text: machine, one line per row, the baselines, skipped providers and notes."""
    t1, tall, bb = one_thread(result), all_threads(result), big_batch(result)
    lines = [f"model {result['model']}: {result['data']['samples']} {result['data']['source']} samples, "
             f"reps {result['settings']['reps']}, {result.get('seconds', '?')} s",
             f"machine: {bench_machine.summary(result['machine'])}", "",
             f"{'file':<28} {'prov':<5} {'acc':>7} {'max|d|':>8} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'thr/s@' + (bb or '-'):>11} {'step us':>8} {'KiB':>7} {'x tf.fn':>8} {'x LiteRT':>8}"]
    for row in result["rows"]:
        h = headline(row, result)
        lines.append(f"{h['file']:<28} {h['provider']:<5} {_f(h['accuracy'], '.4f'):>7} "
                     f"{_f(h['max_abs_diff'], '.1e'):>8} {_f(h['p50_ms'], '.4f'):>8} {_f(h['p99_ms'], '.4f'):>8} "
                     f"{_f(h['throughput'], '.0f'):>11} {_f(h['step_p50_us'], '.1f'):>8} "
                     f"{h['size_bytes'] / 1024:>7.1f} {_f(h['speedup_tf_function'], '.1f'):>8} "
                     f"{_f(h['speedup_litert'], '.2f'):>8}")
    if result.get("baselines"):
        lines += ["", f"baselines (p50 at batch 1 with {t1} thread(s); throughput at batch {bb} on {tall}):"]
        for base in result["baselines"]:
            if base["threads"] != t1:
                continue
            if base["status"] != "ok":
                lines.append(f"  {base['name']:<18} {base['provider']:<5} not run: {base['reason']}")
                continue
            other = baseline(result, base["name"], base["provider"], tall) or {}
            thr = (other.get("throughput") or {}).get(bb) if bb else None
            extra = f"  acc {base['accuracy']:.4f}" if base.get("accuracy") is not None else ""
            lines.append(f"  {base['name']:<18} {base['provider']:<5} p50 {base['latency_ms']['p50']:.4f} ms"
                         f"  thr {_f(thr['samples_per_s'] if thr else None, '.0f')}/s{extra}")
    for skip in result.get("skipped_providers", []):
        lines.append(f"provider {skip['provider']} skipped: {skip['reason']}")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
