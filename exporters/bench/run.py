"""Benchmark rnnx exports against their Keras original, TensorFlow and LiteRT.

Example::

    from exporters.bench import benchmark
    res = benchmark("models/onnx/lstm", keras="models/lstm.keras", x=x_test, y=y_test,
                    batches=[1, 64, 256], threads=["1", "all"], rounds=15)
    row = res["rows"][0]                     # full.onnx on cpu
    row["latency_ms"]["1"]["p50"], row["speedup"]["1"]["tf_function"], row["speedup_ci"]["1"]["tf_function"]

For every (file, provider) a row carries accuracy on the data, parity with the
Keras outputs (max/mean |Δ|, argmax agreement), batch-1 latency percentiles,
throughput per batch, ``StreamingModel.step`` latency for 1, 8, 64, 256
streams, size and load time, for each thread setting, plus ``speedup``
(baseline time / onnxruntime time at batch 1) and ``throughput_ratio`` (the
same at a larger batch) against every baseline measured on the same provider
and threads. All engines of a comparison are timed interleaved, in rounds
(``exporters.bench.rounds``): a ratio is the median of per-round ratios of the
engines' fastest calls, with its 95% interval in ``speedup_ci`` / ``throughput_ratio_ci``. The machine's
load over the run is in ``load`` (with a warning when it moved), and
``sweep`` holds batch-1 latency against sequence length. Baselines run in
worker processes (see exporters.bench.worker), which time the onnxruntime
files of their thread setting too; one that cannot run is listed with its
reason. A provider that is not available is skipped with the reason unless it
was asked for explicitly (``strict_providers``), then it raises ProviderError.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ProviderError

from . import data as bench_data, machine as bench_machine, ort as bench_onnx
from .plan import ORT, STEP, plan_for, run_plan
from .rounds import paired_ratio
from .. import keras_io
from ..errors import ConfigError, ModelFormatError

FORMAT = 2
DEFAULT_BATCHES = (1, 64, 256)
DEFAULT_THREADS = ("1", "all")
DEFAULT_REPS = 300           # timed calls per engine and comparison, spread over the rounds
DEFAULT_ROUNDS = 15
DEFAULT_BLOCK_MS = 20.0      # a block of calls stops growing beyond this (a slow engine gets one call)
DEFAULT_STREAMS = (1, 8, 64, 256)
DEFAULT_SWEEP = (1, 8, "model", 100, 500)
RANDOM_SAMPLES = 256
TF_NAMES = ("keras_call", "tf_function", "tf_function_xla", "predict_on_batch")
SWEEP_LABELS = {"tf:tf_function": "tf.function", "tf:tf_function_xla": "tf.function XLA", "litert": "LiteRT"}


def thread_settings(labels) -> dict:
    """["1", "all"] -> {"1": 1, "all": usable cores}."""
    out = {}
    for label in bench_data.parse_list(labels, str, "threads"):
        if label == "all":
            out[label] = bench_machine.usable_cores()
        elif label.isdigit() and int(label) >= 1:
            out[label] = int(label)
        else:
            raise ConfigError(f"threads must be positive integers or 'all'; got {label!r}")
    return out


def batch_sizes(values) -> list[int]:
    sizes = bench_data.parse_list(values, int, "batches")
    if any(b < 1 for b in sizes):
        raise ConfigError(f"batch sizes must be positive; got {sizes}")
    return sorted(set(sizes) | {1})


def stream_counts(values) -> list[int]:
    if values is None or values == [] or values == ():
        return []
    counts = bench_data.parse_list(values, int, "streams")
    if any(n < 1 for n in counts):
        raise ConfigError(f"stream counts must be positive; got {counts}")
    return sorted(counts)


def sweep_lengths(values, own: int) -> list[int]:
    """[1, 8, "model", 100] -> sorted distinct lengths, "model" being the data's own length."""
    if values is None or values == [] or values == ():
        return []
    out = set()
    for v in bench_data.parse_list(values, str, "sweep lengths"):
        if v == "model":
            out.add(int(own))
        elif v.isdigit() and int(v) >= 1:
            out.add(int(v))
        else:
            raise ConfigError(f"sweep lengths must be positive integers or 'model'; got {v!r}")
    return sorted(out)


def _positive(value, what: str, kind=int):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or \
            (kind is int and not isinstance(value, int)):
        raise ConfigError(f"{what} must be a positive {'integer' if kind is int else 'number'}; got {value!r}")
    return kind(value)


def _providers(requested, probe: Path, strict: bool) -> tuple[list[str], list[dict]]:
    """Providers that start a session here, and the skipped ones with the reason."""
    names = bench_data.parse_list(requested or ["cpu", "cuda"], str, "providers")
    usable, skipped = [], []
    for name in names:
        short = name.lower().replace("executionprovider", "") or name
        try:
            bench_onnx.open_quietly(probe, providers=[name], threads=1)
            usable.append(short)
        except ProviderError as exc:
            if strict:
                raise
            skipped.append({"provider": short, "reason": str(exc)})
    if not usable:
        raise ProviderError(f"none of the providers {names} can run here: "
                            + "; ".join(s["reason"] for s in skipped))
    return usable, skipped


def _data(x, y, infos, keras) -> tuple[np.ndarray, np.ndarray | None, dict]:
    if x is None:
        x, described = bench_data.default_inputs(infos, keras, RANDOM_SAMPLES)
        return x, None, described
    x, y = bench_data.check_xy(x, y)
    for info in infos:
        bench_data.check_against(x, tuple(info["input_shape"]), "x", info["file"])
    classes = next((i["output_last"] for i in infos if i.get("output_last")), None)
    bench_data.check_labels(y, classes)
    return x, y, {"source": "given", "steps": int(x.shape[1]), "steps_from": "the data",
                  "range": [float(x.min()), float(x.max())], "range_from": "the data"}


def _ratio(num: dict | None, den: dict | None) -> dict | None:
    if not num or not den or len(num["blocks"]) != len(den["blocks"]):
        return None
    return paired_ratio(num["blocks"], den["blocks"])


def _us(stats: dict) -> dict:
    return {k: (v * 1e3 if k != "reps" else v) for k, v in stats.items()}


def _throughput(stats: dict, batch: int) -> dict:
    return {"samples_per_s": batch / (stats["p50"] / 1e3), "batch": int(batch), "call_ms": stats}


def fill_rows(rows: list[dict], infos: list[dict], timed: dict, batches: list[int], streams: list[int]) -> None:
    """Latency, throughput, step and paired-ratio figures of every row from the timed groups, in place.

    ``timed``: thread label -> ``run_plan`` result.
    """
    by_file = {i["file"]: i for i in infos}
    for row in rows:
        p, f = row["provider"], row["file"]
        for label, got in timed.items():
            groups = got["groups"]
            lat = groups.get(f"latency@{p}", {})
            mine = lat.get(ORT + f)
            if mine:
                row["latency_ms"][label] = mine["stats"]
                for name, eng in lat.items():
                    if name.startswith(ORT):
                        continue
                    r = _ratio(eng, mine)
                    if r:
                        base = name.split(":", 1)[-1]
                        row["speedup"].setdefault(label, {})[base] = r["ratio"]
                        row["speedup_ci"].setdefault(label, {})[base] = [r["low"], r["high"]]
            row["throughput"][label] = {}
            for b in batches:
                grp = groups.get(f"throughput:{b}@{p}", {})
                mine = grp.get(ORT + f)
                if b == 1 or not mine:
                    continue
                row["throughput"][label][str(b)] = _throughput(mine["stats"], b)
                for name, eng in grp.items():
                    r = None if name.startswith(ORT) else _ratio(eng, mine)
                    if r:
                        base = name.split(":", 1)[-1]
                        row["throughput_ratio"].setdefault(label, {}).setdefault(str(b), {})[base] = r["ratio"]
                        row["throughput_ratio_ci"].setdefault(label, {}).setdefault(str(b), {})[base] = \
                            [r["low"], r["high"]]
            if by_file[f]["streaming"]:
                grp = groups.get(f"streams@{p}", {})
                for n in streams:
                    eng = grp.get(f"{STEP}{f}:{n}")
                    if not eng:
                        continue
                    us = _us(eng["stats"])
                    row["streams"].setdefault(label, {})[str(n)] = {"step_us": us, "per_stream_us": us["p50"] / n}
                    if n == 1:
                        row["step_us"][label] = us
        row["step_us"] = row["step_us"] or None
        row["streams"] = row["streams"] or None


def baseline_rows(timed: dict, meta: dict, batches: list[int], providers: list[str]) -> list[dict]:
    """One row per (baseline, provider, thread label) from the timed groups and the workers' notes."""
    out = []
    for label, got in timed.items():
        groups = got["groups"]
        notes = {(m["name"], m["provider"]): m for m in meta.get(label, [])}
        for p in providers:
            for name in TF_NAMES + ("litert",):
                key = name if name == "litert" else "tf:" + name
                info = notes.get((name, p))
                lat = groups.get(f"latency@{p}", {}).get(key)
                if info is None and lat is None:
                    continue
                row = {"name": name, "provider": p, "threads": label, "status": "ok", "reason": None,
                       "latency_ms": lat["stats"] if lat else None, "throughput": {}}
                extra = {k: v for k, v in (info or {}).items() if k not in ("name", "provider")}
                row.update(extra)
                if lat is None and row["status"] == "ok":
                    row.update(status="failed", reason=row.get("reason") or "not timed")
                for b in batches:
                    eng = groups.get(f"throughput:{b}@{p}", {}).get(key)
                    if b > 1 and eng:
                        row["throughput"][str(b)] = _throughput(eng["stats"], b)
                if name == "litert":
                    row["throughput_reason"] = "the LiteRT model is converted for batch 1"
                out.append(row)
    return out


def sweep_table(timed: dict, infos: list[dict], label: str, lengths: list[int], provider: str = "cpu") -> dict | None:
    """Batch-1 latency against sequence length: per engine p50/p90/p99, and the winner per length
    with its margin over the runner-up (a paired ratio with its 95% interval)."""
    if not lengths or label not in timed:
        return None
    groups = timed[label]["groups"]
    names = {ORT + i["file"]: f"ort {i['variant']} {i['precision']}" for i in infos}
    names.update(SWEEP_LABELS)
    table, winners, skipped = {}, {}, {}
    for t in lengths:
        grp = groups.get(f"sweep:{t}@{provider}", {})
        skipped[str(t)] = timed[label]["skipped"].get(f"sweep:{t}@{provider}", {})
        for key, eng in grp.items():
            table.setdefault(names.get(key, key), {})[str(t)] = eng["stats"]
        ranked = sorted(grp.items(), key=lambda kv: float(np.median(kv[1]["blocks"])))
        if len(ranked) > 1 and paired_ratio(ranked[1][1]["blocks"], ranked[0][1]["blocks"])["ratio"] < 1:
            ranked[0], ranked[1] = ranked[1], ranked[0]      # the paired comparison decides between the two
        if ranked:
            best = ranked[0]
            entry = {"engine": names.get(best[0], best[0]), "p50_ms": best[1]["stats"]["p50"]}
            if len(ranked) > 1:
                r = paired_ratio(ranked[1][1]["blocks"], best[1]["blocks"])
                entry.update(runner_up=names.get(ranked[1][0], ranked[1][0]), margin=r["ratio"],
                             margin_ci=[r["low"], r["high"]])
            winners[str(t)] = entry
    return {"threads": label, "provider": provider, "lengths": lengths, "p50_ms": {
        e: {t: s["p50"] for t, s in by_t.items()} for e, by_t in table.items()},
        "stats": table, "winners": winners, "skipped": skipped}


def benchmark(target, *, keras=None, x=None, y=None, providers=None, strict_providers: bool = False,
              batches=DEFAULT_BATCHES, threads=DEFAULT_THREADS, reps: int = DEFAULT_REPS,
              rounds: int = DEFAULT_ROUNDS, block_ms: float = DEFAULT_BLOCK_MS, streams=DEFAULT_STREAMS,
              sweep=DEFAULT_SWEEP, litert: bool = True, name: str | None = None, progress=None) -> dict:
    """Benchmark every .onnx file of ``target`` (a model directory or one file); see the module doc.

    Args:
        target: a directory of rnnx exports (full/stream/unrolled and their quantized files) or one .onnx.
        keras: the Keras model the files were exported from (.keras); enables parity vs Keras and
            the TensorFlow/LiteRT baselines. Without it, parity is against the fp32 full file.
        x, y: test inputs (samples, steps, ...) and optional integer labels (class indices); when x is
            None, random inputs of the model's own length and declared range (see ``data.default_inputs``).
        providers: e.g. ["cpu", "cuda"] (default: both, cuda skipped when unavailable).
        strict_providers: raise ProviderError for an unavailable provider instead of skipping it.
        batches: batch sizes (1 is always measured: latency); larger ones give throughput.
        threads: thread settings, integers or "all" (the usable cores).
        reps: timed calls per engine in each comparison, spread over the rounds (throughput: a tenth).
        rounds: interleaved rounds per comparison (the sweep takes half as many, at least 3).
        block_ms: a block of calls stops growing beyond this many milliseconds.
        streams: stream counts for ``StreamingModel.step`` of the stream/unrolled files ([] : none).
        sweep: sequence lengths for the batch-1 latency sweep on the fewest threads; "model" is the
            data's own length ([] : no sweep).
        litert: also measure LiteRT (needs ``keras``).
        progress: callable(str) receiving one line per step and per row.

    Raises:
        ModelFormatError (no .onnx files, unreadable file), InputShapeError (data or Keras model
        that does not fit the ONNX models), InputValueError (labels outside the model's classes),
        ProviderError, ConfigError.
    """
    say = progress or (lambda _m: None)
    setup = _setup(target, keras, x, y, providers, strict_providers, batches, threads, reps, rounds, block_ms,
                   streams, sweep, say)
    started = time.time()
    result = {"format": FORMAT, "model": name or Path(target).stem, "target": str(target),
              "machine": bench_machine.describe_machine(), "settings": setup.settings,
              "data": {**setup.data_info, "samples": int(setup.x.shape[0]), "shape": list(setup.x.shape),
                       "labels": setup.y is not None},
              "skipped_providers": setup.skipped, "notes": [], "keras": None, "baselines": [], "rows": []}
    load = [bench_machine.load_sample()]
    timed, meta, reference, ref_name = _time_engines(result, setup, keras, litert, say)
    for got in timed.values():
        load += got["load"]
    _fill_result(result, setup, timed, meta, reference, ref_name, say)
    load.append(bench_machine.load_sample())
    result["load"] = bench_machine.load_summary(load, bench_machine.usable_cores())
    if result["load"]["warning"]:
        result["notes"].append("load: " + result["load"]["warning"])
        say("warning: " + result["load"]["warning"])
    result["seconds"] = round(time.time() - started, 1)
    return result


@dataclass
class _Setup:
    """What a benchmark measures: the files, the inputs, the providers and a timing plan per thread setting."""

    infos: list
    x: object
    y: object
    data_info: dict
    providers: list
    skipped: list
    plans: dict
    settings: dict
    t1: str          # the thread setting with the fewest threads (the sweep's)

    @property
    def most_threads(self) -> int:
        return max(self.settings["threads"].values())


def _setup(target, keras, x, y, providers, strict_providers, batches, threads, reps, rounds, block_ms, streams,
           sweep, say) -> _Setup:
    reps, rounds = _positive(reps, "reps"), _positive(rounds, "rounds")
    block_ms = _positive(block_ms, "block_ms", float)
    threads, batches, streams = thread_settings(threads), batch_sizes(batches), stream_counts(streams)
    files = bench_onnx.model_files(target)
    infos = [bench_onnx.describe(f) for f in files]
    x, y, data_info = _data(x, y, infos, keras)
    lengths = sweep_lengths(sweep, x.shape[1])
    providers, skipped = _providers(providers, files[0], strict_providers)
    for s in skipped:
        say(f"skipping provider {s['provider']}: {s['reason']}")
    if data_info["source"] == "random":
        say(f"no data given: {x.shape[0]} random inputs of {data_info['steps']} steps ({data_info['steps_from']}), "
            f"uniform in {data_info['range']} ({data_info['range_from']})")
    calls = max(1, -(-reps // rounds))
    t1 = min(threads, key=lambda k: threads[k])
    plans = {label: plan_for(infos, label=label, threads=count, providers=providers, batches=batches,
                             rounds=rounds, calls=calls, block_ms=block_ms, streams=streams,
                             sweep=lengths if label == t1 else [])
             for label, count in threads.items()}
    settings = {"batches": batches, "threads": threads, "reps": reps, "rounds": rounds, "calls_per_block": calls,
                "block_ms": block_ms, "streams": streams, "sweep": lengths, "providers": providers}
    return _Setup(infos, x, y, data_info, providers, skipped, plans, settings, t1)


def _time_engines(result: dict, setup: _Setup, keras, litert: bool, say) -> tuple:
    """(timings per thread setting, the Keras worker's meta, reference outputs, their name): the
    Keras/TF/LiteRT workers run the plans when there is a Keras model, else onnxruntime here;
    without Keras outputs the reference is the fp32 full file."""
    timed, meta, reference, ref_name = {}, {}, None, None
    if keras is not None:
        got = _workers(result, keras, setup.x, setup.infos, setup.plans, litert, say)
        timed, meta, reference = got["timed"], got["meta"], got["keras_outputs"]
        ref_name = "keras" if reference is not None else None
    else:
        result["notes"].append("no Keras model given: no TensorFlow/LiteRT baselines; parity is against "
                               "the fp32 full ONNX file")
    for label, plan in setup.plans.items():
        if label not in timed:                       # no Keras model, or its worker crashed
            timed[label] = run_plan(plan, setup.x, progress=say)
    if reference is None:
        full = next((i for i in setup.infos if i["variant"] == "full" and i["precision"] == "fp32"), None)
        if full is not None:
            reference = bench_onnx.outputs(Path(full["path"]), full, setup.x, "cpu", setup.most_threads)
            ref_name = f"onnx:{full['file']}"
    return timed, meta, reference, ref_name


def _fill_result(result: dict, setup: _Setup, timed: dict, meta: dict, reference, ref_name, say) -> None:
    """One row per file and provider (accuracy, parity, timings), the baselines and the sweep."""
    result["parity_reference"] = ref_name
    for provider in setup.providers:
        for info in setup.infos:
            row = bench_onnx.file_row(info, provider, setup.x, setup.y, reference, threads=setup.most_threads)
            row["parity_reference"] = ref_name
            result["rows"].append(row)
    batches, streams = setup.settings["batches"], setup.settings["streams"]
    fill_rows(result["rows"], setup.infos, timed, batches, streams)
    result["baselines"] = baseline_rows(timed, meta, batches, setup.providers)
    _litert_accuracy(result, setup.y)
    result["sweep"] = sweep_table(timed, setup.infos, setup.t1, setup.settings["sweep"], setup.providers[0])
    result["timing_skipped"] = {label: {g: s for g, s in got["skipped"].items() if s}
                                for label, got in timed.items()}
    for k, row in enumerate(result["rows"], 1):
        say(f"[{k}/{len(result['rows'])}] {row_line(row)}")


def _workers(result, keras, x, infos, plans, litert, say) -> dict:
    from .worker import run_workers

    keras = Path(keras)
    if not keras.is_file():
        raise ModelFormatError(f"no Keras model file at {str(keras)!r}")
    meta_sha = _source_sha(infos)
    if meta_sha and meta_sha != keras_io.file_sha256(keras):
        result["notes"].append(f"{keras.name} is not byte-identical to the file the exports record as their "
                               "source (sha256 differs); parity shows how far apart they are")
    full = next((i for i in infos if i["variant"] == "full"), infos[0])
    got = run_workers(keras, x, plans, onnx_input=list(full["input_shape"]), onnx_output_last=full["output_last"],
                      litert=litert, progress=say)
    result["notes"] += got["notes"]
    if got["failed"]:
        result["notes"].append(f"TensorFlow baselines missing: {got['failed']}")
    if got["keras_outputs"] is not None:
        result["keras"] = {"file": keras.name, "accuracy": None}
        result["_keras_outputs"], result["_litert_outputs"] = got["keras_outputs"], got["litert_outputs"]
    return got


def _litert_accuracy(result: dict, y) -> None:
    """Keras accuracy, and LiteRT's accuracy and parity against Keras, from the outputs _workers kept."""
    lite, ref = result.pop("_litert_outputs", None), result.pop("_keras_outputs", None)
    if result["keras"] is None or ref is None:
        return
    result["keras"]["accuracy"] = bench_onnx.accuracy(ref, y)
    for base in result["baselines"]:
        if base["name"] == "litert" and lite is not None:
            base["accuracy"], base["parity"] = bench_onnx.accuracy(lite, y), bench_onnx.parity(lite, ref)


def _source_sha(infos) -> str | None:
    """sha256 of the .keras file the exports say they came from (None when they do not say)."""
    for info in infos:
        source = info.get("source") or {}
        if source.get("sha256_of") == "file":
            return source.get("sha256")
    return None


def row_line(row: dict) -> str:
    """One progress line for a row."""
    lat = row["latency_ms"].get("1") or next(iter(row["latency_ms"].values()), {})
    acc = row.get("accuracy")
    par = row.get("parity") or {}
    step = (row.get("step_us") or {}).get("1")
    parts = [f"{row['file']} [{row['provider']}]",
             f"acc {acc:.4f}" if acc is not None else "acc -",
             f"max|d| {par['max_abs_diff']:.2g}" if par.get("max_abs_diff") is not None else "max|d| -",
             f"p50 {lat['p50']:.4f} ms" if lat else "p50 -"]
    if step:
        parts.append(f"step p50 {step['p50']:.1f} us")
    parts.append(f"{row['size_bytes'] / 1024:.0f} KiB")
    return "  ".join(parts)
