#!/usr/bin/env bash
# Make Fashion-MNIST available offline: Debian's package `dataset-fashion-mnist`
# puts the IDX files under /usr/share/datasets/fashion-mnist/. Installs it when
# missing and we are root; otherwise says how to provide the data.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -n "${RNNX_DATA_DIR:-}" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "rnnx: installing Debian package dataset-fashion-mnist (Fashion-MNIST, offline)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
else
  echo "rnnx: Fashion-MNIST not found in $dir. Install it with 'sudo apt-get install dataset-fashion-mnist'," >&2
  echo "      or set RNNX_DATA_DIR to a folder with the IDX files, or data.dir in params.yaml." >&2
fi
