import Foundation

/// A threshold on one metric of one output.
public enum Threshold: Equatable, Sendable, CustomStringConvertible {
    case min(Double)
    case max(Double)
    /// Ours may be at most this much below the trainer's (higher-is-better metrics).
    case maxDrop(Double)
    /// Ours may be at most this much above the trainer's (lower-is-better metrics).
    case maxRise(Double)
    /// Ours may be at most this many percent above the trainer's.
    case maxRisePct(Double)

    public var description: String {
        switch self {
        case let .min(v): return "min \(fmt(v))"
        case let .max(v): return "max \(fmt(v))"
        case let .maxDrop(v): return "drop <= \(fmt(v))"
        case let .maxRise(v): return "rise <= \(fmt(v))"
        case let .maxRisePct(v): return "rise <= \(fmt(v))%"
        }
    }

    /// Whether `ours` passes, given the trainer's value for relative thresholds.
    public func holds(ours: Double, trainer: Double?) -> Bool {
        guard !ours.isNaN else { return false }
        switch self {
        case let .min(v): return ours >= v
        case let .max(v): return ours <= v
        case let .maxDrop(v): return trainer.map { $0 - ours <= v + 1e-12 } ?? false
        case let .maxRise(v): return trainer.map { ours - $0 <= v + 1e-12 } ?? false
        case let .maxRisePct(v): return trainer.map { ours <= $0 * (1 + v / 100) + 1e-12 } ?? false
        }
    }
}

func fmt(_ v: Double) -> String {
    if v.isInfinite { return v > 0 ? "inf" : "-inf" }
    if v.isNaN { return "nan" }
    if v != 0 && (abs(v) < 1e-3 || abs(v) >= 1e5) { return String(format: "%.3e", v) }
    return String(format: "%.4f", v)
}

public enum Task: String, Sendable {
    case classification, binaryClassification = "binary_classification", regression
}

/// Thresholds per output and metric, from JSON:
/// `{"task": "...", "outputs": {"<output>": {"<metric>": {"min"|"max"|"max_drop"|"max_rise"|"max_rise_pct": v}}}}`.
public struct ParitySpec: Sendable {
    public var task: Task?
    public var thresholds: [(output: String, metric: String, threshold: Threshold)]

    public init(task: Task? = nil, thresholds: [(output: String, metric: String, threshold: Threshold)] = []) {
        self.task = task
        self.thresholds = thresholds
    }

    public static func load(path: String) throws(ParityError) -> ParitySpec {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .spec(path: path, reason: "not a JSON object")
        }
        var spec = ParitySpec()
        if let t = root["task"] {
            guard let s = t as? String, let task = Task(rawValue: s) else {
                throw .spec(path: path, reason: "task must be one of classification, binary_classification, regression")
            }
            spec.task = task
        }
        guard let outputs = root["outputs"] as? [String: Any] else { throw .spec(path: path, reason: "missing \"outputs\" object") }
        for output in outputs.keys.sorted() {
            guard let metrics = outputs[output] as? [String: Any] else { throw .spec(path: path, reason: "outputs.\(output) must be an object") }
            for metric in metrics.keys.sorted() {
                guard MetricName.all.contains(metric) else {
                    throw .spec(path: path, reason: "unknown metric '\(metric)' (known: \(MetricName.all.sorted().joined(separator: ", ")))")
                }
                guard let rule = metrics[metric] as? [String: Any], rule.count >= 1 else {
                    throw .spec(path: path, reason: "outputs.\(output).\(metric) must be an object like {\"min\": 0.99}")
                }
                for (kind, value) in rule.sorted(by: { $0.key < $1.key }) {
                    guard let v = (value as? NSNumber)?.doubleValue else {
                        throw .spec(path: path, reason: "outputs.\(output).\(metric).\(kind) must be a number")
                    }
                    let th: Threshold
                    switch kind {
                    case "min": th = .min(v)
                    case "max": th = .max(v)
                    case "max_drop": th = .maxDrop(v)
                    case "max_rise": th = .maxRise(v)
                    case "max_rise_pct": th = .maxRisePct(v)
                    default: throw .spec(path: path, reason: "unknown threshold '\(kind)' (min, max, max_drop, max_rise, max_rise_pct)")
                    }
                    spec.thresholds.append((output, metric, th))
                }
            }
        }
        return spec
    }
}

public enum MetricName {
    /// Ours vs the trainer's outputs.
    public static let comparison: Set<String> = [
        "max_abs_error", "mean_abs_error", "rmse", "cosine_mean", "cosine_min", "snr_db", "top1_agreement", "top5_overlap",
    ]
    /// Against labels, computed for the trainer and for us.
    public static let task: Set<String> = ["accuracy", "roc_auc", "log_loss", "label_mae", "label_rmse"]
    public static var all: Set<String> { comparison.union(task) }
}

public enum ParityError: Error, CustomStringConvertible, Sendable {
    case io(path: String, reason: String)
    case spec(path: String, reason: String)
    case reference(String)
    case run(String)

    public var description: String {
        switch self {
        case let .io(path, reason): return "\(path): \(reason)"
        case let .spec(path, reason): return "parity spec \(path): \(reason)"
        case let .reference(reason): return "reference data: \(reason)"
        case let .run(reason): return "running the model: \(reason)"
        }
    }
}
