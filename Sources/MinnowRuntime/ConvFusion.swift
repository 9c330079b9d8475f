import MinnowFormat
import MinnowKernels

// Load-time fusion of a lowered int8 convolution. The converter writes a Conv as a channels-last
// im2col (the patch matrix, KH*KW*C bytes per output pixel) followed by an int8 Dense. When the
// kernel table has an implicit-GEMM convolution (conv_s8), the pair runs as one operator that
// reads the taps straight from the image: the patch matrix, 9x the image for a 3x3 kernel, is
// never written or read. Same dot products, same requantization: the same bytes.

enum ConvFusion {
    /// Replaces each fusable (im2col, Dense) pair in `ops` (prepared from `d`, index for index)
    /// with (convS8, fusedIntoPrevious).
    static func apply(_ ops: inout [PreparedOp], _ d: ModelDescription, constants: [AlignedBytes?], kernels: mn_kernel_table,
                      packCache: OpPreparer.PackCache) {
        guard kernels.conv_s8 != nil, let packedSize = kernels.conv_s8_packed_size, let pack = kernels.conv_s8_pack else { return }
        let readers = d.readerCounts
        // The fused op reads the image while it writes the Dense's output, so their arena slots
        // must not overlap (the converter keeps the image alive through the Dense; older files may not).
        let slot = d.arenaSlot
        for i in ops.indices.dropLast() {
            // Channels-last int8 patches, no dilation, read only by the int8 Dense right after.
            guard case let .im2col(x, patches, 1, params, pad) = ops[i], params[13] == 1, params[11] == 1, params[12] == 1,
                  case let .denseS8(dense, bias, _, mult, shift, outZP, qmin, qmax) = ops[i + 1], dense.x == patches,
                  readers[patches] == 1, !slot(x).overlaps(slot(dense.y)), let weights = constants[dense.w] else { continue }
            // The scratch (one padded, widened sample) must stay near the patch matrix it
            // replaces: parameters are bounded one by one at load, not in product.
            guard let scratch = scratchBytes(params), scratch <= 8 * UInt64(slot(patches).count) + 4096 else { continue }
            let w = d.tensors[dense.w]
            let key = "\(w.buffer):\(params[0]):\(params[3]):\(params[4])"
            let packed: AlignedBytes
            if let done = packCache.convByKey[key] {
                packed = done
            } else {
                packed = params.withUnsafeBufferPointer { p in
                    let out = AlignedBytes(count: packedSize(p.baseAddress!, Int32(dense.n)))
                    pack(weights.pointer.assumingMemoryBound(to: Int8.self), out.pointer.assumingMemoryBound(to: Int8.self),
                         p.baseAddress!, Int32(dense.n))
                    return out
                }
                packCache.convByKey[key] = packed
            }
            ops[i] = .convS8(PreparedOp.Conv(x: x, y: dense.y, params: params, padValue: pad, n: dense.n, packed: packed, bias: bias,
                                             mult: mult, shift: shift, outZP: outZP, qmin: qmin, qmax: qmax))
            ops[i + 1] = .fusedIntoPrevious
            // The Dense's own packing is no longer read; a Dense that still shares the buffer
            // keeps its copy through its own reference.
            packCache.byBuffer[w.buffer] = nil
        }
    }

    /// mn_conv_s8_scratch's size, or nil when it overflows: ((OH-1)*sh + KH) * ((OW-1)*sw + KW + 1) * C * 2 + 32.
    static func scratchBytes(_ p: [Int64]) -> UInt64? {
        let (c, kh, kw, oh, ow, sh, sw) = (UInt64(p[0]), UInt64(p[3]), UInt64(p[4]), UInt64(p[5]), UInt64(p[6]), UInt64(p[7]), UInt64(p[8]))
        var product: UInt64 = 1
        for f in [(oh - 1) * sh + kh, (ow - 1) * sw + kw + 1, c, 2] {  // each term < 2^33 (values <= 2^16)
            let (v, overflow) = product.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            product = v
        }
        return product.addingReportingOverflow(32).overflow ? nil : product + 32
    }
}
