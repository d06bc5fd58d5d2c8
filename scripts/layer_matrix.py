"""Export every case of the layer matrix and print its parity per variant, and the worst.

    .venv/bin/python scripts/layer_matrix.py                # all cases of tests/layer_cases*.py
    .venv/bin/python scripts/layer_matrix.py --json m.json  # also write the figures

The cases are the test suite's (tests/layer_cases.py and the modules it
lists): one tiny model per registered layer handler, random seeded weights.
For each case and variant: max |onnx - keras| on the export's samples, the
streamed figure for stream/unrolled, and for full the worst of the two other
lengths the export checked. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    args = parser.parse_args(argv)

    import keras

    from export_cases import randomize
    from exporters.export import export_model
    from layer_cases import all_cases

    rows, worst = [], {"full": 0.0, "stream": 0.0, "unrolled": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for case in all_cases():
            if args.k not in case.name:
                continue
            keras.utils.set_random_seed(3)
            model = randomize(case.build(), seed=len(case.name), scale=0.5)
            res = export_model(model, Path(tmp) / case.name, chunk=2)
            row = {"case": case.name, "covers": list(case.covers), "skipped": res.report["skipped"]}
            for variant, entry in res.report["variants"].items():
                p = entry["parity"]
                figures = [p["max_abs_diff"], p.get("streamed_max_abs_diff") or 0.0,
                           (p.get("other_lengths") or {}).get("max_abs_diff") or 0.0]
                row[variant] = {"converter": entry["converter"], "max_abs_diff": max(figures)}
                worst[variant] = max(worst[variant], max(figures))
            rows.append(row)
            print(f"{case.name:<34} " + "  ".join(
                f"{v}={row[v]['max_abs_diff']:.2e}" if v in row else f"{v}=skipped" for v in worst),
                file=sys.stderr, flush=True)
    print(f"{len(rows)} cases; worst max |onnx - keras| per variant: "
          + ", ".join(f"{v} {w:.2e}" for v, w in worst.items()))
    if args.json:
        args.json.write_text(json.dumps({"cases": rows, "worst": worst}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
