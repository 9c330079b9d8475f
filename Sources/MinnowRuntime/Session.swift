import MinnowFormat
import MinnowKernels

/// One inference context: an arena sized for `maxBatch`, and every operator resolved to raw
/// pointers. `run` makes no heap allocation. Use one session per thread; sessions of the same
/// model share its weights.
public final class Session {
    public let model: Model
    public let maxBatch: Int

    private let arena: AlignedBytes
    private let scratch: AlignedBytes
    /// Gate projections of the recurrent ops, and per thread two spare rows and R^T:
    /// (batch x steps + threads x (2 + hidden)) x gates x hidden floats, the largest op's.
    let recurrentScratch: AlignedBytes
    /// Per thread, one sample's padded and widened input for the implicit-GEMM convolutions.
    let convScratch: AlignedBytes
    /// The operators of the graph at the current sequence length.
    private(set) var plan: [ExecOp]
    /// Resolved operators of every graph of the model (one per sequence length it accepts).
    private let plans: [[ExecOp]]
    /// For each entry of each plan, the index of the model operator it runs (for profiles).
    let planOperators: [[Int]]
    /// Each graph's sequence length, inputs and outputs, in the order of `plans` (plain arrays:
    /// `setSequenceLength` searches them without a closure, which allocates in debug builds).
    private let lengths: [Int]
    private let graphInputs: [[TensorSpec]]
    private let graphOutputs: [[TensorSpec]]
    private(set) var graphIndex: Int
    /// Inputs and outputs at the current sequence length (the model's own when fixed).
    public private(set) var inputs: [TensorSpec]
    public private(set) var outputs: [TensorSpec]
    /// The current sequence length (0 for a fixed-length model).
    public var sequenceLength: Int { lengths[graphIndex] }
    /// Argument records too large for an ExecOp case, indexed from the plan.
    let tables: ArgTables
    private let kernels: mn_kernel_table
    /// The same table by address (static storage in the kernels library), for the C wrappers.
    let table: UnsafePointer<mn_kernel_table>
    /// Worker pool for `threads` > 1 (nil: everything runs on the calling thread).
    let pool: OpaquePointer?
    /// Threads a run uses (the caller plus the pool's workers).
    public let threads: Int
    /// Pool and scratch of operator-split runs (the whole session's).
    let mainContext: ExecContext
    /// Sample-split runs (Session+Shards.swift): per graph, per shard, the plan resolved at the
    /// shard's first sample; nil where the model cannot be split by samples.
    let shardPlans: [[[ExecOp]]]?
    /// Samples per shard at the session's max batch (shard t starts at sample t * shardChunk).
    let shardChunk: Int
    /// The shards' own arenas, shardChunk samples each (nil: no shards).
    let shardArena: AlignedBytes?
    /// Per graph, the outputs a sample-split run copies back into the session's arena.
    let shardOutputs: [[ShardOutput]]
    /// Scratch bytes per thread: dynamic quantization, convolution.
    let dynScratchBytes: Int, convScratchBytes: Int
    /// One slot per shard: whether its part of the last sample-split run failed.
    let shardFailed: UnsafeMutablePointer<Bool>

    /// Default cap on one session's arena (activations for its max batch).
    public static let defaultArenaLimit = 4 << 30

    /// Threads a session uses when none are asked for: the physical cores this process may run
    /// on (as ONNX Runtime's default intra-op pool). A server that runs one session per request
    /// worker should ask for 1 (`minnow serve` does).
    public static let defaultThreads = min(Int(mn_physical_cores()), 256)

    /// Makes a session for batches up to `maxBatch` (default: the model's planned maximum).
    /// The arena must fit in `arenaLimit` bytes. `threads` (default `Session.defaultThreads`) > 1
    /// starts a persistent pool: a run whose batch divides evenly gives each thread its share of
    /// the samples to run through the whole plan (Session+Shards.swift), any other run splits large
    /// operators (results are identical for any thread count); 1 means no pool at all.
    /// `sampleSplit: false` keeps to operator splits, so every activation of a run stays in the
    /// session's arena: for tools that read intermediate tensors (`tensorBuffer`).
    public init(model: Model, maxBatch: Int? = nil, threads requested: Int? = nil,
                arenaLimit: Int = Session.defaultArenaLimit, sampleSplit: Bool = true) throws(ModelError) {
        let threads = requested ?? Session.defaultThreads
        guard threads >= 1, threads <= 256 else { throw .invalid("threads must be in 1...256, got \(threads)") }
        let batch = maxBatch ?? model.maxBatch
        guard batch >= 1, batch <= model.maxBatch else { throw .batchTooLarge(requested: batch, max: model.maxBatch) }
        self.model = model
        self.maxBatch = batch
        let d = model.description
        // Both factors are bounded at load (Int32 and 65536), so the product cannot overflow.
        let arenaBytes = Int(d.memoryPlan.arenaBytesPerSample) * batch
        guard arenaBytes <= arenaLimit, let arena = AlignedBytes(zeroedCount: arenaBytes) else {
            throw .arenaTooLarge(bytes: arenaBytes, limit: arenaLimit)
        }
        self.arena = arena

        pool = threads > 1 ? mn_pool_create(Int32(threads)) : nil
        self.threads = pool.map { Int(mn_pool_threads($0)) } ?? 1
        // Dynamic quantization scratch: K bytes per thread.
        let allOps = model.graphs.flatMap(\.prepared)
        var scratchBytes = 0
        for op in allOps { if case let .denseDynamic(dense, _, _, _) = op { scratchBytes = max(scratchBytes, dense.k) } }
        scratch = AlignedBytes(count: scratchBytes * self.threads)
        var recurrentBytes = 0
        for op in allOps {
            if case let .recurrent(gates, _, _, _, _, _, _, steps, _, hidden, _, _) = op {
                // Every sample's gate rows at once (the kernel steps the batch in lockstep), and per
                // thread (the pool splits by samples) two spare rows and R^T.
                recurrentBytes = max(recurrentBytes, (batch * steps + self.threads * (2 + hidden)) * gates * hidden * 4)
            }
        }
        guard recurrentBytes <= arenaLimit else { throw .arenaTooLarge(bytes: recurrentBytes, limit: arenaLimit) }
        recurrentScratch = AlignedBytes(count: recurrentBytes)
        var convBytes = 0
        for op in allOps {
            if case let .convS8(c) = op { convBytes = max(convBytes, c.params.withUnsafeBufferPointer { mn_conv_s8_scratch($0.baseAddress!) }) }
        }
        convScratch = AlignedBytes(count: convBytes * self.threads)
        dynScratchBytes = scratchBytes
        convScratchBytes = convBytes
        mainContext = ExecContext(pool: pool, dynScratch: scratch.pointer.assumingMemoryBound(to: Int8.self),
                                  convScratch: convScratch.pointer)

        // Resolve every tensor to its address: constants in the model, activations in the arena
        // at offset-per-sample × max batch (so the first `batch` rows of each are contiguous).
        // Every graph shares the arena: a graph at a shorter sequence length keeps each tensor's
        // offset and only uses less of its slot.
        let arenaBase = arena.pointer
        var tables = ArgTables()
        var plans: [[ExecOp]] = []
        var planOperators: [[Int]] = []
        for g in model.graphs {
            let addresses: [UnsafeMutableRawPointer] = g.description.tensors.enumerated().map { i, t in
                if let c = g.constants[i] { return c.pointer }
                return arenaBase + Int(t.arenaOffsetPerSample) * batch
            }
            let (plan, operators) = Session.resolvePlan(g, addresses, &tables)
            plans.append(plan)
            planOperators.append(operators)
        }
        self.plans = plans
        self.planOperators = planOperators
        let shards = sampleSplit ? Session.resolveShards(model, arenaBase: arenaBase, batch: batch, threads: self.threads, &tables) : nil
        (shardPlans, shardOutputs, shardChunk, shardArena) = (shards?.plans, shards?.outputs ?? [], shards?.chunk ?? batch, shards?.arena)
        shardFailed = .allocate(capacity: self.threads)
        shardFailed.initialize(repeating: false, count: self.threads)
        lengths = model.graphs.map(\.length)
        graphInputs = model.graphs.map(\.inputs)
        graphOutputs = model.graphs.map(\.outputs)
        graphIndex = model.graphs.count - 1
        plan = plans[graphIndex]
        inputs = graphInputs[graphIndex]
        outputs = graphOutputs[graphIndex]
        self.tables = tables
        kernels = model.kernels.pointee
        table = model.kernels
    }

    /// A graph's operators resolved at `addresses`, and the index of the model operator each runs.
    /// Operators fused into the one before them at load, and views, have nothing to run.
    static func resolvePlan(_ g: Model.Graph, _ addresses: [UnsafeMutableRawPointer], _ tables: inout ArgTables)
        -> (plan: [ExecOp], operators: [Int]) {
        var plan: [ExecOp] = []
        var operators: [Int] = []
        for (i, op) in g.prepared.enumerated() {
            if case .fusedIntoPrevious = op { continue }
            // A 1.7 view: the copy's output is its input's bytes, so there is nothing to run.
            if case let .copy(x, y, _) = op, addresses[x] == addresses[y] { continue }
            plan.append(resolve(op, index: i, addresses, &tables))
            operators.append(i)
        }
        return (plan, operators)
    }

    static func resolve(_ op: PreparedOp, index: Int, _ a: [UnsafeMutableRawPointer], _ tables: inout ArgTables) -> ExecOp {
        func f(_ i: Int) -> UnsafeMutablePointer<Float> { a[i].assumingMemoryBound(to: Float.self) }
        func args(_ d: PreparedOp.Dense) -> DenseArgs {
            DenseArgs(x: UnsafeRawPointer(a[d.x]), w: UnsafeRawPointer(d.packed?.pointer ?? a[d.w]), y: a[d.y], k: Int32(d.k), n: Int32(d.n),
                      rowsPerSample: Int32(d.rowsPerSample), act: d.act)
        }
        switch op {
        case let .denseF32(d, bias):
            return .denseF32(args(d), bias: bias.map { UnsafePointer(f($0)) })
        case let .denseS8(d, bias, wsum, mult, shift, zp, lo, hi):
            return .denseS8(args(d), bias: UnsafePointer(bias.pointer), wsum: UnsafePointer(wsum.pointer),
                            mult: UnsafePointer(mult.pointer), shift: UnsafePointer(shift.pointer), outZP: zp, qmin: lo, qmax: hi)
        case let .denseS8F32(d, bias, wsum, scale):
            return .denseS8F32(args(d), bias: UnsafePointer(bias.pointer), wsum: UnsafePointer(wsum.pointer),
                               scale: UnsafePointer(scale.pointer))
        case let .denseDynamic(d, bias, wsum, wscale):
            return .denseDynamic(args(d), bias: bias.map { UnsafePointer(f($0)) }, wsum: UnsafePointer(wsum.pointer),
                                 wscale: UnsafePointer(wscale.pointer))
        case let .binary(code, x, y, out, dims, aS, bS, axis):
            tables.binaryShapes.append(BinaryShape(dims: (dims[0], dims[1], dims[2], dims[3]), aStrides: (aS[0], aS[1], aS[2], aS[3]),
                                                   bStrides: (bS[0], bS[1], bS[2], bS[3]), batchAxis: axis))
            return .binary(op: code, a: UnsafePointer(f(x)), b: UnsafePointer(f(y)), y: f(out), shape: tables.binaryShapes.count - 1)
        case let .unary(code, x, y, n, p0, p1):
            return .unary(op: code, x: UnsafePointer(f(x)), y: f(y), perSample: n, p0: p0, p1: p1)
        case let .softmax(x, y, cols, rows, log, nanToZero):
            return .softmax(x: UnsafePointer(f(x)), y: f(y), cols: cols, rowsPerSample: rows, log: log, nanToZero: nanToZero)
        case let .copy(x, y, bytes):
            return .copy(x: UnsafeRawPointer(a[x]), y: a[y], bytesPerSample: bytes)
        case let .concat(inputs, chunks, y, outer):
            let first = tables.concatParts.count
            for (i, c) in zip(inputs, chunks) { tables.concatParts.append(ConcatPart(src: UnsafeRawPointer(a[i]), chunkBytes: c)) }
            return .concat(first: first, count: inputs.count, y: a[y], outerPerSample: outer)
        case let .quantize(x, y, n, s, zp):
            return .quantize(x: UnsafePointer(f(x)), y: a[y].assumingMemoryBound(to: Int8.self), perSample: n, scale: s, zp: zp)
        case let .dequantize(x, y, n, s, zp):
            return .dequantize(x: UnsafePointer(a[x].assumingMemoryBound(to: Int8.self)), y: f(y), perSample: n, scale: s, zp: zp)
        default:
            return resolveTensorOp(op, index: index, a, &tables)
        }
    }

    deinit {
        mn_pool_destroy(pool)
        shardFailed.deallocate()
    }

    // MARK: The hot path

    /// Runs the model on the first `batch` samples of each input. Allocation-free: a flat loop
    /// over resolved operators, each a kernel call on pre-computed pointers.
    public func run(batch: Int) throws(RunError) {
        guard batch >= 1, batch <= maxBatch else { throw .batchOutOfRange(batch: batch, max: maxBatch) }
        let shards = sampleShards(batch: batch)
        if shards > 1, runSplittingSamples(batch: batch, shards: shards) { return }
        try runOperators(batch: batch)
    }

    /// The plan on this thread, each operator split across the pool when it is large enough.
    func runOperators(batch: Int) throws(RunError) {
        var failure: RunError?
        // An index loop over the buffer: no iterator or witness-table lookups, even in debug builds.
        plan.withUnsafeBufferPointer { ops in
            for i in 0..<ops.count {
                if let bad = execute(ops[i], batch: batch, mainContext) { failure = bad; return }
            }
        }
        if let failure { throw failure }
    }

    /// Runs one resolved operator on `batch` samples; nil, or the error that stops the run.
    @inline(__always)
    func execute(_ op: ExecOp, batch: Int, _ ctx: ExecContext) -> RunError? {
        let b32 = Int32(batch), pool = ctx.pool
        switch op {
        // Dense ops go through the row-parallel wrappers: with no pool (or little work)
        // they call the kernel directly on this thread.
        case let .denseF32(d, bias):
            mn_par_dense_f32(pool, table, d.x.assumingMemoryBound(to: Float.self), d.w.assumingMemoryBound(to: Float.self),
                             bias, d.y.assumingMemoryBound(to: Float.self), b32 * d.rowsPerSample, d.k, d.n, d.act)
        case let .denseS8(d, bias, wsum, mult, shift, zp, lo, hi):
            mn_par_dense_s8(pool, table, d.x.assumingMemoryBound(to: Int8.self), d.w.assumingMemoryBound(to: Int8.self),
                            bias, wsum, mult, shift, zp, lo, hi, d.y.assumingMemoryBound(to: Int8.self),
                            b32 * d.rowsPerSample, d.k, d.n)
        case let .denseS8F32(d, bias, wsum, scale):
            mn_par_dense_s8_f32(pool, table, d.x.assumingMemoryBound(to: Int8.self), d.w.assumingMemoryBound(to: Int8.self),
                                bias, wsum, scale, d.y.assumingMemoryBound(to: Float.self), b32 * d.rowsPerSample, d.k,
                                d.n, d.act)
        case let .denseDynamic(d, bias, wsum, wscale):
            mn_par_dense_dyn(pool, table, d.x.assumingMemoryBound(to: Float.self), d.w.assumingMemoryBound(to: Int8.self),
                             wsum, wscale, bias, d.y.assumingMemoryBound(to: Float.self),
                             ctx.dynScratch, b32 * d.rowsPerSample, d.k, d.n, d.act)
        case let .binary(code, a, b, y, shapeIndex):
            var s = tables.binaryShapes[shapeIndex].withBatch(batch)
            withUnsafePointer(to: &s.dims) { dims in
                withUnsafePointer(to: &s.aStrides) { aS in
                    withUnsafePointer(to: &s.bStrides) { bS in
                        mn_par_binary_f32(pool, code, a, UnsafeRawPointer(aS).assumingMemoryBound(to: Int64.self), b,
                                          UnsafeRawPointer(bS).assumingMemoryBound(to: Int64.self), y,
                                          UnsafeRawPointer(dims).assumingMemoryBound(to: Int64.self))
                    }
                }
            }
        case let .unary(code, x, y, n, p0, p1):
            mn_par_unary_f32(pool, table, code, x, y, Int64(n * batch), p0, p1)
        case let .softmax(x, y, cols, rows, log, nanToZero):
            mn_par_softmax_f32(pool, table, x, y, Int64(rows * batch), Int64(cols), (log ? 1 : 0) | (nanToZero ? 2 : 0))
        case let .copy(x, y, bytes):
            if x != UnsafeRawPointer(y) { y.copyMemory(from: x, byteCount: bytes * batch) }
        case let .concat(first, count, y, outer):
            var dst = y
            for o in 0..<(outer * batch) {
                for p in first..<(first + count) {
                    let part = tables.concatParts[p]
                    dst.copyMemory(from: part.src + o * part.chunkBytes, byteCount: part.chunkBytes)
                    dst += part.chunkBytes
                }
            }
        case let .quantize(x, y, n, s, zp):
            mn_par_quantize_s8(pool, table, x, y, Int64(n * batch), s, zp)
        case let .dequantize(x, y, n, s, zp):
            mn_dequantize_s8(x, y, Int64(n * batch), s, zp)
        case .gather(let g):
            if let bad = runGather(g, batch: batch) { return bad }
        default:
            runTensorOp(op, batch: batch, ctx)
        }
        return nil
    }
}

// MARK: Inputs and outputs (outside the hot path)

extension Session {
    /// The arena region of input `index` for `maxBatch` samples; write the first `batch` samples.
    public func inputBuffer(_ index: Int) -> UnsafeMutableRawBufferPointer {
        tensorBuffer(inputs[index].tensorIndex, batch: maxBatch)
    }

    /// Switches to the graph for inputs of `length` along the sequence axis (a model converted
    /// with `--max-seq`; see `Model.sequenceLengths`). Inputs and outputs take that length's
    /// shapes; write inputs after switching. Allocation-free, so it may sit on the hot path.
    public func setSequenceLength(_ length: Int) throws(IOError) {
        var found = -1
        for i in 0..<lengths.count where lengths[i] == length {
            found = i
            break
        }
        guard found >= 0 else { throw .sequenceLength(length, accepted: model.sequenceLengths) }
        if found != graphIndex {
            graphIndex = found
            plan = plans[found]
            inputs = graphInputs[found]
            outputs = graphOutputs[found]
        }
    }

    /// The first `batch` samples of output `index`. Valid until the next `run`.
    public func outputBuffer(_ index: Int, batch: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(tensorBuffer(outputs[index].tensorIndex, batch: batch))
    }

    /// Copies `bytes` (whole samples, in the input's dtype) into input `index`.
    public func setInput(_ index: Int, bytes: UnsafeRawBufferPointer) throws(IOError) {
        let spec = inputs[index]
        let per = spec.bytesPerSample
        guard per > 0, bytes.count % per == 0 else {
            throw .shapeMismatch(tensor: spec.name, expected: "a multiple of \(spec.elementsPerSample) elements",
                                 found: "\(bytes.count / spec.dtype.byteSize) elements")
        }
        let batch = bytes.count / per
        guard batch >= 1, batch <= maxBatch else { throw .batchOutOfRange(tensor: spec.name, batch: batch, max: maxBatch) }
        inputBuffer(index).copyMemory(from: bytes)
    }

    /// Copies samples given as floats into input `index`. An integer or bool input takes them
    /// converted, and refuses a value that is not an integer its dtype holds exactly (tools feed
    /// ids this way; floats carry integers exactly up to 2^24).
    public func setInput(_ index: Int, floats: [Float]) throws(IOError) {
        let spec = inputs[index]
        func copy<T>(_ values: [T]) throws(IOError) {
            let result: Result<Void, IOError> = values.withUnsafeBytes { b in
                do throws(IOError) { try setInput(index, bytes: b); return .success(()) } catch { return .failure(error) }
            }
            try result.get()
        }
        func integers(_ range: ClosedRange<Float>) throws(IOError) -> [Float] {
            for (i, v) in floats.enumerated() where v.rounded(.towardZero) != v || !range.contains(v) || abs(v) > 16_777_216 {
                throw .shapeMismatch(tensor: spec.name, expected: "\(spec.dtype) values exact in float32 (integers within \(range) and 2^24)",
                                     found: "\(v) at flat index \(i)")
            }
            return floats
        }
        switch spec.dtype {
        case .float32: try copy(floats)
        case .int64: try copy(try integers(-16_777_216...16_777_216).map { Int64($0) })
        case .int32: try copy(try integers(-16_777_216...16_777_216).map { Int32($0) })
        case .bool: try copy(try integers(0...1).map { UInt8($0) })
        case .int8: try copy(try integers(-128...127).map { Int8($0) })
        case .uint8: try copy(try integers(0...255).map { UInt8($0) })
        }
    }

    /// Copies samples into the input called `name`.
    public func setInput(_ name: String, floats: [Float]) throws(IOError) {
        guard let i = inputs.firstIndex(where: { $0.name == name }) else {
            throw .unknownInput(name, known: inputs.map(\.name))
        }
        try setInput(i, floats: floats)
    }

    /// The first `batch` samples of the output called `name`, copied out.
    public func outputFloats(_ name: String, batch: Int) throws(IOError) -> [Float] {
        guard let i = outputs.firstIndex(where: { $0.name == name }) else {
            throw .unknownOutput(name, known: outputs.map(\.name))
        }
        return outputFloats(i, batch: batch)
    }

    /// Output `index` as floats (integer and bool outputs converted).
    public func outputFloats(_ index: Int, batch: Int) -> [Float] {
        let b = outputBuffer(index, batch: batch)
        switch outputs[index].dtype {
        case .float32: return Array(b.bindMemory(to: Float.self))
        case .int64: return b.bindMemory(to: Int64.self).map { Float($0) }
        case .int32: return b.bindMemory(to: Int32.self).map { Float($0) }
        case .int8: return b.bindMemory(to: Int8.self).map { Float($0) }
        case .uint8, .bool: return b.map { Float($0) }
        }
    }

    /// Any tensor's current bytes for `batch` samples: constants whole, activations from the arena.
    /// For tools (calibration, debugging); an activation's bytes are only meaningful while the
    /// memory plan has not reused its slot, and only inputs and outputs are in the session's arena
    /// after a run split by samples (make the session with `sampleSplit: false` to read others).
    public func tensorBuffer(_ tensorIndex: Int, batch: Int) -> UnsafeMutableRawBufferPointer {
        let g = model.graphs[graphIndex]
        let t = g.description.tensors[tensorIndex]
        if let c = g.constants[tensorIndex] { return c.mutableBuffer }
        let count = (Model.elementCount(t.shape, batch: Int64(batch)) ?? 0) * t.dtype.byteSize
        return UnsafeMutableRawBufferPointer(start: arena.pointer + Int(t.arenaOffsetPerSample) * maxBatch, count: count)
    }
}
