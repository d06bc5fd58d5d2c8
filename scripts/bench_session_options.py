"""Which onnxruntime session options pay off for small recurrent models (prints figures; not a test).

Each variant of the session options (intra-op spinning, denormals as zero,
graph optimization level, memory arena and pattern, execution mode) is set on
top of ``runtime.providers.session_options`` as it is and timed against it,
interleaved in rounds (``exporters.bench.rounds``): one stream step (batch 1,
states fed as zeros) and the full file next to it (``full.onnx`` in the same
folder, batch 1, ``--seq-steps`` steps), for 1 thread and all usable cores.
A speed-up above 1 means the variant is faster than the options as shipped;
its 95% interval says whether that is more than noise.

    python scripts/bench_session_options.py models/onnx/lstm/stream.onnx [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    # name: (session config entries, SessionOptions attributes)
    "as shipped": ({}, {}),
    "spinning off": ({"session.intra_op.allow_spinning": "0"}, {}),
    "spinning on": ({"session.intra_op.allow_spinning": "1"}, {}),
    "denormals as zero": ({"session.set_denormal_as_zero": "1"}, {}),
    "graph opt basic": ({}, {"graph_optimization_level": "ORT_ENABLE_BASIC"}),
    "graph opt extended": ({}, {"graph_optimization_level": "ORT_ENABLE_EXTENDED"}),
    "graph opt all": ({}, {"graph_optimization_level": "ORT_ENABLE_ALL"}),
    "cpu arena off": ({}, {"enable_cpu_mem_arena": False}),
    "mem pattern off": ({}, {"enable_mem_pattern": False}),
    "parallel execution": ({}, {"execution_mode": "ORT_PARALLEL"}),
}


def options_for(threads: int, entries: dict, attrs: dict):
    import onnxruntime as ort

    from runtime.providers import session_options

    options = session_options(threads)
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    for key, value in attrs.items():
        if key == "graph_optimization_level":
            value = getattr(ort.GraphOptimizationLevel, value)
        elif key == "execution_mode":
            value = getattr(ort.ExecutionMode, value)
        setattr(options, key, value)
    return options


def feeds(session, steps: int, rng) -> dict:
    """Inputs for one call at batch 1: random frames for x, zeros for the states."""
    feed = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        if "_in_" in inp.name:
            feed[inp.name] = np.zeros(shape, np.float32)
            continue
        if len(shape) >= 3 and not (isinstance(inp.shape[1], int) and inp.shape[1] > 0):
            shape[1] = steps
        feed[inp.name] = rng.random(shape, dtype=np.float32)
    return feed


def measure(stream_path: Path, threads_list, rounds: int, steps: int) -> dict:
    """{"<what>, <n> thread(s)": {"load": ..., "variants": {name: p50/p90 us, speed-up, interval}}}."""
    import onnxruntime as ort

    from exporters.bench.machine import load_sample, load_summary
    from exporters.bench.rounds import interleave, paired_ratio

    files = {"stream step": stream_path}
    full = stream_path.with_name("full.onnx")
    if full.is_file():
        files[f"full, batch 1, {steps} steps"] = full
    rng = np.random.default_rng(0)
    out = {}
    for threads in threads_list:
        for what, path in files.items():
            engines = {}
            for name, (entries, attrs) in VARIANTS.items():
                session = ort.InferenceSession(str(path), options_for(threads, entries, attrs),
                                               providers=["CPUExecutionProvider"])
                feed = feeds(session, steps, rng)
                engines[name] = lambda s=session, f=feed: s.run(None, f)
            load = []
            got = interleave(engines, rounds=rounds, calls=200 if what == "stream step" else 40, block_ms=15,
                             on_round=lambda _r: load.append(load_sample()))
            key = f"{what}, {threads} thread(s)"
            out[key] = {"load": load_summary(load), "variants": {}}
            for name, figures in got.items():
                r = paired_ratio(got["as shipped"]["blocks"], figures["blocks"])
                out[key]["variants"][name] = {"p50_us": figures["stats"]["p50"] * 1e3,
                                              "p90_us": figures["stats"]["p90"] * 1e3,
                                              "speedup": r["ratio"], "ci": [r["low"], r["high"]]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="a stream .onnx (its folder's full.onnx is measured too)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seq-steps", type=int, default=28, help="steps of the full file's input (default 28)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from exporters.bench.machine import usable_cores

    figures = measure(args.model, sorted({1, usable_cores()}), args.rounds, args.seq_steps)
    for key, res in figures.items():
        load = res["load"]
        print(f"\n== {key}: p50, and speed-up over the options as shipped (median of {args.rounds} paired "
              f"rounds [95% interval]); load {load['load1_min']:.2f}..{load['load1_max']:.2f} ==")
        for name, v in res["variants"].items():
            print(f"  {name:<20} p50 {v['p50_us']:8.2f} us  p90 {v['p90_us']:8.2f} us  "
                  f"x{v['speedup']:.3f} [{v['ci'][0]:.3f}-{v['ci'][1]:.3f}]")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
