#!/usr/bin/env bash
# Do this checkout's exporters write the committed files? Re-export and re-quantize the pipeline's
# four models from already trained .keras files, with this working tree's code, in a scratch folder,
# and compare every models/onnx file with the md5 that HEAD's dvc.lock records.
#
#   bash scripts/check-exports.sh MODELS_DIR      (a folder with lstm.keras, gru.keras, cnn_lstm.keras
#                                                  and char_gru.keras, e.g. a check-repro clone's models/)
#
# For refactors that must not change any file: it needs no training (about 10 minutes on 2 cores,
# against 45 for scripts/check-repro.sh). Exits non-zero when a file differs or is missing.
set -euo pipefail
models=${1:?usage: scripts/check-exports.sh MODELS_DIR}
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/rnnx-check-exports-XXXXXX")
echo "rnnx: scratch copy in $work" >&2
(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$work")
ln -s "$repo/.venv" "$work/.venv"
mkdir -p "$work/models"
for m in lstm gru cnn_lstm char_gru; do cp "$models/$m.keras" "$work/models/"; done
cd "$work"
.venv/bin/python -m pipeline.params
for m in lstm gru cnn_lstm char_gru; do .venv/bin/python -m pipeline.export "$m"; done
for m in lstm gru cnn_lstm char_gru; do .venv/bin/python -m pipeline.quantize "$m"; done
git -C "$repo" show HEAD:dvc.lock > committed.lock
.venv/bin/python - <<'EOF'
import hashlib
import sys
from pathlib import Path

import yaml

lock = yaml.safe_load(Path("committed.lock").read_text())
want = {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])
        if "md5" in o and o["path"].startswith("models/onnx/")}
bad = [p for p, md5 in sorted(want.items())
       if not Path(p).is_file() or hashlib.md5(Path(p).read_bytes()).hexdigest() != md5]
for p in bad:
    print(f"DIFFERS  {p}")
print(f"rnnx: {len(want) - len(bad)} of {len(want)} exported and quantized files equal the committed ones")
sys.exit(1 if bad else 0)
EOF
