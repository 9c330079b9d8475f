import MinnowFormat

// Variable sequence length (format 1.3). Operator parameters of a sequence model are functions
// of the length (strides, matmul extents, softmax rows, position-embedding slices), so rather than
// making every kernel's parameters symbolic, the converter lowers the ONNX graph again at each
// accepted length and keeps what differs from the graph at the longest length: shapes, the
// length-dependent constants and operator parameters. A length whose graph differs in any other
// way (an op fused or quantized differently, a tensor larger than at the longest length) is left
// out with the reason, and the session refuses it by name.

struct SequenceVariantBuilder {
    /// The model's graph at the longest length, after quantization and compaction.
    let main: MGraph
    /// Segments of the file being written; changed constants are appended (deduplicated).
    var segments: [SegmentPayload]
    private var segmentIndex: [[UInt8]: UInt32] = [:]

    init(main: MGraph, segments: [SegmentPayload]) {
        self.main = main
        self.segments = segments
    }

    /// The changes that turn `main` into `g` (the same model lowered at `length`), or why
    /// there are none that the format can express.
    mutating func variant(_ g: MGraph, length: Int) -> Result<SequenceVariant, VariantRefusal> {
        guard g.tensors.count == main.tensors.count, g.ops.count == main.ops.count, g.inputs == main.inputs, g.outputs == main.outputs else {
            return .failure(VariantRefusal("the graph has \(g.ops.count) operators and \(g.tensors.count) tensors (\(main.ops.count) and \(main.tensors.count) at the longest length)"))
        }
        var variant = SequenceVariant(length: UInt32(length), tensors: [], operators: [])
        var newSegments: [(bytes: [UInt8], width: Int, change: Int)] = []
        for (i, (a, b)) in zip(main.tensors, g.tensors).enumerated() {
            guard a.name == b.name, a.dtype == b.dtype, a.quant == b.quant, a.isConstant == b.isConstant, a.shape.count == b.shape.count else {
                return .failure(VariantRefusal("tensor '\(a.name)' differs in name, dtype, quantization or rank"))
            }
            if !a.isConstant && MemoryPlanner.bytesPerSample(b) > MemoryPlanner.bytesPerSample(a) {
                return .failure(VariantRefusal("tensor '\(a.name)' \(b.shape) is larger than at the longest length \(a.shape)"))
            }
            let dataChanged = a.data != b.data
            guard a.shape != b.shape || dataChanged else { continue }
            if a.isConstant && a.quant != nil {
                return .failure(VariantRefusal("quantized constant '\(a.name)' changes with the length"))
            }
            variant.tensors.append(.init(tensor: UInt32(i), shape: b.shape))
            if dataChanged, let new = b.data?.bytes, let old = a.data?.bytes {
                if new.count <= old.count && old.starts(with: new) {
                    // A slice of the longer tensor (position embeddings, ranges): no new bytes.
                    variant.tensors[variant.tensors.count - 1].prefix = true
                } else {
                    newSegments.append((new, b.dtype.byteSize == 4 ? 4 : 0, variant.tensors.count - 1))
                }
            }
        }
        for (i, (a, b)) in zip(main.ops, g.ops).enumerated() {
            guard a.opcode == b.opcode, a.inputs == b.inputs, a.outputs == b.outputs else {
                return .failure(VariantRefusal("operator \(i) '\(a.name)' is \(b.opcode) on other tensors (\(a.opcode) at the longest length)"))
            }
            guard a.options != b.options else { continue }
            guard case let .params(ints, floats) = b.options, case .params = a.options else {
                return .failure(VariantRefusal("operator \(i) '\(a.name)' (\(a.opcode)) has other options"))
            }
            variant.operators.append(.init(op: UInt32(i), ints: ints, floats: floats))
        }
        // Only now, with the variant accepted, do its constants join the file.
        for s in newSegments {
            if let existing = segmentIndex[s.bytes] {
                variant.tensors[s.change].buffer = existing
            } else {
                segments.append(SegmentPayload(bytes: s.bytes, shuffleWidth: s.width))
                segmentIndex[s.bytes] = UInt32(segments.count)
                variant.tensors[s.change].buffer = UInt32(segments.count)
            }
        }
        return .success(variant)
    }
}

struct VariantRefusal: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
