import MinnowFormat

// MGraph + memory plan -> ModelDescription + weight segments -> .minnow bytes.

enum Emitter {
    static func describe(_ g: MGraph, plan: MemoryPlan, maxBatch: Int, metadata: [KeyValue], producer: String,
                         sourceHash: String) -> (ModelDescription, [SegmentPayload]) {
        var d = ModelDescription()
        d.producer = producer
        d.sourceHash = sourceHash
        d.metadata = metadata
        var segments: [SegmentPayload] = []
        for (i, t) in g.tensors.enumerated() {
            var info = TensorInfo(name: t.name, dtype: t.dtype, shape: t.shape, quant: t.quant)
            if let data = t.data {
                segments.append(SegmentPayload(bytes: data.bytes, shuffleWidth: t.dtype.byteSize == 4 ? 4 : 0))
                info.buffer = UInt32(segments.count)
                // Many per-slice parameters (an embedding table's per-row scales and offsets) go to a
                // compressed segment of their own rather than into the FlatBuffer.
                if var q = t.quant, q.scales.count > 256, q.zeroPoints.allSatisfy({ (-128...127).contains($0) }) {
                    var bytes: [UInt8]
                    var kept: [Float] = []
                    switch q.rowEncoding {
                    case .float32:
                        bytes = q.scales.withUnsafeBytes { Array($0) } + q.zeroPoints.map { UInt8(bitPattern: Int8($0)) }
                    case .logSymmetric, .logAsymmetric:
                        // The quantizer made every scale a code's value; the largest is code 255.
                        let largest = q.scales.max() ?? 1
                        bytes = q.scales.map { RowEncoding.code(for: $0, largest: largest) }
                        if q.rowEncoding == .logAsymmetric { bytes += q.zeroPoints.map { UInt8(bitPattern: Int8($0)) } }
                        kept = [largest]
                    }
                    segments.append(SegmentPayload(bytes: bytes, shuffleWidth: 0))
                    q.buffer = UInt32(segments.count)
                    q.scales = kept
                    q.zeroPoints = []
                    info.quant = q
                }
                // Parameters left in the vectors are plain float32 values whatever the quantizer chose.
                if info.quant?.buffer == 0 { info.quant?.rowEncoding = .float32 }
            } else {
                info.arenaOffsetPerSample = plan.offsets[i] ?? 0
            }
            d.tensors.append(info)
        }
        d.operators = g.ops.map { op in
            OperatorInfo(opcode: op.opcode, inputs: op.inputs.map { Int32($0) }, outputs: op.outputs.map { Int32($0) },
                         options: op.options, name: op.name)
        }
        d.inputs = g.inputs.map { Int32($0) }
        d.outputs = g.outputs.map { Int32($0) }
        d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: plan.arenaBytesPerSample, alignment: UInt32(MemoryPlanner.alignment),
                                      maxBatch: UInt32(maxBatch))
        return (d, segments)
    }

    static func bytes(_ g: MGraph, plan: MemoryPlan, maxBatch: Int, metadata: [KeyValue] = [], producer: String = "",
                      sourceHash: String = "", codec: Codec = .zstd, zstdLevel: Int32 = 3) -> [UInt8] {
        let (d, segments) = describe(g, plan: plan, maxBatch: maxBatch, metadata: metadata, producer: producer, sourceHash: sourceHash)
        return ModelFileWriter.write(d, segments: segments, codec: codec, zstdLevel: zstdLevel)
    }
}
