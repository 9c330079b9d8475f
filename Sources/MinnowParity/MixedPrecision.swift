import MinnowConvert
import MinnowFormat
import MinnowRuntime

// Accuracy-driven mixed precision: quantize everything, measure parity, and move the layer that
// adds the most quantization noise (per-layer attribution) back to float, one at a time, until
// the spec holds; then try returning each kept layer to int8 again and keep it there when the
// spec still holds (a layer blamed early may not be needed once its neighbour is float).

public struct MixedPrecisionStep: Sendable {
    public var keptFloat: [String]
    public var passed: Bool
    public var fileBytes: Int
    public var failing: [String]
}

public struct MixedPrecisionResult: Sendable {
    public var result: ConversionResult
    public var report: ParityReport
    public var keptFloat: [String]
    /// Size of the all-int8 file, to state what mixed precision cost.
    public var allInt8Bytes: Int
    public var steps: [MixedPrecisionStep]
    /// False when even all-float conversion misses the spec.
    public var achievable: Bool
}

public enum MixedPrecision {
    public static func search(onnxPath: String, options base: ConvertOptions, referencePath: String,
                              spec: ParitySpec?, progress: (String) -> Void = { _ in }) throws -> MixedPrecisionResult {
        func attempt(_ keep: [String]) throws -> (ConversionResult, Model, ParityReport) {
            var o = base
            o.keepFloat = base.keepFloat + keep
            let r = try Converter.convert(onnxPath: onnxPath, options: o)
            let m = try Model(bytes: AlignedBytes(r.bytes))
            return (r, m, try Parity.evaluate(model: m, referencePath: referencePath, spec: spec))
        }
        var steps: [MixedPrecisionStep] = []
        var kept: [String] = []
        var (result, model, report) = try attempt(kept)
        let allInt8 = result.bytes.count
        steps.append(MixedPrecisionStep(keptFloat: kept, passed: report.passed, fileBytes: allInt8, failing: report.violations.map(\.metric)))
        progress("\(base.mode == .auto ? "auto's choice" : "all int8"): \(report.passed ? "passes" : "fails (\(report.violations.map { "\($0.output) \($0.metric)" }.joined(separator: ", ")))")")
        let reference = try ReferenceSet.load(path: referencePath, model: model)
        while !report.passed {
            let layers = try LayerAttribution.compute(quantized: try ModelFile(bytes: AlignedBytes(result.bytes)), sourceONNX: onnxPath,
                                                      reference: reference)
            // The worst int8 dense not yet kept; keep-float names match a fused op's first node.
            guard let worst = layers.first(where: { $0.int8 && $0.opType == "Dense" && !kept.contains(firstNode($0.layer)) }) else { break }
            kept.append(firstNode(worst.layer))
            (result, model, report) = try attempt(kept)
            steps.append(MixedPrecisionStep(keptFloat: kept, passed: report.passed, fileBytes: result.bytes.count, failing: report.violations.map(\.metric)))
            progress("keep \(kept.last!) in float (\(String(format: "%.0f", worst.share * 100))% of the noise): \(report.passed ? "passes" : "still fails")")
        }
        if report.passed && kept.count > 1 {
            for name in kept {
                let trial = kept.filter { $0 != name }
                let (r, m, p) = try attempt(trial)
                steps.append(MixedPrecisionStep(keptFloat: trial, passed: p.passed, fileBytes: r.bytes.count, failing: p.violations.map(\.metric)))
                if p.passed {
                    progress("\(name) can return to int8: still passes")
                    kept = trial
                    (result, model, report) = (r, m, p)
                }
            }
        }
        var achievable = report.passed
        if !report.passed {
            var o = base
            o.mode = .float
            let r = try Converter.convert(onnxPath: onnxPath, options: o)
            let p = try Parity.evaluate(model: try Model(bytes: AlignedBytes(r.bytes)), referencePath: referencePath, spec: spec)
            achievable = p.passed
            if !p.passed {
                progress("even all-float misses the spec: the thresholds are below what the source model itself achieves")
                (result, report) = (r, p)
            }
        }
        return MixedPrecisionResult(result: result, report: report, keptFloat: kept, allInt8Bytes: allInt8, steps: steps, achievable: achievable)
    }

    static func firstNode(_ layer: String) -> String { String(layer.split(separator: "+").first ?? Substring(layer)) }
}
