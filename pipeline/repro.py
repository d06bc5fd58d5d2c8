"""Does a pipeline run reproduce the committed results? What `scripts/check-repro.sh` asks.

    python -m pipeline.repro [--against REV]

Compares every output that `dvc.lock` records with the one committed at REV (default HEAD):
an output with the same md5 is the same file. A metrics file that differs is compared figure
by figure, and only timing figures may differ (TIMING_KEYS, TIMING_PREFIXES). The benchmark
stage measures speed: its metrics are compared the same way (accuracies and parity must
hold), its other outputs are timing reports and are not compared; the report stage's
metrics are its speed targets, all timings. Prints one
line per difference and exits 1 when any is not a timing; 0 when the run reproduces.

Reproducible bit for bit means: on the same machine kind (CPU model and features, see
tests/numerics_pin.py) and the same package versions. Another CPU runs other matrix kernels,
so its trained weights, and every figure after them, differ in the last bits and then more.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

TIMING_STAGES = ("benchmark", "report")           # stages whose job is to time (foreach items: benchmark@lstm)
TIMED_ONLY = ("report",)                           # every figure of it is a speed target
TIMING_KEYS = {"train_seconds", "latency_ms", "latency_fp32_ms", "speedup", "p50_ms", "p99_ms", "step_p50_us",
               "throughput", "load1_max", "load_warning", "sweep_winner"}
TIMING_PREFIXES = ("speedup_", "throughput_ratio_", "per_stream_us_")
_SWEEP = re.compile(r"T\d+$")                      # the length sweep's batch-1 latencies


def is_timing(key: str) -> bool:
    return key in TIMING_KEYS or key.startswith(TIMING_PREFIXES) or bool(_SWEEP.match(key))


def outputs(lock: dict) -> dict:
    """{path: (stage, md5)} of every output a dvc.lock records."""
    found = {}
    for stage, entry in (lock.get("stages") or {}).items():
        for out in entry.get("outs") or []:
            found[out["path"]] = (stage, out.get("md5"))
    return found


def figure_diffs(old, new, path: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, committed, now) for each leaf that differs, timing figures excepted."""
    if isinstance(old, dict) and isinstance(new, dict):
        diffs = []
        for key in sorted(set(old) | set(new)):
            if is_timing(str(key)):
                continue
            diffs += figure_diffs(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return diffs
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in figure_diffs(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path, old, new)]


def compare(committed_lock: dict, lock: dict, committed_text, root: Path) -> tuple[list[str], list[str]]:
    """(differences that are not timings, timing-only differences), one line each."""
    bad, timing = [], []
    before, now = outputs(committed_lock), outputs(lock)
    for path in sorted(set(before) | set(now)):
        if path not in now or path not in before:
            bad.append(f"{path}: {'no longer made' if path not in now else 'not in the committed dvc.lock'}")
            continue
        stage, md5 = now[path]
        if md5 == before[path][1]:
            continue
        timed_stage = stage.split("@")[0] in TIMING_STAGES
        if stage.split("@")[0] in TIMED_ONLY:
            timing.append(f"{path}: the speed targets of stage {stage}")
        elif path.endswith(".json") and (path.startswith("metrics/") or not timed_stage):
            diffs = figure_diffs(json.loads(committed_text(path)), json.loads((root / path).read_text()))
            (bad if diffs else timing).append(
                f"{path}: " + ("; ".join(f"{k} {a!r} -> {b!r}" for k, a, b in diffs[:6])
                               + (f" (and {len(diffs) - 6} more)" if len(diffs) > 6 else "")
                               if diffs else "timing figures only"))
        elif timed_stage:
            timing.append(f"{path}: a timing report of stage {stage}")
        else:
            bad.append(f"{path}: differs (md5 {before[path][1]} committed, {md5} now)")
    return bad, timing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.repro", description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", default="HEAD", help="the commit whose results to compare with (default HEAD)")
    args = ap.parse_args(argv)
    root = Path.cwd()

    def committed_text(path: str) -> str:
        return subprocess.run(["git", "show", f"{args.against}:{path}"], cwd=root, check=True,
                              capture_output=True, text=True).stdout

    try:
        committed = yaml.safe_load(committed_text("dvc.lock"))
        lock = yaml.safe_load((root / "dvc.lock").read_text())
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"rnnx: cannot read dvc.lock here and at {args.against}: {exc}", file=sys.stderr)
        return 2
    bad, timing = compare(committed, lock, committed_text, root)
    for line in timing:
        print(f"timing   {line}")
    for line in bad:
        print(f"DIFFERS  {line}")
    print(f"rnnx: {'the run reproduces' if not bad else f'{len(bad)} output(s) differ from'} the results "
          f"committed at {args.against}" + (f" ({len(timing)} differ in timings only)" if timing else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
