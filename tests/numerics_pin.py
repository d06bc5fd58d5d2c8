"""The training-numerics pin: one tiny run of the real training code per model, and its figures.

`tests/test_repro.py` trains each of the pipeline's classifiers for one epoch on a few
hundred Fashion-MNIST samples, with the architecture and optimizer of `params.yaml`, and
compares the result with `tests/pins/numerics.json`:

- the per-epoch losses and the test loss and accuracy, to a relative 1e-5: these hold on
  every machine kind (a CPU's own matrix kernels move them by about 1e-7);
- the SHA-256 of the trained weights, exactly, on the machine kinds the pin names: oneDNN
  picks its matrix kernels by CPU, so the bits of a run are those of its machine kind.

A change that alters training numerics (the data, the model, the optimizer, the seed, a
library version) fails the test; then rerun the pipeline (`dvc repro`) and update the pin
on purpose, on each machine kind you have:

    .venv/bin/python tests/numerics_pin.py --update
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

PIN = Path(__file__).parent / "pins" / "numerics.json"
ROOT = Path(__file__).resolve().parents[1]
MODELS = ("lstm", "gru", "cnn_lstm")
RTOL = 1e-5
# the CPU features that decide which matrix kernels oneDNN runs
_KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                 "asimd", "sve")


def tiny_params() -> dict:
    """params.yaml with the data cut to a few hundred samples and one epoch per model."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["data"].update({"val_size": 100, "train_limit": 400, "test_limit": 200, "dir": None,
                           "allow_download": False})
    params["train"]["distribute"] = "none"
    for name in MODELS:
        params["train"][name]["epochs"] = 1
    params["train"]["cnn_lstm"]["train_clips"] = 400
    return params


def machine_kind() -> str:
    """The CPU model, its microarchitecture (x86 family and model), cache sizes and kernel-relevant
    features: runs on one kind give the same bits. Two EPYC generations with the same vector
    features train different bits (their caches, and so the matrix kernels' blocking, differ)."""
    model, flags, ids = platform.processor() or "unknown cpu", set(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", "unknown cpu", platform.machine()):
                model = value.strip()
            elif key in ("flags", "Features"):
                flags |= set(value.split())
            elif key in ("cpu family", "model", "CPU implementer", "CPU part") and key not in ids:
                ids[key] = value.strip()
    except OSError:
        pass
    arch = ", ".join(f"{k} {v}" for k, v in ids.items())
    caches = _caches()
    detail = "; ".join(part for part in (arch, caches) if part)
    kind = (f"{platform.machine()} {model}" + (f" ({detail})" if detail else "")
            + f" [{' '.join(f for f in _KERNEL_FLAGS if f in flags)}]")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")      # oneDNN held to fewer features runs other kernels
    return f"{kind} ONEDNN_MAX_CPU_ISA={cap}" if cap else kind


def _caches() -> str:
    """CPU 0's cache sizes, e.g. 'L1d 48K L2 1024K L3 32768K' (empty where sysfs has none)."""
    found = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction":
            found.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    return " ".join(found)


def run(name: str, ds, params: dict | None = None) -> dict:
    """Train `name` with the real training code; its figures and the hash of its weights."""
    from pipeline import train

    model, metrics, history = train.train_classifier(name, params or tiny_params(), ds)
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(w.tobytes())
    return {"figures": {"loss": [h["loss"] for h in history], "val_loss": [h["val_loss"] for h in history],
                        "test_loss": metrics["test_loss"], "test_accuracy": metrics["test_accuracy"]},
            "weights_sha256": digest.hexdigest()}


def load() -> dict:
    return json.loads(PIN.read_text())


def update() -> dict:
    """Rerun every model here and write the pin: the figures, and this machine kind's hashes
    (other kinds' hashes are kept while the figures stay the same, dropped when they change)."""
    from pipeline import data

    ds = data.load("fashion_mnist")
    runs = {name: run(name, ds) for name in MODELS}
    old = load() if PIN.is_file() else {}
    figures = {name: r["figures"] for name, r in runs.items()}
    kinds = dict(old.get("weights_sha256", {})) if old.get("figures") == figures else {}
    kinds[machine_kind()] = {name: r["weights_sha256"] for name, r in runs.items()}
    pin = {"about": "tests/numerics_pin.py: one epoch of the real training code on a few hundred samples",
           "figures": figures, "weights_sha256": dict(sorted(kinds.items()))}
    PIN.parent.mkdir(parents=True, exist_ok=True)
    PIN.write_text(json.dumps(pin, indent=2) + "\n")
    return pin


if __name__ == "__main__":
    if sys.argv[1:] == ["--kind"]:
        sys.exit(print(machine_kind()))
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {sys.argv[0]} --update | --kind   (--update rewrites {PIN.relative_to(ROOT)} from "
                 "runs on this machine; --kind prints this machine's kind)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    pin = update()
    print(f"pinned {', '.join(MODELS)} on {machine_kind()}: " + json.dumps(pin["figures"]))
