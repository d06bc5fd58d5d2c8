"""DVC stage `train`: train one model of the zoo and save it with its metrics.

    python -m pipeline.train NAME [--params params.yaml] [--models models] [--metrics metrics]

Writes ``models/NAME.keras`` (atomically), ``metrics/train/NAME.json`` (test
metrics) and ``plots/train/NAME.csv`` (per-epoch history). ``char_gru`` is
trained on the whole sentence and saved as its stateful deploy copy (batch 1,
one character per call), with the regenerated text in its metrics.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from exporters.errors import ConfigError
from pipeline import data, distribute, models, tasks
from pipeline.outputs import write_csv, write_json, write_keras
from pipeline.params import integer, section
from pipeline.stage import stage_main


def seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def task_splits(name: str, params: dict, ds: data.Dataset) -> dict:
    """Train/val/test TaskData for model ``name``, deterministic from params['seed']."""
    dcfg = section(params, "data")
    seed = int(params.get("seed", 0))
    val_size = integer(dcfg, "val_size", 5000)
    order = np.random.default_rng(seed).permutation(len(ds.x_train))
    val_idx, train_idx = order[:val_size], order[val_size:]
    test_x, test_y = ds.x_test, ds.y_test
    if dcfg.get("train_limit"):
        train_idx = train_idx[:integer(dcfg, "train_limit")]
        val_idx = val_idx[:integer(dcfg, "train_limit")]
    if dcfg.get("test_limit"):
        test_x, test_y = test_x[:integer(dcfg, "test_limit")], test_y[:integer(dcfg, "test_limit")]
    task = models.TASK_OF[name]
    if task == "rows":
        view = lambda x, y, _seed: tasks.rows(x, y, ds.labels)  # noqa: E731
    else:
        ccfg = section(params, "tasks", "clips")
        limit = section(params, "train", name).get("train_clips")
        if limit:
            train_idx = train_idx[:integer({"train_clips": limit}, "train_clips")]
        view = lambda x, y, s: tasks.clips(  # noqa: E731
            x, y, ds.labels, seed=s, frames=integer(ccfg, "frames", 8),
            canvas=integer(ccfg, "canvas", 28), item=integer(ccfg, "item", 14))
    return {
        "train": view(ds.x_train[train_idx], ds.y_train[train_idx], seed),
        "val": view(ds.x_train[val_idx], ds.y_train[val_idx], seed + 1),
        "test": view(test_x, test_y, seed + 2),
    }


class EpochLog:
    """A Keras callback printing one line per epoch to stderr (DVC shows it live)."""

    def __new__(cls, name: str, epochs: int):
        import keras

        class _Log(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                figures = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
                print(f"[train {name}] epoch {epoch + 1}/{epochs} {figures} "
                      f"({time.perf_counter() - self.t0:.1f}s)", file=sys.stderr, flush=True)

        return _Log()


def train_classifier(name: str, params: dict, ds: data.Dataset, dist: distribute.Distribution | None = None):
    """Train lstm/gru/cnn_lstm (``batch_size``: the global batch over ``dist``'s replicas)."""
    cfg = section(params, "train", name)
    splits = task_splits(name, params, ds)
    train, val, test = splits["train"], splits["val"], splits["test"]
    import keras

    seed_everything(int(params.get("seed", 0)))
    epochs, batch_size = integer(cfg, "epochs", 10), integer(cfg, "batch_size", 128)
    steps = epochs * -(-len(train.y) // batch_size)
    dist = dist or distribute.single()
    if batch_size < dist.replicas:
        raise ConfigError(f"train.{name}.batch_size is the global batch, split across {dist.replicas} replicas; "
                          f"expected at least {dist.replicas}, got {batch_size}")
    with dist.scope():
        model = dist.prepare(models.build(name, cfg, train.x.shape[1:], len(train.labels),
                                          decay_steps=steps if cfg.get("cosine_decay", True) else None))
    callbacks = [EpochLog(name, epochs)]
    if cfg.get("keep_best", True):   # the epoch with the best validation accuracy (held out of train)
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=epochs,
                                                       restore_best_weights=True))
    t0 = time.perf_counter()
    hist = model.fit(train.x, train.y, validation_data=(val.x, val.y), epochs=epochs,
                     batch_size=batch_size, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - t0
    loss, acc = model.evaluate(test.x, test.y, batch_size=512, verbose=0)
    best = int(np.argmax(hist.history["val_accuracy"])) + 1 if cfg.get("keep_best", True) else epochs
    metrics = {"test_accuracy": float(acc), "test_loss": float(loss), "epochs": epochs, "best_epoch": best,
               "train_seconds": round(seconds, 1), "n_train": int(len(train.y)),
               "n_test": int(len(test.y)), "dataset": ds.name, "classes": len(train.labels),
               "distribute": dist.kind, "replicas": dist.replicas}
    if models.TASK_OF[name] == "clips":
        shuffled = tasks.shuffle_frames(test.x, seed=int(params.get("seed", 0)))
        _, shuffled_acc = model.evaluate(shuffled, test.y, batch_size=512, verbose=0)
        metrics["shuffled_frames_accuracy"] = float(shuffled_acc)
    history = [{"epoch": i + 1, **{k: float(v[i]) for k, v in hist.history.items()}}
               for i in range(len(hist.history["loss"]))]
    return model, metrics, history


def regenerate(deploy_model, task: tasks.CharTask) -> str:
    """Seed 003's test: from the first character, feed each prediction back in."""
    for layer in deploy_model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    char = task.encode(task.sentence[0])[None]          # (1, 1, V)
    out = []
    for _ in range(len(task.sentence)):
        probs = np.asarray(deploy_model(char, training=False))
        idx = int(probs[0, -1].argmax())
        out.append(task.vocab[idx])
        char = np.eye(len(task.vocab), dtype=np.float32)[idx][None, None]
    return "".join(out)


def train_char_gru(params: dict, dist: distribute.Distribution | None = None):
    """Train the char GRU until its stateful copy regenerates the sentence (or max_epochs).

    The task is one sentence (batch 1). Over R replicas the sentence is fed R
    times in a global batch of R, one copy per replica: the averaged gradient
    is the single sentence's, so every distribution trains the same model.
    """
    cfg = section(params, "train", "char_gru")
    task = tasks.chars(section(params, "tasks", "chars").get("sentence", tasks.DEFAULT_SENTENCE))
    seed_everything(int(params.get("seed", 0)))
    dist = dist or distribute.single()
    replicas = dist.replicas
    with dist.scope():
        model = dist.prepare(models.build("char_gru", cfg, task.x.shape[1:], len(task.vocab)))
    x, y = np.repeat(task.x, replicas, axis=0), np.repeat(task.y, replicas, axis=0)
    max_epochs, every = integer(cfg, "max_epochs", 1500), integer(cfg, "check_every", 50)
    target = task.sentence[1:] + task.sentence[0]
    history, text, epoch, t0 = [], "", 0, time.perf_counter()
    while epoch < max_epochs:
        hist = model.fit(x, y, epochs=every, batch_size=replicas, verbose=0)
        for loss, acc in zip(hist.history["loss"], hist.history["accuracy"]):
            epoch += 1
            history.append({"epoch": epoch, "loss": float(loss), "accuracy": float(acc)})
        deploy = models.stateful_copy(model)
        text = regenerate(deploy, task)
        print(f"[train char_gru] epoch {epoch}/{max_epochs} loss={history[-1]['loss']:.4f} "
              f"regenerated={text!r}", file=sys.stderr, flush=True)
        if text == target:
            break
    metrics = {"exact": text == target, "regenerated": (task.sentence[0] + text)[:len(task.sentence)],
               "sentence": task.sentence,
               "epochs": epoch, "train_accuracy": history[-1]["accuracy"], "train_loss": history[-1]["loss"],
               "train_seconds": round(time.perf_counter() - t0, 1), "vocab": "".join(task.vocab),
               "distribute": dist.kind, "replicas": replicas}
    return deploy, metrics, history


def run(name: str, params: dict, models_dir: Path, metrics_dir: Path, plots_dir: Path) -> dict:
    if name not in models.MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; expected one of {list(models.MODEL_NAMES)}")
    dist = distribute.from_params(params)     # first: multi_worker connects before any TensorFlow op
    print(f"[train {name}] distribute: {dist.describe()}", file=sys.stderr, flush=True)
    if name == "char_gru":
        model, metrics, history = train_char_gru(params, dist)
    else:
        dcfg = section(params, "data")
        ds = data.load(dcfg.get("dataset", "fashion_mnist"), dcfg.get("dir"), dcfg.get("allow_download"))
        print(f"[train {name}] data: {ds.name} from {ds.source}", file=sys.stderr, flush=True)
        model, metrics, history = train_classifier(name, params, ds, dist)
    if not dist.is_chief:                     # the chief writes the model and metrics; the others are done
        return metrics
    write_keras(models_dir / f"{name}.keras", model)
    write_json(metrics_dir / "train" / f"{name}.json", metrics)
    write_csv(plots_dir / "train" / f"{name}.csv", history)
    return metrics


def _stage(name: str, params: dict, models: Path, metrics: Path, plots: Path) -> int:
    metrics_out = run(name, params, models, metrics, plots)   # under the stage lock (pipeline/stage.py)
    print(f"[train {name}] done: " + ", ".join(f"{k}={v}" for k, v in metrics_out.items()), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return stage_main(argv, module="pipeline.train", doc=__doc__, action=_stage, dirs=("models", "metrics", "plots"))


if __name__ == "__main__":
    sys.exit(main())
