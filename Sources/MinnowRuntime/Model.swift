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
    /// Name of the kernel table chosen for this CPU.
    public let kernelName: String
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

    public convenience init(path: String) throws(ModelError) {
        let file: ModelFile
        do { file = try ModelFile(path: path) } catch { throw .format(error) }
        try self.init(file: file)
    }

    public convenience init(bytes: AlignedBytes) throws(ModelError) {
        let file: ModelFile
        do { file = try ModelFile(bytes: bytes) } catch { throw .format(error) }
        try self.init(file: file)
    }

    public init(file: ModelFile) throws(ModelError) {
        let d = try Model.loadQuantBuffers(file)
        try Model.validateTensors(d)
        try Model.validateGraph(d)
        try Model.validateMemoryPlan(d)

        // Each buffer is decompressed once, even when several tensors share it.
        var segments = [Int: AlignedBytes]()
        var constants = [AlignedBytes?](repeating: nil, count: d.tensors.count)
        for (i, t) in d.tensors.enumerated() where t.isConstant {
            let b = Int(t.buffer)
            if segments[b] == nil {
                do { segments[b] = try file.segment(b) } catch { throw .format(error) }
            }
            constants[i] = segments[b]
        }
        self.constants = constants

        kernels = mn_kernels()
        let preparer = OpPreparer(d: d, constants: constants, kernels: kernels.pointee)
        var prepared: [PreparedOp] = []
        for (i, op) in d.operators.enumerated() { prepared.append(try preparer.prepare(op, index: i)) }
        self.prepared = prepared

        func spec(_ i: Int32) -> TensorSpec {
            let t = d.tensors[Int(i)]
            return TensorSpec(name: t.name, dtype: t.dtype, shape: t.shape.map { Int($0) }, tensorIndex: Int(i))
        }
        inputs = d.inputs.map(spec)
        outputs = d.outputs.map(spec)
        maxBatch = Int(d.memoryPlan.maxBatch)
        golden = try Model.decodeGolden(d, file: file, inputs: inputs, outputs: outputs)
        kernelName = String(cString: kernels.pointee.name)
        description = d
    }

    /// The description with quantization parameters kept in segments (format 1.2) read into
    /// their vectors, so everything after this sees one representation. (Re-encode a model from
    /// its file's description, not from this one.)
    static func loadQuantBuffers(_ file: ModelFile) throws(ModelError) -> ModelDescription {
        var d = file.description
        for (i, t) in d.tensors.enumerated() {
            guard var q = t.quant, q.buffer != 0 else { continue }
            let label = "tensor \(i) '\(t.name)'"
            guard q.scales.isEmpty, q.zeroPoints.isEmpty, q.axis >= 0, Int(q.axis) < t.shape.count, t.shape[Int(q.axis)] >= 0,
                  Int(q.buffer) <= d.buffers.count else {
                throw .invalid("\(label): quantization buffer \(q.buffer) needs empty vectors, a valid axis and an existing buffer")
            }
            let n = Int(t.shape[Int(q.axis)])
            let (need, o) = n.multipliedReportingOverflow(by: 5)
            guard !o, d.buffers[Int(q.buffer) - 1].size == UInt64(need) else {
                throw .invalid("\(label): quantization buffer \(q.buffer) holds \(d.buffers[Int(q.buffer) - 1].size) bytes, \(n) scales and zero points need \(need)")
            }
            let bytes: AlignedBytes
            do { bytes = try file.segment(Int(q.buffer)) } catch { throw .format(error) }
            let raw = UnsafeRawBufferPointer(start: bytes.pointer, count: need)
            q.scales = (0..<n).map { raw.load(fromByteOffset: $0 * 4, as: Float.self) }
            q.zeroPoints = (0..<n).map { Int32(raw.load(fromByteOffset: 4 * n + $0, as: Int8.self)) }
            d.tensors[i].quant = q  // `buffer` stays set: it tells where the values came from (stats, inspect)
        }
        return d
    }

    public func input(named name: String) -> TensorSpec? { inputs.first { $0.name == name } }
    public func output(named name: String) -> TensorSpec? { outputs.first { $0.name == name } }
}
