"""Size, accuracy, batch-1 latency and the layers kept in float of each precision next to fp32.

    python scripts/bench_quantize.py models/onnx/lstm models/onnx/gru \
        [--eval test.npz] [--calibration train.npz] [--modes int8-dynamic,int8-static,fp16] [--reps 300] \
        [--max-drop 0.5] [--mixed auto|off] [--per-channel]

For every variant in each directory (full.onnx, stream.onnx, unrolled.onnx)
and every mode, it quantizes into a temporary folder under the accuracy gate
(--max-drop, with per-layer mixed precision unless --mixed off; int8-static
needs calibration: --calibration, '<dir>/cal.npz', or the evaluation x). Modes
that leave the recurrent weights in float for a variant (see
exporters.quantize.applicable) are listed as skipped, gate misses as failed.

Latency: one call with batch 1 on one onnxruntime thread (a whole sequence
for `full`, one chunk plus the states for stream/unrolled); the median of
--reps calls, taken round-robin across precisions so that all see the same
machine load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("full", "stream", "unrolled")


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _latencies(paths: dict, feed: dict, reps: int) -> dict:
    sessions = {k: _session(p) for k, p in paths.items()}
    for sess in sessions.values():
        for _ in range(max(10, reps // 10)):
            sess.run(None, feed)
    times = {k: [] for k in sessions}
    for _ in range(reps):
        for k, sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(None, feed)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def bench_dir(folder: Path, modes, evaluation, calibration, reps: int, work: Path, *, max_drop: float = 0.5,
              mixed: str = "auto", per_channel: bool = True) -> list[dict]:
    from exporters.errors import QuantizationError
    from exporters.quantize.data import check_x, one_call_feed, random_x, read_arrays
    from exporters.quantize import applicable, model_info, quantize_model

    rows, skipped = [], []
    for variant in VARIANTS:
        src = folder / f"{variant}.onnx"
        if not src.is_file():
            continue
        info = model_info(src)
        paths, reports = {"fp32": src}, {}
        for mode in modes:
            reason = applicable(mode, info.op_counts, chunk=info.chunk)
            if reason:
                skipped.append({"model": folder.name, "variant": variant, "precision": mode, "skipped": reason})
                continue
            if mode == "int8-static" and calibration is None:
                skipped.append({"model": folder.name, "variant": variant, "precision": mode,
                                "skipped": "no calibration data (--calibration, <dir>/cal.npz or --eval)"})
                continue
            out = work / folder.name / f"{variant}.{mode}.onnx"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reports[mode] = quantize_model(
                        src, out, mode, calibration=calibration if mode == "int8-static" else None,
                        evaluation=evaluation, max_drop=max_drop if evaluation is not None else float("inf"),
                        mixed=mixed, per_channel=per_channel and mode != "fp16", force=True, latency_reps=0,
                        allow_larger=True)
            except QuantizationError as exc:
                skipped.append({"model": folder.name, "variant": variant, "precision": mode,
                                "skipped": f"failed: {exc}"})
                continue
            paths[mode] = out
        x = (check_x(read_arrays(evaluation, "evaluation", info, need_labels=False)[0], info, "evaluation")[0]
             if evaluation is not None else random_x(info))
        lat = _latencies(paths, one_call_feed(info, x), reps)
        fp32_bytes = src.stat().st_size
        first = next(iter(reports.values()), None)
        rows.append({"model": folder.name, "variant": variant, "precision": "fp32", "bytes": fp32_bytes,
                     "ratio": 1.0, "accuracy": first["accuracy"]["fp32"] if first and first["accuracy"] else None,
                     "drop": 0.0 if first and first["accuracy"] else None, "p50_ms": lat["fp32"],
                     "speedup": 1.0})
        for mode, rep in reports.items():
            acc = rep["accuracy"]
            rows.append({"model": folder.name, "variant": variant, "precision": mode,
                         "bytes": paths[mode].stat().st_size, "ratio": paths[mode].stat().st_size / fp32_bytes,
                         "accuracy": acc["quantized"] if acc else None, "drop": acc["drop_points"] if acc else None,
                         "p50_ms": lat[mode], "speedup": lat["fp32"] / lat[mode],
                         "max_abs_diff": rep["agreement"]["max_abs_diff"],
                         "agreement": rep["agreement"]["argmax_agreement"], "data": rep["agreement"]["data"],
                         "kept_float": rep["kept_float"], "layers": rep["layers"]})
        rows += [r for r in skipped if r["variant"] == variant]
    return rows


def _num(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else format("-", f">{fmt.split('.')[0]}")


def render(rows: list[dict]) -> str:
    head = f"{'model':<10} {'variant':<9} {'precision':<13} {'bytes':>9} {'size':>6} {'accuracy':>8} " \
           f"{'drop pts':>8} {'p50 ms':>8} {'speedup':>7} {'max|d|':>8} {'agree':>6}  kept float"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['model']:<10} {r['variant']:<9} {r['precision']:<13} skipped: {r['skipped']}")
            continue
        acc = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
        drop = f"{r['drop']:.2f}" if r["drop"] is not None else "-"
        lines.append(f"{r['model']:<10} {r['variant']:<9} {r['precision']:<13} {r['bytes']:>9} "
                     f"{r['ratio']:>6.0%} {acc:>8} {drop:>8} {r['p50_ms']:>8.3f} {r['speedup']:>6.2f}x "
                     f"{_num(r.get('max_abs_diff'), '8.2g')} {_num(r.get('agreement'), '6.3f')}  "
                     f"{','.join(r.get('kept_float') or []) or '-'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="exported model folders (full/stream/unrolled.onnx)")
    ap.add_argument("--eval", type=Path, default=None,
                    help=".npz with x and integer y for accuracy; '<dir>/eval.npz' is used when present")
    ap.add_argument("--calibration", type=Path, default=None,
                    help=".npz with x for int8-static; default '<dir>/cal.npz', else the evaluation x")
    ap.add_argument("--modes", default="int8-dynamic,int8-static,fp16")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--max-drop", type=float, default=0.5, help="accuracy gate in points (default 0.5)")
    ap.add_argument("--mixed", choices=["auto", "off"], default="auto")
    ap.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales (default per-channel)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from exporters.errors import RnnxError

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnx-bench-quantize-") as tmp:
        for folder in args.dirs:
            ev = args.eval or (folder / "eval.npz" if (folder / "eval.npz").is_file() else None)
            cal = args.calibration or (folder / "cal.npz" if (folder / "cal.npz").is_file() else ev)
            try:
                rows += bench_dir(folder, modes, ev, cal, args.reps, Path(tmp), max_drop=args.max_drop,
                                  mixed=args.mixed, per_channel=not args.per_tensor)
            except RnnxError as exc:
                print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
    print(render(rows))
    if args.json:
        import json

        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
