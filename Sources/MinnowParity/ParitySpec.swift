import Foundation

/// A threshold on one metric.
public enum Threshold: Equatable, Sendable, CustomStringConvertible {
    case min(Double)
    case max(Double)
    /// Ours may be at most this much below the trainer's (higher-is-better label metrics).
    case maxDrop(Double)
    /// Ours may be at most this much above the trainer's (lower-is-better label metrics).
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

    /// The spec's JSON key and value.
    public var json: (key: String, value: Double) {
        switch self {
        case let .min(v): return ("min", v)
        case let .max(v): return ("max", v)
        case let .maxDrop(v): return ("max_drop", v)
        case let .maxRise(v): return ("max_rise", v)
        case let .maxRisePct(v): return ("max_rise_pct", v)
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
        case let .maxRisePct(v): return trainer.map { ours <= $0 + abs($0) * v / 100 + 1e-12 } ?? false
        }
    }
}

func fmt(_ v: Double) -> String {
    if v.isInfinite { return v > 0 ? "inf" : "-inf" }
    if v.isNaN { return "nan" }
    if v != 0 && (abs(v) < 1e-3 || abs(v) >= 1e5) { return String(format: "%.3e", v) }
    return String(format: "%.4f", v)
}

public enum Task: String, Sendable, CaseIterable {
    case multiclass, binary, regression, ranking
}

public enum MetricName {
    /// Ours against the trainer's outputs (spec key "outputs").
    public static let comparison: Set<String> = [
        "max_abs_error", "mean_abs_error", "rmse", "cosine_mean", "cosine_min", "snr_db", "top1_agreement", "topk_overlap",
    ]
    /// Against labels, for the trainer and for us (spec key "labels").
    public static let labels: Set<String> = [
        "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "recall_at_k", "ndcg_at_k", "mae", "rmse",
    ]
}

/// Thresholds, from JSON (every key optional):
/// `{"task": "multiclass", "outputs": {"<output>": {"cosine_min": {"min": 0.99}}},
///   "labels": {"accuracy": {"max_drop": 0.005}}, "k": 10}`.
public struct ParitySpec: Sendable {
    public var task: Task?
    public var k: Int?
    /// Comparison thresholds per output.
    public var outputs: [(output: String, metric: String, threshold: Threshold)] = []
    /// Label-metric thresholds, applied to every output that has labels.
    public var labels: [(metric: String, threshold: Threshold)] = []

    public init(task: Task? = nil, k: Int? = nil) {
        self.task = task
        self.k = k
    }

    public static func load(path: String) throws(ParityError) -> ParitySpec {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read") }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String = "spec") throws(ParityError) -> ParitySpec {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .spec(path: path, reason: "not a JSON object")
        }
        var spec = ParitySpec()
        for key in root.keys where !["task", "outputs", "labels", "k"].contains(key) {
            throw .spec(path: path, reason: "unknown key '\(key)' (task, outputs, labels, k)")
        }
        if let t = root["task"] {
            guard let s = t as? String, let task = Task(rawValue: s) else {
                throw .spec(path: path, reason: "task must be one of \(Task.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            spec.task = task
        }
        if let k = root["k"] {
            guard let v = (k as? NSNumber)?.intValue, v >= 1 else { throw .spec(path: path, reason: "k must be a positive integer") }
            spec.k = v
        }
        if let outputs = root["outputs"] {
            guard let outputs = outputs as? [String: Any] else { throw .spec(path: path, reason: "\"outputs\" must be an object") }
            for output in outputs.keys.sorted() {
                for (metric, th) in try thresholds(outputs[output], at: "outputs.\(output)", known: MetricName.comparison, path: path) {
                    spec.outputs.append((output, metric, th))
                }
            }
        }
        if let labels = root["labels"] {
            spec.labels = try thresholds(labels, at: "labels", known: MetricName.labels, path: path)
        }
        return spec
    }

    private static func thresholds(_ object: Any?, at place: String, known: Set<String>, path: String) throws(ParityError) -> [(String, Threshold)] {
        guard let metrics = object as? [String: Any] else { throw .spec(path: path, reason: "\(place) must be an object") }
        var out: [(String, Threshold)] = []
        for metric in metrics.keys.sorted() {
            guard known.contains(metric) else {
                throw .spec(path: path, reason: "unknown metric '\(metric)' in \(place) (known: \(known.sorted().joined(separator: ", ")))")
            }
            guard let rule = metrics[metric] as? [String: Any], !rule.isEmpty else {
                throw .spec(path: path, reason: "\(place).\(metric) must be an object like {\"min\": 0.99}")
            }
            for (kind, value) in rule.sorted(by: { $0.key < $1.key }) {
                guard let number = value as? NSNumber else {
                    throw .spec(path: path, reason: "\(place).\(metric).\(kind) must be a number")
                }
                let v = number.doubleValue
                switch kind {
                case "min": out.append((metric, .min(v)))
                case "max": out.append((metric, .max(v)))
                case "max_drop": out.append((metric, .maxDrop(v)))
                case "max_rise": out.append((metric, .maxRise(v)))
                case "max_rise_pct": out.append((metric, .maxRisePct(v)))
                default: throw .spec(path: path, reason: "unknown threshold '\(kind)' in \(place).\(metric) (min, max, max_drop, max_rise, max_rise_pct)")
                }
            }
        }
        return out
    }

    /// Defaults per task, used when no spec is given (and printed in the report).
    public static func defaults(for task: Task?, outputs: [String]) -> ParitySpec {
        var s = ParitySpec(task: task)
        switch task {
        case .multiclass?:
            s.outputs = outputs.map { ($0, "top1_agreement", .min(0.99)) }
            s.labels = [("accuracy", .maxDrop(0.01))]
        case .binary?: s.labels = [("roc_auc", .maxDrop(0.01))]
        case .regression?: s.labels = [("rmse", .maxRisePct(5))]
        case .ranking?: s.labels = [("recall_at_k", .maxDrop(0.01))]
        case nil: s.outputs = outputs.map { ($0, "cosine_min", .min(0.99)) }
        }
        return s
    }
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
