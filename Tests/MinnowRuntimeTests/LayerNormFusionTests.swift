import MinnowFormat
import MinnowRuntime
import XCTest

/// A transformer block's residual Add and LayerNorm, written by hand: y = LayerNorm(a + b) over
/// rows of 12, a and b [batch, 3, 12]. `readSum`: the sum is a graph output too, so the load must
/// not fuse it away. `yOverA`: y planned over a's bytes (a's last reader is the Add).
private func residualModel(readSum: Bool = false, yOverA: Bool = false) -> [UInt8] {
    var d = ModelDescription()
    let shape: [Int64] = [-1, 3, 12]
    d.tensors = [
        TensorInfo(name: "a", dtype: .float32, shape: shape, arenaOffsetPerSample: 0),
        TensorInfo(name: "b", dtype: .float32, shape: shape, arenaOffsetPerSample: 192),
        TensorInfo(name: "gamma", dtype: .float32, shape: [12], buffer: 1),
        TensorInfo(name: "beta", dtype: .float32, shape: [12], buffer: 2),
        TensorInfo(name: "sum", dtype: .float32, shape: shape, arenaOffsetPerSample: 384),
        TensorInfo(name: "y", dtype: .float32, shape: shape, arenaOffsetPerSample: yOverA ? 0 : 576),
    ]
    d.operators = [
        OperatorInfo(opcode: .add, inputs: [0, 1], outputs: [4], name: "residual"),
        OperatorInfo(opcode: .layerNorm, inputs: [4, 2, 3], outputs: [5], options: .params(ints: [], floats: [1e-5]), name: "norm"),
    ]
    d.inputs = yOverA ? [1] : [0, 1]
    d.outputs = readSum ? [5, 4] : [5]
    if yOverA {
        // a is then computed in the graph (a copy of b) so that its bytes may be reused.
        d.operators.insert(OperatorInfo(opcode: .copy, inputs: [1], outputs: [0], name: "a"), at: 0)
    }
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 960, maxBatch: 8)
    let gamma = (0..<12).map { 0.5 + Float($0) / 12 }, beta = (0..<12).map { Float($0) / 24 - 0.25 }
    return ModelFileWriter.write(d, segments: [SegmentPayload(bytes: gamma.withUnsafeBytes { Array($0) }),
                                               SegmentPayload(bytes: beta.withUnsafeBytes { Array($0) })])
}

final class LayerNormFusionTests: XCTestCase {
    /// Fused (one LayerNorm that adds as it reads) and unfused (the sum is read elsewhere too):
    /// the same bytes, on one thread and split across two.
    func testResidualLayerNormIsTheTwoOpsToTheBit() throws {
        let batch = 5
        let a = (0..<(batch * 36)).map { _ in Float.random(in: -3...3) }, b = (0..<(batch * 36)).map { _ in Float.random(in: -3...3) }
        for threads in [1, 2] {
            var outputs: [[UInt32]] = []
            var ran: [[OperatorTiming]] = []
            for readSum in [false, true] {
                let session = try Session(model: try Model(bytes: AlignedBytes(residualModel(readSum: readSum))), threads: threads)
                try session.setInput("a", floats: a)
                try session.setInput("b", floats: b)
                try session.run(batch: batch)
                outputs.append(try session.outputFloats("y", batch: batch).map(\.bitPattern))
                ran.append(try session.profile(batch: batch, runs: 1).operators)
            }
            XCTAssertEqual(outputs[0], outputs[1], "threads \(threads)")
            XCTAssertEqual(ran[0].map(\.opcode), ["LayerNorm"])
            XCTAssertEqual(ran[0].map(\.kernel), ["f32, residual add fused"])
            XCTAssertEqual(ran[0].map(\.name), ["residual+norm"])
            XCTAssertEqual(ran[1].map(\.opcode), ["Add", "LayerNorm"], "the sum is read: not fused")
        }
    }

    /// The output planned over an operand's bytes (row by row in place) fuses and still gives
    /// the same bytes.
    func testFusedLayerNormMayWriteOverItsOperand() throws {
        let batch = 3
        let b = (0..<(batch * 36)).map { _ in Float.random(in: -3...3) }
        var outputs: [[UInt32]] = []
        for readSum in [false, true] {
            let session = try Session(model: try Model(bytes: AlignedBytes(residualModel(readSum: readSum, yOverA: true))), threads: 1)
            try session.setInput("b", floats: b)
            try session.run(batch: batch)
            outputs.append(try session.outputFloats("y", batch: batch).map(\.bitPattern))
            XCTAssertEqual(try session.profile(batch: batch, runs: 1).operators.count, readSum ? 3 : 2)
        }
        XCTAssertEqual(outputs[0], outputs[1])
    }

    /// Loaded with `fuseAtLoad: false` (as per-layer attribution loads), the sum is written and
    /// readable after a run: the Add's own output, and the same LayerNorm bytes.
    func testWithoutLoadTimeFusionTheSumIsWritten() throws {
        let batch = 2
        let a = (0..<(batch * 36)).map { _ in Float.random(in: -3...3) }, b = (0..<(batch * 36)).map { _ in Float.random(in: -3...3) }
        var outputs: [[UInt32]] = []
        for fuse in [true, false] {
            let model = try Model(bytes: AlignedBytes(residualModel()), fuseAtLoad: fuse)
            let session = try Session(model: model, threads: 1)
            try session.setInput("a", floats: a)
            try session.setInput("b", floats: b)
            try session.run(batch: batch)
            outputs.append(try session.outputFloats("y", batch: batch).map(\.bitPattern))
            XCTAssertEqual(try session.profile(batch: batch, runs: 1).operators.count, fuse ? 1 : 2)
            if !fuse {
                let sum = Array(session.tensorBuffer(4, batch: batch).bindMemory(to: Float.self))
                XCTAssertEqual(sum, zip(a, b).map { $0 + $1 })
            }
        }
        XCTAssertEqual(outputs[0], outputs[1])
    }
}
