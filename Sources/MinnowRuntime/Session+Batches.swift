// Whole data sets through one session, in chunks of its max batch. A convenience for tools
// (run, parity, calibration): it copies inputs and outputs, so it is not the allocation-free path.

extension Session {
    /// Feeds `samples` rows of every input (row-major fp32, one array per model input) through
    /// `run` in chunks of at most `maxBatch`, calling `afterRun(batch)` after each chunk.
    public func runBatches(inputs: [[Float]], samples: Int, afterRun: (Int) throws -> Void) throws {
        guard inputs.count == self.inputs.count else {
            throw IOError.shapeMismatch(tensor: "inputs", expected: "\(self.inputs.count) arrays", found: "\(inputs.count)")
        }
        for (i, spec) in self.inputs.enumerated() where inputs[i].count != samples * spec.elementsPerSample {
            throw IOError.shapeMismatch(tensor: spec.name, expected: "\(samples) x \(spec.elementsPerSample) values",
                                        found: "\(inputs[i].count)")
        }
        var start = 0
        while start < samples {
            let b = min(maxBatch, samples - start)
            for (i, spec) in self.inputs.enumerated() {
                let per = spec.elementsPerSample
                try setInput(i, floats: Array(inputs[i][(start * per)..<((start + b) * per)]))
            }
            try run(batch: b)
            try afterRun(b)
            start += b
        }
    }

    /// Every output for `samples` rows of inputs, row-major, one array per model output.
    public func predict(inputs: [[Float]], samples: Int) throws -> [[Float]] {
        var outs = [[Float]](repeating: [], count: self.outputs.count)
        try runBatches(inputs: inputs, samples: samples) { b in
            for i in self.outputs.indices { outs[i] += outputFloats(i, batch: b) }
        }
        return outs
    }
}
