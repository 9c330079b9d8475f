import MinnowKernels

// Per-operator timing, for `minnow bench --profile` (what TFLite's benchmark_model prints with
// --enable_op_profiling). The profiled loop is `run`'s loop with a monotonic clock read around
// each operator: it allocates nothing, and every sample lands in a buffer allocated beforehand.

/// One operator's time in the current graph.
public struct OperatorTiming: Sendable, Equatable {
    /// The operator's index in the model's graph (as `minnow inspect` numbers them; the first of
    /// a group fused at load).
    public var index: Int
    /// Its name; a group fused at load joins its operators' names with "+".
    public var name: String
    /// The format opcode ("Dense", "Softmax", ...); "Conv" for an Im2Col and Dense pair that runs
    /// as one implicit-GEMM convolution, "Softmax" for attention's scale, mask and softmax run as one.
    public var opcode: String
    /// The precision or data path of the kernel that ran it ("int8 dynamic", "f32", "memcpy", ...).
    public var kernel: String
    /// Median wall time per run over the profiled runs, in nanoseconds.
    public var medianNanoseconds: UInt64
    /// Mean wall time per run, in nanoseconds.
    public var meanNanoseconds: Double
}

/// What `Session.profile` measured.
public struct SessionProfile: Sendable {
    /// The operators in execution order (views and operators fused at load do not run, and are
    /// not listed: their time is in the operator they were fused into).
    public var operators: [OperatorTiming]
    /// Median of whole profiled runs, in nanoseconds (a little above an unprofiled run: two clock
    /// reads per operator).
    public var runMedianNanoseconds: UInt64
    public var runs: Int
    public var batch: Int
}

extension Session {
    /// Runs the model `runs` times on the first `batch` samples (inputs as set) and times every
    /// operator. Results and outputs are those of `run`; only the timing differs.
    public func profile(batch: Int, runs requested: Int) throws(RunError) -> SessionProfile {
        guard batch >= 1, batch <= maxBatch else { throw .batchOutOfRange(batch: batch, max: maxBatch) }
        let ops = plan.count
        // Every sample is kept for medians; cap the buffer at 32 MiB.
        let runs = max(1, min(requested, (4 << 20) / max(ops, 1)))
        var samples = [UInt64](repeating: 0, count: runs * ops)
        var totals = [UInt64](repeating: 0, count: runs)
        var failure: RunError?
        plan.withUnsafeBufferPointer { plan in
            samples.withUnsafeMutableBufferPointer { samples in
                for r in 0..<runs {
                    let row = samples.baseAddress! + r * ops
                    let start = mn_monotonic_ns()
                    var last = start
                    for i in 0..<ops {
                        if let bad = execute(plan[i], batch: batch, mainContext) { failure = bad; return }
                        let now = mn_monotonic_ns()
                        row[i] = now - last
                        last = now
                    }
                    totals[r] = last - start
                }
            }
        }
        if let failure { throw failure }

        let graph = model.graphs[graphIndex].description
        let prepared = model.graphs[graphIndex].prepared
        var timings: [OperatorTiming] = []
        var column = [UInt64](repeating: 0, count: runs)
        for i in 0..<ops {
            for r in 0..<runs { column[r] = samples[r * ops + i] }
            column.sort()
            let first = planOperators[graphIndex][i]
            let info = graph.operators[first]
            // Operators fused into this one at load follow it in the file: name them all.
            var name = info.name, next = first + 1
            while next < prepared.count, case .fusedIntoPrevious = prepared[next] {
                name += "+" + graph.operators[next].name
                next += 1
            }
            // Fused at load: a convolution runs as one operator where the file has two (Im2Col,
            // then Dense); attention's [Div,] Add and Softmax as one Softmax, or with the products
            // on either side as one Attention; a residual Add and the LayerNorm after it as one
            // LayerNorm.
            var opcode = info.opcode.description
            if case .convS8 = plan[i] { opcode = "Conv" }
            if case .softmaxMasked = plan[i] { opcode = "Softmax" }
            if case .attention = plan[i] { opcode = "Attention" }
            if case .layerNorm(_, .some, _, _, _, _, _, _) = plan[i] { opcode = "LayerNorm" }
            timings.append(OperatorTiming(index: first, name: name, opcode: opcode,
                                          kernel: kernelName(plan[i]), medianNanoseconds: column[runs / 2],
                                          meanNanoseconds: Double(column.reduce(0, +)) / Double(runs)))
        }
        totals.sort()
        return SessionProfile(operators: timings, runMedianNanoseconds: totals[runs / 2], runs: runs, batch: batch)
    }

    /// kernelName(_:), with the attention products' precision.
    private func kernelName(_ op: ExecOp) -> String {
        if case let .attention(index) = op, tables.attention[index].bf16 != 0 {
            return "bf16 products, f32 softmax; QK^T, mask, softmax and PV fused"
        }
        return Session.kernelName(op)
    }

    /// The precision or data path of a resolved operator's kernel, for profiles.
    static func kernelName(_ op: ExecOp) -> String {
        switch op {
        case .denseF32: return "f32"
        case .denseS8: return "int8"
        case .denseS8F32: return "int8 -> f32"
        case .denseDynamic: return "int8 dynamic"
        case .binary: return "f32"
        case .unary: return "f32"
        case .softmax: return "f32"
        case .copy: return "memcpy"
        case .concat: return "memcpy"
        case .quantize: return "f32 -> int8"
        case .dequantize: return "int8 -> f32"
        case .stridedCopy: return "strided"
        case .gather: return "rows"
        case .take: return "rows"
        case .reduce: return "f32"
        case .matmul: return "f32"
        case let .layerNorm(_, residual, _, _, _, _, _, _): return residual == nil ? "f32" : "f32, residual add fused"
        case .broadcast: return "broadcast"
        case .not: return "bool"
        case .cast: return "convert"
        case .im2col: return "window"
        case .pool: return "window"
        case .recurrent: return "f32"
        case .convS8: return "int8 implicit GEMM"
        case .softmaxMasked: return "f32, scale and mask fused"
        case .attention: return "f32, QK^T, mask, softmax and PV fused"
        }
    }
}
