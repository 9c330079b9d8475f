import MinnowFormat
import MinnowRuntime
import XCTest

// Format-1.4 window ops built by hand: int8 max pooling (channels last) computes the max of the
// window in the input's quantization, and the load-time checks of the new parameters refuse what
// the kernels cannot do, each with its message.

/// x float [-1, 1, 4, 4] -> Quantize -> Pool(params) -> Dequantize -> y float [-1, 1, 2, 2].
private func int8PoolModel(params: [Int64] = [0, 1, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 1]) -> [UInt8] {
    var d = ModelDescription()
    let q = QuantParams(scales: [0.5], zeroPoints: [-3])
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 1, 4, 4], arenaOffsetPerSample: 0),
        TensorInfo(name: "xq", dtype: .int8, shape: [-1, 1, 4, 4], quant: q, arenaOffsetPerSample: 64),
        TensorInfo(name: "yq", dtype: .int8, shape: [-1, 1, 2, 2], quant: q, arenaOffsetPerSample: 128),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 1, 2, 2], arenaOffsetPerSample: 192),
    ]
    d.operators = [
        OperatorInfo(opcode: .quantize, inputs: [0], outputs: [1], name: "q"),
        OperatorInfo(opcode: .pool, inputs: [1], outputs: [2], options: .params(ints: params, floats: []), name: "p"),
        OperatorInfo(opcode: .dequantize, inputs: [2], outputs: [3], name: "dq"),
    ]
    d.inputs = [0]
    d.outputs = [3]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 256, maxBatch: 4)
    return ModelFileWriter.write(d, segments: [])
}

/// x float [-1, 2, 20, 3] -> Im2Col(params) -> patches [-1, 60, 34].
private func im2colModel(params: [Int64]) -> [UInt8] {
    var d = ModelDescription()
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 2, 20, 3], arenaOffsetPerSample: 0),
        TensorInfo(name: "patches", dtype: .float32, shape: [-1, 60, 102], arenaOffsetPerSample: 512),
    ]
    d.operators = [OperatorInfo(opcode: .im2col, inputs: [0], outputs: [1], options: .params(ints: params, floats: []), name: "i")]
    d.inputs = [0]
    d.outputs = [1]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 512 + 24512, maxBatch: 2)  // 60 x 102 floats, rounded up to 64 bytes
    return ModelFileWriter.write(d, segments: [])
}

private func loadError(_ bytes: [UInt8]) -> String {
    do { _ = try Session(model: try Model(bytes: AlignedBytes(bytes))); return "loaded" } catch { return "\(error)" }
}

final class WindowOpTests: XCTestCase {
    func testInt8MaxPoolingKeepsTheInputQuantization() throws {
        let session = try Session(model: try Model(bytes: AlignedBytes(int8PoolModel())))
        // Values k * 0.5 quantize to k - 3 exactly; each 2x2 window's max comes back unchanged.
        try session.setInput(0, floats: (0..<32).map { Float($0) * 0.5 })
        try session.run(batch: 2)
        XCTAssertEqual(session.outputFloats(0, batch: 2), [2.5, 3.5, 6.5, 7.5, 10.5, 11.5, 14.5, 15.5])
    }

    func testWindowParametersTheKernelsCannotRunAreRefused() {
        XCTAssertEqual(loadError(int8PoolModel(params: [1, 1, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 1])),
                       "invalid model: operator 1 (Pool 'p'): int8 pooling is max pooling of a batched activation into one of the same quantization")
        XCTAssertEqual(loadError(int8PoolModel(params: [0, 1, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 2])),
                       "invalid model: operator 1 (Pool 'p'): pool parameters [0, 1, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 0, 2], expected [kind 0/1, C, H, W, KH, KW, OH, OW, sh, sw >= 1, pads >= 0, flag, layout 0/1]")
        // A 17-row kernel: the NCHW im2col runs it, the channels-last one does not.
        let nchw: [Int64] = [2, 20, 3, 17, 3, 20, 3, 1, 1, 8, 1, 1, 1]
        XCTAssertEqual(loadError(im2colModel(params: nchw)), "loaded")
        XCTAssertEqual(loadError(im2colModel(params: nchw + [1])),
                       "unsupported: operator 0 (Im2Col 'i'): channels-last im2col of a kernel with 17 rows (at most 16)")
    }
}

/// x float [-1, 1, 1, 2] (one pixel, two channels, channels last) -> Quantize -> Im2Col(1x1 kernel,
/// 2x2 outputs at `stride`, no padding) -> int8 Dense (3 outputs) -> Dequantize -> y [-1, 4, 3].
/// Every output pixel but the first reads only padding (the input's zero point).
private func int8ConvModel(stride: Int64) -> [UInt8] {
    var d = ModelDescription()
    let q = QuantParams(scales: [0.5], zeroPoints: [-3]), yq = QuantParams(scales: [0.25], zeroPoints: [1])
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 1, 1, 2], arenaOffsetPerSample: 0),
        TensorInfo(name: "xq", dtype: .int8, shape: [-1, 1, 1, 2], quant: q, arenaOffsetPerSample: 64),
        TensorInfo(name: "patches", dtype: .int8, shape: [-1, 4, 2], quant: q, arenaOffsetPerSample: 128),
        TensorInfo(name: "w", dtype: .int8, shape: [3, 2], quant: QuantParams(scales: [0.5, 0.25, 1], zeroPoints: [0, 0, 0], axis: 0), buffer: 1),
        TensorInfo(name: "b", dtype: .int32, shape: [3], buffer: 2),
        TensorInfo(name: "yq", dtype: .int8, shape: [-1, 4, 3], quant: yq, arenaOffsetPerSample: 192),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 4, 3], arenaOffsetPerSample: 256),
    ]
    let params: [Int64] = [2, 1, 1, 1, 1, 2, 2, stride, stride, 0, 0, 1, 1, 1]
    d.operators = [
        OperatorInfo(opcode: .quantize, inputs: [0], outputs: [1], name: "q"),
        OperatorInfo(opcode: .im2col, inputs: [1], outputs: [2], options: .params(ints: params, floats: []), name: "im2col"),
        OperatorInfo(opcode: .dense, inputs: [2, 3, 4], outputs: [5], options: .dense(DenseOptions()), name: "conv"),
        OperatorInfo(opcode: .dequantize, inputs: [5], outputs: [6], name: "dq"),
    ]
    d.inputs = [0]
    d.outputs = [6]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 320, maxBatch: 4)
    let w: [Int8] = [2, -1, 4, 4, 1, 1], b: [Int32] = [8, -4, 2]
    return ModelFileWriter.write(d, segments: [SegmentPayload(bytes: w.map { UInt8(bitPattern: $0) }),
                                               SegmentPayload(bytes: b.withUnsafeBytes { Array($0) })])
}

final class ConvFusionLoadTests: XCTestCase {
    /// The fused convolution and the im2col + Dense pair give the same values; a stride that would
    /// make the fused op's padded copy of the image enormous (65537 x 65538 pixels) keeps the pair.
    func testFusionIsSkippedWhenItsScratchWouldDwarfThePatches() throws {
        for stride: Int64 in [1, 1 << 16] {
            let model = try Model(bytes: AlignedBytes(int8ConvModel(stride: stride)))
            if stride > 1 || model.kernelName == "reference" {
                XCTAssertEqual(model.fusedAtLoad, [], "stride \(stride)")
            } else {
                XCTAssertEqual(model.fusedAtLoad, [1], "stride \(stride) on \(model.kernelName)")
            }
            let session = try Session(model: model)
            try session.setInput(0, floats: [1.5, -2, 0.5, 3])  // two samples: x / 0.5 - 3 = (0, -7) and (-2, 3)
            try session.run(batch: 2)
            // Pixel 0: b + sum w (xq + 3) in units of 0.5 * w scale, requantized to 0.25 steps and
            // back; the other pixels read the zero point, so they are the bias alone.
            XCTAssertEqual(session.outputFloats(0, batch: 2), [
                4.5, -1.0, 0.5, 2.0, -0.5, 1.0, 2.0, -0.5, 1.0, 2.0, -0.5, 1.0,
                1.0, 3.0, 4.5, 2.0, -0.5, 1.0, 2.0, -0.5, 1.0, 2.0, -0.5, 1.0,
            ], "stride \(stride)")
        }
    }
}
