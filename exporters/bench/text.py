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


def baselines_shown(result: dict, t1: str, tall: str, bb: str | None):
    """(baseline row, its throughput at batch `bb` on `tall` threads, or None) for every baseline
    measured on `t1` threads: what the summary and the report list."""
    for base in result.get("baselines", []):
        if base["threads"] != t1:
            continue
        other = baseline(result, base["name"], base["provider"], tall) or {} if base["status"] == "ok" else {}
        yield base, ((other.get("throughput") or {}).get(bb) if bb else None)


def headline(row: dict, result: dict) -> dict:
    """Flat figures of one row (None where not measured)."""
    t1, tall, bb = one_thread(result), all_threads(result), big_batch(result)
    lat = row["latency_ms"].get(t1) or {}
    thr = (row["throughput"].get(tall) or {}).get(bb) if bb else None
    step = (row.get("step_us") or {}).get(t1) or {}
    parity = row.get("parity") or {}
    speed = row.get("speedup", {}).get(t1, {})
    speed_ci = (row.get("speedup_ci") or {}).get(t1, {})
    ratio = ((row.get("throughput_ratio", {}).get(tall) or {}).get(bb) or {}) if bb else {}
    ratio_ci = (((row.get("throughput_ratio_ci") or {}).get(tall) or {}).get(bb) or {}) if bb else {}
    streams = (row.get("streams") or {}).get(t1) or {}
    out = {"file": row["file"], "variant": row["variant"], "precision": row["precision"],
           "provider": row["provider"], "accuracy": row.get("accuracy"),
           "max_abs_diff": parity.get("max_abs_diff"), "mean_abs_diff": parity.get("mean_abs_diff"),
           "argmax_agreement": parity.get("argmax_agreement"),
           "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
           "throughput": thr["samples_per_s"] if thr else None, "step_p50_us": step.get("p50"),
           "size_bytes": row["size_bytes"], "load_ms": row["load_ms"]}
    for n, figures in streams.items():
        out[f"per_stream_us_{n}"] = figures["per_stream_us"]
    for name in SPEEDUP_BASELINES:
        out[f"speedup_{name}"] = speed.get(name)
        out[f"speedup_{name}_ci"] = speed_ci.get(name)
        out[f"throughput_ratio_{name}"] = ratio.get(name)
        out[f"throughput_ratio_{name}_ci"] = ratio_ci.get(name)
    return out


def ratio_text(value, ci, fmt: str = ".2f") -> str:
    """'1.35 [1.30–1.41]' (the 95% interval of a paired ratio), or '-'."""
    if value is None:
        return "-"
    if not ci:
        return format(value, fmt)
    return f"{value:{fmt}} [{ci[0]:{fmt}}–{ci[1]:{fmt}}]"


def data_line(result: dict) -> str:
    """Which inputs the figures were measured on."""
    d = result["data"]
    if d["source"] == "random":
        return (f"inputs: {d['samples']} random sequences of {d['steps']} steps ({d.get('steps_from')}), "
                f"uniform in {d.get('range')} ({d.get('range_from')}); no labels, no accuracy")
    return f"inputs: {d['samples']} given sequences of {d['steps']} steps, values in {d.get('range')}" + (
        "" if d.get("labels") else "; no labels, no accuracy")


def load_line(result: dict) -> str:
    load = result.get("load") or {}
    if not load:
        return "load: not recorded"
    steal = load.get("steal_pct")
    return (f"load (1-min avg): {_f(load.get('load1_start'), '.2f')} at start, {_f(load.get('load1_end'), '.2f')} "
            f"at end, {_f(load.get('load1_min'), '.2f')}..{_f(load.get('load1_max'), '.2f')} over "
            f"{load.get('samples')} samples; "
            f"busy cores {load.get('busy_cores')}; steal {'-' if steal is None else f'{steal}%'}")


def sweep_lines(result: dict) -> list[str]:
    sweep = result.get("sweep")
    if not sweep:
        return []
    lengths = [str(t) for t in sweep["lengths"]]
    lines = [f"latency p50 (ms) against sequence length, batch 1, {sweep['threads']} thread(s):",
             f"  {'engine':<28}" + "".join(f"{'T=' + t:>10}" for t in lengths)]
    for engine, by_t in sweep["p50_ms"].items():
        lines.append(f"  {engine:<28}" + "".join(f"{_f(by_t.get(t), '.4f'):>10}" for t in lengths))
    for t in lengths:
        w = sweep["winners"].get(t)
        if w:
            lines.append(f"  T={t}: {w['engine']} wins ({w['p50_ms']:.4f} ms{winner_margin(w)})")
    return lines


def winner_margin(w: dict, times: str = "x") -> str:
    """How far behind a sweep winner its runner-up is ('; runner-up E takes 1.2 [1.1-1.3]x its time')."""
    if not w.get("runner_up"):
        return ""
    tie = w.get("margin_ci") and w["margin_ci"][0] <= 1.0
    return (f"; {'a tie within noise: ' if tie else ''}runner-up {w['runner_up']} takes "
            f"{ratio_text(w['margin'], w.get('margin_ci'))}{times} its time")


def stream_lines(result: dict) -> list[str]:
    counts = [str(n) for n in result["settings"].get("streams") or []]
    rows = [r for r in result["rows"] if r.get("streams")]
    if not counts or not rows:
        return []
    lines = ["StreamingModel.step, per-stream cost (us per stream-step, p50 of a step / streams):",
             f"  {'file':<28} {'thr':<4}" + "".join(f"{n + ' str':>10}" for n in counts)]
    for row in rows:
        for label, by_n in row["streams"].items():
            lines.append(f"  {row['file']:<28} {label:<4}" + "".join(
                f"{_f((by_n.get(n) or {}).get('per_stream_us'), '.3f'):>10}" for n in counts))
    return lines


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
    st = result["settings"]
    lines = [f"model {result['model']}: {st.get('rounds', '?')} interleaved rounds of up to "
             f"{st.get('calls_per_block', '?')} calls per engine, {result.get('seconds', '?')} s",
             data_line(result), f"machine: {bench_machine.summary(result['machine'])}", load_line(result), "",
             "speed-ups: median over rounds of the ratio of each engine's fastest call in the round "
             "[95% interval]; > 1: onnxruntime is faster",
             f"{'file':<28} {'prov':<5} {'acc':>7} {'max|d|':>8} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'thr/s@' + (bb or '-'):>11} {'step us':>8} {'KiB':>7} {'x tf.function':>20} {'x LiteRT':>20}"]
    for row in result["rows"]:
        h = headline(row, result)
        lines.append(f"{h['file']:<28} {h['provider']:<5} {_f(h['accuracy'], '.4f'):>7} "
                     f"{_f(h['max_abs_diff'], '.1e'):>8} {_f(h['p50_ms'], '.4f'):>8} {_f(h['p99_ms'], '.4f'):>8} "
                     f"{_f(h['throughput'], '.0f'):>11} {_f(h['step_p50_us'], '.1f'):>8} "
                     f"{h['size_bytes'] / 1024:>7.1f} "
                     f"{ratio_text(h['speedup_tf_function'], h['speedup_tf_function_ci'], '.1f'):>20} "
                     f"{ratio_text(h['speedup_litert'], h['speedup_litert_ci']):>20}")
    if result.get("baselines"):
        lines += ["", f"baselines (p50 at batch 1 with {t1} thread(s); throughput at batch {bb} on {tall}):"]
        for base, thr in baselines_shown(result, t1, tall, bb):
            if base["status"] != "ok":
                lines.append(f"  {base['name']:<18} {base['provider']:<5} not run: {base['reason']}")
                continue
            extra = f"  acc {base['accuracy']:.4f}" if base.get("accuracy") is not None else ""
            lines.append(f"  {base['name']:<18} {base['provider']:<5} p50 {base['latency_ms']['p50']:.4f} ms"
                         f"  thr {_f(thr['samples_per_s'] if thr else None, '.0f')}/s{extra}")
    for extra in (stream_lines(result), sweep_lines(result)):
        if extra:
            lines += [""] + extra
    for skip in result.get("skipped_providers", []):
        lines.append(f"provider {skip['provider']} skipped: {skip['reason']}")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
