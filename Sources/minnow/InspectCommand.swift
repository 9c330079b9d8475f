import ArgumentParser
import Foundation
import MinnowConvert
import MinnowFormat
import MinnowRuntime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a .minnow file: inputs, outputs, ops, tensors, buffers, arena.")

    @Argument(help: "A .minnow file.") var file: String
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() {
        reportingErrors {
            let model: Model
            model = try loadModel(file)
            let d = model.description
            if json {
                let data = try JSONSerialization.data(withJSONObject: InspectCommand.jsonObject(model), options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("\(file): format \(d.formatMajor).\(d.formatMinor), producer \(d.producer), source \(d.sourceHash)")
            for kv in d.metadata { print("  metadata \(kv.key) = \(kv.value)") }
            print("inputs:");  for s in model.inputs { print("  \(s)") }
            print("outputs:"); for s in model.outputs { print("  \(s)") }
            if !model.sequenceLengths.isEmpty {
                print("sequence lengths: \(IOError.ranges(model.sequenceLengths)) (shapes above at the longest)")
            }
            print("operators (\(d.operators.count)):")
            for (i, op) in d.operators.enumerated() {
                let ins = op.inputs.map { $0 >= 0 ? d.tensors[Int($0)].name : "-" }.joined(separator: ", ")
                let outs = op.outputs.map { d.tensors[Int($0)].name }.joined(separator: ", ")
                print("  \(i): \(op.opcode)\(InspectCommand.optionsText(op.options)) (\(ins)) -> (\(outs))  [\(op.name)]")
            }
            let precision = InspectCommand.precision(d)
            if !precision.isEmpty {
                print("precision (auto, chosen per Dense from the SNR of its output on the calibration rows):")
                for p in precision { print("  \(p.op): \(p.precision.rawValue) (SNR static \(p.staticDB) dB, dynamic \(p.dynamicDB) dB)  [\(d.operators[p.op].name)]") }
                if let check = d.metadata.first(where: { $0.key == "precision_check" }) { print("  \(check.value)") }
            }
            print("tensors (\(d.tensors.count)):")
            for (i, t) in d.tensors.enumerated() {
                let place = t.isConstant ? "buffer \(t.buffer)" : "arena +\(t.arenaOffsetPerSample)/sample"
                print("  \(i): \(t.name) \(t.dtype)\(shapeText(t.shape)) \(place)\(quantText(t.quant))")
            }
            print("buffers (\(d.buffers.count)):")
            for (i, b) in d.buffers.enumerated() {
                print("  \(i + 1): \(b.codec) \(b.storedSize) stored / \(b.size) bytes\(b.shuffle > 0 ? ", shuffle \(b.shuffle)" : "")")
            }
            let e = EmbeddingStats(d)
            if e.tables > 0 {
                print("embeddings: \(e.tables) tables, \(e.rows) rows, \(e.fp32Bytes) bytes as fp32, \(e.storedBytes) in the file (\(String(format: "%.2f", Double(e.fp32Bytes) / Double(max(e.storedBytes, 1))))x smaller)")
            }
            print("arena: \(d.memoryPlan.arenaBytesPerSample) bytes per sample, max batch \(d.memoryPlan.maxBatch) (\(Int(d.memoryPlan.arenaBytesPerSample) * Int(d.memoryPlan.maxBatch)) bytes)")
            let fused = model.fusedAtLoad
            print("kernels: \(model.kernelName)" + (fused.isEmpty ? "" : ", operators \(fused.map { "\($0)+\($0 + 1)" }.joined(separator: ", ")) run as implicit-GEMM convolutions"))
        }
    }

    static func optionsText(_ o: OpOptions) -> String {
        switch o {
        case .none: return ""
        case let .dense(d):
            var parts: [String] = []
            if d.activation != .none { parts.append(d.activation.description) }
            if d.dynamicQuant { parts.append("dynamic") }
            return parts.isEmpty ? "" : "[\(parts.joined(separator: ","))]"
        case let .leakyRelu(a): return "[alpha=\(a)]"
        case let .clip(lo, hi): return "[\(lo), \(hi)]"
        case let .softmax(axis, nanToZero): return "[axis=\(axis)\(nanToZero ? ", nan_to_zero" : "")]"
        case let .concat(axis): return "[axis=\(axis)]"
        case let .params(ints, floats):
            return "[" + (ints.map(String.init) + floats.map { "\($0)" }).joined(separator: ",") + "]"
        }
    }

    /// Auto mode's per-layer choices recorded in the file (operators the file does not have are skipped).
    static func precision(_ d: ModelDescription) -> [(op: Int, precision: LayerPrecision, staticDB: String, dynamicDB: String)] {
        guard let value = d.metadata.first(where: { $0.key == "precision" })?.value else { return [] }
        return PrecisionChoice.decode(value).filter { d.operators.indices.contains($0.op) }
    }

    static func jsonObject(_ model: Model) -> [String: Any] {
        let d = model.description
        func spec(_ s: TensorSpec) -> [String: Any] { ["name": s.name, "dtype": s.dtype.description, "shape": s.shape] }
        return [
            "format_version": "\(d.formatMajor).\(d.formatMinor)",
            "producer": d.producer,
            "source_hash": d.sourceHash,
            "metadata": Dictionary(uniqueKeysWithValues: d.metadata.map { ($0.key, $0.value) }),
            "precision": precision(d).map { ["operator": $0.op, "name": d.operators[$0.op].name, "precision": $0.precision.rawValue,
                                             "snr_static_db": $0.staticDB, "snr_dynamic_db": $0.dynamicDB] as [String: Any] },
            "inputs": model.inputs.map(spec),
            "outputs": model.outputs.map(spec),
            "sequence_lengths": model.sequenceLengths,
            "operators": d.operators.map { op -> [String: Any] in
                ["op": op.opcode.description, "name": op.name, "inputs": op.inputs.map(Int.init), "outputs": op.outputs.map(Int.init)]
            },
            "tensors": d.tensors.map { t -> [String: Any] in
                var o: [String: Any] = ["name": t.name, "dtype": t.dtype.description, "shape": t.shape.map(Int.init)]
                if t.isConstant { o["buffer"] = Int(t.buffer) } else { o["arena_offset_per_sample"] = Int(t.arenaOffsetPerSample) }
                if let q = t.quant { o["quantization"] = ["scales": q.scales.map(Double.init), "zero_points": q.zeroPoints.map(Int.init), "axis": Int(q.axis)] }
                return o
            },
            "buffers": d.buffers.map { b -> [String: Any] in
                ["codec": b.codec.description, "stored_size": Int(b.storedSize), "size": Int(b.size), "shuffle": Int(b.shuffle)]
            },
            "arena_bytes_per_sample": Int(d.memoryPlan.arenaBytesPerSample),
            "embeddings": { () -> [String: Any] in
                let e = EmbeddingStats(d)
                return ["tables": e.tables, "rows": e.rows, "fp32_bytes": e.fp32Bytes, "stored_bytes": e.storedBytes]
            }(),
            "max_batch": Int(d.memoryPlan.maxBatch),
        ]
    }
}

func shapeText(_ s: [Int64]) -> String { "[" + s.map { $0 < 0 ? "batch" : String($0) }.joined(separator: ", ") + "]" }

func quantText(_ q: QuantParams?) -> String {
    guard let q else { return "" }
    if q.scales.count == 1 { return " q(scale \(q.scales[0]), zp \(q.zeroPoints[0]))" }
    return " q(per-channel axis \(q.axis), \(q.scales.count) scales)"
}
