"""`exporters.bench.benchmark` on a real tiny export: every figure present and sane."""

import math

import pytest

pytest.importorskip("tf2onnx")

from bench_fixtures import BATCHES, ROUNDS, STEPS, STREAMS, exported, result  # noqa: E402

BASELINES = {"keras_call", "tf_function", "tf_function_xla", "predict_on_batch", "litert"}


@pytest.fixture(scope="module")
def res():
    return result()


def _percentiles_ok(stats):
    assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"]
    assert stats["reps"] >= ROUNDS          # at least one timed call per round


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
                assert sorted(map(int, row["streams"][label])) == STREAMS
                four = row["streams"][label]["4"]
                assert math.isclose(four["per_stream_us"], four["step_us"]["p50"] / 4)
            # a step is one of the sequence's STEPS calls: cheaper than the whole sequence
            assert row["step_us"]["1"]["p50"] / 1e3 < row["latency_ms"]["1"]["p50"]
        else:
            assert row["step_us"] is None and row["streams"] is None


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
        # a paired ratio: median of per-round ratios, inside its interval, near the ratio of p50s
        got, (lo, hi) = row["speedup"][label][base["name"]], row["speedup_ci"][label][base["name"]]
        assert lo <= got <= hi
        plain = base["latency_ms"]["p50"] / row["latency_ms"][label]["p50"]
        if base["name"] != "keras_call":        # eager Keras: one call per block, a few noisy samples
            assert 0.5 * plain < got < 2 * plain
        for b in base["throughput"]:
            got = row["throughput_ratio"][label][b][base["name"]]
            lo, hi = row["throughput_ratio_ci"][label][b][base["name"]]
            assert lo <= got <= hi
    # eager Keras is far slower than onnxruntime: a ratio far above 1 whatever the load
    assert row["speedup"]["1"]["keras_call"] > 3


def test_inputs_load_and_sweep_are_recorded(res):
    assert res["data"]["source"] == "given" and res["data"]["steps"] == STEPS
    load = res["load"]
    assert load["samples"] > ROUNDS and load["load1_min"] <= load["load1_max"]
    assert res["settings"]["rounds"] == ROUNDS and res["settings"]["sweep"] == [1, STEPS]
    sweep = res["sweep"]
    assert sweep["threads"] == "1" and sweep["lengths"] == [1, STEPS]
    assert {"ort full fp32", "ort stream fp32", "tf.function", "tf.function XLA", "LiteRT"} <= set(sweep["p50_ms"])
    for t in ("1", str(STEPS)):
        winner = sweep["winners"][t]
        assert winner["p50_ms"] == min(v[t] for v in sweep["p50_ms"].values() if t in v) or winner["margin"] >= 0.9
        assert winner["margin_ci"][0] <= winner["margin"] <= winner["margin_ci"][1]
    # a stream file fed 1 step is far cheaper than fed the whole sequence
    assert sweep["p50_ms"]["ort stream fp32"]["1"] < sweep["p50_ms"]["ort stream fp32"][str(STEPS)]


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
    assert any("TensorFlow worker, threads all" in line for line in lines)
    assert any("latency@cpu" in line and "rounds" in line for line in lines)


def test_without_keras_parity_is_against_the_full_file():
    from exporters.bench import benchmark

    case = exported()
    res = benchmark(case["dir"] / "stream.onnx", x=case["x"][:16], batches=[1], threads=["1"], reps=3,
                    rounds=2, streams=[], sweep=[], providers=["cpu"])
    assert res["baselines"] == [] and res["keras"] is None and "no Keras model" in res["notes"][0]
    # a single stream file: no full file to compare with
    assert res["parity_reference"] is None and res["rows"][0]["parity"] is None
    assert res["rows"][0]["throughput"] == {"1": {}}


def test_without_data_the_inputs_have_the_models_own_length():
    from exporters.bench import benchmark

    case = exported()
    res = benchmark(case["dir"] / "full.onnx", keras=None, batches=[1], threads=["1"], reps=2, rounds=2,
                    streams=[], sweep=[], providers=["cpu"])
    data = res["data"]
    # the exports record the length they were validated on; the tiny model's is STEPS, not 8
    assert data["source"] == "random" and data["steps"] == STEPS and data["shape"][1] == STEPS
    assert "validated on" in data["steps_from"] and data["labels"] is False
    from exporters.bench.data import default_inputs, keras_steps
    from exporters.bench.ort import describe

    assert keras_steps(case["keras"]) == STEPS
    x, info = default_inputs([describe(case["dir"] / "stream.onnx")], case["keras"], samples=3)
    assert x.shape == (3, STEPS, 5) and "tiny.keras" in info["steps_from"]


def test_labels_outside_the_models_classes_are_an_error():
    from exporters.bench import benchmark
    from runtime.errors import InputValueError

    case = exported()
    y = case["y"][:16].copy()
    y[3], y[5] = 7, -1
    with pytest.raises(InputValueError, match=r"class indices in \[0, 4\) .* got -1, 7"):
        benchmark(case["dir"] / "full.onnx", x=case["x"][:16], y=y, batches=[1], threads=["1"], reps=2,
                  rounds=2, streams=[], sweep=[], providers=["cpu"])
