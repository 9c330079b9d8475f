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
    case softmax(x: Int, y: Int, cols: Int, rowsPerSample: Int, log: Bool, nanToZero: Bool)
    case copy(x: Int, y: Int, bytesPerSample: Int)
    case concat(inputs: [Int], chunkBytes: [Int], y: Int, outerPerSample: Int)
    case quantize(x: Int, y: Int, elementsPerSample: Int, scale: Float, zp: Int32)
    case dequantize(x: Int, y: Int, elementsPerSample: Int, scale: Float, zp: Int32)
    // Format 1.2 tensor ops (OpPreparation+Tensor.swift).
    case stridedCopy(x: Int, y: Int, elem: Int, dims: [Int64], strides: [Int64], offset: Int64, xBatchStride: Int64)
    /// Embedding lookup; `rowQuant` holds per-row (scale, zero point) of an int8 table.
    case gather(table: Int, ids: Int, y: Int, rows: Int, dim: Int, idBytes: Int, idsPerSample: Int,
                rowQuant: (scales: PinnedBuffer<Float>, zeroPoints: PinnedBuffer<Int32>)?)
    /// Fixed positions of an activation: each sample is a table of `rowsPerSample` rows of
    /// `inner` floats, and `picks` (a constant, checked at load) lists the rows to copy.
    case take(x: Int, picks: Int, y: Int, rowsPerSample: Int, inner: Int, count: Int)
    case reduce(kind: Int32, x: Int, y: Int, outer: Int, extent: Int, inner: Int)
    /// Per sample: `count` products of A [M, K] and B [K, N], laid out by `layout` (batch strides
    /// included; 0 for a constant operand), each operand starting `offsets` (a, b, y) elements
    /// into its tensor's sample. B read in place as another tensor's layout is 1.6; A and Y at
    /// other strides than dense (attention's head split and merge) are 1.8.
    case matmul(a: Int, b: Int, y: Int, layout: mn_matmul_layout, offsets: (a: Int, b: Int, y: Int))
    /// LayerNorm over the last axis; `residual`: normalizes x + residual (an Add fused in at load,
    /// LayerNormFusion.swift).
    case layerNorm(x: Int, residual: Int?, gamma: Int, beta: Int?, y: Int, rowsPerSample: Int, dim: Int, eps: Float)
    /// Comparisons, logic and where over a broadcast space (see BroadcastKind).
    case broadcast(kind: BroadcastKind, operands: [Int], y: Int, dims: [Int64], strides: [[Int64]], batchAxis: Int)
    case not(x: Int, y: Int, elementsPerSample: Int)
    case cast(from: Int32, to: Int32, x: Int, y: Int, elementsPerSample: Int)
    /// Convolution patches; `padValue` is what an out-of-image tap reads (an int8 input's zero point).
    case im2col(x: Int, y: Int, elem: Int, params: [Int64], padValue: Int8)
    case pool(x: Int, y: Int, int8: Bool, params: [Int64])
    /// An int8 channels-last im2col whose patches feed only the int8 Dense after it, run as one
    /// implicit GEMM (the table's conv_s8; ConvFusion.swift).
    case convS8(Conv)
    /// Attention's [scale,] mask and softmax run as one operator (SoftmaxFusion.swift).
    case softmaxMasked(SoftmaxMasked)
    /// Attention's scores product, masked softmax and output product as one operator, where the
    /// kernel table has attention_f32 (AttentionFusion.swift).
    case attention(Attention)
    /// This operator's work is done by one before it (the Dense of a `convS8`, the Add and Softmax
    /// of a `softmaxMasked`, the softmax and output product of an `attention`).
    case fusedIntoPrevious
    /// LSTM (gates 4) or GRU (gates 3); `bias` is LSTM's Wb + Rb summed, or GRU's [D, 6H] as stored.
    /// `yc`: LSTM's final cell state output (its second output), nil when absent.
    case recurrent(gates: Int, x: Int, w: Int, r: Int, bias: PinnedBuffer<Float>?, y: Int, yc: Int?, steps: Int, inputSize: Int,
                   hidden: Int, directions: Int, linearBeforeReset: Bool)

    struct Conv {
        var x: Int, y: Int
        var params: [Int64]
        var padValue: Int8
        var n: Int
        /// Weights packed by the table's conv_s8_pack.
        var packed: AlignedBytes
        var bias: PinnedBuffer<Int32>, mult: PinnedBuffer<Int32>, shift: PinnedBuffer<Int32>
        var outZP: Int32, qmin: Int32, qmax: Int32
    }

    struct SoftmaxMasked {
        var x: Int, mask: Int, y: Int
        /// The rows' 3-D index space (the Add's first three broadcast dims; the batch axis's extent
        /// is set per run) and the mask's strides in it; a row is `cols` contiguous elements.
        var rowDims: [Int64], batchAxis: Int, maskStrides: [Int64]
        var cols: Int
        /// mn_binary_f32's 2 (multiply) or 3 (divide) by `scale`, or -1 (no scale op).
        var scaleOp: Int32, scale: Float
        var log: Bool, nanToZero: Bool
    }

    struct Attention {
        /// Q and K as the scores' product reads them (its A and B), V and O as the output's (B, Y).
        var q: Int, k: Int, v: Int, mask: Int, o: Int
        var qk: mn_matmul_layout, pv: mn_matmul_layout
        /// Element offsets into each operand's sample (the products' offsets).
        var offsets: (q: Int, k: Int, v: Int, o: Int)
        /// The mask's strides over (sample, product, query row).
        var maskStrides: [Int64]
        var scaleOp: Int32, scale: Float
        var nanToZero: Bool
        /// The products in bfloat16 (the table's attention_bf16; AttentionPrecision.bf16).
        var bf16: Bool
    }

    struct Dense {
        var x: Int, w: Int, y: Int
        var k: Int, n: Int, rowsPerSample: Int
        var act: mn_activation
        /// int8 weights repacked for the chosen kernel table (nil: kernels read [N, K] as stored).
        var packed: AlignedBytes?
    }
}

/// The non-arithmetic broadcast kernels.
enum BroadcastKind: Equatable {
    case compare(op: Int32, int64: Bool)
    case logic(op: Int32)
    case `where`(elem: Int32)
}
