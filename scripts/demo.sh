#!/usr/bin/env bash
# The main job on a bundled example: convert a trained MLP to int8, run it, compare with the trainer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product minnow 2>&1 | tail -1
bin=.build/release/minnow
fx=fixtures/digits_mlp
out=$(mktemp -d)
echo
echo "\$ minnow convert $fx/model.onnx -o $out/digits.minnow --calibration $fx/calibration.npz"
$bin convert $fx/model.onnx -o "$out/digits.minnow" --calibration $fx/calibration.npz
echo
echo "\$ minnow run $out/digits.minnow --input $fx/reference.npz -o $out/outputs.npz"
$bin run "$out/digits.minnow" --input $fx/reference.npz -o "$out/outputs.npz"
echo
echo "\$ minnow parity $out/digits.minnow --reference $fx/reference.npz --spec $fx/parity.json"
$bin parity "$out/digits.minnow" --reference $fx/reference.npz --spec $fx/parity.json
