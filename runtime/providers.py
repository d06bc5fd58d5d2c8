"""Which onnxruntime execution providers a model runs on, and with how many threads.

By default a model runs on CUDA when onnxruntime-gpu is installed and sees a
GPU, else on the CPU. An explicit list (names, short aliases, or
``(name, options)`` pairs as onnxruntime takes them) overrides that; a provider
this onnxruntime build cannot run is a :class:`ProviderError`, never a silent
fall back to the CPU.
"""

from __future__ import annotations

from typing import Sequence, Union

import onnxruntime as ort

from .errors import ProviderError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

ALIASES = {
    "cpu": CPU,
    "cuda": CUDA,
    "gpu": CUDA,
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}

ProviderSpec = Union[str, tuple]


def resolve_providers(requested: Sequence[ProviderSpec] | str | None) -> list:
    """The provider list to hand to ``onnxruntime.InferenceSession``.

    Args:
        requested: ``None`` for the default (CUDA if available, then CPU), or
            provider names / aliases (``"cpu"``, ``"cuda"``) / ``(name, options)``
            pairs, in order of preference. A single string is one provider.

    Returns:
        A list of names or ``(name, options)`` pairs, aliases expanded.

    Raises:
        ProviderError: a requested provider is not in this onnxruntime build.
    """
    available = ort.get_available_providers()
    if requested is None:
        return [CUDA, CPU] if CUDA in available else [CPU]
    if isinstance(requested, str):
        requested = [requested]
    resolved = []
    for spec in requested:
        if isinstance(spec, tuple) and len(spec) == 2:
            resolved.append((_canonical(spec[0]), spec[1]))
        elif isinstance(spec, str):
            resolved.append(_canonical(spec))
        else:
            raise ProviderError(f"a provider must be a name or a (name, options) pair; got {spec!r}")
    if not resolved:
        raise ProviderError("the provider list is empty; expected at least one, e.g. ['cpu']")
    missing = [name for name in map(provider_name, resolved) if name not in available]
    if missing:
        raise ProviderError(
            f"execution provider {', '.join(missing)} is not available in this onnxruntime "
            f"{ort.__version__} build; available: {', '.join(available)}"
            + (" (install onnxruntime-gpu for CUDA)" if CUDA in missing else "")
        )
    return resolved


def provider_name(spec: ProviderSpec) -> str:
    return spec[0] if isinstance(spec, tuple) else spec


def check_active(requested: Sequence[ProviderSpec] | str | None, resolved: list,
                 active: Sequence[str]) -> None:
    """Refuse a session that silently fell back from an explicitly requested provider.

    onnxruntime drops a provider it cannot initialize (e.g. CUDA without a GPU)
    and runs on the CPU; that is fine for the default list, not for one the
    caller named.
    """
    if requested is None:
        return
    first = provider_name(resolved[0])
    if first not in active:
        raise ProviderError(
            f"execution provider {first} was requested but onnxruntime could not start it "
            f"(no usable device?); the session runs on {', '.join(active)}"
        )


def session_options(threads: int | None) -> ort.SessionOptions:
    """Session options with ``threads`` intra-op threads (``None``: onnxruntime's default).

    Everything else stays at onnxruntime's defaults, on measurement
    (``scripts/bench_session_options.py``, paired speed-ups over these options
    with 95% intervals, LSTM(128) and GRU(128) stream step and full file at
    batch 1, 1 and 2 threads): intra-op spinning on/off, denormals as zero,
    graph optimization level basic/extended/all and parallel execution all
    stayed within 0.98-1.03 with intervals containing 1. Memory pattern off was
    1-2% slower. CPU arena off was 4.6% [2.9-7.2%] faster for a bare GRU step
    run with a feed dict on 1 thread, but within noise on 2 threads and for the
    full files and the LSTM; the runtime's steps run pre-bound outputs, which
    allocate nothing per call, so it is not worth the larger cost of
    unpooled allocations for batch scoring.
    """
    options = ort.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer or None; got {threads!r}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def _canonical(name: str) -> str:
    return ALIASES.get(name.lower(), name)
