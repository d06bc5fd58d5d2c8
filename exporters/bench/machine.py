"""Describe the machine a benchmark ran on: CPU, cores, load and library versions.

Reads /proc and package metadata only: no TensorFlow import (the benchmark's
ONNX side never loads TF).
"""

from __future__ import annotations

import os
import time
import platform
from importlib import metadata

PACKAGES = ("onnxruntime", "onnxruntime-gpu", "numpy", "tensorflow-cpu", "tensorflow", "keras",
            "ai-edge-litert", "onnx", "tf2onnx", "rnnx")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "processor\t: ")):
                    name = line.split(":", 1)[1].strip()
                    if name and not name.isdigit():
                        return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe_machine() -> dict:
    """CPU model, logical/usable cores, load average, OS and library versions."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable_cores(),
            "load_average": load, "os": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(), "versions": versions()}


def summary(machine: dict) -> str:
    """One line for a report header."""
    v = machine.get("versions", {})
    tf = v.get("tensorflow-cpu") or v.get("tensorflow") or "-"
    ort = v.get("onnxruntime-gpu") or v.get("onnxruntime") or "-"
    return (f"{machine.get('cpu')}, {machine.get('usable_cores')} usable of {machine.get('logical_cores')} "
            f"cores, load {machine.get('load_average')}; onnxruntime {ort}, TF {tf}, "
            f"numpy {v.get('numpy', '-')}, LiteRT {v.get('ai-edge-litert', '-')}, Python {v.get('python')}")


# -- load while a benchmark runs ------------------------------------------------------------------

LOAD_MOVE = 0.5          # 1-minute load average moving by more than this (or a quarter of the cores) warns
STEAL_WARN_PCT = 2.0     # CPU time stolen by the hypervisor above this share of the run warns
OTHERS_WARN = 0.25       # other processes using more than this share of the cores warns


def _cpu_jiffies() -> list[int] | None:
    """The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    try:
        with open("/proc/stat") as fh:
            parts = fh.readline().split()
        return [int(v) for v in parts[1:]] if parts and parts[0] == "cpu" else None
    except (OSError, ValueError):
        return None


def load_sample() -> dict:
    """The load now: wall time, 1-minute load average, /proc/stat jiffies and this process's CPU seconds."""
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    t = os.times()
    return {"t": time.time(), "load1": load1, "jiffies": _cpu_jiffies(), "own_cpu_s": t.user + t.system}


def load_summary(samples: list[dict], cores: int | None = None) -> dict:
    """Load over a run from ``load_sample`` dicts (several processes' samples may be mixed).

    Returns the 1-minute load average at start/end and its min/max, the share of CPU time
    stolen (when /proc/stat shows steal), the share of the cores other processes kept busy
    (machine busy time minus the benchmark's own, when one process took every sample), and
    ``warning``: a sentence when the load moved or others competed, else None.
    """
    cores = cores or usable_cores()
    samples = sorted((s for s in samples if s), key=lambda s: s["t"])
    loads = [s["load1"] for s in samples if s.get("load1") is not None]
    out = {"samples": len(samples), "load1_start": loads[0] if loads else None,
           "load1_end": loads[-1] if loads else None, "load1_min": min(loads) if loads else None,
           "load1_max": max(loads) if loads else None, "steal_pct": None, "busy_cores": None,
           "warning": None}
    jiff = [s for s in samples if s.get("jiffies")]
    if len(jiff) >= 2:
        a, b = jiff[0]["jiffies"], jiff[-1]["jiffies"]
        delta = [y - x for x, y in zip(a, b)]
        total = sum(delta[:8]) or 1
        if len(delta) >= 8:
            out["steal_pct"] = round(100.0 * delta[7] / total, 2)
        busy = total - delta[3] - delta[4]
        logical = os.cpu_count() or cores
        out["busy_cores"] = round(logical * busy / total, 2)
    warnings = []
    if loads and (max(loads) - min(loads)) > max(LOAD_MOVE, 0.25 * cores):
        warnings.append(f"the 1-minute load average moved from {min(loads):.2f} to {max(loads):.2f} "
                        f"during the run ({cores} usable cores)")
    if out["steal_pct"] is not None and out["steal_pct"] > STEAL_WARN_PCT:
        warnings.append(f"{out['steal_pct']:.1f}% of CPU time was stolen by the hypervisor")
    if loads and min(loads) > cores * (1 + OTHERS_WARN):
        warnings.append(f"the machine was overloaded (load {min(loads):.2f} on {cores} cores)")
    if warnings:
        out["warning"] = "; ".join(warnings) + ": the interleaved ratios hold up better than single figures"
    return out
