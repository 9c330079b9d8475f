import MinnowFormat

// Structural checks on a decoded model, run once at load: every index, size and offset the
// runtime will later use without checking is proved valid here.

extension Model {
    /// The largest max batch a model may declare (the converter allows the same).
    public static let maxBatchLimit: UInt32 = 65536

    /// Elements in a shape with the batch dimension (-1) taken as `batch`; nil on overflow or
    /// a negative dimension elsewhere.
    static func elementCount(_ shape: [Int64], batch: Int64 = 1) -> Int? {
        var n: Int64 = 1
        for (i, d) in shape.enumerated() {
            let dim = (i == 0 && d == -1) ? batch : d
            guard dim >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: dim)
            guard !o, p <= Int64(Int32.max) * 64 else { return nil }
            n = p
        }
        return Int(n)
    }

    /// `prefixConstants`: constants that may use only the first bytes of their buffer (a graph
    /// at a shorter sequence length, format 1.3).
    static func validateTensors(_ d: ModelDescription, prefixConstants: Set<Int> = []) throws(ModelError) {
        let arena = d.memoryPlan.arenaBytesPerSample
        guard d.memoryPlan.maxBatch >= 1, d.memoryPlan.maxBatch <= Model.maxBatchLimit else {
            throw .invalid("memory plan max batch \(d.memoryPlan.maxBatch) is outside 1...\(Model.maxBatchLimit)")
        }
        guard arena <= UInt64(Int32.max) else { throw .invalid("arena of \(arena) bytes per sample is too large") }
        for (i, t) in d.tensors.enumerated() {
            let label = "tensor \(i) '\(t.name)'"
            if t.shape.count > 8 { throw .unsupported("\(label): rank \(t.shape.count) above 8") }
            guard let elements = elementCount(t.shape) else {
                throw .invalid("\(label): shape \(t.shape) has a negative or overflowing dimension")
            }
            let (bytes, o) = elements.multipliedReportingOverflow(by: t.dtype.byteSize)
            guard !o else { throw .invalid("\(label): byte size overflows") }
            if let q = t.quant { try validateQuant(q, tensor: t, label: label) }
            if t.isConstant {
                guard Int(t.buffer) <= d.buffers.count else {
                    throw .invalid("\(label): buffer \(t.buffer) does not exist (model has \(d.buffers.count))")
                }
                guard !t.shape.contains(-1) else { throw .invalid("\(label): a constant cannot have a batch dimension") }
                let size = d.buffers[Int(t.buffer) - 1].size
                guard size == UInt64(bytes) || (prefixConstants.contains(i) && size >= UInt64(bytes)) else {
                    throw .invalid("\(label): buffer \(t.buffer) holds \(size) bytes, shape \(t.shape) of \(t.dtype) needs \(bytes)")
                }
            } else {
                guard t.isBatched else {
                    throw .unsupported("\(label): activation without a batch dimension (shape \(t.shape))")
                }
                guard t.arenaOffsetPerSample % UInt64(AlignedBytes.alignment) == 0 else {
                    throw .invalid("\(label): arena offset \(t.arenaOffsetPerSample) is not 64-byte aligned")
                }
                let (end, o2) = t.arenaOffsetPerSample.addingReportingOverflow(UInt64(bytes))
                guard !o2, end <= arena else {
                    throw .invalid("\(label): arena range [\(t.arenaOffsetPerSample), \(end)) per sample exceeds the arena of \(arena) bytes")
                }
            }
        }
    }

    private static func validateQuant(_ q: QuantParams, tensor t: TensorInfo, label: String) throws(ModelError) {
        let expected: Int
        if q.axis == -1 {
            expected = 1
        } else {
            guard q.axis >= 0, Int(q.axis) < t.shape.count, t.shape[Int(q.axis)] >= 0 else {
                throw .invalid("\(label): quantization axis \(q.axis) outside shape \(t.shape)")
            }
            expected = Int(t.shape[Int(q.axis)])
        }
        guard q.scales.count == expected, q.zeroPoints.count == expected else {
            throw .invalid("\(label): \(q.scales.count) scales and \(q.zeroPoints.count) zero points, expected \(expected)")
        }
        for s in q.scales where !(s > 0 && s.isFinite) {
            throw .invalid("\(label): quantization scale \(s) is not a positive finite number")
        }
        let (lo, hi): (Int32, Int32) = t.dtype == .uint8 ? (0, 255) : (-128, 127)
        for z in q.zeroPoints where z < lo || z > hi {
            throw .invalid("\(label): zero point \(z) outside \(lo)...\(hi)")
        }
    }

    /// Operands exist, and every activation is written before it is read and written only once.
    static func validateGraph(_ d: ModelDescription) throws(ModelError) {
        let n = d.tensors.count
        var written = [Bool](repeating: false, count: n)
        func check(_ idx: Int32, _ what: String) throws(ModelError) -> Int {
            guard idx >= 0, Int(idx) < n else { throw .invalid("\(what): tensor index \(idx) out of range 0..<\(n)") }
            return Int(idx)
        }
        for i in d.inputs {
            let t = try check(i, "model input")
            guard !d.tensors[t].isConstant else { throw .invalid("model input '\(d.tensors[t].name)' is a constant") }
            written[t] = true
        }
        for (k, op) in d.operators.enumerated() {
            let what = "operator \(k) (\(op.opcode) '\(op.name)')"
            guard op.opcode.sinceMinor <= d.formatMinor else {
                throw .invalid("\(what): opcode needs format 1.\(op.opcode.sinceMinor), the file declares \(d.formatMajor).\(d.formatMinor)")
            }
            for i in op.inputs where i != -1 {
                let t = try check(i, what)
                guard d.tensors[t].isConstant || written[t] else {
                    throw .invalid("\(what): reads tensor '\(d.tensors[t].name)' before any operator writes it")
                }
            }
            guard !op.outputs.isEmpty else { throw .invalid("\(what): has no outputs") }
            for o in op.outputs {
                let t = try check(o, what)
                guard !d.tensors[t].isConstant, !written[t] else {
                    throw .invalid("\(what): writes tensor '\(d.tensors[t].name)' that is a constant or already written")
                }
                written[t] = true
            }
        }
        for o in d.outputs {
            let t = try check(o, "model output")
            guard written[t] else { throw .invalid("model output '\(d.tensors[t].name)' is never written") }
        }
    }

    /// Tensors alive at the same time never share arena bytes. Lifetimes are computed as the
    /// converter's planner does (model inputs from before the first operator, and since 1.2 to after the last; outputs to after
    /// the last; otherwise first write to last read), so a file whose plan would let one operator
    /// overwrite a value another still needs is refused rather than silently computing garbage.
    static func validateMemoryPlan(_ d: ModelDescription) throws(ModelError) {
        let n = d.tensors.count
        var first = [Int](repeating: Int.max, count: n), last = [Int](repeating: Int.min, count: n)
        func touch(_ t: Int32, _ at: Int) {
            guard t >= 0, !d.tensors[Int(t)].isConstant else { return }
            first[Int(t)] = min(first[Int(t)], at)
            last[Int(t)] = max(last[Int(t)], at)
        }
        for t in d.inputs {
            touch(t, -1)
            if d.formatMinor >= 2 { touch(t, d.operators.count) }  // 1.2: inputs survive the run
        }
        for (i, op) in d.operators.enumerated() {
            for t in op.inputs { touch(t, i) }
            for t in op.outputs { touch(t, i) }
        }
        for t in d.outputs { touch(t, d.operators.count) }
        // 1.7 views: a copy whose output has its input's offset (and, as a copy, its size) is a
        // view of the same bytes, and the session does not run it. A written tensor and its
        // views form a group whose members may share bytes with one another (each is written
        // once, so the bytes never change while one is alive), never with anything else alive
        // meanwhile. Every member is checked with its own lifetime; a view is born at the copy
        // that reads its source, so together they cover the group's whole life.
        var group = Array(0..<n)
        if d.formatMinor >= 7 {
            // Operators are in order and write each tensor once (validateGraph), so a view's
            // source already has its final group.
            for op in d.operators where op.opcode == .copy && op.inputs.count == 1 && op.outputs.count == 1 {
                let x = Int(op.inputs[0]), y = Int(op.outputs[0])
                guard x >= 0, !d.tensors[x].isConstant, d.tensors[x].arenaOffsetPerSample == d.tensors[y].arenaOffsetPerSample else { continue }
                group[y] = group[x]
            }
        }
        // (index, start, end) of every live activation with bytes, by arena offset.
        var ranges: [(index: Int, start: UInt64, end: UInt64)] = []
        for (i, t) in d.tensors.enumerated() where first[i] <= last[i] {
            // Shapes were checked by validateTensors, so this cannot overflow.
            let bytes = UInt64(elementCount(t.shape)! * t.dtype.byteSize)
            if bytes > 0 { ranges.append((i, t.arenaOffsetPerSample, t.arenaOffsetPerSample + bytes)) }
        }
        ranges.sort { ($0.start, $0.index) < ($1.start, $1.index) }
        for (k, a) in ranges.enumerated() {
            for b in ranges[(k + 1)...] {
                guard b.start < a.end else { break }
                guard group[a.index] != group[b.index], first[a.index] <= last[b.index], first[b.index] <= last[a.index] else { continue }
                let ta = d.tensors[a.index], tb = d.tensors[b.index]
                throw .invalid("memory plan: tensors \(a.index) '\(ta.name)' [\(a.start), \(a.end)) and \(b.index) '\(tb.name)' [\(b.start), \(b.end)) overlap while both are alive")
            }
        }
    }
}
