import MinnowFormat
import MinnowNumpy
import MinnowRuntime

// Activation ranges from calibration data, measured by running the float graph on Minnow's own
// runtime (so the converter sees exactly the numbers the runtime computes). The float model is
// planned without memory reuse, so every intermediate tensor can be read after a run.

struct ActivationRange {
    var min: Float
    var max: Float
}

struct CalibrationResult {
    var ranges: [Int: ActivationRange]
    var samples: Int
    var dataHash: String
    /// The float values of the tensors asked for in `capture`, for the first samples (flat, as the
    /// runtime lays them out), up to about `captureElements` values each.
    var captured: [Int: [Float]] = [:]
    /// How often each row was looked up, per ids tensor name asked for in `countIds`.
    var lookups: [String: [Int32]] = [:]
}

enum Calibrator {
    /// Finds `inputs/<name>` (or bare `<name>`, or the only array) for each graph input.
    static func inputArrays(_ g: MGraph, _ arrays: [(name: String, array: NpyArray)], file: String) throws(ConvertError) -> [NpyArray] {
        var out: [NpyArray] = []
        for t in g.inputs {
            let name = g.tensors[t].name
            guard let a = arrays.first(where: { $0.name == "inputs/\(name)" || $0.name == name })?.array
                ?? (g.inputs.count == 1 && arrays.filter({ !$0.name.hasPrefix("outputs/") && !$0.name.hasPrefix("labels/") }).count == 1
                    ? arrays.first(where: { !$0.name.hasPrefix("outputs/") && !$0.name.hasPrefix("labels/") })?.array : nil)
            else {
                throw .calibration("\(file) has no array 'inputs/\(name)' (found: \(arrays.map(\.name).joined(separator: ", ")))")
            }
            let perSample = g.tensors[t].shape.dropFirst().map { Int($0) }
            guard a.shape.count >= 1, Array(a.shape.dropFirst()) == perSample || (a.shape.dropFirst().reduce(1, *) == perSample.reduce(1, *)) else {
                throw .calibration("\(file): 'inputs/\(name)' has shape \(a.shape), expected [N, \(perSample.map(String.init).joined(separator: ", "))]")
            }
            out.append(a)
        }
        let counts = Set(out.map { $0.shape.first ?? 0 })
        guard counts.count == 1, let n = counts.first, n > 0 else {
            throw .calibration("\(file): inputs have different or zero sample counts \(out.map { $0.shape.first ?? 0 })")
        }
        return out
    }

    static func calibrate(_ g: MGraph, arrays: [NpyArray], method: CalibrationMethod, maxSamples: Int, batch: Int,
                          capture: Set<Int> = [], captureElements: Int = 1 << 21, countIds: [Int: Int] = [:],
                          progress: (@Sendable (String, Double) -> Void)? = nil) throws(ConvertError) -> CalibrationResult {
        let plan = MemoryPlanner.plan(g, reuse: false)
        let bytes = Emitter.bytes(g, plan: plan, maxBatch: batch, codec: .none)
        let session: Session
        // Calibration reads every tensor from the session's arena: no sample-split runs.
        do { session = try Session(model: try Model(bytes: AlignedBytes(bytes)), maxBatch: batch, sampleSplit: false) } catch {
            throw .model("float graph does not load: \(error)")
        }
        let total = min(arrays[0].shape[0], maxSamples)
        let floats = zip(arrays, g.inputs).map { a, t in
            Array(a.floats().prefix(total * Int(g.tensors[t].shape.dropFirst().reduce(1, *))))
        }
        let activations = g.tensors.indices.filter { !g.tensors[$0].isConstant }
        var ranges = [Int: ActivationRange]()
        for t in activations { ranges[t] = ActivationRange(min: .infinity, max: -.infinity) }
        var hash: UInt64 = 0
        for f in floats { hash ^= f.withUnsafeBytes { Segments.checksum($0) } }

        let passes = method == .minMax ? 1.0 : 2.0
        var pass = 0.0
        func forEachBatch(_ body: (Int) -> Void) throws(ConvertError) {
            var done = 0
            do {
                try session.runBatches(inputs: floats, samples: total) { b in
                    body(b)
                    done += b
                    progress?("calibration", (pass + Double(done) / Double(total)) / passes)
                }
            } catch { throw .calibration("\(error)") }
            pass += 1
        }
        var captured = [Int: [Float]]()
        var lookups = [String: [Int32]]()
        for (t, rows) in countIds { lookups[g.tensors[t].name] = [Int32](repeating: 0, count: rows) }
        try forEachBatch { b in
            for (t, rows) in countIds {
                let raw = UnsafeRawBufferPointer(session.tensorBuffer(t, batch: b))
                let wide = g.tensors[t].dtype == .int64
                let n = raw.count / (wide ? 8 : 4)
                let name = g.tensors[t].name
                for i in 0..<n {
                    var id = wide ? Int(raw.load(fromByteOffset: i * 8, as: Int64.self)) : Int(raw.load(fromByteOffset: i * 4, as: Int32.self))
                    if id < 0 { id += rows }
                    if id >= 0 && id < rows { lookups[name]![id] += 1 }
                }
            }
            for t in capture where captured[t, default: []].count < captureElements {
                captured[t, default: []] += session.tensorBuffer(t, batch: b).bindMemory(to: Float.self)
            }
            for t in activations {
                let buf = session.tensorBuffer(t, batch: b).bindMemory(to: Float.self)
                var r = ranges[t]!
                for v in buf where v.isFinite { r.min = Swift.min(r.min, v); r.max = Swift.max(r.max, v) }
                ranges[t] = r
            }
        }
        if case let .percentile(p) = method {
            // Second pass: a histogram per tensor over its observed range, then clip both tails.
            let bins = 2048
            var hist = [Int: [Int]]()
            for t in activations { hist[t] = [Int](repeating: 0, count: bins) }
            try forEachBatch { b in
                for t in activations {
                    let r = ranges[t]!
                    guard r.max > r.min else { continue }
                    let scale = Float(bins) / (r.max - r.min)
                    let buf = session.tensorBuffer(t, batch: b).bindMemory(to: Float.self)
                    var h = hist[t]!
                    for v in buf where v.isFinite { h[Swift.min(bins - 1, Swift.max(0, Int((v - r.min) * scale)))] += 1 }
                    hist[t] = h
                }
            }
            for t in activations {
                let r = ranges[t]!, h = hist[t]!
                let count = h.reduce(0, +)
                guard r.max > r.min, count > 0 else { continue }
                let tail = Int((Double(count) * (100 - p) / 100).rounded(.down))
                var acc = 0, lo = 0, hi = bins - 1
                while lo < bins - 1, acc + h[lo] <= tail { acc += h[lo]; lo += 1 }
                acc = 0
                while hi > 0, acc + h[hi] <= tail { acc += h[hi]; hi -= 1 }
                let width = (r.max - r.min) / Float(bins)
                ranges[t] = ActivationRange(min: r.min + Float(lo) * width, max: r.min + Float(hi + 1) * width)
            }
        }
        return CalibrationResult(ranges: ranges, samples: total, dataHash: "xxh64:" + String(hash, radix: 16), captured: captured,
                                 lookups: lookups)
    }
}
