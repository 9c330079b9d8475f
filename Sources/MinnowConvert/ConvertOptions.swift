/// How to quantize.
public enum QuantizationMode: String, Sendable, CaseIterable {
    /// Per Dense, the cheapest of static, dynamic and float whose error on the calibration rows
    /// stays within tolerance (dynamic everywhere without calibration data). The default.
    case auto
    /// int8 weights and calibrated int8 activations (needs calibration data).
    case `static`
    /// int8 weights; activations quantized per row at run time; float outputs.
    case dynamic
    /// fp32 everywhere: the accuracy baseline and a debugging aid.
    case float
}

/// How activation ranges are taken from calibration data.
public enum CalibrationMethod: Sendable, Equatable {
    /// Global min and max over every calibration sample.
    case minMax
    /// The given percentile of |x| on each side (e.g. 99.99), from a histogram.
    case percentile(Double)
}

public struct ConvertOptions: Sendable {
    public var mode: QuantizationMode = .auto
    public var calibrationPath: String?
    public var calibration: CalibrationMethod = .minMax
    public var maxBatch: Int = 64
    /// Length given to dynamic dimensions other than the batch (an export with a dynamic sequence
    /// axis); nil refuses such exports. The model then takes inputs of any length up to this one
    /// (see `sequenceLengths`).
    public var maxSeq: Int?
    /// The shorter lengths the model accepts besides `maxSeq` (the graph is lowered at each and
    /// stored as changes); nil means every length 1...maxSeq, [] only `maxSeq` itself.
    public var sequenceLengths: [Int]?
    /// Node names, output tensor names or ONNX op types to keep in float.
    public var keepFloat: [String] = []
    public var zstdLevel: Int32 = 3
    /// Upper bound on calibration samples read (they run in batches of `maxBatch`).
    public var maxCalibrationSamples: Int = 2048
    /// Let activations share arena memory (false keeps every intermediate readable after a run,
    /// for per-layer attribution and debugging).
    public var reuseMemory = true
    /// Fold layout copies around batched products into the products' strides (format 1.8;
    /// false keeps them as copies: the same outputs, to compare against).
    public var foldLayouts = true
    /// Called during long steps (calibration) with a stage name and the fraction done.
    public var progress: (@Sendable (_ stage: String, _ fraction: Double) -> Void)?

    public init() {}
}
