import MinnowConvert
import MinnowFormat
import MinnowRuntime

// Per-layer attribution: run the source's float graph and the compiled (quantized) graph side by
// side on the same inputs, both planned without memory reuse so every intermediate is readable,
// and compare each operator's output with the float tensor of the same name.
//
// A tensor's relative noise is noise power / signal power (1 / SNR). Noise accumulates along the
// graph, so each layer is charged only what it adds: its output's relative noise minus the
// largest among its inputs. Shares are those additions over their sum.

public enum LayerAttribution {
    public static func compute(quantized: ModelFile, sourceONNX: String, reference: ReferenceSet,
                               maxSamples: Int = 512) throws(ParityError) -> [LayerError] {
        let qModel: Model, fModel: Model
        do {
            var options = ConvertOptions()
            options.mode = .float
            options.reuseMemory = false
            options.maxBatch = 64
            // Every intermediate is read after the runs: no load-time fusion may skip writing one.
            fModel = try Model(bytes: AlignedBytes(try Converter.convert(onnxPath: sourceONNX, options: options).bytes), fuseAtLoad: false)
            qModel = try Model(bytes: AlignedBytes(try Converter.withoutMemoryReuse(quantized)), fuseAtLoad: false)
        } catch {
            throw .run("per-layer attribution: \(error)")
        }
        let q = qModel.description, f = fModel.description
        var floatIndex = [String: Int]()
        for (i, t) in f.tensors.enumerated() where !t.isConstant { floatIndex[t.name] = i }
        // Quantized tensors with a float counterpart of the same shape.
        var pairs: [(q: Int, f: Int)] = []
        for (i, t) in q.tensors.enumerated() where !t.isConstant && !q.inputs.contains(Int32(i)) {
            if let j = floatIndex[t.name], f.tensors[j].shape == t.shape { pairs.append((i, j)) }
        }
        guard fModel.inputs.map(\.name) == qModel.inputs.map(\.name) else {
            throw .run("per-layer attribution: the source's inputs \(fModel.inputs.map(\.name)) differ from the model's \(qModel.inputs.map(\.name))")
        }

        var signal = [Int: Double](), noise = [Int: Double]()
        let samples = min(reference.samples, maxSamples)
        let inputs = zip(reference.inputs, qModel.inputs).map { Array($0.0.prefix(samples * $0.1.elementsPerSample)) }
        do {
            // Intermediate tensors are read from the arenas: no sample-split runs.
            let qs = try Session(model: qModel, maxBatch: 64, sampleSplit: false)
            let fs = try Session(model: fModel, maxBatch: 64, sampleSplit: false)
            var start = 0
            try qs.runBatches(inputs: inputs, samples: samples) { b in
                for (i, spec) in fModel.inputs.enumerated() {
                    let per = spec.elementsPerSample
                    try fs.setInput(i, floats: Array(inputs[i][(start * per)..<((start + b) * per)]))
                }
                try fs.run(batch: b)
                for (qi, fi) in pairs {
                    let fv = fs.tensorBuffer(fi, batch: b).bindMemory(to: Float.self)
                    let qv = dequantized(qs.tensorBuffer(qi, batch: b), q.tensors[qi])
                    var s = 0.0, n = 0.0
                    for k in 0..<min(fv.count, qv.count) {
                        let a = Double(fv[k]), d = Double(qv[k]) - a
                        s += a * a
                        n += d * d
                    }
                    signal[qi, default: 0] += s
                    noise[qi, default: 0] += n
                }
                start += b
            }
        } catch {
            throw .run("per-layer attribution: \(error)")
        }

        // Relative noise per quantized tensor, propagated through ops without a float twin.
        var relative = [Int: Double]()
        for i in q.inputs { relative[Int(i)] = 0 }
        var added: [(op: Int, tensor: Int, value: Double)] = []
        for (k, op) in q.operators.enumerated() {
            let upstream = op.inputs.filter { $0 >= 0 && !q.tensors[Int($0)].isConstant }.map { relative[Int($0)] ?? 0 }.max() ?? 0
            for o in op.outputs.map(Int.init) {
                if let s = signal[o], let n = noise[o] {
                    relative[o] = n / max(s, 1e-30)
                    added.append((k, o, max(0, relative[o]! - upstream)))
                } else {
                    relative[o] = upstream
                }
            }
        }
        let total = added.reduce(0) { $0 + $1.value }
        return added.map { a in
            let op = q.operators[a.op]
            let rel = relative[a.tensor] ?? 0
            let int8 = op.inputs.contains { $0 >= 0 && q.tensors[Int($0)].dtype == .int8 } || q.tensors[a.tensor].dtype == .int8
            return LayerError(layer: op.name, opType: op.opcode.description, tensor: q.tensors[a.tensor].name,
                              snrDB: rel > 0 ? -10 * log10(rel) : .infinity, share: total > 0 ? a.value / total : 0, int8: int8)
        }.sorted { $0.share != $1.share ? $0.share > $1.share : $0.layer < $1.layer }
    }

    /// A tensor's values as floats (int8 tensors dequantized with their own parameters).
    static func dequantized(_ bytes: UnsafeMutableRawBufferPointer, _ t: TensorInfo) -> [Float] {
        switch t.dtype {
        case .int8:
            let s = t.quant?.scales.first ?? 1, z = Float(t.quant?.zeroPoints.first ?? 0)
            return bytes.bindMemory(to: Int8.self).map { (Float($0) - z) * s }
        default:
            return Array(bytes.bindMemory(to: Float.self))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
