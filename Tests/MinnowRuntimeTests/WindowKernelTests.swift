import MinnowKernels
import XCTest

/// The channels-last im2col and pool kernels against their NCHW counterparts on the same data
/// (transposed), byte for byte: geometries with padding on every side, strides, dilations, odd
/// channel counts (taps of 1 to 36 bytes), widths where runs are shorter than the block moves, and
/// batches of 1 and several (the last rows of a batch are copied exactly, the others by blocks).
final class WindowKernelTests: XCTestCase {
    struct Geometry {
        var c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw: Int
        var oh: Int { (h + pt + pb - dh * (kh - 1) - 1) / sh + 1 }
        var ow: Int { (w + pl + pr - dw * (kw - 1) - 1) / sw + 1 }
        func im2col(layout: Int64) -> [Int64] {
            [c, h, w, kh, kw, oh, ow, sh, sw, pt, pl, dh, dw].map(Int64.init) + [layout]
        }
    }

    let geometries: [Geometry] = [
        Geometry(c: 8, h: 8, w: 8, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1),  // the fixture's second conv
        Geometry(c: 1, h: 8, w: 8, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1),
        Geometry(c: 3, h: 9, w: 7, kh: 3, kw: 2, sh: 2, sw: 1, pt: 2, pl: 1, pb: 1, pr: 2, dh: 1, dw: 2),
        Geometry(c: 5, h: 4, w: 3, kh: 5, kw: 5, sh: 1, sw: 1, pt: 2, pl: 2, pb: 2, pr: 2, dh: 1, dw: 1),
        Geometry(c: 9, h: 6, w: 11, kh: 2, kw: 4, sh: 3, sw: 2, pt: 0, pl: 3, pb: 1, pr: 0, dh: 2, dw: 1),
        Geometry(c: 2, h: 3, w: 2, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0, dh: 1, dw: 1),
        Geometry(c: 4, h: 5, w: 5, kh: 16, kw: 2, sh: 1, sw: 3, pt: 8, pl: 1, pb: 7, pr: 1, dh: 1, dw: 1),
    ]

    /// [batch, C, H, W] -> [batch, H, W, C].
    func toNHWC<T>(_ x: [T], batch: Int, c: Int, pixels: Int) -> [T] {
        var y = x
        for b in 0..<batch { for ch in 0..<c { for p in 0..<pixels { y[(b * pixels + p) * c + ch] = x[(b * c + ch) * pixels + p] } } }
        return y
    }

    /// NCHW patch rows (c, kh, kw) reordered to channels-last rows (kh, kw, c).
    func toChannelsLastRows<T>(_ rows: [T], count: Int, _ g: Geometry) -> [T] {
        var y = rows
        let k = g.c * g.kh * g.kw
        for r in 0..<count { for ch in 0..<g.c { for i in 0..<(g.kh * g.kw) { y[r * k + i * g.c + ch] = rows[r * k + ch * g.kh * g.kw + i] } } }
        return y
    }

    func testChannelsLastIm2colEqualsTheNCHWPatchesReordered() {
        for g in geometries { for batch in [1, 3] {
            let n = batch * g.c * g.h * g.w, rows = batch * g.oh * g.ow, k = g.c * g.kh * g.kw
            // int8 (pad = the zero point) and float (pad +0.0), the same values.
            let x8 = (0..<n).map { _ in Int8.random(in: -128...127) }
            var nchw = [Int8](repeating: 0, count: rows * k), nhwc = [Int8](repeating: 0, count: rows * k)
            let xl = toNHWC(x8, batch: batch, c: g.c, pixels: g.h * g.w)
            mn_im2col(x8, &nchw, 1, g.im2col(layout: 0), Int64(batch), -7)
            mn_im2col(xl, &nhwc, 1, g.im2col(layout: 1), Int64(batch), -7)
            XCTAssertEqual(nhwc, toChannelsLastRows(nchw, count: rows, g), "int8 \(g) batch \(batch)")

            let xf = x8.map { Float($0) * 0.5 }
            var fnchw = [Float](repeating: .nan, count: rows * k), fnhwc = [Float](repeating: .nan, count: rows * k)
            mn_im2col(xf, &fnchw, 4, g.im2col(layout: 0), Int64(batch), 0)
            mn_im2col(toNHWC(xf, batch: batch, c: g.c, pixels: g.h * g.w), &fnhwc, 4, g.im2col(layout: 1), Int64(batch), 0)
            XCTAssertEqual(toChannelsLastRows(fnchw, count: rows, g).map(\.bitPattern), fnhwc.map(\.bitPattern), "float \(g) batch \(batch)")
        } }
    }

    func testChannelsLastPoolsEqualNCHWPools() {
        for g in geometries where g.dh == 1 && g.dw == 1 { for batch in [1, 2] {
            let n = batch * g.c * g.h * g.w, outs = batch * g.c * g.oh * g.ow
            let x8 = (0..<n).map { _ in Int8.random(in: -128...127) }
            let xf = x8.map { Float($0) * 0.25 }
            for (kind, includePad) in [(0, 0), (1, 0), (1, 1)] {
                let p = [kind, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.pt, g.pl, includePad].map(Int64.init)
                var nchw = [Float](repeating: .nan, count: outs), nhwc = [Float](repeating: .nan, count: outs)
                mn_pool_f32(xf, &nchw, p + [0], Int64(batch))
                mn_pool_f32(toNHWC(xf, batch: batch, c: g.c, pixels: g.h * g.w), &nhwc, p + [1], Int64(batch))
                XCTAssertEqual(toNHWC(nchw, batch: batch, c: g.c, pixels: g.oh * g.ow).map(\.bitPattern), nhwc.map(\.bitPattern),
                               "pool kind \(kind) include_pad \(includePad) \(g)")
                guard kind == 0 else { continue }
                // int8 max pooling picks the same elements as the float one (max commutes with the scale).
                var q = [Int8](repeating: 0, count: outs), ql = [Int8](repeating: 0, count: outs)
                mn_pool_max_s8(x8, &q, p + [0], Int64(batch))
                mn_pool_max_s8(toNHWC(x8, batch: batch, c: g.c, pixels: g.h * g.w), &ql, p + [1], Int64(batch))
                XCTAssertEqual(q.map { Float($0) * 0.25 }.map(\.bitPattern), nchw.map(\.bitPattern), "int8 max pool \(g)")
                XCTAssertEqual(toNHWC(q, batch: batch, c: g.c, pixels: g.oh * g.ow), ql, "int8 channels-last max pool \(g)")
            }
        } }
    }

    /// The SIMD tables' implicit-GEMM convolution (conv_s8) against the reference im2col followed
    /// by the reference int8 Dense on its patches: the same bytes, at every undilated geometry
    /// above, output channels around the 8- and 16-column blocks, batches of 1 and 3, a padding
    /// value that is not zero, and one column with a multiplier above 1.
    func testImplicitGEMMConvolutionEqualsIm2colThenDense() {
        let ref = mn_reference_kernels()!.pointee
        let tables = [mn_avx2_kernels(), mn_avx512vnni_kernels()].compactMap { $0?.pointee }.filter { $0.conv_s8 != nil }
        #if arch(x86_64)
        XCTAssertFalse(tables.isEmpty, "the AVX2 table has the implicit-GEMM convolution")
        #endif
        var rng = SystemRandomNumberGenerator()
        for table in tables { for g in geometries where g.dh == 1 && g.dw == 1 { for n in [1, 8, 16, 17, 33] { for batch in [1, 3] {
            let p = g.im2col(layout: 1)
            let k = g.c * g.kh * g.kw, rows = batch * g.oh * g.ow
            let x = (0..<(batch * g.h * g.w * g.c)).map { _ in Int8.random(in: -128...127, using: &rng) }
            let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
            let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
            let bias = (0..<n).map { _ in Int32.random(in: -20000...20000, using: &rng) }
            var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
            // Multipliers that keep most outputs off the clamps, so equality means something.
            for c in 0..<n { mn_quantize_multiplier(Double.random(in: 2e-5..<4e-4, using: &rng), &mult[c], &shift[c]) }
            if n > 2 { mn_quantize_multiplier(1.5, &mult[n - 1], &shift[n - 1]) }

            var patches = [Int8](repeating: 0, count: rows * k), expected = [Int8](repeating: 0, count: rows * n)
            mn_im2col(x, &patches, 1, p, Int64(batch), -7)
            ref.dense_s8(patches, w, bias, wsum, mult, shift, -3, -128, 127, &expected, Int32(rows), Int32(k), Int32(n))

            var packed = [Int8](repeating: 0, count: table.conv_s8_packed_size!(p, Int32(n)))
            table.conv_s8_pack!(w, &packed, p, Int32(n))
            var scratch = [UInt8](repeating: 0xAA, count: mn_conv_s8_scratch(p))
            var y = [Int8](repeating: 0, count: rows * n)
            table.conv_s8!(x, packed, bias, mult, shift, -3, -128, 127, &y, p, Int32(n), Int64(batch), -7, &scratch)
            XCTAssertEqual(y, expected, "\(String(cString: table.name)) conv_s8 \(g) N=\(n) batch \(batch)")
        } } } }
    }
}
