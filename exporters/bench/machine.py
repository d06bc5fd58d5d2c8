"""Describe the machine a benchmark ran on: CPU, cores, load and library versions.

Reads /proc and package metadata only: no TensorFlow import (the benchmark's
ONNX side never loads TF).
"""

from __future__ import annotations

import os
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
