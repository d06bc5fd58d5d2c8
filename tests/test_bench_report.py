"""The benchmark and report stages' outputs from a real benchmark result: metrics, plots CSV,
reports/report.md with its tables and targets, and valid PNG figures."""

import copy
import json

import pytest

pytest.importorskip("tf2onnx")
pytest.importorskip("matplotlib")

from bench_fixtures import result  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    from pipeline import benchmark as stage
    from pipeline import report
    from pipeline.outputs import write_csv, write_json

    base = tmp_path_factory.mktemp("reports")
    res = {k: v for k, v in result().items() if not k.startswith("_")}
    for name in ("lstm", "gru"):
        write_json(base / "reports" / "benchmark" / f"{name}.json", {**copy.deepcopy(res), "model": name})
        write_json(base / "metrics" / "benchmark" / f"{name}.json", stage.metrics_of(res))
        write_csv(base / "plots" / "benchmark" / f"{name}.csv", stage.plot_rows(res))
    out = report.run(["lstm", "gru"], base / "reports", base / "metrics")
    return base, out, res


def test_report_has_targets_tables_and_figures(reports):
    base, out, res = reports
    text = (base / "reports" / "report.md").read_text()
    assert text.startswith("# rnnx benchmark report") and "usable of" in text and "onnxruntime 1." in text
    assert "## Targets" in text and "## lstm" in text and "## gru" in text
    assert text.count("| variant | precision | provider | accuracy |") == 2
    assert "| full | int8-dynamic | cpu |" in text and "| litert | cpu |" in text
    assert "Provider cuda not measured" in text
    for verdict in out["verdicts"]:
        if verdict["target"].startswith("streams64"):  # the fixture steps 1 and 4 streams, not 64
            assert verdict["value"] is None and verdict["met"] is None
            continue
        assert verdict["met"] is not None and verdict["value"] is not None
        if not verdict["met"]:
            assert verdict["gap"] > 0
        if verdict["unit"] == "x":                 # every ratio carries its 95% interval
            assert verdict["ci"][0] <= verdict["value"] <= verdict["ci"][1]
    assert len(out["verdicts"]) == 12 and ("**met**" in text or "**missed** by" in text)
    assert "not measured" in text and "**CUDA rows were not measured**" in text
    assert "Latency p50 in ms against sequence length" in text and "cost per stream-step" in text
    assert "## Commands" in text and "scripts/bench_int8_gru.py" in text
    for name in ("latency", "sweep", "streams", "accuracy_drop", "size"):
        data = (base / "reports" / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
        import matplotlib.image

        assert matplotlib.image.imread(base / "reports" / f"{name}.png").shape[1] > 600
        assert f"({name}.png)" in text


def test_targets_follow_the_measured_figures(reports):
    base, out, res = reports
    full = next(r for r in res["rows"] if r["file"] == "full.onnx")
    verdict = next(v for v in out["verdicts"] if v["model"] == "lstm" and v["target"] == "full_p50")
    assert verdict["value"] == full["latency_ms"]["1"]["p50"] and verdict["met"] == (verdict["value"] <= 0.07)
    targets = json.loads((base / "metrics" / "report" / "targets.json").read_text())
    assert targets["gru.full_p50"]["limit"] == 0.06 and "lstm.vs_litert" in targets


def test_metrics_and_plot_rows(reports):
    base, _, res = reports
    metrics = json.loads((base / "metrics" / "benchmark" / "lstm.json").read_text())
    assert metrics["full.fp32.cpu"]["p50_ms"] > 0 and metrics["stream.fp32.cpu"]["step_p50_us"] > 0
    assert metrics["baselines"]["tf_function_xla.cpu"]["throughput"] > 0
    assert metrics["keras_accuracy"] == res["keras"]["accuracy"]
    lines = (base / "plots" / "benchmark" / "lstm.csv").read_text().splitlines()
    assert lines[0].startswith("runtime,kind,")
    assert len(lines) == 1 + len(res["rows"]) + 5          # every onnx row and every baseline


def test_report_without_results_is_a_typed_error(tmp_path):
    from exporters.errors import ConfigError
    from pipeline import report

    with pytest.raises(ConfigError, match="run the benchmark stage first"):
        report.run(["lstm"], tmp_path, tmp_path)
