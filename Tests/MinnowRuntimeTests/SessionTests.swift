import CAllocCounter
import MinnowFormat
import MinnowRuntime
import XCTest

/// A float model written by hand: y = softmax(relu(x W^T + b) + c), with a per-sample arena.
func handModel(maxBatch: UInt32 = 8, mutate: (inout ModelDescription) -> Void = { _ in }) -> [UInt8] {
    var d = ModelDescription()
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 3]),
        TensorInfo(name: "W", dtype: .float32, shape: [2, 3], buffer: 1),
        TensorInfo(name: "b", dtype: .float32, shape: [2], buffer: 2),
        TensorInfo(name: "h", dtype: .float32, shape: [-1, 2], arenaOffsetPerSample: 64),
        TensorInfo(name: "c", dtype: .float32, shape: [1, 2], buffer: 3),
        TensorInfo(name: "s", dtype: .float32, shape: [-1, 2], arenaOffsetPerSample: 128),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 2], arenaOffsetPerSample: 0),
    ]
    d.operators = [
        OperatorInfo(opcode: .dense, inputs: [0, 1, 2], outputs: [3], options: .dense(DenseOptions(activation: .relu)), name: "fc"),
        OperatorInfo(opcode: .add, inputs: [3, 4], outputs: [5], name: "add"),
        OperatorInfo(opcode: .softmax, inputs: [5], outputs: [6], options: .softmax(axis: -1), name: "sm"),
    ]
    d.inputs = [0]
    d.outputs = [6]
    // x lives at 192; y reuses offset 0 (x is dead by then? no: x is read by op 0 only, y written by op 2).
    d.tensors[0].arenaOffsetPerSample = 192
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 256, maxBatch: maxBatch)
    mutate(&d)
    let w: [Float] = [1, 0, -1, 0.5, 0.5, 0.5], b: [Float] = [0, 1], c: [Float] = [0.25, -0.25]
    return ModelFileWriter.write(d, segments: [w, b, c].map { v in SegmentPayload(bytes: v.withUnsafeBytes { Array($0) }) })
}

func expected(_ x: [Float]) -> [Float] {
    var out: [Float] = []
    for r in 0..<(x.count / 3) {
        let a = x[r * 3], b = x[r * 3 + 1], c = x[r * 3 + 2]
        let h0 = max(0, a - c) + 0.25, h1 = max(0, 0.5 * (a + b + c) + 1) - 0.25
        let m = max(h0, h1), e0 = exp(h0 - m), e1 = exp(h1 - m)
        out += [e0 / (e0 + e1), e1 / (e0 + e1)]
    }
    return out
}

final class SessionTests: XCTestCase {
    func testRunsAHandWrittenModel() throws {
        let model = try Model(bytes: AlignedBytes(handModel()))
        XCTAssertEqual(model.inputs.map(\.description), ["x: float32[batch, 3]"])
        let session = try Session(model: model, maxBatch: 4)
        let x: [Float] = [1, 2, 3, -1, 0.5, 4, 2, 2, 2]
        try session.setInput(0, floats: x)
        try session.run(batch: 3)
        let y = session.outputFloats(0, batch: 3)
        for (a, b) in zip(y, expected(x)) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testRunMakesNoHeapAllocations() throws {
        XCTAssertEqual(minnow_alloc_counter_active(), 1, "the malloc interposer is not linked")
        let model = try Model(bytes: AlignedBytes(handModel()))
        let session = try Session(model: model)
        try session.setInput(0, floats: [Float](repeating: 0.5, count: 3 * 8))
        try session.run(batch: 1)  // warm-up
        for batch in [1, 8] {
            minnow_alloc_reset()
            try session.run(batch: batch)
            XCTAssertEqual(minnow_alloc_count(), 0, "allocations during run(batch: \(batch)); debug builds allocate, run with: swift test -c release")
        }
        // Failing is allocation-free too (typed throws, integer payload).
        minnow_alloc_reset()
        do throws(RunError) { try session.run(batch: 9) } catch { XCTAssertEqual(error, .batchOutOfRange(batch: 9, max: 8)) }
        XCTAssertEqual(minnow_alloc_count(), 0)
    }

    /// `profile` runs the plan as `run` does (same outputs) and names each operator it timed; the
    /// Add of a constant row and the Softmax after it run as one (SoftmaxFusion).
    func testProfileTimesEveryOperatorAndLeavesOutputsAsRun() throws {
        let model = try Model(bytes: AlignedBytes(handModel()))
        let session = try Session(model: model, maxBatch: 4, threads: 1)
        let x: [Float] = [1, 2, 3, -1, 0.5, 4, 2, 2, 2]
        try session.setInput(0, floats: x)
        let p = try session.profile(batch: 3, runs: 7)
        XCTAssertEqual(p.runs, 7)
        XCTAssertEqual(p.batch, 3)
        XCTAssertEqual(p.operators.map(\.name), ["fc", "add+sm"])
        XCTAssertEqual(p.operators.map(\.index), [0, 1])
        XCTAssertEqual(p.operators.map(\.opcode), ["Dense", "Softmax"])
        XCTAssertEqual(p.operators.map(\.kernel), ["f32", "f32, scale and mask fused"])
        XCTAssertGreaterThanOrEqual(p.runMedianNanoseconds, p.operators.map(\.medianNanoseconds).max()!)
        for (a, b) in zip(session.outputFloats(0, batch: 3), expected(x)) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        do throws(RunError) { _ = try session.profile(batch: 5, runs: 1); XCTFail("batch 5 > max 4 accepted") } catch {
            XCTAssertEqual(error, .batchOutOfRange(batch: 5, max: 4))
        }
    }

    func testInputsAndOutputsByName() throws {
        let session = try Session(model: try Model(bytes: AlignedBytes(handModel())), maxBatch: 2)
        try session.setInput("x", floats: [1, 2, 3])
        try session.run(batch: 1)
        XCTAssertEqual(try session.outputFloats("y", batch: 1), session.outputFloats(0, batch: 1))
        XCTAssertThrowsError(try session.setInput("pixels", floats: [1, 2, 3])) { e in
            XCTAssertEqual("\(e)", "unknown input 'pixels' (model inputs: x)")
        }
        XCTAssertThrowsError(try session.outputFloats("probs", batch: 1))
    }

    func testBatchBoundsAreEnforced() throws {
        let model = try Model(bytes: AlignedBytes(handModel(maxBatch: 4)))
        XCTAssertThrowsError(try Session(model: model, maxBatch: 5)) { e in
            XCTAssertEqual(e as? ModelError, .batchTooLarge(requested: 5, max: 4))
        }
        let session = try Session(model: model, maxBatch: 2)
        XCTAssertThrowsError(try session.run(batch: 0))
        XCTAssertThrowsError(try session.run(batch: 3))
        XCTAssertThrowsError(try session.setInput(0, floats: [1, 2])) { e in
            XCTAssertTrue("\(e)".contains("multiple of 3"), "\(e)")
        }
    }

    func testSessionsShareOneModelAcrossThreads() throws {
        let model = try Model(bytes: AlignedBytes(handModel()))
        let x: [Float] = [1, 2, 3, -1, 0.5, 4]
        let want = expected(x)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let s = try! Session(model: model, maxBatch: 2)
            for _ in 0..<200 {
                try! s.setInput(0, floats: x)
                try! s.run(batch: 2)
                let y = s.outputFloats(0, batch: 2)
                for (a, b) in zip(y, want) { XCTAssertEqual(a, b, accuracy: 1e-6) }
            }
        }
    }
}
