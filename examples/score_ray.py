"""Score a folder of .npy files with a full model on Ray Data (`map_batches`).

    pip install 'rnnx[ray]'
    python examples/score_ray.py MODEL_full.onnx FOLDER [--concurrency 2] [--output scores.npz]

Each file holds one batch of sequences (n, T, *features). The `runtime.Model`
is opened once here and handed to Ray, which pickles it into each worker: its
bytes and settings travel, not the onnxruntime session (`runtime/pickling.py`),
so the workers need only numpy, onnxruntime and rnnx's runtime - no
TensorFlow. Ray starts a local cluster when none is running (`ray.init()`
joins one given by RAY_ADDRESS). Prints the throughput; `--output` saves the
outputs, one array per file name.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import runtime  # noqa: E402


class Scorer:
    """A Ray Data batch function: the pickled model, opened once per worker."""

    def __init__(self, model: runtime.Model):
        self.model = model

    def __call__(self, batch: dict) -> dict:
        outputs = [self.model.predict(np.asarray(x, dtype=np.float32)) for x in batch["x"]]
        return {"name": batch["name"], "y": np.asarray(outputs, dtype=object)}


def score(model: runtime.Model, files: list[Path], concurrency: int) -> dict[str, np.ndarray]:
    """{file name: output} for every file, scored by `concurrency` Ray workers."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=max(1, concurrency), include_dashboard=False, log_to_driver=False)
    items = [{"name": f.name, "x": np.load(f, allow_pickle=False)} for f in files]
    dataset = ray.data.from_items(items)
    scored = dataset.map_batches(Scorer, fn_constructor_args=(model,), batch_size=1,
                                 concurrency=concurrency, batch_format="numpy")
    return {row["name"]: np.asarray(row["y"]) for row in scored.iter_rows()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a full .onnx export")
    parser.add_argument("folder", help="folder of .npy files, each (n, T, *features)")
    parser.add_argument("--concurrency", type=int, default=2, help="Ray workers")
    parser.add_argument("--output", default=None, help="save the outputs here (.npz, one array per file)")
    args = parser.parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print("score_ray: Ray is not installed; pip install 'rnnx[ray]' (or use examples/score_folder.py)",
              file=sys.stderr)
        return 2
    files = sorted(Path(args.folder).glob("*.npy"))
    if not files:
        print(f"score_ray: no .npy files in {args.folder}", file=sys.stderr)
        return 1
    try:
        model = runtime.load(args.model)
    except runtime.RnnxError as exc:
        print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    outputs = score(model, files, args.concurrency)
    seconds = time.perf_counter() - start
    samples = sum(len(y) for y in outputs.values())
    print(f"{len(files)} files, {samples} sequences in {seconds:.2f} s: {samples / seconds:,.0f} sequences/s "
          f"on {args.concurrency} Ray worker(s)")
    if args.output:
        np.savez(args.output, **outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
