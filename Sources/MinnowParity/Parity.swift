import Foundation
import MinnowNumpy
import MinnowRuntime

/// One figure of the report: ours (and the trainer's, for label metrics) with its threshold.
public struct ParityRow: Sendable {
    public var output: String
    public var metric: String
    public var trainer: Double?
    public var ours: Double
    public var threshold: Threshold?
    public var passed: Bool? { threshold.map { $0.holds(ours: ours, trainer: trainer) } }
}

public struct ParityReport: Sendable {
    public var task: Task?
    /// Where the task came from: "spec", "model metadata", "inferred from output shape and labels".
    public var taskSource: String
    public var samples: Int
    public var rows: [ParityRow]
    /// Our outputs per output name, row-major (for callers that want to save them).
    public var outputs: [String: [Float]]
    public var thresholdsSource: String

    public var passed: Bool { rows.allSatisfy { $0.passed != false } }

    /// A terminal table, failing rows first.
    public func table(color: Bool = false) -> String {
        let sorted = rows.filter { $0.passed == false } + rows.filter { $0.passed != false }
        var lines = [["output", "metric", "trainer", "minnow", "threshold", "status"]]
        for r in sorted {
            let status = r.passed.map { $0 ? "ok" : "FAIL" } ?? ""
            lines.append([r.output, r.metric, r.trainer.map(fmt) ?? "-", fmt(r.ours), r.threshold?.description ?? "", status])
        }
        let widths = (0..<6).map { c in lines.map { $0[c].count }.max() ?? 0 }
        var out = lines.map { row in
            let text = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
            return color && row[5] == "FAIL" ? "\u{1B}[31m\(text)\u{1B}[0m" : text
        }
        out.insert("task: \(task?.rawValue ?? "unknown") (\(taskSource)); \(samples) samples; thresholds: \(thresholdsSource)", at: 0)
        out.append(passed ? "PASS: every threshold holds" : "FAIL: \(rows.filter { $0.passed == false }.count) threshold(s) violated")
        return out.joined(separator: "\n")
    }
}

public enum Parity {
    /// Runs `model` on every input of the reference set and compares with the trainer's outputs.
    public static func evaluate(model: Model, referencePath: String, spec: ParitySpec?, batch: Int? = nil) throws(ParityError) -> ParityReport {
        let arrays: [(name: String, array: NpyArray)]
        do { arrays = try Npz.read(path: referencePath) } catch { throw .reference(error.description) }
        func find(_ prefix: String, _ name: String) -> NpyArray? {
            arrays.first { $0.name == "\(prefix)/\(name)" }?.array
        }
        // Inputs
        var inputs: [[Float]] = []
        var samples: Int?
        for spec in model.inputs {
            guard let a = find("inputs", spec.name) ?? arrays.first(where: { $0.name == spec.name })?.array else {
                throw .reference("\(referencePath) has no array 'inputs/\(spec.name)'")
            }
            guard let n = a.shape.first, a.count == n * spec.elementsPerSample else {
                throw .reference("'inputs/\(spec.name)' has shape \(a.shape), expected [N, \(spec.shape.dropFirst().map(String.init).joined(separator: ", "))]")
            }
            if let s = samples, s != n { throw .reference("inputs have different sample counts (\(s) and \(n))") }
            samples = n
            inputs.append(a.floats())
        }
        guard let total = samples, total > 0 else { throw .reference("no samples") }

        // Run in batches on one allocation-free session.
        let maxBatch = min(batch ?? 64, model.maxBatch)
        guard maxBatch >= 1 else { throw .run("batch must be at least 1") }
        let session: Session
        do { session = try Session(model: model, maxBatch: maxBatch) } catch { throw .run(error.description) }
        let outs: [[Float]]
        do { outs = try session.predict(inputs: inputs, samples: total) } catch { throw .run("\(error)") }

        // Task
        var task = spec?.task
        var taskSource = "spec"
        if task == nil, let t = model.description.metadataValue("task").flatMap(Task.init(rawValue:)) {
            task = t
            taskSource = "model metadata"
        }
        var rows: [ParityRow] = []
        var ourOutputs: [String: [Float]] = [:]
        for (i, spec) in model.outputs.enumerated() {
            let name = spec.name
            ourOutputs[name] = outs[i]
            guard let refArray = find("outputs", name) else { continue }
            let ref = refArray.floats()
            guard ref.count == outs[i].count else {
                throw .reference("'outputs/\(name)' has \(ref.count) values, the model produced \(outs[i].count)")
            }
            let width = spec.elementsPerSample
            let cos = Metrics.cosines(ref, outs[i], width: width)
            rows += [
                ParityRow(output: name, metric: "max_abs_error", ours: Metrics.maxAbsError(ref, outs[i])),
                ParityRow(output: name, metric: "mean_abs_error", ours: Metrics.meanAbsError(ref, outs[i])),
                ParityRow(output: name, metric: "rmse", ours: Metrics.rmse(ref, outs[i])),
                ParityRow(output: name, metric: "cosine_mean", ours: cos.reduce(0, +) / Double(max(cos.count, 1))),
                ParityRow(output: name, metric: "cosine_min", ours: cos.min() ?? 1),
                ParityRow(output: name, metric: "snr_db", ours: Metrics.snrDB(reference: ref, ours: outs[i])),
            ]
            if width > 1 {
                rows.append(ParityRow(output: name, metric: "top1_agreement", ours: Metrics.top1Agreement(ref, outs[i], width: width)))
                if width > 5 { rows.append(ParityRow(output: name, metric: "top5_overlap", ours: Metrics.topKOverlap(ref, outs[i], width: width, k: 5))) }
            }
            if let labelArray = find("labels", name) {
                let labels = labelArray.floats()
                if task == nil {
                    let integral = labels.allSatisfy { $0 == $0.rounded() && $0 >= 0 }
                    if width > 1 && integral && labels.count == total { task = .classification }
                    else if width == 1 && labels.allSatisfy({ $0 == 0 || $0 == 1 }) { task = .binaryClassification }
                    else { task = .regression }
                    taskSource = "inferred from output shape and labels"
                }
                rows += taskRows(name, task: task!, ref: ref, ours: outs[i], width: width, labels: labels)
            }
        }
        // Thresholds: the spec's, or defaults per task.
        var thresholdsSource = "spec"
        var thresholds = spec?.thresholds ?? []
        if spec == nil {
            thresholdsSource = "defaults for the task (pass --spec to set your own)"
            for o in model.outputs.map(\.name) {
                switch task {
                case .classification?: thresholds.append((o, "top1_agreement", .min(0.99)))
                case .binaryClassification?: thresholds.append((o, "roc_auc", .maxDrop(0.01)))
                case .regression?: thresholds.append((o, "label_rmse", .maxRisePct(5)))
                case nil: thresholds.append((o, "cosine_min", .min(0.99)))
                }
            }
        }
        for (output, metric, th) in thresholds {
            guard model.output(named: output) != nil else { throw .reference("spec names output '\(output)', the model has \(model.outputs.map(\.name))") }
            guard let i = rows.firstIndex(where: { $0.output == output && $0.metric == metric && $0.threshold == nil }) else {
                // A second threshold on the same metric, or a metric this output lacks (e.g. labels missing).
                if let j = rows.firstIndex(where: { $0.output == output && $0.metric == metric }) {
                    var r = rows[j]
                    r.threshold = th
                    rows.append(r)
                    continue
                }
                throw .reference("metric '\(metric)' of output '\(output)' cannot be computed (labels or reference outputs missing?)")
            }
            rows[i].threshold = th
        }
        return ParityReport(task: task, taskSource: task == nil ? "unknown: no labels" : taskSource, samples: total,
                            rows: rows, outputs: ourOutputs, thresholdsSource: thresholdsSource)
    }

    static func taskRows(_ name: String, task: Task, ref: [Float], ours: [Float], width: Int, labels: [Float]) -> [ParityRow] {
        let ints = labels.map { Int($0) }
        switch task {
        case .classification:
            guard width > 1 else { return [] }
            return [ParityRow(output: name, metric: "accuracy", trainer: Metrics.accuracy(scores: ref, width: width, labels: ints),
                              ours: Metrics.accuracy(scores: ours, width: width, labels: ints))]
        case .binaryClassification:
            guard width == 1 else { return [] }
            return [
                ParityRow(output: name, metric: "roc_auc", trainer: Metrics.rocAUC(scores: ref, labels: ints), ours: Metrics.rocAUC(scores: ours, labels: ints)),
                ParityRow(output: name, metric: "accuracy", trainer: Metrics.binaryAccuracy(scores: ref, labels: ints), ours: Metrics.binaryAccuracy(scores: ours, labels: ints)),
                ParityRow(output: name, metric: "log_loss", trainer: Metrics.logLoss(probabilities: ref, labels: ints), ours: Metrics.logLoss(probabilities: ours, labels: ints)),
            ]
        case .regression:
            guard labels.count == ref.count else { return [] }
            return [
                ParityRow(output: name, metric: "label_mae", trainer: Metrics.meanAbsError(ref, labels), ours: Metrics.meanAbsError(ours, labels)),
                ParityRow(output: name, metric: "label_rmse", trainer: Metrics.rmse(ref, labels), ours: Metrics.rmse(ours, labels)),
            ]
        }
    }
}
