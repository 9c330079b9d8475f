import MinnowFormat

// Golden samples: reference inputs bundled in the file with the outputs the converter computed.
// `selfTest()` reruns them here, so an edge box proves its CPU and build compute what CI checked.

public struct SelfTestResult: Sendable {
    public let samples: Int
    /// Largest absolute difference per output.
    public let maxDifference: [(output: String, value: Float)]
    public let tolerance: Float
    public var passed: Bool { maxDifference.allSatisfy { $0.value <= tolerance } }
}

extension Model {
    static func decodeGolden(_ d: ModelDescription, file: ModelFile, inputs: [TensorSpec],
                             outputs: [TensorSpec]) throws(ModelError) -> Golden? {
        guard let g = d.golden else { return nil }
        guard g.count >= 1, g.inputs.count == inputs.count, g.outputs.count == outputs.count else {
            throw .invalid("golden samples: \(g.count) samples, \(g.inputs.count) inputs and \(g.outputs.count) outputs for a model with \(inputs.count) and \(outputs.count)")
        }
        guard g.tolerance >= 0, g.tolerance.isFinite else {
            throw .invalid("golden samples: tolerance \(g.tolerance) is not a finite non-negative number")
        }
        func load(_ buffers: [UInt32], _ specs: [TensorSpec]) throws(ModelError) -> [[Float]] {
            var out: [[Float]] = []
            for (b, spec) in zip(buffers, specs) {
                guard b >= 1, Int(b) <= d.buffers.count, spec.dtype == .float32 else {
                    throw .invalid("golden samples: buffer \(b) for '\(spec.name)' does not exist or is not float32")
                }
                // count is a UInt32 from the file: multiply with overflow checks.
                let (perSample, o1) = UInt64(spec.elementsPerSample).multipliedReportingOverflow(by: 4)
                let (expected, o2) = perSample.multipliedReportingOverflow(by: UInt64(g.count))
                guard !o1, !o2, d.buffers[Int(b) - 1].size == expected else {
                    throw .invalid("golden samples: buffer \(b) for '\(spec.name)' holds \(d.buffers[Int(b) - 1].size) bytes, expected \(g.count) samples × \(perSample) bytes")
                }
                do { out.append(try file.segment(Int(b)).elements(as: Float.self)) } catch { throw .format(error) }
            }
            return out
        }
        return Golden(count: Int(g.count), inputs: try load(g.inputs, inputs), outputs: try load(g.outputs, outputs),
                      tolerance: g.tolerance)
    }

    /// Reruns the bundled golden samples and compares with the converter's outputs.
    /// Returns nil when the file has no golden samples.
    public func selfTest() throws -> SelfTestResult? {
        guard let golden else { return nil }
        let session = try Session(model: self, maxBatch: min(golden.count, maxBatch))
        let ours = try session.predict(inputs: golden.inputs, samples: golden.count)
        let diffs = outputs.indices.map { i in
            (outputs[i].name, zip(ours[i], golden.outputs[i]).reduce(Float(0)) { m, p in
                let d = abs(p.0 - p.1)
                return d.isNaN ? .infinity : max(m, d)
            })
        }
        return SelfTestResult(samples: golden.count, maxDifference: diffs, tolerance: golden.tolerance)
    }
}
