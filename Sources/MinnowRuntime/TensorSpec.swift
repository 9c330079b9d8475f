import MinnowFormat

/// A model input or output as a user sees it: name, dtype and shape (dimension 0 is the batch).
public struct TensorSpec: Equatable, Sendable, CustomStringConvertible {
    public let name: String
    public let dtype: DType
    /// Shape with -1 for the dynamic batch dimension.
    public let shape: [Int]
    let tensorIndex: Int

    /// Elements of one sample (all dimensions after the batch).
    public var elementsPerSample: Int { shape.dropFirst().reduce(1, *) }
    public var bytesPerSample: Int { elementsPerSample * dtype.byteSize }

    public var description: String {
        "\(name): \(dtype)[\(shape.map { $0 < 0 ? "batch" : String($0) }.joined(separator: ", "))]"
    }
}
