import MinnowRuntime

/// Turning JSON payload values into model inputs, with errors that say which input, where, and
/// what was expected. Shared by the TF Serving and KServe protocols.
enum TensorDecoding {
    /// Shape of one sample of an input (everything after the batch dimension).
    static func sampleShape(_ spec: TensorSpec) -> [Int] { Array(spec.shape.dropFirst()) }

    static func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// A value as (shape, flat values); numbers are 0-d. Anything non-numeric is an error that
    /// names `path` (e.g. `instances[3].x`).
    static func numeric(_ value: JSONValue, path: String) throws(ServeError) -> (shape: [Int], values: [Double]) {
        switch value {
        case .number(let x): return ([], [x])
        case .tensor(let shape, let values): return (shape, values)
        case .array(let elements) where elements.isEmpty:
            throw .badRequest("\(path): empty array where numbers are expected")
        case .array(let elements):
            // Find the first offending element to name it.
            for (i, e) in elements.enumerated() {
                switch e {
                case .number, .tensor: continue
                case .array: _ = try numeric(e, path: "\(path)[\(i)]")
                default: throw .badRequest("\(path)[\(i)]: expected a number, found \(e.kindName)")
                }
            }
            throw .badRequest("\(path): ragged array (rows of different lengths or depths)")
        default:
            throw .badRequest("\(path): expected a number or an array of numbers, found \(value.kindName)")
        }
    }

    /// One sample of `spec` from `value`; its shape must be the input's sample shape.
    static func sample(_ value: JSONValue, spec: TensorSpec, path: String) throws(ServeError) -> [Double] {
        let (shape, values) = try numeric(value, path: path)
        let expected = sampleShape(spec)
        guard shape == expected else {
            throw .badRequest("\(path): input '\(spec.name)' takes samples of shape \(describe(expected)), found \(describe(shape))")
        }
        return values
    }

    /// A whole batch of `spec` from `value`: shape [rows] + sample shape. Returns rows and values.
    static func batch(_ value: JSONValue, spec: TensorSpec, path: String) throws(ServeError) -> (rows: Int, values: [Double]) {
        let (shape, values) = try numeric(value, path: path)
        let expected = sampleShape(spec)
        guard let rows = shape.first, Array(shape.dropFirst()) == expected else {
            throw .badRequest("\(path): input '\(spec.name)' takes shape \(describe([-1] + expected)) (batch first), found \(describe(shape))")
        }
        return (rows, values)
    }

    static func inputNames(_ model: Model) -> String { model.inputs.map(\.name).joined(separator: ", ") }

    /// For a model that accepts several sequence lengths (converted with --max-seq): the length
    /// whose inputs have these shapes (batch first). Nil for a fixed-length model, or when an
    /// input is missing (the caller names it).
    static func sequenceLength(_ model: Model, shapes: [String: [Int]]) throws(ServeError) -> Int? {
        guard !model.sequenceLengths.isEmpty else { return nil }
        var list: [[Int]] = []
        for spec in model.inputs {
            guard let shape = shapes[spec.name] else { return nil }
            list.append(shape)
        }
        guard let length = model.sequenceLength(forInputShapes: list) else {
            let given = zip(model.inputs, list).map { "'\($0.name)' \(describe($1))" }.joined(separator: ", ")
            throw .badRequest("input shapes \(given) match no sequence length the model accepts (\(IOError.ranges(model.sequenceLengths)); at the longest: \(model.inputs.map(\.description).joined(separator: "; ")))")
        }
        return length
    }

    /// The model's inputs at `length` (nil: its own).
    static func inputSpecs(_ model: Model, length: Int?) -> [TensorSpec] {
        length.flatMap { model.inputs(sequenceLength: $0) } ?? model.inputs
    }
}
