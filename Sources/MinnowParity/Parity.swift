import Foundation
import MinnowNumpy
import MinnowRuntime

/// Reference data recorded by the trainer: inputs, its outputs, optional labels.
public struct ReferenceSet: Sendable {
    public var inputs: [[Float]]
    public var samples: Int
    public var outputs: [String: [Float]]
    public var labels: [String: [Float]]

    /// Reads `inputs/<name>` for each model input, `outputs/<name>` and `labels/<name>`.
    public static func load(path: String, model: Model) throws(ParityError) -> ReferenceSet {
        let arrays: [(name: String, array: NpyArray)]
        do { arrays = try Npz.read(path: path) } catch { throw .reference(error.description) }
        var inputs: [[Float]] = []
        var samples: Int?
        for spec in model.inputs {
            guard let a = arrays.first(where: { $0.name == "inputs/\(spec.name)" })?.array ?? arrays.first(where: { $0.name == spec.name })?.array else {
                throw .reference("\(path) has no array 'inputs/\(spec.name)' (found: \(arrays.map(\.name).joined(separator: ", ")))")
            }
            guard let n = a.shape.first, a.count == n * spec.elementsPerSample else {
                throw .reference("'inputs/\(spec.name)' has shape \(a.shape), expected [N, \(spec.shape.dropFirst().map(String.init).joined(separator: ", "))]")
            }
            if let s = samples, s != n { throw .reference("inputs have different sample counts (\(s) and \(n))") }
            samples = n
            inputs.append(a.floats())
        }
        guard let total = samples, total > 0 else { throw .reference("\(path): no samples") }
        var outputs = [String: [Float]](), labels = [String: [Float]]()
        for (name, a) in arrays {
            if name.hasPrefix("outputs/") { outputs[String(name.dropFirst(8))] = a.floats() }
            if name.hasPrefix("labels/") {
                guard a.shape.first == total else { throw .reference("'\(name)' has \(a.shape.first ?? 0) rows, inputs have \(total)") }
                labels[String(name.dropFirst(7))] = a.floats()
            }
        }
        return ReferenceSet(inputs: inputs, samples: total, outputs: outputs, labels: labels)
    }
}

public enum Parity {
    /// Runs `model` on every reference input (batched, one session) and compares.
    public static func evaluate(model: Model, referencePath: String, spec: ParitySpec?, batch: Int? = nil,
                                progress: ((Double) -> Void)? = nil) throws(ParityError) -> ParityReport {
        let reference = try ReferenceSet.load(path: referencePath, model: model)
        let outs = try run(model, reference, batch: batch, progress: progress)
        return try compare(model: model, reference: reference, ours: outs, spec: spec)
    }

    /// Our outputs on the reference inputs, one array per model output.
    public static func run(_ model: Model, _ reference: ReferenceSet, batch: Int? = nil,
                           progress: ((Double) -> Void)? = nil) throws(ParityError) -> [[Float]] {
        let maxBatch = min(batch ?? 64, model.maxBatch)
        guard maxBatch >= 1 else { throw .run("batch must be at least 1") }
        do {
            let session = try Session(model: model, maxBatch: maxBatch)
            var outs = [[Float]](repeating: [], count: model.outputs.count)
            var done = 0
            try session.runBatches(inputs: reference.inputs, samples: reference.samples) { b in
                for i in model.outputs.indices { outs[i] += session.outputFloats(i, batch: b) }
                done += b
                progress?(Double(done) / Double(reference.samples))
            }
            return outs
        } catch {
            throw .run("\(error)")
        }
    }

    public static func compare(model: Model, reference: ReferenceSet, ours outs: [[Float]], spec: ParitySpec?) throws(ParityError) -> ParityReport {
        var task = spec?.task
        var taskSource = "spec"
        if task == nil, let t = model.description.metadataValue("task").flatMap(Task.init(rawValue:)) {
            task = t
            taskSource = "model metadata"
        }
        let k = spec?.k ?? 5
        var rows: [ParityRow] = []
        var series: [OutputSeries] = []
        for (i, out) in model.outputs.enumerated() {
            let name = out.name, width = out.elementsPerSample
            guard let ref = reference.outputs[name] else { continue }
            guard ref.count == outs[i].count else {
                throw .reference("'outputs/\(name)' has \(ref.count) values, the model produced \(outs[i].count)")
            }
            let ours = outs[i]
            let labels = reference.labels[name]
            series.append(OutputSeries(name: name, width: width, reference: ref, ours: ours, labels: labels))
            let cos = Metrics.cosines(ref, ours, width: width)
            func row(_ metric: String, _ v: Double) -> ParityRow { ParityRow(output: name, metric: metric, against: .trainer, ours: v) }
            rows += [
                row("max_abs_error", Metrics.maxAbsError(ref, ours)),
                row("mean_abs_error", Metrics.meanAbsError(ref, ours)),
                row("rmse", Metrics.rmse(ref, ours)),
                row("cosine_mean", cos.reduce(0, +) / Double(max(cos.count, 1))),
                row("cosine_min", cos.min() ?? 1),
                row("snr_db", Metrics.snrDB(reference: ref, ours: ours)),
            ]
            if width > 1 {
                rows.append(row("top1_agreement", Metrics.top1Agreement(ref, ours, width: width)))
                rows.append(row("topk_overlap", Metrics.topKOverlap(ref, ours, width: width, k: min(k, width))))
            }
            guard let labels else { continue }
            if task == nil {
                let integral = labels.allSatisfy { $0 == $0.rounded() && $0 >= 0 }
                if width > 1 && integral && labels.count == reference.samples { task = .multiclass }
                else if width == 1 && labels.allSatisfy({ $0 == 0 || $0 == 1 }) { task = .binary }
                else { task = .regression }
                taskSource = "inferred from output shape and labels"
            }
            rows += labelRows(name, task: task!, ref: ref, ours: ours, width: width, labels: labels, k: k)
        }
        guard !series.isEmpty else {
            throw .reference("no 'outputs/<name>' array matches a model output (\(model.outputs.map(\.name).joined(separator: ", ")))")
        }

        let thresholdsSource: String
        let applied: ParitySpec
        if let spec {
            applied = spec
            thresholdsSource = "spec"
        } else {
            applied = ParitySpec.defaults(for: task, outputs: series.map(\.name))
            let listed = applied.outputs.map { "\($0.metric) \($0.threshold)" } + applied.labels.map { "\($0.metric) \($0.threshold)" }
            thresholdsSource = "defaults for \(task?.rawValue ?? "an unknown task") (\(listed.joined(separator: "; "))); pass --spec to set your own"
        }
        func attach(_ output: String, _ metric: String, _ against: ParityRow.Against, _ th: Threshold) throws(ParityError) {
            guard let i = rows.firstIndex(where: { $0.output == output && $0.metric == metric && $0.against == against }) else {
                throw .reference("metric '\(metric)' of output '\(output)' cannot be computed (missing outputs/labels, or not defined for the \(task?.rawValue ?? "unknown") task)")
            }
            if rows[i].threshold == nil { rows[i].threshold = th } else {
                var r = rows[i]
                r.threshold = th
                rows.append(r)
            }
        }
        for (output, metric, th) in applied.outputs {
            guard model.output(named: output) != nil else {
                throw .reference("spec names output '\(output)'; the model's outputs are \(model.outputs.map(\.name).joined(separator: ", "))")
            }
            try attach(output, metric, .trainer, th)
        }
        let labelled = series.filter { $0.labels != nil }.map(\.name)
        if !applied.labels.isEmpty && labelled.isEmpty && spec != nil {
            throw .reference("the spec has label thresholds but the reference set has no labels/<output> arrays")
        }
        for output in labelled { for (metric, th) in applied.labels { try attach(output, metric, .labels, th) } }
        return ParityReport(task: task, taskSource: task == nil ? "unknown: no labels" : taskSource, k: k,
                            samples: reference.samples, rows: rows, series: series, thresholdsSource: thresholdsSource)
    }

    static func labelRows(_ name: String, task: Task, ref: [Float], ours: [Float], width: Int, labels: [Float], k: Int) -> [ParityRow] {
        func row(_ metric: String, _ f: ([Float]) -> Double) -> ParityRow {
            ParityRow(output: name, metric: metric, against: .labels, trainer: f(ref), ours: f(ours))
        }
        let ints = labels.map { Int($0) }
        let samples = labels.count
        switch task {
        case .multiclass, .ranking:
            guard width > 1, samples * width == ref.count else { return [] }
            let kk = min(k, width)
            var out = [
                row("recall_at_k") { Metrics.recallAtK(scores: $0, width: width, labels: ints, k: kk) },
                row("ndcg_at_k") { Metrics.ndcgAtK(scores: $0, width: width, labels: ints, k: kk) },
            ]
            if task == .multiclass {
                func predicted(_ s: [Float]) -> [Int] { (0..<samples).map { Metrics.argmax(s[($0 * width)..<(($0 + 1) * width)]) } }
                let classes = Array(0..<width)
                out += [
                    row("accuracy") { Metrics.accuracy(scores: $0, width: width, labels: ints) },
                    row("precision") { Metrics.precisionRecallF1(predicted: predicted($0), labels: ints, classes: classes).precision },
                    row("recall") { Metrics.precisionRecallF1(predicted: predicted($0), labels: ints, classes: classes).recall },
                    row("f1") { Metrics.precisionRecallF1(predicted: predicted($0), labels: ints, classes: classes).f1 },
                ]
                if looksLikeProbabilities(ref, width: width) {
                    out.append(row("log_loss") { Metrics.logLoss(probabilities: $0, width: width, labels: ints) })
                }
            }
            return out
        case .binary:
            guard width == 1, samples == ref.count else { return [] }
            let probabilities = ref.allSatisfy { $0 >= 0 && $0 <= 1 }
            let cut: Float = probabilities ? 0.5 : 0  // logits decide at 0
            func predicted(_ s: [Float]) -> [Int] { s.map { $0 >= cut ? 1 : 0 } }
            var out = [
                row("roc_auc") { Metrics.rocAUC(scores: $0, labels: ints) },
                row("accuracy") { Metrics.binaryAccuracy(scores: $0, labels: ints, threshold: cut) },
                row("precision") { Metrics.precisionRecallF1(predicted: predicted($0), labels: ints, classes: [1]).precision },
                row("recall") { Metrics.precisionRecallF1(predicted: predicted($0), labels: ints, classes: [1]).recall },
                row("f1") { Metrics.precisionRecallF1(predicted: predicted($0), labels: ints, classes: [1]).f1 },
            ]
            if probabilities { out.append(row("log_loss") { Metrics.logLoss(probabilities: $0, labels: ints) }) }
            return out
        case .regression:
            guard labels.count == ref.count else { return [] }
            return [row("mae") { Metrics.meanAbsError($0, labels) }, row("rmse") { Metrics.rmse($0, labels) }]
        }
    }

    static func looksLikeProbabilities(_ v: [Float], width: Int) -> Bool {
        guard v.allSatisfy({ $0 >= 0 && $0 <= 1 }) else { return false }
        return stride(from: 0, to: v.count, by: width).allSatisfy { s in abs(v[s..<(s + width)].reduce(0, +) - 1) < 1e-3 }
    }
}
