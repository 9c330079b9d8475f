import MinnowFormat
import MinnowKernels

/// A loaded, verified model: immutable after load and safe to share across threads.
/// Loading verifies the file, decompresses every weight segment once into aligned memory,
/// checks every operator and derives what the kernels need. Sessions then only compute.
public final class Model: @unchecked Sendable {
    public let description: ModelDescription
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]
    /// The largest batch a session of this model may be made for (the memory plan's).
    public let maxBatch: Int
    /// Name of the kernel table this model runs on: the best for this CPU (or MINNOW_KERNELS),
    /// or the one asked for at load.
    public let kernelName: String
    /// The precision attention's two products run in: `.bf16` only where it was asked for
    /// (`attention:` or MINNOW_ATTENTION) and this table and CPU have the kernel; else `.f32`.
    public let attentionPrecision: AttentionPrecision
    /// The table a model loads on unless told otherwise (this CPU's best, or MINNOW_KERNELS).
    public static var defaultKernelName: String { String(cString: mn_kernels().pointee.name) }
    /// Whether `attention: .bf16` (MINNOW_ATTENTION=bf16) runs bf16 products on the named table here:
    /// the table has the kernel and this CPU has AVX512-BF16.
    public static func runsBF16Attention(table: String) -> Bool {
        guard let i = kernelTables.firstIndex(where: { $0.name == table }), let t = mn_kernel_table_at(Int32(i)) else { return false }
        return AttentionPrecision.bf16Runs(on: t.pointee)
    }
    /// Every kernel table this build knows, lowest first, and whether this host can run it.
    public static var kernelTables: [(name: String, supported: Bool)] {
        (0..<mn_kernel_table_count()).map { (String(cString: mn_kernel_table_name($0)), mn_kernel_table_at($0) != nil) }
    }
    /// Operators of the main graph that the kernel table runs fused with the next one (an int8
    /// im2col and its Dense as one implicit-GEMM convolution; ConvFusion.swift).
    public var fusedAtLoad: [Int] {
        prepared.indices.filter { if case .convS8 = prepared[$0] { return true } else { return false } }
    }
    /// Golden samples bundled by the converter (see `selfTest()`), decoded at load.
    public let golden: Golden?

    public struct Golden: Sendable {
        public let count: Int
        /// Row-major fp32 per model input / output.
        public let inputs: [[Float]]
        public let outputs: [[Float]]
        public let tolerance: Float
    }

    /// Decompressed constant data per tensor index (nil for activations).
    let constants: [AlignedBytes?]
    let prepared: [PreparedOp]
    let kernels: UnsafePointer<mn_kernel_table>
    /// The graph at every sequence length the model accepts, ascending (format 1.3); the last is
    /// the model's own. A fixed-length model has just that one, with length 0.
    let graphs: [Graph]

    /// One graph of the model: its tensors at one sequence length and its operators prepared.
    struct Graph: @unchecked Sendable {
        let length: Int
        let description: ModelDescription
        let inputs: [TensorSpec]
        let outputs: [TensorSpec]
        let constants: [AlignedBytes?]
        let prepared: [PreparedOp]
    }

    /// Sequence lengths a session may be set to (`Session.setSequenceLength`), ascending;
    /// empty for a fixed-length model.
    public var sequenceLengths: [Int] { graphs.count == 1 && graphs[0].length == 0 ? [] : graphs.map(\.length) }

    /// `kernels`: a table name from `Model.kernelTables` to run on instead of the default (to
    /// compare tables side by side in one process); one this host lacks is an error.
    /// `fuseAtLoad: false` runs every operator of the file as written: a tool that reads
    /// intermediate tensors after a run (per-layer attribution) needs each one written, and the
    /// load-time fusions (convolution, attention softmax, residual LayerNorm) skip writing some.
    /// `attention: .bf16` opts in to attention products in bfloat16 (AttentionPrecision); nil
    /// reads MINNOW_ATTENTION (f32 or bf16; unset: f32).
    public convenience init(path: String, kernels: String? = nil, fuseAtLoad: Bool = true,
                            attention: AttentionPrecision? = nil) throws(ModelError) {
        let file: ModelFile
        do { file = try ModelFile(path: path) } catch { throw .format(error) }
        try self.init(file: file, kernels: kernels, fuseAtLoad: fuseAtLoad, attention: attention)
    }

    public convenience init(bytes: AlignedBytes, kernels: String? = nil, fuseAtLoad: Bool = true,
                            attention: AttentionPrecision? = nil) throws(ModelError) {
        let file: ModelFile
        do { file = try ModelFile(bytes: bytes) } catch { throw .format(error) }
        try self.init(file: file, kernels: kernels, fuseAtLoad: fuseAtLoad, attention: attention)
    }

    public init(file: ModelFile, kernels name: String? = nil, fuseAtLoad: Bool = true,
                attention: AttentionPrecision? = nil) throws(ModelError) {
        kernels = try Model.kernelTable(named: name)
        let requested: AttentionPrecision
        if let attention { requested = attention } else { requested = try AttentionPrecision.fromEnvironment() }
        let bf16 = requested == .bf16 && AttentionPrecision.bf16Runs(on: kernels.pointee)
        attentionPrecision = bf16 ? .bf16 : .f32
        let d = try Model.loadQuantBuffers(file)
        // Each buffer is decompressed once and each weight packed once, even when several
        // tensors, or the graphs of several sequence lengths, share it.
        var segments = [Int: AlignedBytes]()
        let packCache = OpPreparer.PackCache()
        let main = try Model.prepareGraph(d, length: Int(d.sequenceLength), prefixConstants: [], file: file, segments: &segments,
                                          packCache: packCache, kernels: kernels.pointee, fuse: fuseAtLoad, bf16Attention: bf16)
        var graphs = [main]
        var variants: [SequenceVariant] = []
        if d.sequenceVariants != 0 {
            guard Int(d.sequenceVariants) <= d.buffers.count, d.sequenceLength >= 1 else {
                throw .invalid("sequence variants in buffer \(d.sequenceVariants) (model has \(d.buffers.count)) need a sequence length (found \(d.sequenceLength))")
            }
            do { variants = try SequenceVariant.decode(try file.segment(Int(d.sequenceVariants))) } catch { throw .format(error) }
        }
        var seen: Set<UInt32> = [d.sequenceLength]
        for v in variants {
            guard v.length >= 1, v.length < d.sequenceLength, seen.insert(v.length).inserted else {
                throw .invalid("sequence length \(v.length): variants must be distinct lengths in 1..<\(d.sequenceLength) (the model's own)")
            }
            let dv: ModelDescription, prefixes: Set<Int>
            do { (dv, prefixes) = try d.applying(v) } catch { throw .format(error) }
            do {
                graphs.append(try Model.prepareGraph(dv, length: Int(v.length), prefixConstants: prefixes, file: file, segments: &segments,
                                                     packCache: packCache, kernels: kernels.pointee, fuse: fuseAtLoad,
                                                     bf16Attention: bf16))
            } catch {
                throw .invalid("sequence length \(v.length): \(error)")
            }
        }
        self.graphs = graphs.sorted { $0.length < $1.length }
        constants = main.constants
        prepared = main.prepared
        inputs = main.inputs
        outputs = main.outputs
        maxBatch = Int(d.memoryPlan.maxBatch)
        golden = try Model.decodeGolden(d, file: file, inputs: inputs, outputs: outputs)
        kernelName = String(cString: kernels.pointee.name)
        description = d
    }

    private static func kernelTable(named name: String?) throws(ModelError) -> UnsafePointer<mn_kernel_table> {
        guard let name else { return mn_kernels() }
        let tables = kernelTables
        guard let i = tables.firstIndex(where: { $0.name == name }) else {
            throw .unsupported("kernel table '\(name)' is unknown (this build has \(tables.map(\.name).joined(separator: ", ")))")
        }
        guard let t = mn_kernel_table_at(Int32(i)) else {
            throw .unsupported("kernel table '\(name)' is not available on this host (it can run \(tables.filter(\.supported).map(\.name).joined(separator: ", ")))")
        }
        return t
    }

    /// Validates one graph (tensors, operators, memory plan), loads its constants and prepares
    /// its operators.
    private static func prepareGraph(_ d: ModelDescription, length: Int, prefixConstants: Set<Int>, file: ModelFile,
                                     segments: inout [Int: AlignedBytes], packCache: OpPreparer.PackCache,
                                     kernels: mn_kernel_table, fuse: Bool, bf16Attention: Bool) throws(ModelError) -> Graph {
        try Model.validateTensors(d, prefixConstants: prefixConstants)
        try Model.validateGraph(d)
        try Model.validateMemoryPlan(d)
        var constants = [AlignedBytes?](repeating: nil, count: d.tensors.count)
        for (i, t) in d.tensors.enumerated() where t.isConstant {
            let b = Int(t.buffer)
            if segments[b] == nil {
                do { segments[b] = try file.segment(b) } catch { throw .format(error) }
            }
            constants[i] = segments[b]
        }
        let preparer = OpPreparer(d: d, constants: constants, kernels: kernels, packCache: packCache)
        var prepared: [PreparedOp] = []
        for (i, op) in d.operators.enumerated() { prepared.append(try preparer.prepare(op, index: i)) }
        if fuse {
            ConvFusion.apply(&prepared, d, constants: constants, kernels: kernels, packCache: packCache)
            SoftmaxFusion.apply(&prepared, d, constants: constants)
            AttentionFusion.apply(&prepared, d, kernels: kernels, bf16: bf16Attention)
            LayerNormFusion.apply(&prepared, d)
        }
        func spec(_ i: Int32) -> TensorSpec {
            let t = d.tensors[Int(i)]
            return TensorSpec(name: t.name, dtype: t.dtype, shape: t.shape.map { Int($0) }, tensorIndex: Int(i))
        }
        return Graph(length: length, description: d, inputs: d.inputs.map(spec), outputs: d.outputs.map(spec),
                     constants: constants, prepared: prepared)
    }

    /// Inputs and outputs of the graph at sequence `length` (nil: not a length the model accepts).
    public func inputs(sequenceLength length: Int) -> [TensorSpec]? { graph(length: length)?.inputs }
    public func outputs(sequenceLength length: Int) -> [TensorSpec]? { graph(length: length)?.outputs }

    /// The graph for sequence length `length` (nil: not one the model accepts).
    func graph(length: Int) -> Graph? { graphs.first { $0.length == length } }

    /// The sequence length whose inputs have these shapes (dimension 0, the batch, ignored),
    /// one shape per model input in order; nil when no graph's inputs match.
    public func sequenceLength(forInputShapes shapes: [[Int]]) -> Int? {
        graphs.first { g in
            g.inputs.count == shapes.count && zip(g.inputs, shapes).allSatisfy { Array($0.shape.dropFirst()) == Array($1.dropFirst()) }
        }?.length
    }

    /// The description with quantization parameters kept in segments (format 1.2) read into
    /// their vectors, so everything after this sees one representation. (Re-encode a model from
    /// its file's description, not from this one.)
    static func loadQuantBuffers(_ file: ModelFile) throws(ModelError) -> ModelDescription {
        var d = file.description
        for (i, t) in d.tensors.enumerated() {
            guard var q = t.quant, q.buffer != 0 else { continue }
            let label = "tensor \(i) '\(t.name)'"
            // Log-coded rows (1.5) keep the largest scale in the vector; 1.2's rows keep nothing there.
            let logCoded = q.rowEncoding != .float32
            guard logCoded ? (q.scales.count == 1 && q.scales[0].isFinite && q.scales[0] > 0) : q.scales.isEmpty, q.zeroPoints.isEmpty,
                  q.axis >= 0, Int(q.axis) < t.shape.count, t.shape[Int(q.axis)] >= 0, Int(q.buffer) <= d.buffers.count else {
                throw .invalid("\(label): quantization buffer \(q.buffer) needs \(logCoded ? "the largest scale (one positive value)" : "empty vectors"), a valid axis and an existing buffer")
            }
            let n = Int(t.shape[Int(q.axis)])
            let (need, o) = n.multipliedReportingOverflow(by: q.rowEncoding.bytesPerRow)
            guard !o, d.buffers[Int(q.buffer) - 1].size == UInt64(need) else {
                throw .invalid("\(label): quantization buffer \(q.buffer) holds \(d.buffers[Int(q.buffer) - 1].size) bytes, \(n) rows of \(q.rowEncoding) parameters need \(need)")
            }
            let bytes: AlignedBytes
            do { bytes = try file.segment(Int(q.buffer)) } catch { throw .format(error) }
            let raw = UnsafeRawBufferPointer(start: bytes.pointer, count: need)
            switch q.rowEncoding {
            case .float32:
                q.scales = (0..<n).map { raw.load(fromByteOffset: $0 * 4, as: Float.self) }
                q.zeroPoints = (0..<n).map { Int32(raw.load(fromByteOffset: 4 * n + $0, as: Int8.self)) }
            case .logSymmetric, .logAsymmetric:
                let largest = q.scales[0]
                q.scales = (0..<n).map { RowEncoding.scale(code: raw[$0], largest: largest) }
                q.zeroPoints = q.rowEncoding == .logSymmetric ? Array(repeating: 0, count: n)
                    : (0..<n).map { Int32(raw.load(fromByteOffset: n + $0, as: Int8.self)) }
            }
            d.tensors[i].quant = q  // `buffer` stays set: it tells where the values came from (stats, inspect)
        }
        return d
    }

    public func input(named name: String) -> TensorSpec? { inputs.first { $0.name == name } }
    public func output(named name: String) -> TensorSpec? { outputs.first { $0.name == name } }
}
