#!/usr/bin/env bash
# Regenerates the committed seed corpus in fuzz/corpus/ from the fixtures. Inputs that found
# bugs are added by hand, named crash-<what>; seeds named reject-* must be refused.
# Needs a built `minnow` and numpy + onnx.
set -euo pipefail
cd "$(dirname "$0")/.."
MINNOW=${MINNOW:-.build/release/minnow}
C=fuzz/corpus
mkdir -p $C/model $C/npz $C/onnx $C/http

# model: every fixture converted small (max batch 2), static and dynamic, two with golden samples.
for f in digits_mlp ctr_mlp regression_mlp outlier_mlp; do
    $MINNOW convert fixtures/$f/model.onnx -o $C/model/$f.minnow --calibration fixtures/$f/calibration.npz --max-batch 2 >/dev/null
done
for f in ctr_mlp regression_mlp; do
    $MINNOW convert fixtures/$f/model.onnx -o $C/model/$f-golden.minnow --calibration fixtures/$f/calibration.npz \
        --bundle-reference fixtures/$f/reference.npz --max-batch 2 >/dev/null
done
$MINNOW convert fixtures/outlier_mlp/model.onnx -o $C/model/outlier_mlp-dynamic.minnow --mode dynamic --max-batch 2 >/dev/null

# npz / npy and onnx: small files written by numpy and onnx themselves.
python3 fuzz/seed_corpus.py $C
cp fixtures/outlier_mlp/model.onnx $C/onnx/outlier_mlp.onnx
for f in fixtures/errors/*.onnx; do cp $f $C/onnx/reject-$(basename $f); done
