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
                    var bytes = q.scales.withUnsafeBytes { Array($0) }
                    bytes += q.zeroPoints.map { UInt8(bitPattern: Int8($0)) }
                    segments.append(SegmentPayload(bytes: bytes, shuffleWidth: 0))
                    q.buffer = UInt32(segments.count)
                    q.scales = []
                    q.zeroPoints = []
                    info.quant = q
                }
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
