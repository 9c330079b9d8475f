import Foundation
import MinnowFormat
import MinnowRuntime

// `--mode auto`: each Dense gets the cheapest precision whose error, measured on the calibration
// rows, stays within tolerance. The measurement is per layer and in isolation: the layer's float
// input, captured while calibrating, goes through a one-layer model compiled three ways (float,
// static int8, dynamic int8) and run on Minnow's own kernels; the error of each quantized output
// against the float one is its relative noise power, noise / signal = 1 / SNR. In isolation the
// static figure is what the per-tensor calibrated input range costs this layer (outliers, huge
// ranges, attention masks show up as a low SNR), the dynamic one what per-row ranges cost, and
// both include the int8 weights.

/// The precision one Dense runs in.
public enum LayerPrecision: String, Sendable {
    case `static`, dynamic, float
}

/// What auto mode chose for one layer, and the measurements that decided it.
public struct PrecisionChoice: Sendable {
    public var op: String
    public var opType: String
    public var precision: LayerPrecision
    /// Relative noise power of the layer's output in each int8 mode (0 is exact).
    public var staticNoise: Double
    public var dynamicNoise: Double
    public var reason: String

    static func db(_ noise: Double) -> String {
        noise > 0 ? String(format: "%.1f dB", -10 * log10(noise)) : "exact"
    }

    /// One line for the summary: "static (SNR static 41.2 dB, dynamic 44.0 dB): why".
    public var line: String {
        "\(precision.rawValue) (SNR static \(Self.db(staticNoise)), dynamic \(Self.db(dynamicNoise))): \(reason)"
    }
}

extension PrecisionChoice {
    /// The choices as one compact metadata value, "OPINDEX:s|d|f:STATIC_DB:DYNAMIC_DB ...", with
    /// op indices into the file's operators (a MiniLM-class model has dozens of Dense ops; their
    /// names would cost kilobytes).
    static func encode(_ choices: [PrecisionChoice], in g: MGraph) -> String {
        choices.compactMap { c in
            guard let i = g.ops.firstIndex(where: { $0.name == c.op }) else { return nil }
            func f(_ n: Double) -> String { n > 0 ? String(format: "%.1f", -10 * log10(n)) : "inf" }
            return "\(i):\(c.precision.rawValue.prefix(1)):\(f(c.staticNoise)):\(f(c.dynamicNoise))"
        }.joined(separator: " ")
    }

    /// Reads `encode`'s value back: per operator index, the precision and the two SNRs in dB.
    public static func decode(_ value: String) -> [(op: Int, precision: LayerPrecision, staticDB: String, dynamicDB: String)] {
        value.split(separator: " ").compactMap { item in
            let p = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard p.count == 4, let op = Int(p[0]) else { return nil }
            let precision: LayerPrecision
            switch p[1] {
            case "s": precision = .static
            case "d": precision = .dynamic
            case "f": precision = .float
            default: return nil
            }
            return (op, precision, p[2], p[3])
        }
    }
}

enum AutoPrecision {
    /// Static int8 is kept where the layer's output SNR is at least `staticGoodSNR`, or at least
    /// `staticMinSNR` and no more than `staticMaxGapDB` below what dynamic achieves. Per-tensor
    /// static ranges rarely lose more than a few dB against per-row ranges on well-behaved
    /// activations; a larger gap means the tensor's range is dominated by outliers that per-row
    /// scales absorb. Above 40 dB (1% RMS) the gap no longer matters and static's speed wins.
    static let staticGoodSNR = 40.0
    static let staticMinSNR = 30.0
    static let staticMaxGapDB = 3.0
    /// Below this SNR even dynamic int8 is too lossy and the layer stays in float.
    static let dynamicMinSNR = 20.0

    /// Dense ops auto mode decides on: those with constant float weights not kept by --keep-float.
    static func candidates(_ g: MGraph, keep: [String]) -> [Int] {
        g.ops.indices.filter { i in
            let op = g.ops[i]
            guard op.opcode == .dense, case .float? = g.tensors[op.inputs[1]].data else { return false }
            return !Quantizer.matchesKeepFloat(op, g, keep)
        }
    }

    /// Measures and chooses, for each candidate Dense, from its captured float input.
    static func choose(_ g: MGraph, candidates: [Int], ranges: [Int: ActivationRange],
                       captured: [Int: [Float]]) throws(ConvertError) -> [PrecisionChoice] {
        var choices: [PrecisionChoice] = []
        for d in candidates {
            let op = g.ops[d]
            let x = op.inputs[0]
            guard let rows = captured[x], let k = g.tensors[x].shape.last, k > 0, rows.count >= Int(k) else { continue }
            let noise = try measure(g, dense: d, rows: rows, range: ranges[x] ?? ActivationRange(min: 0, max: 0))
            choices.append(decide(op, staticNoise: noise.static, dynamicNoise: noise.dynamic))
        }
        return choices
    }

    static func decide(_ op: MOp, staticNoise: Double, dynamicNoise: Double) -> PrecisionChoice {
        func snr(_ n: Double) -> Double { n > 0 ? -10 * log10(n) : .infinity }
        var choice = PrecisionChoice(op: op.name, opType: op.sourceType, precision: .static, staticNoise: staticNoise,
                                     dynamicNoise: dynamicNoise, reason: "")
        let d = snr(dynamicNoise), s = snr(staticNoise)
        if s >= staticGoodSNR {
            choice.reason = "static is above \(Int(staticGoodSNR)) dB"
        } else if s >= staticMinSNR, s >= min(d, 200) - staticMaxGapDB {
            choice.reason = "static is within \(Int(staticMaxGapDB)) dB of dynamic and above \(Int(staticMinSNR)) dB"
        } else if d >= dynamicMinSNR {
            choice.precision = .dynamic
            choice.reason = s < staticMinSNR ? "static is below \(Int(staticMinSNR)) dB" : "static loses more than \(Int(staticMaxGapDB)) dB to dynamic"
        } else {
            choice.precision = .float
            choice.reason = "int8 weights cost more than \(Int(dynamicMinSNR)) dB"
        }
        return choice
    }

    /// Relative noise power of the layer's output in static and dynamic int8 against float.
    private static func measure(_ g: MGraph, dense d: Int, rows: [Float],
                                range: ActivationRange) throws(ConvertError) -> (static: Double, dynamic: Double) {
        let op = g.ops[d]
        let k = Int(g.tensors[op.inputs[0]].shape.last!)
        let n = rows.count / k
        let input = Array(rows.prefix(n * k))
        func run(_ mini: MGraph) throws(ConvertError) -> [Float] {
            let plan = MemoryPlanner.plan(mini, reuse: true)
            let batch = min(n, 256)
            do {
                let model = try Model(bytes: AlignedBytes(Emitter.bytes(mini, plan: plan, maxBatch: batch, codec: .none)))
                return try Session(model: model, maxBatch: batch).predict(inputs: [input], samples: n)[0]
            } catch {
                throw .model("auto precision: measuring '\(op.name)': \(error)")
            }
        }
        let (mini, x) = singleDense(g, d)
        let reference = try run(mini)
        var dynamic = mini
        _ = Quantizer.applyDynamic(&dynamic, keep: [])
        let dynamicNoise = relativeNoise(try run(dynamic), reference)
        var stat = mini
        _ = Quantizer.applyStatic(&stat, ranges: [x: range], keep: [])
        return (relativeNoise(try run(stat), reference), dynamicNoise)
    }

    /// The Dense alone: input [batch, K] -> output [batch, N], with its weights, bias and activation.
    private static func singleDense(_ g: MGraph, _ d: Int) -> (MGraph, input: Int) {
        let op = g.ops[d]
        var mini = MGraph()
        let k = g.tensors[op.inputs[0]].shape.last!, w = g.tensors[op.inputs[1]]
        let x = mini.add(MTensor(name: g.tensors[op.inputs[0]].name, dtype: .float32, shape: [-1, k]))
        var inputs = [x, mini.add(w)]
        if op.inputs.count > 2 { inputs.append(op.inputs[2] >= 0 ? mini.add(g.tensors[op.inputs[2]]) : -1) }
        let y = mini.add(MTensor(name: g.tensors[op.outputs[0]].name, dtype: .float32, shape: [-1, w.shape[0]]))
        mini.ops = [MOp(opcode: .dense, inputs: inputs, outputs: [y], options: op.options, name: op.name, sourceType: op.sourceType)]
        mini.inputs = [x]
        mini.outputs = [y]
        return (mini, x)
    }

    /// The graph's float outputs on the first calibration samples, to check the mix end to end.
    struct Check {
        var inputs: [[Float]]
        var samples: Int
        var outputs: [[Float]]
        var batch: Int
    }

    /// The end-to-end guard: per-layer choices do not add up exactly (noise compounds), so the mix
    /// is run on the calibration rows and compared with all-static and all-dynamic. While its
    /// outputs are more than `e2eSlackDB` noisier than the better of the two (and below
    /// `e2eGoodDB`), the static layers that lost the most to dynamic (in isolation) become
    /// dynamic, 1, 2, 4, ... at a time. Then the compact embedding encodings are tried the same way.
    static let e2eSlackDB = 0.25
    /// Outputs at least this clean (1% RMS relative error) are within tolerance whatever the
    /// better uniform mode achieves: static int8 is then kept for its speed (up to 1.9x at batch 64
    /// on the MLPs, docs/benchmarks.md).
    static let e2eGoodDB = 40.0

    /// What the compact embedding encodings may cost the outputs. They trade accuracy for file size
    /// (DLRM-style: 2.8 MB instead of 3.4 MB, under ONNX Runtime's 3.3 MB): up to 1.5 dB (noise
    /// power x1.4) at the outputs, or any cost that leaves them above `e2eGoodDB`.
    static let tablesSlackDB = 1.5

    struct Refined {
        var choices: [PrecisionChoice]
        var compactTables: Bool
        var snr: (mix: Double, allStatic: Double, allDynamic: Double)
        var tablesNote: String?
    }

    static func refine(_ g: MGraph, choices: [PrecisionChoice], ranges: [Int: ActivationRange], keep: [String],
                       tables: TableContext, check: Check) throws(ConvertError) -> Refined {
        func outputSNR(_ c: [PrecisionChoice], compact: Bool = false) throws(ConvertError) -> Double {
            var q = g
            var t = tables
            t.compact = compact
            apply(&q, c, ranges: ranges, keep: keep, tables: t)
            q.compact()
            let plan = MemoryPlanner.plan(q, reuse: true)
            let out: [[Float]]
            do {
                let model = try Model(bytes: AlignedBytes(Emitter.bytes(q, plan: plan, maxBatch: check.batch, codec: .none)))
                out = try Session(model: model, maxBatch: check.batch).predict(inputs: check.inputs, samples: check.samples)
            } catch {
                throw .model("auto precision: checking the mix end to end: \(error)")
            }
            var signal = 0.0, noise = 0.0
            for (o, f) in zip(out, check.outputs) {
                let n = relativeNoise(o, f)
                let s = f.reduce(0.0) { $0 + Double($1) * Double($1) }
                signal += s
                noise += n * s
            }
            return noise > 0 ? -10 * log10(noise / max(signal, .leastNormalMagnitude)) : 200
        }
        func all(_ p: LayerPrecision) -> [PrecisionChoice] {
            choices.map { var c = $0; if c.precision != .float { c.precision = p }; return c }
        }
        let allStatic = try outputSNR(all(.static)), allDynamic = try outputSNR(all(.dynamic))
        let target = min(max(allStatic, allDynamic) - e2eSlackDB, e2eGoodDB)
        var current = choices
        var snr = try outputSNR(current)
        // Static layers by how much they lost to dynamic, most first.
        let order = choices.indices.filter { choices[$0].precision == .static }.sorted {
            gap(choices[$0]) > gap(choices[$1])
        }
        var promoted = 0
        while snr < target, promoted < order.count {
            promoted = min(order.count, max(1, promoted * 2))
            current = choices
            for i in order.prefix(promoted) {
                current[i].precision = .dynamic
                current[i].reason = String(format: "made dynamic by the end-to-end check (outputs %.1f dB with it static, target %.1f dB)", snr, target)
            }
            snr = try outputSNR(current)
        }
        if snr < target, allStatic > allDynamic {
            current = all(.static)
            for i in current.indices where current[i].precision == .static {
                current[i].reason = String(format: "all static: outputs %.1f dB, better than dynamic (%.1f dB)", allStatic, allDynamic)
            }
            snr = allStatic
        }
        // Embedding tables: the compact encodings, if the outputs can afford them.
        var compact = false, note: String?
        if !Quantizer.embeddingIds(g).isEmpty {
            let small = try outputSNR(current, compact: true)
            compact = small >= min(snr - tablesSlackDB, e2eGoodDB)
            note = String(format: "embedding tables %@: outputs %.1f dB with the compact encodings, %.1f dB with the accurate ones",
                          compact ? "compact" : "accurate", small, snr)
            if compact { snr = small }
        }
        return Refined(choices: current, compactTables: compact, snr: (snr, allStatic, allDynamic), tablesNote: note)
    }

    private static func gap(_ c: PrecisionChoice) -> Double {
        func snr(_ n: Double) -> Double { n > 0 ? -10 * log10(n) : 200 }
        return snr(c.dynamicNoise) - snr(c.staticNoise)
    }

    /// Applies the choices: static int8 where chosen, dynamic where chosen, float elsewhere.
    @discardableResult
    static func apply(_ g: inout MGraph, _ choices: [PrecisionChoice], ranges: [Int: ActivationRange], keep: [String],
                      tables: TableContext = TableContext()) -> [FloatDecision] {
        let staticOps = Set(choices.filter { $0.precision == .static }.map(\.op))
        let dynamicOps = Set(choices.filter { $0.precision == .dynamic }.map(\.op))
        let decisions = Quantizer.applyStatic(&g, ranges: ranges, keep: keep, only: staticOps, tables: tables)
        _ = Quantizer.applyDynamic(&g, keep: keep, only: dynamicOps)
        return decisions
    }

    static func relativeNoise(_ q: [Float], _ f: [Float]) -> Double {
        var signal = 0.0, noise = 0.0
        for i in 0..<min(q.count, f.count) where f[i].isFinite {
            let a = Double(f[i]), e = Double(q[i]) - a
            signal += a * a
            noise += e * e
        }
        return signal > 0 ? noise / signal : (noise > 0 ? 1 : 0)
    }
}
