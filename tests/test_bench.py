"""`exporters.bench.benchmark` on a real tiny export: every figure present and sane."""

import math

import pytest

pytest.importorskip("tf2onnx")

from bench_fixtures import BATCHES, REPS, exported, result  # noqa: E402

BASELINES = {"keras_call", "tf_function", "tf_function_xla", "predict_on_batch", "litert"}


@pytest.fixture(scope="module")
def res():
    return result()


def _percentiles_ok(stats):
    assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"]
    assert stats["reps"] >= min(REPS, 10)


def test_one_row_per_file_with_every_figure(res):
    files = sorted(r["file"] for r in res["rows"])
    assert files == ["full.int8-dynamic.onnx", "full.onnx", "stream.onnx", "unrolled.onnx"]
    assert res["rows"][0]["file"] == "full.onnx"                 # fp32 first
    big = str(max(BATCHES))
    for row in res["rows"]:
        assert row["provider"] == "cpu" and row["size_bytes"] > 1000 and row["load_ms"] > 0
        assert row["accuracy"] is not None and 0 <= row["accuracy"] <= 1
        for label in ("1", "all"):
            _percentiles_ok(row["latency_ms"][label])
            thr = row["throughput"][label][big]
            assert thr["samples_per_s"] > 0 and thr["batch"] == max(BATCHES)
            assert math.isclose(thr["samples_per_s"], thr["batch"] / (thr["call_ms"]["p50"] / 1e3))
        if row["variant"] in ("stream", "unrolled"):
            for label in ("1", "all"):
                _percentiles_ok(row["step_us"][label])
            # a step is one of the sequence's STEPS calls: cheaper than the whole sequence
            assert row["step_us"]["1"]["p50"] / 1e3 < row["latency_ms"]["1"]["p50"]
        else:
            assert row["step_us"] is None


def test_parity_against_keras(res):
    assert res["parity_reference"] == "keras"
    keras_acc = res["keras"]["accuracy"]
    for row in res["rows"]:
        par = row["parity"]
        assert 0 <= par["mean_abs_diff"] <= par["max_abs_diff"]
        if row["precision"] == "fp32":       # stream/unrolled fed chunk by chunk: same outputs
            assert par["max_abs_diff"] < 1e-5 and par["argmax_agreement"] == 1.0
            assert row["accuracy"] == keras_acc
        else:
            assert row["precision"] == "int8-dynamic"
            assert par["max_abs_diff"] < 0.05 and par["argmax_agreement"] >= 0.9


def test_baselines_measured_with_consistent_ratios(res):
    for label in ("1", "all"):
        names = {b["name"] for b in res["baselines"] if b["threads"] == label}
        assert names == BASELINES
    for base in res["baselines"]:
        assert base["status"] == "ok", base
        _percentiles_ok(base["latency_ms"])
    litert = next(b for b in res["baselines"] if b["name"] == "litert")
    assert litert["method"] == "batch1" and litert["parity"]["max_abs_diff"] < 1e-5
    assert litert["throughput"] == {} and "batch 1" in litert["throughput_reason"]
    row = res["rows"][0]
    for base in res["baselines"]:
        label = base["threads"]
        want = base["latency_ms"]["p50"] / row["latency_ms"][label]["p50"]
        assert math.isclose(row["speedup"][label][base["name"]], want)
        for b, figures in base["throughput"].items():
            want = row["throughput"][label][b]["samples_per_s"] / figures["samples_per_s"]
            assert math.isclose(row["throughput_ratio"][label][b][base["name"]], want)


def test_missing_cuda_is_reported_not_fatal(res):
    skipped = {s["provider"]: s["reason"] for s in res["skipped_providers"]}
    assert "cuda" in skipped and "CUDAExecutionProvider" in skipped["cuda"]
    assert res["settings"]["providers"] == ["cpu"]
    assert not any(r["provider"] == "cuda" for r in res["rows"])


def test_machine_and_progress(res):
    m = res["machine"]
    assert m["cpu"] and m["usable_cores"] >= 1 and res["settings"]["threads"]["all"] == m["usable_cores"]
    assert {"onnxruntime", "numpy", "keras"} <= set(m["versions"])
    lines = res["_progress"]
    assert sum(line.startswith("[") and ".onnx [cpu]" in line for line in lines) == len(res["rows"])
    assert any("tf_function_xla" in line for line in lines)


def test_without_keras_parity_is_against_the_full_file():
    from exporters.bench import benchmark

    case = exported()
    res = benchmark(case["dir"] / "stream.onnx", x=case["x"][:16], batches=[1], threads=["1"], reps=3,
                    providers=["cpu"])
    assert res["baselines"] == [] and res["keras"] is None and "no Keras model" in res["notes"][0]
    # a single stream file: no full file to compare with
    assert res["parity_reference"] is None and res["rows"][0]["parity"] is None
    assert res["rows"][0]["throughput"] == {"1": {}}
