import MinnowFormat
import MinnowKernels

// Load-time checks and preparation, one function per operator family. Every shape and dtype
// a kernel relies on is checked here, so Session.run never has to.

struct OpPreparer {
    let d: ModelDescription
    let constants: [AlignedBytes?]
    let kernels: mn_kernel_table
    /// Packed weights by buffer, shared by the graphs of every sequence length.
    let packCache: PackCache

    /// Per-weight work shared by every sequence length's graph (they share weight buffers).
    final class PackCache {
        var byBuffer: [UInt32: AlignedBytes] = [:]
        var rowSumsByBuffer: [UInt32: [Int32]] = [:]
        /// Convolution weights packed for the table's conv_s8, by buffer and kernel geometry.
        var convByKey: [String: AlignedBytes] = [:]
    }

    /// The weight repacked once for kernels that want their own layout.
    func packed(_ weights: UnsafePointer<Int8>, buffer: UInt32, k: Int, n: Int) -> AlignedBytes? {
        guard let pack = kernels.pack_s8, let size = kernels.packed_s8_size else { return nil }
        if let done = packCache.byBuffer[buffer] { return done }
        let out = AlignedBytes(count: size(Int32(k), Int32(n)))
        pack(weights, out.pointer.assumingMemoryBound(to: Int8.self), Int32(k), Int32(n))
        packCache.byBuffer[buffer] = out
        return out
    }

    func tensor(_ i: Int32) -> TensorInfo { d.tensors[Int(i)] }

    func prepare(_ op: OperatorInfo, index: Int) throws(ModelError) -> PreparedOp {
        let what = "operator \(index) (\(op.opcode) '\(op.name)')"
        func arity(_ ins: ClosedRange<Int>, _ outs: Int) throws(ModelError) {
            guard ins.contains(op.inputs.count), op.outputs.count == outs else {
                throw .invalid("\(what): \(op.inputs.count) inputs and \(op.outputs.count) outputs, expected \(ins) and \(outs)")
            }
            for i in op.inputs where i < 0 { throw .invalid("\(what): required input left out") }
        }
        switch op.opcode {
        case .dense:
            guard op.inputs.count == 2 || op.inputs.count == 3, op.outputs.count == 1, op.inputs[0] >= 0, op.inputs[1] >= 0
            else { throw .invalid("\(what): expects inputs (x, W[, bias]) and one output") }
            return try prepareDense(op, what)
        case .add, .sub, .mul, .div, .pow, .max, .min:
            try arity(2...2, 1)
            return try prepareBinary(op, what)
        case .exp, .sqrt, .erf, .neg, .reciprocal, .gelu, .geluTanh:
            try arity(1...1, 1)
            let x = tensor(op.inputs[0]), y = tensor(op.outputs[0])
            try requireFloat(what, x, y)
            try sameShape(what, x, y)
            let codes: [OpCode: Int32] = [.exp: 5, .sqrt: 6, .erf: 7, .neg: 8, .reciprocal: 9, .gelu: 10, .geluTanh: 11]
            return .unary(op: codes[op.opcode]!, x: Int(op.inputs[0]), y: Int(op.outputs[0]),
                          elementsPerSample: perSample(x), p0: 0, p1: 0)
        case .stridedCopy, .gather, .reduce, .matmul, .layerNorm, .where, .equal, .less, .greater, .and, .or, .not, .cast, .im2col, .pool, .lstm, .gru:
            // LSTM may have a second output: its final cell state.
            guard op.outputs.count == 1 || (op.opcode == .lstm && op.outputs.count == 2), !op.inputs.isEmpty else {
                throw .invalid("\(what): expects inputs and one output\(op.opcode == .lstm ? " (or two: y and the final cell state)" : "")")
            }
            return try prepareTensorOp(op, what)
        case .relu, .leakyRelu, .sigmoid, .tanh, .clip:
            try arity(1...1, 1)
            let x = tensor(op.inputs[0]), y = tensor(op.outputs[0])
            try requireFloat(what, x, y)
            try sameShape(what, x, y)
            var p0: Float = 0, p1: Float = 0
            let code: Int32
            switch (op.opcode, op.options) {
            case (.relu, _): code = 0
            case let (.leakyRelu, .leakyRelu(alpha)): code = 1; p0 = alpha
            case (.leakyRelu, _): code = 1; p0 = 0.01
            case (.sigmoid, _): code = 2
            case (.tanh, _): code = 3
            case let (.clip, .clip(lo, hi)): code = 4; p0 = lo; p1 = hi
            default: throw .invalid("\(what): missing clip bounds")
            }
            return .unary(op: code, x: Int(op.inputs[0]), y: Int(op.outputs[0]),
                          elementsPerSample: perSample(x), p0: p0, p1: p1)
        case .softmax, .logSoftmax:
            try arity(1...1, 1)
            let x = tensor(op.inputs[0]), y = tensor(op.outputs[0])
            try requireFloat(what, x, y)
            try sameShape(what, x, y)
            var axis = -1, nanToZero = false
            if case let .softmax(a, z) = op.options { (axis, nanToZero) = (Int(a), z) }
            let rank = x.shape.count
            if axis < 0 { axis += rank }
            guard axis == rank - 1, rank >= 2 else {
                throw .unsupported("\(what): softmax over axis \(axis) of a rank-\(rank) tensor (only the last axis)")
            }
            let cols = Int(x.shape[rank - 1])
            guard cols > 0 else { throw .invalid("\(what): softmax over an empty axis") }
            return .softmax(x: Int(op.inputs[0]), y: Int(op.outputs[0]), cols: cols,
                            rowsPerSample: perSample(x) / cols, log: op.opcode == .logSoftmax, nanToZero: nanToZero)
        case .copy:
            try arity(1...1, 1)
            let x = tensor(op.inputs[0]), y = tensor(op.outputs[0])
            guard x.dtype == y.dtype, !x.isConstant, perSample(x) == perSample(y) else {
                throw .invalid("\(what): copy from \(x.dtype)\(x.shape) to \(y.dtype)\(y.shape) changes size or dtype")
            }
            guard x.quant == y.quant else { throw .invalid("\(what): copy changes quantization parameters") }
            return .copy(x: Int(op.inputs[0]), y: Int(op.outputs[0]), bytesPerSample: perSample(x) * x.dtype.byteSize)
        case .concat:
            try arity(1...1024, 1)
            return try prepareConcat(op, what)
        case .quantize, .dequantize:
            try arity(1...1, 1)
            let x = tensor(op.inputs[0]), y = tensor(op.outputs[0])
            let q = op.opcode == .quantize ? y : x
            let f = op.opcode == .quantize ? x : y
            guard f.dtype == .float32, q.dtype == .int8, let qp = q.quant, qp.axis == -1, !x.isConstant else {
                throw .invalid("\(what): expects float32 <-> per-tensor int8 activations")
            }
            try sameShape(what, x, y)
            let n = perSample(x)
            return op.opcode == .quantize
                ? .quantize(x: Int(op.inputs[0]), y: Int(op.outputs[0]), elementsPerSample: n, scale: qp.scales[0], zp: qp.zeroPoints[0])
                : .dequantize(x: Int(op.inputs[0]), y: Int(op.outputs[0]), elementsPerSample: n, scale: qp.scales[0], zp: qp.zeroPoints[0])
        }
    }

    func perSample(_ t: TensorInfo) -> Int {
        Model.elementCount(t.isBatched ? Array(t.shape.dropFirst()) : t.shape) ?? 0
    }

    func requireFloat(_ what: String, _ ts: TensorInfo...) throws(ModelError) {
        for t in ts where t.dtype != .float32 {
            throw .invalid("\(what): tensor '\(t.name)' is \(t.dtype), expected float32")
        }
    }

    func sameShape(_ what: String, _ a: TensorInfo, _ b: TensorInfo) throws(ModelError) {
        guard a.shape == b.shape else { throw .invalid("\(what): shapes \(a.shape) and \(b.shape) differ") }
    }

    private func activation(_ o: DenseOptions) -> mn_activation {
        mn_activation(kind: Int32(o.activation.rawValue), lo: o.actMin, hi: o.actMax, alpha: o.actAlpha)
    }

    // MARK: Dense

    private func prepareDense(_ op: OperatorInfo, _ what: String) throws(ModelError) -> PreparedOp {
        let x = tensor(op.inputs[0]), w = tensor(op.inputs[1]), y = tensor(op.outputs[0])
        let biasIndex: Int? = op.inputs.count == 3 && op.inputs[2] >= 0 ? Int(op.inputs[2]) : nil
        guard case let .dense(options) = op.options else { throw .invalid("\(what): missing DenseOptions") }
        guard w.isConstant, w.shape.count == 2 else { throw .invalid("\(what): weight must be a 2-D constant [N, K]") }
        guard !x.isConstant, x.shape.count >= 2 else { throw .invalid("\(what): input must be a batched activation") }
        let n = Int(w.shape[0]), k = Int(w.shape[1])
        guard n > 0, k > 0, Int(x.shape.last!) == k else {
            throw .invalid("\(what): input shape \(x.shape) does not end in K=\(k) of weight \(w.shape)")
        }
        guard y.shape == Array(x.shape.dropLast()) + [Int64(n)] else {
            throw .invalid("\(what): output shape \(y.shape), expected \(Array(x.shape.dropLast()) + [Int64(n)])")
        }
        var dense = PreparedOp.Dense(x: Int(op.inputs[0]), w: Int(op.inputs[1]), y: Int(op.outputs[0]), k: k, n: n,
                                     rowsPerSample: perSample(x) / k, act: activation(options))
        if w.dtype == .int8 {
            dense.packed = packed(UnsafePointer(constants[dense.w]!.pointer.assumingMemoryBound(to: Int8.self)), buffer: w.buffer, k: k, n: n)
        }
        let bias = biasIndex.map { d.tensors[$0] }
        if let bias, bias.shape != [Int64(n)] || !bias.isConstant {
            throw .invalid("\(what): bias must be a constant of shape [\(n)], found \(bias.shape)")
        }

        switch (x.dtype, w.dtype, y.dtype) {
        case (.float32, .float32, .float32):
            if let bias, bias.dtype != .float32 { throw .invalid("\(what): float dense needs a float32 bias") }
            return .denseF32(dense, bias: biasIndex)
        case (.float32, .int8, .float32):
            guard options.dynamicQuant else { throw .invalid("\(what): int8 weights with float input need dynamic_quant") }
            if let bias, bias.dtype != .float32 { throw .invalid("\(what): dynamic dense needs a float32 bias") }
            let wq = try weightQuant(w, n: n, what)
            let weights = constants[dense.w]!.pointer.assumingMemoryBound(to: Int8.self)
            return .denseDynamic(dense, bias: biasIndex, wsum: PinnedBuffer(rowSums(weights, buffer: w.buffer, n: n, k: k)),
                                 wscale: PinnedBuffer(wq.scales))
        case (.int8, .int8, .int8), (.int8, .int8, .float32):
            guard let xq = x.quant, xq.axis == -1 else { throw .invalid("\(what): int8 input needs per-tensor quantization") }
            let wq = try weightQuant(w, n: n, what)
            let weights = constants[dense.w]!.pointer.assumingMemoryBound(to: Int8.self)
            var folded = [Int32](repeating: 0, count: n)
            if let biasIndex {
                guard d.tensors[biasIndex].dtype == .int32 else { throw .invalid("\(what): int8 dense needs an int32 bias") }
                let b = constants[biasIndex]!.pointer.assumingMemoryBound(to: Int32.self)
                for c in 0..<n { folded[c] = b[c] }
            }
            // Fold the input zero point into the bias: sum (x - zx) w = sum x w - zx * sum w.
            let sums = rowSums(weights, buffer: w.buffer, n: n, k: k)
            let zx = Int64(xq.zeroPoints[0])
            for c in 0..<n {
                let v = Int64(folded[c]) - zx * Int64(sums[c])
                guard v >= Int64(Int32.min), v <= Int64(Int32.max) else {
                    throw .invalid("\(what): folded bias of channel \(c) overflows int32")
                }
                folded[c] = Int32(v)
            }
            if y.dtype == .float32 {
                let scales = (0..<n).map { xq.scales[0] * wq.scales[$0] }
                return .denseS8F32(dense, bias: PinnedBuffer(folded), wsum: PinnedBuffer(sums), scale: PinnedBuffer(scales))
            }
            guard let yq = y.quant, yq.axis == -1 else { throw .invalid("\(what): int8 output needs per-tensor quantization") }
            var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
            for c in 0..<n {
                let real = Double(xq.scales[0]) * Double(wq.scales[c]) / Double(yq.scales[0])
                mn_quantize_multiplier(real, &mult[c], &shift[c])
            }
            let (qmin, qmax) = try clampRange(options, yq, what)
            return .denseS8(dense, bias: PinnedBuffer(folded), wsum: PinnedBuffer(sums), mult: PinnedBuffer(mult), shift: PinnedBuffer(shift),
                            outZP: yq.zeroPoints[0], qmin: qmin, qmax: qmax)
        default:
            throw .unsupported("\(what): dense with \(x.dtype) input, \(w.dtype) weight, \(y.dtype) output")
        }
    }

    private func weightQuant(_ w: TensorInfo, n: Int, _ what: String) throws(ModelError) -> QuantParams {
        guard let q = w.quant, q.axis == 0 || q.axis == -1 else {
            throw .invalid("\(what): int8 weight needs quantization parameters")
        }
        guard q.zeroPoints.allSatisfy({ $0 == 0 }) else { throw .invalid("\(what): int8 weights must be symmetric (zero point 0)") }
        if q.axis == -1 { return QuantParams(scales: Array(repeating: q.scales[0], count: n), zeroPoints: Array(repeating: 0, count: n), axis: 0) }
        return q
    }

    /// sum_k w[n, k] per output channel, computed once per weight buffer.
    private func rowSums(_ w: UnsafePointer<Int8>, buffer: UInt32, n: Int, k: Int) -> [Int32] {
        if let done = packCache.rowSumsByBuffer[buffer], done.count == n { return done }
        let sums = (0..<n).map { c in
            var s: Int32 = 0
            for i in 0..<k { s += Int32(w[c * k + i]) }
            return s
        }
        packCache.rowSumsByBuffer[buffer] = sums
        return sums
    }

    /// The int8 clamp that implements a fused relu or clip in the output's quantized domain.
    private func clampRange(_ o: DenseOptions, _ q: QuantParams, _ what: String) throws(ModelError) -> (Int32, Int32) {
        let s = q.scales[0], z = q.zeroPoints[0]
        func quantized(_ v: Float) -> Int32 {
            let r = (v / s).rounded(.toNearestOrEven) + Float(z)
            return Int32(max(-128, min(127, r.isNaN ? -128 : r)))
        }
        switch o.activation {
        case .none: return (-128, 127)
        case .relu: return (max(-128, z), 127)
        case .clip: return (quantized(o.actMin), quantized(o.actMax))
        case .leakyRelu: throw .unsupported("\(what): leaky relu fused into an int8-output dense")
        }
    }

    // MARK: Binary

    private func prepareBinary(_ op: OperatorInfo, _ what: String) throws(ModelError) -> PreparedOp {
        let a = tensor(op.inputs[0]), b = tensor(op.inputs[1]), y = tensor(op.outputs[0])
        try requireFloat(what, a, b, y)
        let (dims, strides, batchAxis) = try broadcastSpace([a, b], y, what)
        let codes: [OpCode: Int32] = [.add: 0, .sub: 1, .mul: 2, .div: 3, .pow: 4, .max: 5, .min: 6]
        return .binary(op: codes[op.opcode]!, a: Int(op.inputs[0]), b: Int(op.inputs[1]), y: Int(op.outputs[0]),
                       dims: dims, aStrides: strides[0], bStrides: strides[1], batchAxis: batchAxis)
    }

    /// The 4-D iteration space of a broadcast op and each operand's element strides in it
    /// (0 where it broadcasts). The batch extent (dims[batchAxis]) is set per run.
    func broadcastSpace(_ operands: [TensorInfo], _ y: TensorInfo, _ what: String) throws(ModelError)
        -> (dims: [Int64], strides: [[Int64]], batchAxis: Int) {
        let rank = y.shape.count
        guard rank <= 4 else { throw .unsupported("\(what): broadcasting at rank \(rank) (at most 4)") }
        guard y.isBatched else { throw .invalid("\(what): output must be batched") }
        // Right-align every shape to 4 dims; the output's batch dim lands at 4 - rank.
        func padded(_ s: [Int64]) -> [Int64] { Array(repeating: 1, count: 4 - s.count) + s }
        let batchAxis = 4 - rank
        var dims = padded(y.shape)
        dims[batchAxis] = 1  // the real batch is set per run
        var all: [[Int64]] = []
        for t in operands {
            guard t.shape.count <= rank else { throw .invalid("\(what): operand rank above output rank") }
            var s = padded(t.shape)
            if t.isBatched { s[4 - t.shape.count] = 1 }  // batch extent is taken from the run
            var out = [Int64](repeating: 0, count: 4)
            var step: Int64 = 1
            for i in (0..<4).reversed() {
                if s[i] == dims[i] || (t.isBatched && i == 4 - t.shape.count) {
                    out[i] = step
                } else if s[i] == 1 {
                    out[i] = 0
                } else {
                    throw .invalid("\(what): shape \(t.shape) does not broadcast to \(y.shape)")
                }
                step *= s[i]
            }
            // A batched operand must be batched along the output's batch axis.
            if t.isBatched && 4 - t.shape.count != batchAxis { throw .invalid("\(what): batch axes of \(t.shape) and \(y.shape) differ") }
            if !t.isBatched { out[batchAxis] = 0 }
            all.append(out)
        }
        return (dims, all, batchAxis)
    }

    // MARK: Concat

    private func prepareConcat(_ op: OperatorInfo, _ what: String) throws(ModelError) -> PreparedOp {
        let y = tensor(op.outputs[0])
        var axis = 1
        if case let .concat(a) = op.options { axis = Int(a) }
        if axis < 0 { axis += y.shape.count }
        guard axis >= 1, axis < y.shape.count else { throw .unsupported("\(what): concat along axis \(axis)") }
        var chunks: [Int] = []
        var total: Int64 = 0
        for i in op.inputs {
            let t = tensor(i)
            guard t.isBatched, t.dtype == y.dtype, t.quant == y.quant, t.shape.count == y.shape.count else {
                throw .invalid("\(what): input '\(t.name)' must be a batched \(y.dtype) activation of rank \(y.shape.count) with the output's quantization")
            }
            for j in 1..<y.shape.count where j != axis && t.shape[j] != y.shape[j] {
                throw .invalid("\(what): input shape \(t.shape) does not match output \(y.shape) off the concat axis")
            }
            total += t.shape[axis]
            chunks.append((Model.elementCount(Array(t.shape[axis...])) ?? 0) * t.dtype.byteSize)
        }
        guard total == y.shape[axis] else { throw .invalid("\(what): inputs sum to \(total) along axis \(axis), output has \(y.shape[axis])") }
        let outer = Model.elementCount(Array(y.shape[1..<axis])) ?? 1
        return .concat(inputs: op.inputs.map(Int.init), chunkBytes: chunks, y: Int(op.outputs[0]), outerPerSample: outer)
    }
}
