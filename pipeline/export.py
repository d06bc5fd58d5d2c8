"""DVC stage `export`: one trained model -> ONNX full, stream and unrolled, validated.

    python -m pipeline.export NAME [--params params.yaml] [--models models] [--metrics metrics]

Validation uses the model's own test data (the whole test split by default),
so the parity figures in ``models/onnx/NAME/export.json`` are measured on
what the model was trained for. ``metrics/export/NAME.json`` holds the
figures DVC shows: per variant max/mean |Δ| vs Keras, argmax agreement,
streamed-vs-full |Δ|, accuracy of the ONNX model on the test split, size.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from exporters.errors import ConfigError
from runtime.contract import VARIANTS
from pipeline import data, models, tasks
from pipeline.outputs import write_json
from pipeline.params import integer, section
from pipeline.stage import stage_main
from pipeline.train import task_splits


def evaluation_set(name: str, params: dict) -> tuple[np.ndarray, np.ndarray, tuple, float | None]:
    """Test inputs, integer labels, class labels and the uint8 scale of model ``name``.

    For char_gru the inputs are the sentence itself (one sequence) and the
    labels its next characters.
    """
    if name == "char_gru":
        task = tasks.chars(section(params, "tasks", "chars").get("sentence", tasks.DEFAULT_SENTENCE))
        return task.x, task.y.argmax(-1), task.vocab, None
    dcfg = section(params, "data")
    ds = data.load(dcfg.get("dataset", "fashion_mnist"), dcfg.get("dir"), dcfg.get("allow_download"))
    test = task_splits(name, params, ds)["test"]
    return test.x, test.y, test.labels, 1.0 / 255.0


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of an exported model on (x, y) through the edge runtime."""
    import runtime

    model = runtime.load(path, batch=len(x))
    usable = x.shape[1] - x.shape[1] % (model.chunk if isinstance(model, runtime.StreamingModel) else 1)
    pred = model.feed(x[:, :usable]) if isinstance(model, runtime.StreamingModel) else model.predict(x)
    y = y[:, :usable] if y.ndim == 2 else y
    return float(np.mean(pred.argmax(-1) == y))


def run(name: str, params: dict, models_dir: Path, metrics_dir: Path) -> dict:
    from exporters.export import export_model

    if name not in models.MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; expected one of {list(models.MODEL_NAMES)}")
    cfg = section(params, "export")
    x, y, labels, uint8_scale = evaluation_set(name, params)
    limit = cfg.get("samples")
    if limit:
        x, y = x[:integer(cfg, "samples")], y[:integer(cfg, "samples")]
    out_dir = models_dir / "onnx" / name
    result = export_model(
        models_dir / f"{name}.keras", out_dir, variants=tuple(cfg.get("variants", VARIANTS)),
        chunk=integer(cfg, "chunk", 1), opset=integer(cfg, "opset", 17), atol=float(cfg.get("atol", 1e-5)),
        samples=x, labels=list(labels), uint8_scale=uint8_scale, name=name,
        progress=lambda msg: print(f"[export {name}] {msg}", file=sys.stderr, flush=True))
    metrics = {"samples": int(len(x))}
    for variant, path in result.paths.items():
        figures = result.report["variants"][variant]
        parity = figures["parity"]
        metrics[variant] = {
            **{k: v for k, v in parity.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "accuracy": onnx_accuracy(path, x, y),
            "file_bytes": figures["file_bytes"],
            "native_rnn_ops": figures["native_rnn_ops"],
        }
        print(f"[export {name}] {variant}: accuracy {metrics[variant]['accuracy']:.4f}", file=sys.stderr)
    write_json(metrics_dir / "export" / f"{name}.json", metrics)
    return metrics


def main(argv=None) -> int:
    return stage_main(argv, module="pipeline.export", doc=__doc__,
                      action=lambda name, params, models, metrics: run(name, params, models, metrics) and 0)


if __name__ == "__main__":
    sys.exit(main())
