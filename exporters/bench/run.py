"""Benchmark rnnx exports against their Keras original, TensorFlow and LiteRT.

Example::

    from exporters.bench import benchmark
    res = benchmark("models/onnx/lstm", keras="models/lstm.keras", x=x_test, y=y_test,
                    batches=[1, 64, 256], threads=["1", "all"], reps=200)
    row = res["rows"][0]                     # full.onnx on cpu
    row["latency_ms"]["1"]["p50"], row["speedup"]["1"]["tf_function"]

For every (file, provider) a row carries accuracy on the data, parity with the
Keras outputs (max/mean |Δ|, argmax agreement), batch-1 latency percentiles,
throughput per batch, streaming step latency, size and load time, for each
thread setting, plus ``speedup`` (baseline p50 / onnxruntime p50, batch 1)
and ``throughput_ratio`` (onnxruntime samples/s / baseline samples/s) against
every baseline measured on the same provider and threads. Baselines run in
worker processes (see exporters.bench.worker); one that cannot run is listed with its
reason. A provider that is not available is skipped with the reason unless it
was asked for explicitly (``strict_providers``), then it raises ProviderError.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from runtime.errors import ProviderError

from . import data as bench_data, machine as bench_machine, ort as bench_onnx
from .. import keras_io
from ..errors import ConfigError, ModelFormatError

FORMAT = 1
DEFAULT_BATCHES = (1, 64, 256)
DEFAULT_THREADS = ("1", "all")
DEFAULT_REPS = 200
RANDOM_SAMPLES = 256


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


def _data(x, y, infos) -> tuple[np.ndarray, np.ndarray | None, str]:
    first = infos[0]
    if x is None:
        full = next((i for i in infos if not i["streaming"]), None)
        steps = (full or {}).get("input_shape", [None, None])[1] or 8 * (first["chunk"] or 1)
        return bench_data.random_like(tuple(first["input_shape"]), steps, RANDOM_SAMPLES), None, "random"
    x, y = bench_data.check_xy(x, y)
    for info in infos:
        bench_data.check_against(x, tuple(info["input_shape"]), "x", info["file"])
    return x, y, "given"


def speedups(rows: list[dict], baselines: list[dict]) -> None:
    """Add speedup (batch-1 p50 ratio) and throughput_ratio to every row, in place."""
    for row in rows:
        row["speedup"], row["throughput_ratio"] = {}, {}
        for base in baselines:
            if base.get("status") != "ok" or base["provider"] != row["provider"]:
                continue
            label = base["threads"]
            ort_lat, base_lat = row["latency_ms"].get(label), base.get("latency_ms")
            if ort_lat and base_lat:
                row["speedup"].setdefault(label, {})[base["name"]] = base_lat["p50"] / ort_lat["p50"]
            for b, figures in (base.get("throughput") or {}).items():
                ort = row["throughput"].get(label, {}).get(b)
                if ort:
                    row["throughput_ratio"].setdefault(label, {}).setdefault(b, {})[base["name"]] = (
                        ort["samples_per_s"] / figures["samples_per_s"])


def benchmark(target, *, keras=None, x=None, y=None, providers=None, strict_providers: bool = False,
              batches=DEFAULT_BATCHES, threads=DEFAULT_THREADS, reps: int = DEFAULT_REPS,
              litert: bool = True, name: str | None = None, progress=None) -> dict:
    """Benchmark every .onnx file of ``target`` (a model directory or one file); see the module doc.

    Args:
        target: a directory of rnnx exports (full/stream/unrolled and their quantized files) or one .onnx.
        keras: the Keras model the files were exported from (.keras); enables parity vs Keras and
            the TensorFlow/LiteRT baselines. Without it, parity is against the fp32 full file.
        x, y: test inputs (samples, steps, ...) and optional integer labels; random inputs when None.
        providers: e.g. ["cpu", "cuda"] (default: both, cuda skipped when unavailable).
        strict_providers: raise ProviderError for an unavailable provider instead of skipping it.
        batches: batch sizes (1 is always measured: latency); larger ones give throughput.
        threads: thread settings, integers or "all" (the usable cores).
        reps: timed calls per latency figure (throughput: reps // 10, at least 5).
        litert: also measure LiteRT (needs ``keras``).
        progress: callable(str) receiving one line per step and per row.

    Raises:
        ModelFormatError (no .onnx files, unreadable file), InputShapeError (data or Keras model
        that does not fit the ONNX models), ProviderError, ConfigError.
    """
    say = progress or (lambda _m: None)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        raise ConfigError(f"reps must be a positive integer; got {reps!r}")
    threads, batches = thread_settings(threads), batch_sizes(batches)
    files = bench_onnx.model_files(target)
    infos = [bench_onnx.describe(f) for f in files]
    x, y, data_source = _data(x, y, infos)
    providers, skipped = _providers(providers, files[0], strict_providers)
    for s in skipped:
        say(f"skipping provider {s['provider']}: {s['reason']}")
    started = time.time()
    result = {"format": FORMAT, "model": name or Path(target).stem, "target": str(target),
              "machine": bench_machine.describe_machine(),
              "settings": {"batches": batches, "threads": threads, "reps": reps, "providers": providers},
              "data": {"source": data_source, "samples": int(x.shape[0]), "shape": list(x.shape),
                       "labels": y is not None},
              "skipped_providers": skipped, "notes": [], "keras": None, "baselines": [], "rows": []}
    reference, ref_name = None, None
    if keras is not None:
        reference = _baselines(result, keras, x, y, infos, threads, batches, reps, providers, litert, say)
        ref_name = "keras" if reference is not None else None
    else:
        result["notes"].append("no Keras model given: no TensorFlow/LiteRT baselines; parity is against "
                               "the fp32 full ONNX file")
    if reference is None:
        full = next((i for i in infos if i["variant"] == "full" and i["precision"] == "fp32"), None)
        if full is not None:
            reference = bench_onnx.outputs(Path(full["path"]), full, x, "cpu", max(threads.values()))
            ref_name = f"onnx:{full['file']}"
    result["parity_reference"] = ref_name
    total = len(providers) * len(infos)
    for provider in providers:
        for info in infos:
            row = bench_onnx.bench_file(info, provider, x, y, reference, threads=threads, batches=batches,
                                        reps=reps)
            row["parity_reference"] = ref_name
            result["rows"].append(row)
            say(f"[{len(result['rows'])}/{total}] {row_line(row)}")
    speedups(result["rows"], result["baselines"])
    result["seconds"] = round(time.time() - started, 1)
    return result


def _baselines(result, keras, x, y, infos, threads, batches, reps, providers, litert, say):
    from .worker import run_baselines

    keras = Path(keras)
    if not keras.is_file():
        raise ModelFormatError(f"no Keras model file at {str(keras)!r}")
    meta_sha = _source_sha(infos)
    if meta_sha and meta_sha != keras_io.file_sha256(keras):
        result["notes"].append(f"{keras.name} is not byte-identical to the file the exports record as their "
                               "source (sha256 differs); parity shows how far apart they are")
    full = next((i for i in infos if i["variant"] == "full"), infos[0])
    shape = list(full["input_shape"])
    got = run_baselines(keras, x, threads=threads, batches=batches, reps=reps, onnx_input=shape,
                        onnx_output_last=full["output_last"], devices=providers, litert=litert, progress=say)
    result["baselines"] = got["baselines"]
    result["notes"] += got["notes"]
    if got["failed"]:
        result["notes"].append(f"TensorFlow baselines missing: {got['failed']}")
    ref = got["keras_outputs"]
    if ref is not None:
        result["keras"] = {"file": keras.name, "accuracy": bench_onnx.accuracy(ref, y)}
        lite = got["litert_outputs"]
        for base in result["baselines"]:
            if base["name"] == "litert" and lite is not None:
                base["accuracy"], base["parity"] = bench_onnx.accuracy(lite, y), bench_onnx.parity(lite, ref)
                break
    return ref


def _source_sha(infos) -> str | None:
    """sha256 of the .keras file the exports say they came from (None when they do not say)."""
    for info in infos:
        source = info.get("source") or {}
        if source.get("sha256_of") == "file":
            return source.get("sha256")
    return None


def row_line(row: dict) -> str:
    """One progress line for a row."""
    lat = row["latency_ms"].get("1") or next(iter(row["latency_ms"].values()))
    acc = row.get("accuracy")
    par = row.get("parity") or {}
    step = (row.get("step_us") or {}).get("1")
    parts = [f"{row['file']} [{row['provider']}]",
             f"acc {acc:.4f}" if acc is not None else "acc -",
             f"max|d| {par['max_abs_diff']:.2g}" if par.get("max_abs_diff") is not None else "max|d| -",
             f"p50 {lat['p50']:.4f} ms"]
    if step:
        parts.append(f"step p50 {step['p50']:.1f} us")
    parts.append(f"{row['size_bytes'] / 1024:.0f} KiB")
    return "  ".join(parts)
