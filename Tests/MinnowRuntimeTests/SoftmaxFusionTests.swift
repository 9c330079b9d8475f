import MinnowFormat
import MinnowKernels
import MinnowRuntime
import XCTest

/// Attention's scale, mask and softmax, written by hand as an exporter writes them:
/// y = softmax((scores OP s) + mask), scores [batch, 2, 3, 7], mask [batch, 1, 1, 7].
/// `scale`: the op and its scalar constant (nil: no scale op). `maskFirst`: Add(mask, scaled).
/// `readSum`: the Add's output is a graph output too, so the load must not fuse it away.
private func attentionModel(scale: (OpCode, Float)?, maskFirst: Bool = false, readSum: Bool = false,
                            nanToZero: Bool = false) -> [UInt8] {
    var d = ModelDescription()
    let shape: [Int64] = [-1, 2, 3, 7]
    d.tensors = [
        TensorInfo(name: "scores", dtype: .float32, shape: shape, arenaOffsetPerSample: 0),
        TensorInfo(name: "mask", dtype: .float32, shape: [-1, 1, 1, 7], arenaOffsetPerSample: 192),
        TensorInfo(name: "s", dtype: .float32, shape: [], buffer: 1),
        TensorInfo(name: "scaled", dtype: .float32, shape: shape, arenaOffsetPerSample: 256),
        TensorInfo(name: "sum", dtype: .float32, shape: shape, arenaOffsetPerSample: 448),
        TensorInfo(name: "probs", dtype: .float32, shape: shape, arenaOffsetPerSample: 640),
    ]
    var ops: [OperatorInfo] = []
    if let (op, _) = scale { ops.append(OperatorInfo(opcode: op, inputs: [0, 2], outputs: [3], name: "scale")) }
    let scaled: Int32 = scale == nil ? 0 : 3
    ops.append(OperatorInfo(opcode: .add, inputs: maskFirst ? [1, scaled] : [scaled, 1], outputs: [4], name: "mask"))
    ops.append(OperatorInfo(opcode: .softmax, inputs: [4], outputs: [5], options: .softmax(axis: -1, nanToZero: nanToZero), name: "softmax"))
    d.operators = ops
    d.inputs = [0, 1]
    d.outputs = readSum ? [5, 4] : [5]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 832, maxBatch: 8)
    let s: [Float] = [scale?.1 ?? 1]
    return ModelFileWriter.write(d, segments: [SegmentPayload(bytes: s.withUnsafeBytes { Array($0) })])
}

final class SoftmaxFusionTests: XCTestCase {
    /// Fused and unfused runs of the same graph give the same bytes, and the fused one runs a
    /// single operator: for Div by a power of two (run as a multiply), Div by 3 (a division), Mul,
    /// no scale, the mask as either Add operand, and rows masked out entirely (NaN, or 0 with
    /// nan_to_zero).
    func testFusedAttentionSoftmaxIsTheSeparateOpsToTheBit() throws {
        let batch = 3
        let scores = (0..<(batch * 42)).map { _ in Float.random(in: -20...20) }
        // Sample 0: a real mask; sample 1: -1e9 padding; sample 2: every key masked.
        let mask: [Float] = [0.5, -1, 0, 2, -0.25, 0, 1] + [0, 0, 0, 0, -1e9, -1e9, -1e9] + [Float](repeating: -.infinity, count: 7)
        let cases: [((OpCode, Float)?, Bool, Bool)] = [
            ((.div, 4), false, false), ((.div, 3), false, false), ((.mul, 0.17677669), true, false), (nil, false, true),
            ((.div, 5.656854), true, true),
        ]
        for (scale, maskFirst, nanToZero) in cases {
            var outputs: [[UInt32]] = []
            var ran: [[OperatorTiming]] = []
            for readSum in [false, true] {
                let model = try Model(bytes: AlignedBytes(attentionModel(scale: scale, maskFirst: maskFirst, readSum: readSum,
                                                                         nanToZero: nanToZero)))
                let session = try Session(model: model, threads: 1)
                try session.setInput("scores", floats: scores)
                try session.setInput("mask", floats: mask)
                try session.run(batch: batch)
                outputs.append(try session.outputFloats("probs", batch: batch).map { $0.isNaN ? 0x7FC0_0000 : $0.bitPattern })
                ran.append(try session.profile(batch: batch, runs: 1).operators)
            }
            let what = "scale \(String(describing: scale)), mask first \(maskFirst)"
            XCTAssertEqual(outputs[0], outputs[1], what)
            XCTAssertEqual(ran[0].map(\.opcode), ["Softmax"], what)
            XCTAssertEqual(ran[0].map(\.kernel), ["f32, scale and mask fused"], what)
            XCTAssertEqual(ran[1].count, scale == nil ? 2 : 3, "the Add's output is read: \(what)")
            // The fully masked sample: NaN from the ops, 0 with nan_to_zero.
            let last = outputs[0][84...]
            XCTAssertTrue(last.allSatisfy { $0 == (nanToZero ? 0 : 0x7FC0_0000) }, "\(what): \(Array(last))")
            // Sample 0 sums to 1.
            let first = outputs[0][0..<7].map { Float(bitPattern: $0) }
            XCTAssertEqual(first.reduce(0, +), 1, accuracy: 1e-5, what)
        }
    }

    /// Split across a pool, the fused op gives the bytes one thread gives (rows that do not divide
    /// by the thread count, a mask per sample).
    func testFusedSoftmaxSplitMatchesOneThread() throws {
        let table = mn_kernels()!
        let (d0, d1, d2, cols): (Int64, Int64, Int64, Int64) = (5, 12, 37, 64)
        let x = (0..<Int(d0 * d1 * d2 * cols)).map { _ in Float.random(in: -8...8) }
        let mask = (0..<Int(d0 * cols)).map { $0 % 5 == 0 ? -Float.infinity : Float.random(in: -1...0) }
        func run(_ pool: OpaquePointer?) -> [UInt32] {
            var y = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { xp in
                mask.withUnsafeBufferPointer { mp in
                    y.withUnsafeMutableBufferPointer { yp in
                        var args = mn_softmax_masked_args(x: xp.baseAddress, mask: mp.baseAddress, y: yp.baseAddress, dims: (d0, d1, d2),
                                                          mask_strides: (cols, 0, 0), cols: cols, scale_op: 2, flags: 0, scale: 0.125)
                        mn_par_softmax_masked_f32(pool, table, &args)
                    }
                }
            }
            return y.map(\.bitPattern)
        }
        let one = run(nil)
        for threads: Int32 in [2, 3] {
            let pool = try XCTUnwrap(mn_pool_create(threads))
            defer { mn_pool_destroy(pool) }
            XCTAssertEqual(run(pool), one, "threads \(threads)")
        }
        // Each sample's rows read that sample's mask: a masked key is 0 everywhere in its sample.
        XCTAssertEqual(one[0], 0)
        XCTAssertEqual(Float(bitPattern: one[Int(d1 * d2 * cols) + 1]), 0)
    }
}
