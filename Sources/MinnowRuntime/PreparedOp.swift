import MinnowFormat
import MinnowKernels

/// One operator after load-time preparation: operand tensor indices, sizes per sample, and
/// everything derived from the weights (folded biases, requantization multipliers, sums).
/// Immutable and shared by every session of the model.
enum PreparedOp: @unchecked Sendable {
    case denseF32(Dense, bias: Int?)
    /// Static int8 in and out.
    case denseS8(Dense, bias: PinnedBuffer<Int32>, wsum: PinnedBuffer<Int32>, mult: PinnedBuffer<Int32>,
                 shift: PinnedBuffer<Int32>, outZP: Int32, qmin: Int32, qmax: Int32)
    /// Static int8 in, fp32 out.
    case denseS8F32(Dense, bias: PinnedBuffer<Int32>, wsum: PinnedBuffer<Int32>, scale: PinnedBuffer<Float>)
    /// Dynamic: fp32 in and out, int8 weights.
    case denseDynamic(Dense, bias: Int?, wsum: PinnedBuffer<Int32>, wscale: PinnedBuffer<Float>)
    case binary(op: Int32, a: Int, b: Int, y: Int, dims: [Int64], aStrides: [Int64], bStrides: [Int64], batchAxis: Int)
    case unary(op: Int32, x: Int, y: Int, elementsPerSample: Int, p0: Float, p1: Float)
    case softmax(x: Int, y: Int, cols: Int, rowsPerSample: Int, log: Bool)
    case copy(x: Int, y: Int, bytesPerSample: Int)
    case concat(inputs: [Int], chunkBytes: [Int], y: Int, outerPerSample: Int)
    case quantize(x: Int, y: Int, elementsPerSample: Int, scale: Float, zp: Int32)
    case dequantize(x: Int, y: Int, elementsPerSample: Int, scale: Float, zp: Int32)

    struct Dense {
        var x: Int, w: Int, y: Int
        var k: Int, n: Int, rowsPerSample: Int
        var act: mn_activation
        /// int8 weights repacked for the chosen kernel table (nil: kernels read [N, K] as stored).
        var packed: AlignedBytes?
    }
}
