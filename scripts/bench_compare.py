"""Compare every speed-up of two benchmark runs (prints figures; not a test).

Reads ``NAME.json`` of each model from two ``reports/benchmark`` folders (two
runs of the benchmark stage, e.g. back to back) and prints, for every
onnxruntime row, thread setting and baseline, both runs' speed-up (batch 1)
and throughput ratio (larger batches) with their 95% intervals, and how far
apart they are: (b - a) / a. The last line counts the ratios within ``--tol``.

    python scripts/bench_compare.py RUN_A/reports/benchmark RUN_B/reports/benchmark [--tol 0.10] [--models lstm,gru]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def ratios(result: dict):
    """(key, value, interval) for every speed-up and throughput ratio of a result."""
    for row in result["rows"]:
        name = f"{row['file']} [{row['provider']}]"
        for label, by_base in (row.get("speedup") or {}).items():
            for base, value in by_base.items():
                ci = ((row.get("speedup_ci") or {}).get(label) or {}).get(base)
                yield f"{name} x {base} b1 thr{label}", value, ci
        for label, by_batch in (row.get("throughput_ratio") or {}).items():
            for b, by_base in by_batch.items():
                for base, value in by_base.items():
                    ci = (((row.get("throughput_ratio_ci") or {}).get(label) or {}).get(b) or {}).get(base)
                    yield f"{name} x {base} b{b} thr{label}", value, ci


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--tol", type=float, default=0.10)
    ap.add_argument("--models", default="lstm,gru,cnn_lstm,char_gru")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    fmt = lambda v, ci: f"{v:8.3f} [{ci[0]:.3f}-{ci[1]:.3f}]" if ci else f"{v:8.3f}"  # noqa: E731
    total = within = 0
    out = {}
    for model in args.models.split(","):
        pa, pb = args.a / f"{model}.json", args.b / f"{model}.json"
        if not (pa.is_file() and pb.is_file()):
            print(f"{model}: missing in one run")
            continue
        ra, rb = json.loads(pa.read_text()), json.loads(pb.read_text())
        b_vals = {k: (v, ci) for k, v, ci in ratios(rb)}
        print(f"\n== {model}: run A load {ra['load']['load1_min']:.2f}..{ra['load']['load1_max']:.2f}, "
              f"run B load {rb['load']['load1_min']:.2f}..{rb['load']['load1_max']:.2f} ==")
        n = ok = 0
        for key, va, cia in ratios(ra):
            if key not in b_vals:
                continue
            vb, cib = b_vals[key]
            diff = (vb - va) / va
            flag = "" if abs(diff) <= args.tol else "   <-- outside"
            print(f"  {key:<62} A {fmt(va, cia):<26} B {fmt(vb, cib):<26} {diff:+7.1%}{flag}")
            out.setdefault(model, {})[key] = {"a": va, "a_ci": cia, "b": vb, "b_ci": cib, "diff": diff}
            n += 1
            ok += abs(diff) <= args.tol
        print(f"  {model}: {ok}/{n} within ±{args.tol:.0%}")
        total, within = total + n, within + ok
    print(f"\nall models: {within}/{total} ratios within ±{args.tol:.0%}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
