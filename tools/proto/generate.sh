#!/usr/bin/env bash
# Regenerates Sources/MinnowConvert/ONNX/onnx_subset.pb.swift from tools/proto/onnx_subset.proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from swift-protobuf 1.39.0:
#   swift build -c release --product protoc-gen-swift   (in a swift-protobuf checkout)
set -euo pipefail
cd "$(dirname "$0")/../.."
PLUGIN=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}
protoc --plugin=protoc-gen-swift="$PLUGIN" --swift_opt=Visibility=Internal \
  --swift_out=Sources/MinnowConvert/ONNX -I tools/proto tools/proto/onnx_subset.proto
