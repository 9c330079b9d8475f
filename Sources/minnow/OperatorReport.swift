import Foundation
import MinnowRuntime

/// `minnow bench --profile`'s tables: time by operator kind, then the slowest operators.
struct OperatorReport {
    struct Kind {
        var label: String
        var nanoseconds: UInt64
        var count: Int
    }

    let profile: SessionProfile
    /// Sum of the operators' medians: the denominator of every share (the run's median also
    /// holds the loop and clock reads, and medians do not add up exactly).
    let total: UInt64
    let kinds: [Kind]
    let slowest: [OperatorTiming]

    init(_ profile: SessionProfile) {
        self.profile = profile
        total = max(1, profile.operators.reduce(0) { $0 + $1.medianNanoseconds })
        var byLabel: [String: Kind] = [:]
        for op in profile.operators {
            let label = "\(op.opcode) (\(op.kernel))"
            byLabel[label, default: Kind(label: label, nanoseconds: 0, count: 0)].nanoseconds += op.medianNanoseconds
            byLabel[label]!.count += 1
        }
        kinds = byLabel.values.sorted { ($0.nanoseconds, $1.label) > ($1.nanoseconds, $0.label) }
        slowest = profile.operators.enumerated().sorted {
            ($0.element.medianNanoseconds, $1.offset) > ($1.element.medianNanoseconds, $0.offset)
        }.map(\.element)
    }

    private func share(_ ns: UInt64) -> Double { 100 * Double(ns) / Double(total) }
    private func us(_ ns: UInt64) -> Double { Double(ns) / 1000 }

    func text(top: Int) -> String {
        var out = String(format: "  profile: %d runs, operators sum to %.1f us (run median %.1f us with clock reads)\n",
                         profile.runs, us(total), us(profile.runMedianNanoseconds))
        out += "    by kind:   share        us  ops  kind\n"
        for k in kinds {
            out += String(format: "             %5.1f%% %9.1f %4d  ", share(k.nanoseconds), us(k.nanoseconds), k.count) + k.label + "\n"
        }
        if top > 0 {
            out += "    slowest:   share        us    #  operator\n"
            for op in slowest.prefix(top) {
                out += String(format: "             %5.1f%% %9.1f %4d  ", share(op.medianNanoseconds), us(op.medianNanoseconds), op.index)
                    + "\(op.name)  \(op.opcode) (\(op.kernel))\n"
            }
        }
        return out
    }

    var json: [String: Any] {
        [
            "runs": profile.runs,
            "run_median_us": us(profile.runMedianNanoseconds),
            "operators_sum_us": us(total),
            "by_kind": kinds.map { ["kind": $0.label, "us": us($0.nanoseconds), "share": share($0.nanoseconds), "count": $0.count] },
            "operators": profile.operators.map {
                ["index": $0.index, "name": $0.name, "opcode": $0.opcode, "kernel": $0.kernel,
                 "median_us": us($0.medianNanoseconds), "mean_us": $0.meanNanoseconds / 1000, "share": share($0.medianNanoseconds)]
            },
        ]
    }
}
