"""What one process times for one thread setting, every comparison interleaved (see ``rounds``).

A *plan* (plain JSON, so a TensorFlow worker can receive it) names the ONNX
files, the inputs, the thread count and the groups to time. Each group holds
the engines compared with each other and is timed with
:func:`exporters.bench.rounds.interleave`:

- ``latency@P``: every file on provider P at batch 1 on the model's own length,
  next to the TensorFlow baselines (and LiteRT on the CPU);
- ``throughput:B@P``: the same at batch B;
- ``streams@P``: ``StreamingModel.step`` of every stream/unrolled file for
  1, 8, 64, 256 streams (the per-stream cost of a step);
- ``sweep:T@P``: batch 1 at T steps for the sequence-length sweep (onnxruntime,
  tf.function, XLA, LiteRT).

``run_plan(plan, extra=...)`` returns the raw figures (per engine: percentiles
of every call and per-round block medians); ``exporters.bench.run`` turns them
into rows, baselines and paired ratios. ``extra(group, batch, steps)`` gives
the non-onnxruntime engines of a group (the TF worker passes its own).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import machine
from .data import batch_of
from .rounds import interleave

ORT, STEP = "ort:", "step:"
# Multi-threaded groups pause before each block: with a 2-thread session's pool still spinning
# from its block, the next session's blocks took 2.4x or 3.8x their time in 9 of 15 rounds
# (LSTM(128), batch 64, 7 sessions on 2 cores); 20 ms brought it to 1 or 2 rounds in 15.
SETTLE_MS = 20.0
THROUGHPUT_CALLS = 5   # at least this many calls per throughput block: the fastest of 2 was often a stalled one


def with_steps(x: np.ndarray, steps: int) -> np.ndarray:
    """x cut or repeated along the time axis (axis 1) to exactly ``steps`` steps."""
    if x.shape[1] >= steps:
        return np.ascontiguousarray(x[:, :steps])
    reps = -(-steps // x.shape[1])
    return np.ascontiguousarray(np.concatenate([x] * reps, axis=1)[:, :steps])


def groups(plan: dict) -> list[tuple[str, str, int, int | None]]:
    """(group name, provider, batch, steps) in the order they are timed; steps None: the data's own."""
    out = []
    for provider in plan["providers"]:
        out.append((f"latency@{provider}", provider, 1, None))
        out += [(f"throughput:{b}@{provider}", provider, b, None) for b in plan["batches"] if b > 1]
        if plan.get("streams") and any(f["streaming"] for f in plan["files"]):
            out.append((f"streams@{provider}", provider, 0, None))
        out += [(f"sweep:{t}@{provider}", provider, 1, int(t)) for t in plan.get("sweep") or []]
    return out


def ort_engines(plan: dict, provider: str, batch: int, x: np.ndarray, steps: int | None):
    """name -> callable for every file (whole sequence at ``batch``), and name -> reason for the others."""
    from .ort import open_quietly

    engines, skipped = {}, {}
    for info in plan["files"]:
        name = ORT + info["file"]
        chunk = info["chunk"] or 1
        if steps is not None:
            fixed = (info["input_shape"] + [None, None])[1] if not info["streaming"] else None
            if fixed is not None and fixed != steps:
                skipped[name] = f"exported for exactly {fixed} steps"
                continue
        xs = x if steps is None else with_steps(x, steps)
        usable = xs.shape[1] - xs.shape[1] % chunk if info["streaming"] else xs.shape[1]
        if usable == 0:
            skipped[name] = f"{xs.shape[1]} steps are fewer than chunk {chunk}"
            continue
        xb = batch_of(xs[:, :usable], batch)
        try:
            model = open_quietly(info["path"], providers=[provider], threads=plan["threads"], batch=batch)
            call = (lambda m=model, a=xb: m.feed(a)) if info["streaming"] else (lambda m=model, a=xb: m.predict(a))
            call()
        except Exception as exc:  # noqa: BLE001 - a file that cannot run at this size is reported
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            continue
        engines[name] = call
    return engines, skipped


def step_engines(plan: dict, provider: str, x: np.ndarray):
    """name ``step:<file>:<streams>`` -> one ``StreamingModel.step`` for that many streams."""
    from .ort import open_quietly

    engines, skipped = {}, {}
    for info in plan["files"]:
        if not info["streaming"]:
            continue
        for n in plan["streams"]:
            name = f"{STEP}{info['file']}:{n}"
            frame = np.ascontiguousarray(with_steps(batch_of(x, n), info["chunk"] or 1))
            try:
                model = open_quietly(info["path"], providers=[provider], threads=plan["threads"], batch=n)
                call = lambda m=model, f=frame: m.step(f)  # noqa: E731
                call()
            except Exception as exc:  # noqa: BLE001
                skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                continue
            engines[name] = call
    return engines, skipped


def run_plan(plan: dict, x: np.ndarray, *, extra: Callable | None = None, progress=None) -> dict:
    """Time every group of ``plan``; see the module doc.

    Returns:
        {"groups": {group: {engine: {"stats", "blocks", "calls_per_block"}}},
         "skipped": {group: {engine: reason}}, "load": [load samples]}
    """
    say = progress or (lambda _m: None)
    out = {"groups": {}, "skipped": {}, "load": []}
    sample = lambda _r=None: out["load"].append(machine.load_sample())  # noqa: E731
    for name, provider, batch, steps in groups(plan):
        if name.startswith("streams"):
            engines, skipped = step_engines(plan, provider, x)
            calls = plan["calls"] * plan.get("step_factor", 5)
        else:
            engines, skipped = ort_engines(plan, provider, batch, x, steps)
            calls = plan["calls"] if batch == 1 else max(THROUGHPUT_CALLS, plan["calls"] // 10)
            if extra is not None:
                more, more_skipped = extra(name, provider, batch, steps)
                engines.update(more)
                skipped.update(more_skipped)
        rounds = plan["rounds"] if not name.startswith("sweep") else max(3, plan["rounds"] // 2)
        if engines:
            say(f"threads {plan['label']}: {name}, {len(engines)} engines x {rounds} rounds")
            out["groups"][name] = interleave(engines, rounds=rounds, calls=calls, block_ms=plan["block_ms"],
                                             warmup=plan.get("warmup", 10), on_round=sample,
                                             settle_ms=SETTLE_MS if plan["threads"] > 1 else 0.0)
        out["skipped"][name] = skipped
        del engines
    sample()
    return out


def plan_for(files: list[dict], *, label: str, threads: int, providers: list[str], batches: list[int],
             rounds: int, calls: int, block_ms: float, streams: list[int], sweep: list[int]) -> dict:
    """The plan of one thread setting (JSON-serializable)."""
    return {"files": files, "label": label, "threads": threads, "providers": list(providers),
            "batches": list(batches), "rounds": int(rounds), "calls": int(calls), "block_ms": float(block_ms),
            "streams": list(streams), "sweep": list(sweep)}

