import Foundation

/// One figure: ours (and the trainer's, for label metrics), with its threshold when one applies.
public struct ParityRow: Sendable {
    public enum Against: String, Sendable {
        /// Ours compared with the trainer's recorded outputs.
        case trainer
        /// Ours and the trainer's, each against the labels.
        case labels
    }

    public var output: String
    public var metric: String
    public var against: Against
    public var trainer: Double?
    public var ours: Double
    public var threshold: Threshold?
    public var passed: Bool? { threshold.map { $0.holds(ours: ours, trainer: trainer) } }
}

/// One output's data, kept for plots.
public struct OutputSeries: Sendable {
    public var name: String
    public var width: Int
    public var reference: [Float]
    public var ours: [Float]
    public var labels: [Float]?
}

/// A layer's share of the quantization error (per-layer attribution).
public struct LayerError: Sendable {
    public var layer: String
    public var opType: String
    public var tensor: String
    /// SNR of the quantized graph's tensor against the float graph's, in dB.
    public var snrDB: Double
    /// Noise this layer adds (relative, in the float graph's signal power), as a share of the sum.
    public var share: Double
    public var int8: Bool
}

public struct ParityReport: Sendable {
    public var task: Task?
    /// "spec", "model metadata", "inferred from output shape and labels", or "unknown: no labels".
    public var taskSource: String
    public var k: Int
    public var samples: Int
    public var rows: [ParityRow]
    public var series: [OutputSeries]
    /// "spec" or the default thresholds' description.
    public var thresholdsSource: String
    public var layers: [LayerError]?

    public var passed: Bool { rows.allSatisfy { $0.passed != false } }
    public var violations: [ParityRow] { rows.filter { $0.passed == false } }

    /// A terminal table: failing rows first (red when `color`), then the verdict.
    public func table(color: Bool = false) -> String {
        let sorted = violations + rows.filter { $0.passed != false }
        var cells = [["output", "metric", "against", "trainer", "minnow", "threshold", "status"]]
        for r in sorted {
            cells.append([r.output, r.metric, r.against.rawValue, r.trainer.map(fmt) ?? "-", fmt(r.ours),
                          r.threshold?.description ?? "", r.passed.map { $0 ? "ok" : "FAIL" } ?? ""])
        }
        let widths = (0..<7).map { c in cells.map { $0[c].count }.max() ?? 0 }
        var out = ["task: \(task?.rawValue ?? "unknown") (\(taskSource)); \(samples) samples; thresholds: \(thresholdsSource)"]
        for row in cells {
            let text = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
            out.append(color && row[6] == "FAIL" ? "\u{1B}[31m\(text)\u{1B}[0m" : text)
        }
        if let layers, !layers.isEmpty {
            out.append("")
            out.append("per-layer attribution (worst first): layer, SNR vs float, share of the error")
            for l in layers.prefix(12) {
                out.append("  \(l.layer) [\(l.opType)\(l.int8 ? ", int8" : "")]: \(fmt(l.snrDB)) dB, \(String(format: "%.1f", l.share * 100))%")
            }
        }
        out.append(passed ? "PASS: every threshold holds" : "FAIL: \(violations.count) threshold(s) violated: "
                   + violations.map { "\($0.output) \($0.metric)" }.joined(separator: ", "))
        return out.joined(separator: "\n")
    }

    // MARK: parity.json

    public func jsonObject() -> [String: Any] {
        func num(_ v: Double) -> Any { v.isFinite ? v : (v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf")) }
        var outputs = [String: [String: Any]]()
        var trainer = [String: Any](), ours = [String: Any]()
        let labelled = Set(rows.filter { $0.against == .labels }.map(\.output))
        for r in rows {
            switch r.against {
            case .trainer: outputs[r.output, default: [:]][r.metric] = num(r.ours)
            case .labels:
                let key = labelled.count > 1 ? "\(r.output).\(r.metric)" : r.metric
                trainer[key] = r.trainer.map(num)
                ours[key] = num(r.ours)
            }
        }
        func rowObject(_ r: ParityRow) -> [String: Any] {
            var o: [String: Any] = ["output": r.output, "metric": r.metric, "against": r.against.rawValue, "value": num(r.ours)]
            if let t = r.trainer { o["trainer"] = num(t) }
            if let th = r.threshold { o["threshold"] = [th.json.key: th.json.value]; o["passed"] = r.passed ?? true }
            return o
        }
        var root: [String: Any] = [
            "verdict": passed ? "pass" : "fail",
            "samples": samples,
            "outputs": outputs,
            "task": ["name": task?.rawValue ?? "unknown", "source": taskSource, "k": k, "trainer": trainer, "ours": ours],
            "thresholds_source": thresholdsSource,
            "checks": rows.filter { $0.threshold != nil }.map(rowObject),
            "violations": violations.map(rowObject),
        ]
        if let layers {
            root["layers"] = layers.map { ["layer": $0.layer, "op_type": $0.opType, "tensor": $0.tensor, "snr_db": num($0.snrDB),
                                            "share": num($0.share), "int8": $0.int8] }
        }
        return root
    }

    public func json() -> Data {
        (try? JSONSerialization.data(withJSONObject: jsonObject(), options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }

    // MARK: junit.xml

    /// One test case per threshold, as CI systems read JUnit.
    public func junitXML() -> String {
        let checks = rows.filter { $0.threshold != nil }
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"minnow parity\" tests=\"\(checks.count)\" failures=\"\(violations.count)\">\n"
        x += "  <testsuite name=\"parity\" tests=\"\(checks.count)\" failures=\"\(violations.count)\" errors=\"0\" skipped=\"0\">\n"
        for r in checks {
            let name = xmlEscape("\(r.metric) (\(r.against.rawValue)) \(r.threshold!.description)")
            x += "    <testcase classname=\"parity.\(xmlEscape(r.output))\" name=\"\(name)\" time=\"0\">"
            if r.passed == false {
                let msg = xmlEscape("\(r.output) \(r.metric) = \(fmt(r.ours))" + (r.trainer.map { " (trainer \(fmt($0)))" } ?? "")
                                    + " violates \(r.threshold!.description)")
                x += "\n      <failure message=\"\(msg)\" type=\"threshold\">\(msg)</failure>\n    "
            }
            x += "</testcase>\n"
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }
}

func xmlEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
