#!/usr/bin/env bash
# Installs what Minnow needs on a Debian/Ubuntu machine with Swift 6: system libraries (zstd,
# FlatBuffers with flatc) and the Python test packages. Safe to run again: skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# wrk loads `minnow serve` in the serving tests and the serving comparison.
for pkg in libzstd-dev libflatbuffers-dev flatbuffers-compiler pkg-config wrk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c "import numpy, onnx, onnxruntime, pytest, sklearn" >/dev/null 2>&1; then
  echo "setup: installing Python test packages"
  python3 -m pip install -q -r tools/requirements-test.txt
fi
