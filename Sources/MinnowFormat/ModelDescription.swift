import Foundation
// Swift mirror of formats/minnow.fbs: the graph and metadata of a model, without weight bytes.

public enum DType: Int8, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 0, int8 = 1, uint8 = 2, int32 = 3, int64 = 4, bool = 5

    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .int8, .uint8, .bool: return 1
        case .int64: return 8
        }
    }

    public var description: String {
        switch self {
        case .float32: return "float32"
        case .int8: return "int8"
        case .uint8: return "uint8"
        case .int32: return "int32"
        case .int64: return "int64"
        case .bool: return "bool"
        }
    }
}

public enum Codec: Int8, Sendable, CustomStringConvertible {
    case none = 0, zstd = 1
    public var description: String { self == .none ? "none" : "zstd" }
}

/// real = scale × (q − zero_point); one scale per tensor (axis -1) or one per slice along `axis`.
public struct QuantParams: Equatable, Sendable {
    public var scales: [Float]
    public var zeroPoints: [Int32]
    public var axis: Int32
    /// Format 1.2: 1-based buffer holding float32 scales then int8 zero points (the vectors are
    /// then empty in the file; the loader fills them in). 0 = the vectors hold the values.
    public var buffer: UInt32
    /// Format 1.5: how `buffer` encodes per-row parameters (see `RowEncoding`).
    public var rowEncoding: RowEncoding
    public init(scales: [Float], zeroPoints: [Int32], axis: Int32 = -1, buffer: UInt32 = 0, rowEncoding: RowEncoding = .float32) {
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
        self.buffer = buffer
        self.rowEncoding = rowEncoding
    }
}

/// Per-row quantization parameters in a segment (embedding tables). The log codes cost one byte
/// a row instead of four: a scale rounded up to the next of 256 steps of 2^(1/16) (4.4% apart,
/// 16 octaves below the largest) loses under 0.07 bits of resolution, and a row scale that is
/// only rounded up never clips.
public enum RowEncoding: UInt8, Sendable {
    /// float32 scales then int8 zero points (5 bytes a row).
    case float32 = 0
    /// uint8 log-coded scales, zero points 0 (1 byte a row).
    case logSymmetric = 1
    /// uint8 log-coded scales then int8 zero points (2 bytes a row).
    case logAsymmetric = 2

    public var bytesPerRow: Int { self == .float32 ? 5 : (self == .logSymmetric ? 1 : 2) }

    /// The scale a code stands for, given the largest scale (code 255). Converter and loader both
    /// use this, so they agree to the bit.
    public static func scale(code: UInt8, largest: Float) -> Float {
        Float(Double(largest) * exp2((Double(code) - 255) / 16))
    }

    /// The smallest code whose scale is at least `scale` (rows are never clipped).
    public static func code(for scale: Float, largest: Float) -> UInt8 {
        guard scale > 0, largest > 0 else { return 0 }
        var c = Int((16 * log2(Double(scale) / Double(largest)) + 255).rounded(.down))
        c = max(0, min(255, c))
        while c < 255, RowEncoding.scale(code: UInt8(c), largest: largest) < scale { c += 1 }
        return UInt8(c)
    }
}

public struct TensorInfo: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    /// Dimension 0 of an activation is the batch, written -1.
    public var shape: [Int64]
    public var quant: QuantParams?
    /// 1-based index into `buffers`; 0 for activations.
    public var buffer: UInt32
    public var arenaOffsetPerSample: UInt64

    public init(name: String, dtype: DType, shape: [Int64], quant: QuantParams? = nil, buffer: UInt32 = 0,
                arenaOffsetPerSample: UInt64 = 0) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.quant = quant
        self.buffer = buffer
        self.arenaOffsetPerSample = arenaOffsetPerSample
    }

    public var isConstant: Bool { buffer != 0 }
    public var isBatched: Bool { shape.first == -1 }
}

public struct BufferInfo: Equatable, Sendable {
    public var offset: UInt64
    public var storedSize: UInt64
    public var size: UInt64
    public var codec: Codec
    public var shuffle: UInt8
    public var checksum: UInt64
    public init(offset: UInt64, storedSize: UInt64, size: UInt64, codec: Codec, shuffle: UInt8, checksum: UInt64) {
        self.offset = offset
        self.storedSize = storedSize
        self.size = size
        self.codec = codec
        self.shuffle = shuffle
        self.checksum = checksum
    }
}

public enum OpCode: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case dense = 0, add, sub, mul, div, relu, leakyRelu, sigmoid, tanh, clip, softmax, logSoftmax, copy, concat,
         quantize, dequantize
    // Format 1.2.
    case stridedCopy = 16, gather, reduce, matmul, layerNorm, `where`, equal, less, greater, and, or, not, pow, max, min,
         exp, sqrt, erf, neg, reciprocal, gelu, geluTanh, cast, im2col, pool, lstm, gru

    public var description: String { OpCode.names[Int(rawValue)] }

    /// Display names, indexed by raw value (the ONNX-style spelling).
    private static let names = [
        "Dense", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Softmax", "LogSoftmax", "Copy",
        "Concat", "Quantize", "Dequantize", "StridedCopy", "Gather", "Reduce", "MatMul", "LayerNorm", "Where", "Equal", "Less",
        "Greater", "And", "Or", "Not", "Pow", "Max", "Min", "Exp", "Sqrt", "Erf", "Neg", "Reciprocal", "Gelu", "GeluTanh", "Cast",
        "Im2Col", "Pool", "LSTM", "GRU",
    ]

    /// The first format minor version that has this opcode.
    public var sinceMinor: UInt16 { rawValue >= 16 ? 2 : 0 }
}

public enum Activation: Int8, Sendable, CustomStringConvertible {
    case none = 0, relu = 1, clip = 2, leakyRelu = 3
    public var description: String {
        switch self {
        case .none: return "none"
        case .relu: return "relu"
        case .clip: return "clip"
        case .leakyRelu: return "leaky_relu"
        }
    }
}

public struct DenseOptions: Equatable, Sendable {
    public var activation: Activation
    public var actMin: Float
    public var actMax: Float
    public var actAlpha: Float
    public var dynamicQuant: Bool
    public init(activation: Activation = .none, actMin: Float = 0, actMax: Float = 0, actAlpha: Float = 0,
                dynamicQuant: Bool = false) {
        self.activation = activation
        self.actMin = actMin
        self.actMax = actMax
        self.actAlpha = actAlpha
        self.dynamicQuant = dynamicQuant
    }
}

public enum OpOptions: Equatable, Sendable {
    case none
    case dense(DenseOptions)
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)
    /// `nanToZero` (format 1.4): NaN results become 0, as `where(isnan(y), 0, y)` after it (what
    /// torch exports after the softmax of SDPA attention, for fully masked rows).
    case softmax(axis: Int32, nanToZero: Bool = false)
    case concat(axis: Int32)
    /// Integer and float parameters laid out as the opcode documents (formats/minnow.fbs).
    case params(ints: [Int64], floats: [Float])
}

public struct OperatorInfo: Equatable, Sendable {
    public var opcode: OpCode
    public var inputs: [Int32]
    public var outputs: [Int32]
    public var options: OpOptions
    public var name: String
    public init(opcode: OpCode, inputs: [Int32], outputs: [Int32], options: OpOptions = .none, name: String = "") {
        self.opcode = opcode
        self.inputs = inputs
        self.outputs = outputs
        self.options = options
        self.name = name
    }
}

public struct MemoryPlanInfo: Equatable, Sendable {
    public var arenaBytesPerSample: UInt64
    public var alignment: UInt32
    public var maxBatch: UInt32
    public init(arenaBytesPerSample: UInt64, alignment: UInt32 = 64, maxBatch: UInt32) {
        self.arenaBytesPerSample = arenaBytesPerSample
        self.alignment = alignment
        self.maxBatch = maxBatch
    }
}

public struct ModelDescription: Equatable, Sendable {
    public static let formatMajor: UInt16 = 1
    public static let formatMinor: UInt16 = 8

    public var formatMajor: UInt16 = ModelDescription.formatMajor
    public var formatMinor: UInt16 = ModelDescription.formatMinor
    public var producer: String = ""
    public var sourceHash: String = ""
    public var metadata: [KeyValue] = []
    public var tensors: [TensorInfo] = []
    public var operators: [OperatorInfo] = []
    public var inputs: [Int32] = []
    public var outputs: [Int32] = []
    public var buffers: [BufferInfo] = []
    public var memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 0, maxBatch: 1)
    public var segmentBase: UInt64 = 0
    public var golden: GoldenSamples?
    /// Length of the graph above along its sequence axis; 0 for a fixed-length model (1.3).
    public var sequenceLength: UInt32 = 0
    /// 1-based buffer holding the graph at each shorter length the model accepts, as changes
    /// to this one (a `SequenceVariants` FlatBuffer; see `SequenceVariant.decode`), 0 if none (1.3).
    public var sequenceVariants: UInt32 = 0

    public init() {}

    public func metadataValue(_ key: String) -> String? { metadata.first { $0.key == key }?.value }
}

public struct KeyValue: Equatable, Sendable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// Reference inputs and the outputs the converter computed for them (format 1.1).
public struct GoldenSamples: Equatable, Sendable {
    public var count: UInt32
    /// 1-based buffer index per model input / output, each float32 [count, ...].
    public var inputs: [UInt32]
    public var outputs: [UInt32]
    /// Largest allowed absolute difference; 0 means bit-exact.
    public var tolerance: Float
    public init(count: UInt32, inputs: [UInt32], outputs: [UInt32], tolerance: Float) {
        self.count = count
        self.inputs = inputs
        self.outputs = outputs
        self.tolerance = tolerance
    }
}

/// Embedding tables (the constant operand of Gather ops) and what they cost: they dominate the
/// size of recommendation models, so the converter and `minnow inspect` report them apart.
public struct EmbeddingStats: Equatable, Sendable {
    public var tables = 0
    public var rows = 0
    /// What the tables would take as float32.
    public var fp32Bytes = 0
    /// Bytes in the file (after quantization and compression), per-row parameters included.
    public var storedBytes = 0

    public init(_ d: ModelDescription) {
        var seen = Set<Int32>()
        for op in d.operators where op.opcode == .gather {
            let i = op.inputs.first ?? -1
            guard i >= 0, Int(i) < d.tensors.count, !seen.contains(i) else { continue }
            let t = d.tensors[Int(i)]
            guard t.buffer > 0, t.shape.count == 2 else { continue }
            seen.insert(i)
            tables += 1
            rows += Int(t.shape[0])
            fp32Bytes += Int(t.shape[0] * t.shape[1]) * 4
            for b in [t.buffer, t.quant?.buffer ?? 0] where b > 0 && Int(b) <= d.buffers.count {
                storedBytes += Int(d.buffers[Int(b) - 1].storedSize)
            }
        }
    }
}

/// The graph at a shorter sequence length, as changes to the model's graph (format 1.3).
public struct SequenceVariant: Equatable, Sendable {
    public struct TensorChange: Equatable, Sendable {
        public var tensor: UInt32
        public var shape: [Int64]
        /// Constants only: the buffer with this length's values (0 = unchanged).
        public var buffer: UInt32
        /// Constants only: the values are the buffer's first bytes (a slice of a longer tensor).
        public var prefix: Bool
        public init(tensor: UInt32, shape: [Int64], buffer: UInt32 = 0, prefix: Bool = false) {
            self.tensor = tensor
            self.shape = shape
            self.buffer = buffer
            self.prefix = prefix
        }
    }
    public struct OperatorChange: Equatable, Sendable {
        public var op: UInt32
        public var ints: [Int64]
        public var floats: [Float]
        public init(op: UInt32, ints: [Int64], floats: [Float]) {
            self.op = op
            self.ints = ints
            self.floats = floats
        }
    }
    public var length: UInt32
    public var tensors: [TensorChange]
    public var operators: [OperatorChange]
    public init(length: UInt32, tensors: [TensorChange], operators: [OperatorChange]) {
        self.length = length
        self.tensors = tensors
        self.operators = operators
    }
}

extension ModelDescription {
    /// The graph at `variant`'s length: this description with its changes applied, and the
    /// constants whose values are a prefix of their buffer. Indices are checked here; everything
    /// else is checked as for any graph when the result is loaded.
    public func applying(_ variant: SequenceVariant) throws(FormatError) -> (ModelDescription, prefixConstants: Set<Int>) {
        var d = self
        var prefixes = Set<Int>()
        d.sequenceVariants = 0
        d.sequenceLength = variant.length
        d.golden = nil
        for c in variant.tensors {
            guard Int(c.tensor) < d.tensors.count else {
                throw .malformed("sequence length \(variant.length): tensor \(c.tensor) does not exist (model has \(d.tensors.count))")
            }
            let t = Int(c.tensor)
            guard c.shape.count == d.tensors[t].shape.count else {
                throw .malformed("sequence length \(variant.length): tensor \(t) '\(d.tensors[t].name)' changes rank \(d.tensors[t].shape.count) to \(c.shape.count)")
            }
            d.tensors[t].shape = c.shape
            if c.buffer != 0 {
                guard d.tensors[t].isConstant else {
                    throw .malformed("sequence length \(variant.length): tensor \(t) '\(d.tensors[t].name)' is an activation but is given buffer \(c.buffer)")
                }
                d.tensors[t].buffer = c.buffer
            }
            if c.prefix {
                guard d.tensors[t].isConstant else {
                    throw .malformed("sequence length \(variant.length): tensor \(t) '\(d.tensors[t].name)' is an activation but is marked a prefix")
                }
                prefixes.insert(t)
            }
        }
        for c in variant.operators {
            guard Int(c.op) < d.operators.count else {
                throw .malformed("sequence length \(variant.length): operator \(c.op) does not exist (model has \(d.operators.count))")
            }
            guard case .params = d.operators[Int(c.op)].options else {
                throw .malformed("sequence length \(variant.length): operator \(c.op) '\(d.operators[Int(c.op)].name)' has no parameters to change")
            }
            d.operators[Int(c.op)].options = .params(ints: c.ints, floats: c.floats)
        }
        return (d, prefixes)
    }
}
