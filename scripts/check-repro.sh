#!/usr/bin/env bash
# Does the committed code reproduce the committed results? A clean clone of this repository's
# HEAD (or of the repository and revision given), `make run` there (its own virtualenv, then
# `dvc repro` of every stage), then `dvc metrics diff` against the committed metrics and
# `python -m pipeline.repro`, which exits non-zero on any difference but timing figures.
#
#   bash scripts/check-repro.sh [REPO [REV]]      (default: this checkout, HEAD)
#
# Not part of CI: it takes as long as `make run` (about 45 minutes on 2 cores). The clone is
# kept (its path is printed) so a difference can be looked at; RNNX_REPRO_DIR picks the folder.
set -euo pipefail
repo=${1:-$(git rev-parse --show-toplevel)}
rev=${2:-HEAD}
dir=${RNNX_REPRO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/rnnx-repro-XXXXXX")}
echo "rnnx: cloning $repo at $rev into $dir" >&2
git clone -q "$repo" "$dir/clone"
cd "$dir/clone"
git checkout -q "$(git -C "$repo" rev-parse "$rev" 2>/dev/null || echo "$rev")"
echo "rnnx: make run (virtualenv, data, dvc repro) in $dir/clone" >&2
make run
echo "rnnx: dvc metrics diff (committed -> this run)" >&2
.venv/bin/dvc metrics diff --precision 6 || true
echo "rnnx: committed machine: $(git show HEAD:reports/report.md 2>/dev/null | sed -n 's/^Machine: \([^,]*\),.*/\1/p')" >&2
echo "rnnx: this machine: $(.venv/bin/python tests/numerics_pin.py --kind)" >&2
.venv/bin/python -m pipeline.repro --against HEAD
