import MinnowFormat
import MinnowRuntime

/// One output tensor's values for one request, in the output's dtype family.
public enum TensorValues: Sendable, Equatable {
    case float32([Float])
    case integers([Int64])

    public var count: Int {
        switch self {
        case .float32(let v): v.count
        case .integers(let v): v.count
        }
    }

    func write(at i: Int, to w: inout JSONWriter) {
        switch self {
        case .float32(let v): w.number(v[i])
        case .integers(let v): w.number(v[i])
        }
    }

    /// Reads `rows` samples starting at sample `first` of a session output buffer.
    static func read(_ buffer: UnsafeRawBufferPointer, dtype: DType, elementsPerSample: Int, first: Int, rows: Int) -> TensorValues {
        let start = first * elementsPerSample
        let n = rows * elementsPerSample
        // Buffers come from the session's arena, whose tensors are aligned for their dtype.
        switch dtype {
        case .float32: return .float32(Array(buffer.bindMemory(to: Float.self)[start..<(start + n)]))
        case .int8: return .integers(buffer.bindMemory(to: Int8.self)[start..<(start + n)].map(Int64.init))
        case .uint8, .bool: return .integers(buffer.bindMemory(to: UInt8.self)[start..<(start + n)].map(Int64.init))
        case .int32: return .integers(buffer.bindMemory(to: Int32.self)[start..<(start + n)].map(Int64.init))
        case .int64: return .integers(Array(buffer.bindMemory(to: Int64.self)[start..<(start + n)]))
        }
    }

    mutating func append(_ other: TensorValues) {
        switch (self, other) {
        case let (.float32(a), .float32(b)): self = .float32(a + b)
        case let (.integers(a), .integers(b)): self = .integers(a + b)
        default: preconditionFailure("outputs of one tensor share a dtype")
        }
    }
}

/// A decoded request: `rows` samples of every model input (in model input order), already
/// checked against each input's shape and dtype, so executing it cannot fail on the data.
public struct InferenceRequest: Sendable {
    public let rows: Int
    /// Row-major values per model input; integer inputs hold exact integers in range.
    public let inputs: [[Double]]
    /// The sequence length the inputs have (0 for a fixed-length model); requests of different
    /// lengths never share a run.
    public let sequenceLength: Int
    /// The model's inputs and outputs at that length.
    public let inputSpecs: [TensorSpec]
    public let outputSpecs: [TensorSpec]

    /// Checks `values` for every input of `model` at `sequenceLength` (nil: the model's own, the
    /// longest): count = rows × elements per sample, integers where the dtype is an integer type
    /// and within its range.
    public init(model: Model, rows: Int, inputs: [[Double]], sequenceLength: Int? = nil) throws(ServeError) {
        let length = sequenceLength ?? model.sequenceLengths.last ?? 0
        guard let specs = model.sequenceLengths.isEmpty ? model.inputs : model.inputs(sequenceLength: length),
              let outs = model.sequenceLengths.isEmpty ? model.outputs : model.outputs(sequenceLength: length) else {
            throw .badRequest("sequence length \(length) is not one the model accepts (\(IOError.ranges(model.sequenceLengths)))")
        }
        self.sequenceLength = length
        inputSpecs = specs
        outputSpecs = outs
        guard rows >= 1 else { throw .badRequest("a request needs at least one sample, got 0") }
        guard inputs.count == specs.count else {
            throw .badRequest("expected \(specs.count) inputs, got \(inputs.count)")
        }
        for (spec, values) in zip(specs, inputs) {
            guard values.count == rows * spec.elementsPerSample else {
                throw .badRequest("input '\(spec.name)': expected \(rows) × \(spec.elementsPerSample) values, found \(values.count)")
            }
            if let range = InferenceRequest.integerRange(spec.dtype) {
                for (i, v) in values.enumerated() where v.rounded() != v || v < range.lowerBound || v > range.upperBound {
                    throw .badRequest("input '\(spec.name)': value \(v) at flat index \(i) is not a \(spec.dtype) integer")
                }
            }
        }
        self.rows = rows
        self.inputs = inputs
    }

    static func integerRange(_ dtype: DType) -> ClosedRange<Double>? {
        switch dtype {
        case .float32: nil
        case .int8: -128...127
        case .uint8: 0...255
        case .bool: 0...1
        case .int32: -2_147_483_648...2_147_483_647
        // Doubles are exact to 2^53; larger ids cannot come through JSON numbers unchanged.
        case .int64: -9_007_199_254_740_992...9_007_199_254_740_992
        }
    }

    /// Writes input `i`'s values into `destination` (the session's input buffer) starting at
    /// sample `firstRow`, taking `rows` of this request's samples from `fromRow`.
    func write(input i: Int, spec: TensorSpec, fromRow: Int, rows: Int, to destination: UnsafeMutableRawBufferPointer, atRow firstRow: Int) {
        let per = spec.elementsPerSample
        let src = inputs[i][(fromRow * per)..<((fromRow + rows) * per)]
        let at = firstRow * per
        // The destination is the session's arena region for this input, sized for max batch;
        // callers keep firstRow + rows <= the session's max batch.
        switch spec.dtype {
        case .float32: InferenceRequest.store(src, Float.self, destination, at) { Float($0) }
        case .int8: InferenceRequest.store(src, Int8.self, destination, at) { Int8($0) }
        case .uint8, .bool: InferenceRequest.store(src, UInt8.self, destination, at) { UInt8($0) }
        case .int32: InferenceRequest.store(src, Int32.self, destination, at) { Int32($0) }
        case .int64: InferenceRequest.store(src, Int64.self, destination, at) { Int64($0) }
        }
    }

    private static func store<T>(_ src: ArraySlice<Double>, _: T.Type, _ dst: UnsafeMutableRawBufferPointer, _ at: Int,
                                 _ convert: (Double) -> T) {
        let typed = dst.bindMemory(to: T.self)
        precondition(at + src.count <= typed.count, "rows beyond the session's max batch")
        var j = at
        for v in src { typed[j] = convert(v); j += 1 }
    }
}

/// Every output for one request's rows, in model output order.
public struct InferenceResult: Sendable {
    public let rows: Int
    public let outputs: [TensorValues]
    /// The outputs' specs at the request's sequence length (shapes for the response).
    public let specs: [TensorSpec]
}
