#!/usr/bin/env bash
# Run the benchmark on a GPU machine: swap onnxruntime for onnxruntime-gpu (the `gpu` extra of
# pyproject.toml), check that CUDAExecutionProvider really starts a session, then rerun the
# benchmark stage of every model (or those named) and the report. The rows for `cuda` appear
# next to the `cpu` ones in reports/benchmark/<name>.json and reports/report.md.
#
#   scripts/bench-gpu.sh [--tf-gpu] [MODEL ...]        (MODEL: lstm gru cnn_lstm char_gru)
#
# --tf-gpu also swaps tensorflow-cpu for tensorflow[and-cuda] of the same version, so that the
# TensorFlow baselines get `cuda` rows too (without it the report says TF sees no GPU).
# Uses $PYTHON (default .venv/bin/python, created with `make install-pipeline` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

TF_GPU=0
MODELS=()
for arg in "$@"; do
  case "$arg" in
    --tf-gpu) TF_GPU=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    lstm|gru|cnn_lstm|char_gru) MODELS+=("$arg") ;;
    *) echo "bench-gpu: unknown argument '$arg' (expected --tf-gpu or a model name)" >&2; exit 2 ;;
  esac
done
[ ${#MODELS[@]} -gt 0 ] || MODELS=(lstm gru cnn_lstm char_gru)

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench-gpu: no NVIDIA GPU visible (nvidia-smi -L failed); run this on a GPU machine" >&2
  exit 1
fi
nvidia-smi -L

[ -x .venv/bin/python ] || make install-pipeline
PY=${PYTHON:-.venv/bin/python}
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"

# onnxruntime and onnxruntime-gpu install the same `onnxruntime` package: remove the CPU wheel,
# then install exactly the gpu extra's requirement (not `rnnx[gpu]`, whose base dependency
# would bring the CPU wheel back over it).
GPU_REQ=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"][0])')
"$PY" -m pip uninstall -y -q onnxruntime onnxruntime-gpu || true
"$PY" -m pip install -q "$GPU_REQ"

if [ "$TF_GPU" = 1 ]; then
  TF_VER=$("$PY" -c 'from importlib.metadata import version; print(version("tensorflow-cpu"))' 2>/dev/null || true)
  if [ -n "$TF_VER" ]; then
    "$PY" -m pip uninstall -y -q tensorflow-cpu
    "$PY" -m pip install -q "tensorflow[and-cuda]==$TF_VER"
  fi
fi

"$PY" - <<'PY'
import sys
import onnxruntime as ort
avail = ort.get_available_providers()
print(f"onnxruntime {ort.__version__}, providers {avail}")
if "CUDAExecutionProvider" not in avail:
    sys.exit("bench-gpu: this onnxruntime build has no CUDAExecutionProvider")
PY

# build whatever is missing (train/export/quantize), then force the benchmark stages: a swap of
# onnxruntime wheels changes no DVC dependency, so they would otherwise be skipped.
dvc repro
for model in "${MODELS[@]}"; do
  dvc repro --force --single-item "benchmark@$model"
done
dvc repro --single-item report
echo "bench-gpu: done; see reports/report.md (rows with provider cuda)"
