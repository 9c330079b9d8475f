import MinnowKernels

// Resolved operators: every operand is a raw pointer into the session's arena or the model's
// constants, every size is per sample. `Session.run` multiplies by the batch and calls a kernel.
// Pointers stay valid while the session lives (it holds the model, the model holds constants).

struct DenseArgs {
    var x: UnsafeRawPointer
    var w: UnsafeRawPointer
    var y: UnsafeMutableRawPointer
    var k: Int32, n: Int32, rowsPerSample: Int32
    var act: mn_activation
}

struct ConcatPart {
    var src: UnsafeRawPointer
    var chunkBytes: Int
}

enum ExecOp {
    case denseF32(DenseArgs, bias: UnsafePointer<Float>?)
    case denseS8(DenseArgs, bias: UnsafePointer<Int32>, wsum: UnsafePointer<Int32>, mult: UnsafePointer<Int32>,
                 shift: UnsafePointer<Int32>, outZP: Int32, qmin: Int32, qmax: Int32)
    case denseS8F32(DenseArgs, bias: UnsafePointer<Int32>, wsum: UnsafePointer<Int32>, scale: UnsafePointer<Float>)
    case denseDynamic(DenseArgs, bias: UnsafePointer<Float>?, wsum: UnsafePointer<Int32>, wscale: UnsafePointer<Float>)
    /// `args` indexes the session's binary-shape table (dims and strides do not fit in a small case).
    case binary(op: Int32, a: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: Int)
    case unary(op: Int32, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, perSample: Int, p0: Float, p1: Float)
    case softmax(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, cols: Int, rowsPerSample: Int, log: Bool, nanToZero: Bool)
    case copy(x: UnsafeRawPointer, y: UnsafeMutableRawPointer, bytesPerSample: Int)
    /// Parts `first..<first+count` of the session's concat table.
    case concat(first: Int, count: Int, y: UnsafeMutableRawPointer, outerPerSample: Int)
    case quantize(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Int8>, perSample: Int, scale: Float, zp: Int32)
    case dequantize(x: UnsafePointer<Int8>, y: UnsafeMutablePointer<Float>, perSample: Int, scale: Float, zp: Int32)
    /// `shape` indexes the session's strided-copy table.
    case stridedCopy(x: UnsafeRawPointer, y: UnsafeMutableRawPointer, shape: Int)
    case gather(GatherArgs)
    case take(x: UnsafePointer<Float>, picks: UnsafePointer<Int64>, y: UnsafeMutablePointer<Float>, rowsPerSample: Int,
              inner: Int, count: Int)
    case reduce(kind: Int32, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, extent: Int, inner: Int)
    /// `args` indexes the session's matmul table.
    case matmul(args: Int)
    case layerNorm(x: UnsafePointer<Float>, residual: UnsafePointer<Float>?, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?,
                   y: UnsafeMutablePointer<Float>, rowsPerSample: Int, dim: Int, eps: Float)
    /// `args` indexes the session's broadcast table.
    case broadcast(args: Int)
    case not(x: UnsafePointer<UInt8>, y: UnsafeMutablePointer<UInt8>, perSample: Int)
    case cast(from: Int32, to: Int32, x: UnsafeRawPointer, y: UnsafeMutableRawPointer, perSample: Int)
    /// `params` is the offset of 14 values in the session's window-parameter table.
    case im2col(x: UnsafeRawPointer, y: UnsafeMutableRawPointer, elem: Int32, params: Int, padValue: Int8)
    case pool(x: UnsafeRawPointer, y: UnsafeMutableRawPointer, int8: Bool, params: Int)
    /// `args` indexes the session's recurrent table.
    case recurrent(args: Int)
    /// `args` indexes the session's convolution table.
    case convS8(args: Int)
    /// `args` indexes the session's masked-softmax table.
    case softmaxMasked(args: Int)
    /// `args` indexes the session's attention table.
    case attention(args: Int)
}

/// The kernel's arguments with the run's batch left to fill in (dims[batchAxis]).
struct SoftmaxMaskedArgs {
    var c: mn_softmax_masked_args
    var batchAxis: Int
}

struct ConvArgs {
    var x: UnsafePointer<Int8>, w: UnsafePointer<Int8>
    var bias: UnsafePointer<Int32>, mult: UnsafePointer<Int32>, shift: UnsafePointer<Int32>
    var y: UnsafeMutablePointer<Int8>
    /// Offset of the 14 window parameters in the session's window-parameter table.
    var params: Int
    var n: Int32, outZP: Int32, qmin: Int32, qmax: Int32
    var padValue: Int8
}

struct RecurrentArgs {
    var gates: Int
    var x: UnsafePointer<Float>, w: UnsafePointer<Float>, r: UnsafePointer<Float>, bias: UnsafePointer<Float>?
    var y: UnsafeMutablePointer<Float>
    /// LSTM's final cell state Y_c [batch, D, H], when the graph reads it.
    var yc: UnsafeMutablePointer<Float>?
    var steps: Int, inputSize: Int, hidden: Int, directions: Int, linearBeforeReset: Bool
}

struct StridedCopyArgs {
    var elem: Int32, rank: Int32
    var dims: (Int64, Int64, Int64, Int64, Int64, Int64)
    var strides: (Int64, Int64, Int64, Int64, Int64, Int64)
    var offset: Int64, xBatchStride: Int64
}

struct GatherArgs {
    var table: UnsafeRawPointer
    var scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Int32>?
    var ids: UnsafeRawPointer
    var y: UnsafeMutablePointer<Float>
    var rows: Int, dim: Int, idBytes: Int32, idsPerSample: Int
    var operatorIndex: Int
}

struct MatmulArgs {
    var a: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var layout: mn_matmul_layout
}

struct BroadcastArgs {
    var kind: BroadcastKind
    var a: UnsafeRawPointer, b: UnsafeRawPointer, c: UnsafeRawPointer?
    var y: UnsafeMutableRawPointer
    var shape: BinaryShape
    /// Strides of the third operand (where: the condition is operand 0).
    var cStrides: (Int64, Int64, Int64, Int64)
}

/// Broadcast iteration space of one binary op; dims[batchAxis] is replaced by the run's batch.
struct BinaryShape {
    var dims: (Int64, Int64, Int64, Int64)
    var aStrides: (Int64, Int64, Int64, Int64)
    var bStrides: (Int64, Int64, Int64, Int64)
    var batchAxis: Int
}
