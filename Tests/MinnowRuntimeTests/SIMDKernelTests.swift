import MinnowKernels
import XCTest

/// Every SIMD table against the portable reference at awkward sizes in every dimension
/// (DESIGN §9, after ggml's test-quantize-fns): integer paths byte-for-byte, fp32 within a
/// summation-order tolerance.
final class SIMDKernelTests: XCTestCase {
    // Rows around the 6-row micro kernels, columns around the 8-lane halves and 16-column panels.
    let ms = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17]
    let ks = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255]
    let ns = [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 65]

    var tables: [mn_kernel_table] {
        [mn_avx2_kernels(), mn_avx512vnni_kernels(), mn_amx_kernels()].compactMap { $0?.pointee }
    }

    /// Weights in the layout `table` reads (packed once, as Model load does).
    func layout(_ w: [Int8], _ table: mn_kernel_table, k: Int, n: Int) -> [Int8] {
        guard let pack = table.pack_s8, let size = table.packed_s8_size else { return w }
        var out = [Int8](repeating: 0, count: size(Int32(k), Int32(n)))
        pack(w, &out, Int32(k), Int32(n))
        return out
    }

    func testSomeSIMDTableIsAvailableOnX86() {
        #if arch(x86_64)
        XCTAssertFalse(tables.isEmpty, "x86-64 CPUs since 2013 have AVX2")
        #endif
        XCTAssertNotNil(mn_kernels())
    }

    func testInt8DenseIsBitExact() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            let name = String(cString: table.name)
            for m in ms { for k in ks { for n in ns {
                let x = (0..<(m * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
                let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                // Now and then accumulators near the int32 range (the 64-bit products and the
                // rounding of large negatives in the vector requantization).
                let range: ClosedRange<Int32> = (m + n) % 3 == 0 ? -1_000_000_000...1_000_000_000 : -20000...20000
                let bias = (0..<n).map { _ in Int32.random(in: range, using: &rng) }
                var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
                for c in 0..<n { mn_quantize_multiplier(Double.random(in: 1e-4..<0.02, using: &rng), &mult[c], &shift[c]) }
                // Now and then a multiplier above 1 (the saturating-left-shift path).
                if n > 2 && k % 2 == 1 { mn_quantize_multiplier(1.5, &mult[n - 1], &shift[n - 1]) }
                var a = [Int8](repeating: 0, count: m * n), b = a
                ref.dense_s8(x, w, bias, wsum, mult, shift, -5, -100, 120, &a, Int32(m), Int32(k), Int32(n))
                let wt = layout(w, table, k: k, n: n)
                table.dense_s8(x, wt, bias, wsum, mult, shift, -5, -100, 120, &b, Int32(m), Int32(k), Int32(n))
                XCTAssertEqual(a, b, "\(name) dense_s8 M=\(m) K=\(k) N=\(n)")

                let scale = (0..<n).map { _ in Float.random(in: 1e-4..<1e-2, using: &rng) }
                var fa = [Float](repeating: 0, count: m * n), fb = fa
                let act = mn_activation(kind: Int32(k % 4), lo: -0.5, hi: 0.5, alpha: 0.1)  // none, relu, clip, leaky
                ref.dense_s8_f32(x, w, bias, wsum, scale, &fa, Int32(m), Int32(k), Int32(n), act)
                table.dense_s8_f32(x, wt, bias, wsum, scale, &fb, Int32(m), Int32(k), Int32(n), act)
                XCTAssertEqual(fa, fb, "\(name) dense_s8_f32 M=\(m) K=\(k) N=\(n)")
            } } }
        }
    }

    /// K past the AVX2 kernel's 2048-deep block (partial sums carried across blocks), odd K.
    func testInt8DenseIsBitExactForDeepRows() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            for (m, k, n) in [(7, 2049, 17), (2, 4101, 9), (13, 2048, 16)] {
                let x = (0..<(m * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
                let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                let bias = (0..<n).map { _ in Int32.random(in: -20000...20000, using: &rng) }
                var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
                for c in 0..<n { mn_quantize_multiplier(Double.random(in: 1e-6..<1e-4, using: &rng), &mult[c], &shift[c]) }
                var a = [Int8](repeating: 0, count: m * n), b = a
                ref.dense_s8(x, w, bias, wsum, mult, shift, 2, -128, 127, &a, Int32(m), Int32(k), Int32(n))
                table.dense_s8(x, layout(w, table, k: k, n: n), bias, wsum, mult, shift, 2, -128, 127, &b, Int32(m), Int32(k), Int32(n))
                XCTAssertEqual(a, b, "\(String(cString: table.name)) dense_s8 M=\(m) K=\(k) N=\(n)")
                XCTAssertGreaterThan(Set(a).count, 8, "the outputs vary, so equality means something")
            }
        }
    }

    /// Requantization over the whole int32 range: accumulators up to +/-2^30 (from the bias),
    /// multipliers across [2^30, 2^31) and every right shift, and exact ties in both rounding
    /// steps (multiplier 2^30 halves the product; odd accumulators then sit on .5).
    func testRequantizationIsBitExactAcrossTheInt32Range() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        let (m, k, n) = (7, 3, 33)
        for table in tables {
            for round in 0..<40 {
                let x = (0..<(m * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
                let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                let bias = (0..<n).map { c in c % 3 == 0 ? Int32.random(in: -1000...1000, using: &rng) : Int32.random(in: -(1 << 30)...(1 << 30), using: &rng) }
                var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
                for c in 0..<n {
                    // A power of two that brings this column's sums to about +/-100 (so outputs vary
                    // rather than saturate), times a mantissa: 0.5 gives multiplier 2^30 (ties),
                    // otherwise anything in [0.5, 1).
                    let e = max(0, Int(log2(Double(abs(bias[c])) + 1000)) - 6)
                    let mantissa = c % 2 == 0 ? 0.5 : Double.random(in: 0.5..<1, using: &rng)
                    mn_quantize_multiplier(mantissa * pow(2, -Double(e)), &mult[c], &shift[c])
                }
                var a = [Int8](repeating: 0, count: m * n), b = a
                ref.dense_s8(x, w, bias, wsum, mult, shift, -3, -128, 127, &a, Int32(m), Int32(k), Int32(n))
                table.dense_s8(x, layout(w, table, k: k, n: n), bias, wsum, mult, shift, -3, -128, 127, &b, Int32(m), Int32(k), Int32(n))
                XCTAssertEqual(a, b, "\(String(cString: table.name)) requantization, round \(round)")
                XCTAssertGreaterThan(Set(a).count, 25, "the outputs vary, so equality means something")
            }
        }
    }

    func testQuantizeIsBitExact() {
        var rng = SystemRandomNumberGenerator()
        let specials: [Float] = [.nan, .infinity, -.infinity, 0.5, -0.5, 1.5, 2.5, -2.5, 1e30, -1e30, 0, -0]
        for table in tables + [mn_reference_kernels()!.pointee] {
            for count in [1, 5, 15, 16, 17, 31, 33, 63, 64, 65, 100, 128, 200, 1536] {
                for scale: Float in [0.5, 0.037, 1] {
                    let x = (0..<count).map { i in i % 7 == 0 ? specials[i % specials.count] : Float.random(in: -10...10, using: &rng) }
                    var a = [Int8](repeating: 0, count: count), b = a
                    mn_quantize_s8(x, &a, Int64(count), scale, 3)
                    table.quantize_s8(x, &b, Int64(count), scale, 3)
                    XCTAssertEqual(a, b, "\(String(cString: table.name)) quantize n=\(count) scale=\(scale)")
                }
            }
        }
    }

    /// The SIMD quantizers divide without vdivps (x86_internal.h, exact_quotient): the quotient
    /// must be the reference's to the bit exactly where it decides the rounding, at the
    /// half-integers. Values k + 1/2 scaled by random scales, and their float neighbours, for
    /// scales from denormal to huge (which take the divide).
    func testQuantizeAtRoundingBoundariesIsBitExact() {
        var rng = SystemRandomNumberGenerator()
        var scales: [Float] = [1e-39, Float.leastNormalMagnitude, 1e-30, 3e38, Float.greatestFiniteMagnitude, 0.1, 1.0 / 3]
        scales += (0..<300).map { _ in Float(exp(Double.random(in: -25...10, using: &rng))) }
        for table in tables {
            var checked = 0
            for scale in scales {
                var x: [Float] = []
                for _ in 0..<64 {
                    let half = Float(Int.random(in: -200...200, using: &rng)) + 0.5
                    let v = half * scale
                    x += [v, v.nextUp, v.nextDown, v.nextUp.nextUp, v.nextDown.nextDown]
                }
                var a = [Int8](repeating: 0, count: x.count), b = a
                for zp: Int32 in [0, -128, 37] {
                    mn_quantize_s8(x, &a, Int64(x.count), scale, zp)
                    table.quantize_s8(x, &b, Int64(x.count), scale, zp)
                    XCTAssertEqual(a, b, "\(String(cString: table.name)) quantize at half-integers, scale \(scale) zp \(zp)")
                    checked += x.count
                }
            }
            XCTAssertGreaterThan(checked, 250_000)
        }
    }

    func testSoftmaxMatchesTheReference() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            for cols in [1, 2, 3, 10, 15, 16, 17, 33, 100] {
                for spread: Float in [1, 20, 200] {
                    let rows = 3
                    let x = (0..<(rows * cols)).map { _ in Float.random(in: -spread...spread, using: &rng) }
                    for log: Int32 in [0, 1] {
                        var a = [Float](repeating: 0, count: x.count), b = a
                        ref.softmax_f32(x, &a, Int64(rows), Int64(cols), log)
                        table.softmax_f32(x, &b, Int64(rows), Int64(cols), log)
                        for i in a.indices {
                            XCTAssertEqual(a[i], b[i], accuracy: log == 1 ? 1e-5 : max(1e-6 * a[i], 1e-30),
                                           "\(String(cString: table.name)) softmax cols=\(cols) spread=\(spread) log=\(log)")
                        }
                        for r in 0..<rows where log == 0 {
                            XCTAssertEqual(b[(r * cols)..<((r + 1) * cols)].reduce(0, +), 1, accuracy: 1e-5)
                        }
                    }
                }
            }
        }
    }

    /// Shapes where the AMX table's tiles run (M >= 16, K >= 64: 16-row A tiles, 64-byte k steps,
    /// pairs of 16-column B tiles) with partial second tiles, K past one tile and odd column
    /// counts; every table runs them, so a tile-path bug shows as a difference from the reference.
    func testInt8DenseAtTileShapesIsBitExact() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            let name = String(cString: table.name)
            for m in [16, 17, 31, 32, 33, 48, 70] { for k in [64, 65, 128, 200, 384] { for n in [16, 17, 32, 33, 48, 97] {
                let x = (0..<(m * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
                let xf = (0..<(m * k)).map { _ in Float.random(in: -4...3, using: &rng) }
                let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
                let wt = layout(w, table, k: k, n: n)
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                let bias = (0..<n).map { _ in Int32.random(in: -20000...20000, using: &rng) }
                var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
                for c in 0..<n { mn_quantize_multiplier(Double.random(in: 1e-4..<0.01, using: &rng), &mult[c], &shift[c]) }
                var a = [Int8](repeating: 0, count: m * n), b = a
                ref.dense_s8(x, w, bias, wsum, mult, shift, 3, -128, 127, &a, Int32(m), Int32(k), Int32(n))
                table.dense_s8(x, wt, bias, wsum, mult, shift, 3, -128, 127, &b, Int32(m), Int32(k), Int32(n))
                XCTAssertEqual(a, b, "\(name) dense_s8 M=\(m) K=\(k) N=\(n)")

                let scale = (0..<n).map { _ in Float.random(in: 1e-4..<1e-2, using: &rng) }
                var fa = [Float](repeating: 0, count: m * n), fb = fa
                let act = mn_activation(kind: Int32(m % 2), lo: 0, hi: 0, alpha: 0)
                ref.dense_s8_f32(x, w, bias, wsum, scale, &fa, Int32(m), Int32(k), Int32(n), act)
                table.dense_s8_f32(x, wt, bias, wsum, scale, &fb, Int32(m), Int32(k), Int32(n), act)
                XCTAssertEqual(fa, fb, "\(name) dense_s8_f32 M=\(m) K=\(k) N=\(n)")

                let wscale = scale, fbias = bias.map { Float($0) * 1e-5 }
                var da = [Float](repeating: 0, count: m * n), db = da
                var qa = [Int8](repeating: 0, count: k), qb = qa
                ref.dense_dyn(xf, w, wsum, wscale, fbias, &da, &qa, Int32(m), Int32(k), Int32(n), act)
                table.dense_dyn(xf, wt, wsum, wscale, fbias, &db, &qb, Int32(m), Int32(k), Int32(n), act)
                XCTAssertEqual(da, db, "\(name) dense_dyn M=\(m) K=\(k) N=\(n)")
            } } }
        }
    }

    func testDynamicDenseIsBitExact() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        // Every activation (none and relu take the epilogues' vector steps, clip and leaky relu their
        // scalar ones), with and without a bias, and column counts around the 8- and 16-column halves.
        let acts = [mn_activation(kind: 0, lo: 0, hi: 0, alpha: 0), mn_activation(kind: 1, lo: 0, hi: 0, alpha: 0),
                    mn_activation(kind: 2, lo: -0.5, hi: 0.75, alpha: 0), mn_activation(kind: 3, lo: 0, hi: 0, alpha: 0.1)]
        for table in tables {
            var variant = 0
            for m in [1, 3, 5, 7] { for k in ks { for n in [1, 3, 8, 17, 24, 40] {
                variant += 1
                let x = (0..<(m * k)).map { _ in Float.random(in: -4...3, using: &rng) }
                let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                let wscale = (0..<n).map { _ in Float.random(in: 1e-3..<1e-2, using: &rng) }
                let bias = variant % 3 == 0 ? nil : (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                var a = [Float](repeating: 0, count: m * n), b = a
                var qa = [Int8](repeating: 0, count: k), qb = qa
                let act = acts[variant % acts.count]
                ref.dense_dyn(x, w, wsum, wscale, bias, &a, &qa, Int32(m), Int32(k), Int32(n), act)
                table.dense_dyn(x, layout(w, table, k: k, n: n), wsum, wscale, bias, &b, &qb, Int32(m), Int32(k), Int32(n), act)
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern),
                               "\(String(cString: table.name)) dense_dyn M=\(m) K=\(k) N=\(n) act \(act.kind) bias \(bias != nil)")
            } } }
        }
    }

    func testFloatDenseMatchesWithinSummationOrder() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            for m in ms { for k in ks { for n in [1, 5, 17] {
                let x = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
                let w = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) }
                let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                var a = [Float](repeating: 0, count: m * n), b = a
                let act = mn_activation(kind: 0, lo: 0, hi: 0, alpha: 0)
                ref.dense_f32(x, w, bias, &a, Int32(m), Int32(k), Int32(n), act)
                table.dense_f32(x, w, bias, &b, Int32(m), Int32(k), Int32(n), act)
                for i in a.indices {
                    XCTAssertEqual(a[i], b[i], accuracy: 1e-5 * Float(k).squareRoot() * 4,
                                   "\(String(cString: table.name)) dense_f32 M=\(m) K=\(k) N=\(n)")
                }
            } } }
        }
    }

    /// The float GEMM against the portable one: both B layouts, bias, accumulation and strided
    /// operands, at sizes around the 6x16 micro kernel and the 256-deep k block. Summation order
    /// differs, so the bound scales with sum |a| |b|.
    func testFloatGemmMatchesTheReference() {
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            let name = String(cString: table.name)
            for m in [1, 2, 3, 4, 5, 6, 7, 13] { for n in [1, 7, 8, 15, 16, 17, 33] { for k in [1, 3, 8, 17, 256, 257, 600] {
                for (bTrans, accumulate) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let lda = k + 3, ldb = (bTrans == 1 ? k : n) + 2, ldc = n + 5
                    let a = (0..<(m * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let b = (0..<((bTrans == 1 ? n : k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let bias: [Float]? = (m + n) % 2 == 0 ? (0..<n).map { _ in Float.random(in: -1...1, using: &rng) } : nil
                    let c0 = (0..<(m * ldc)).map { _ in Float.random(in: -1...1, using: &rng) }
                    var want = c0, got = c0
                    mn_gemm_f32_ref(a, Int64(lda), b, Int64(ldb), Int32(bTrans), bias, &want, Int64(ldc), Int64(m), Int64(n), Int64(k), Int32(accumulate))
                    table.gemm_f32(a, Int64(lda), b, Int64(ldb), Int32(bTrans), bias, &got, Int64(ldc), Int64(m), Int64(n), Int64(k), Int32(accumulate))
                    for r in 0..<m {
                        for col in 0..<ldc {
                            let i = r * ldc + col
                            if col >= n { XCTAssertEqual(got[i], c0[i], "\(name) gemm wrote past N"); continue }
                            var mag: Float = 0
                            for t in 0..<k { mag += abs(a[r * lda + t] * (bTrans == 1 ? b[col * ldb + t] : b[t * ldb + col])) }
                            XCTAssertEqual(want[i], got[i], accuracy: 2e-6 * (mag + 1),
                                           "\(name) gemm M=\(m) N=\(n) K=\(k) bTrans=\(bTrans) acc=\(accumulate)")
                        }
                    }
                }
            } } }
        }
    }

    /// Vector exp/sigmoid/tanh/erf/GELU against libm (the reference): the bounds the kernel
    /// table's header states, and the special values (NaN, infinities, signed zeros) as libm has them.
    func testUnaryMathMatchesLibmWithinStatedBounds() {
        var rng = SystemRandomNumberGenerator()
        var x: [Float] = [.nan, .infinity, -.infinity, 0, -0, 1e-8, -1e-8, 0.03, -0.03, 0.04, 0.5, -0.5, 9, -9, 20, -20,
                          87, -87, 88.7, 89, -88, -104, 100, -100, 1e30, -1e30]
        x += (0..<2000).map { _ in Float.random(in: -12...12, using: &rng) }
        x += (0..<500).map { _ in Float.random(in: -0.1...0.1, using: &rng) }
        for table in tables {
            let name = String(cString: table.name)
            for op: Int32 in [2, 3, 5, 7, 10, 11] {
                var want = [Float](repeating: 0, count: x.count), got = want
                mn_unary_f32(op, x, &want, Int64(x.count), 0, 0)
                table.unary_f32(op, x, &got, Int64(x.count), 0, 0)
                for i in x.indices {
                    let w = want[i], g = got[i]
                    if w.isNaN { XCTAssertTrue(g.isNaN, "\(name) op \(op) at \(x[i]): \(g)"); continue }
                    if w.isInfinite { XCTAssertEqual(g, w, "\(name) op \(op) at \(x[i])"); continue }
                    let bound: Float
                    switch op {
                    case 5: bound = w < Float.leastNormalMagnitude ? Float.leastNormalMagnitude : 3e-7 * w  // exp: relative
                    case 10, 11: bound = 3e-7 * max(1, abs(x[i]))                                       // GELU: x times a bounded function
                    default: bound = 3e-7                                                            // sigmoid, tanh, erf: absolute
                    }
                    XCTAssertEqual(g, w, accuracy: bound, "\(name) op \(op) at \(x[i])")
                }
                // Odd functions stay odd, to the bit (the sign is put back last).
                if op == 3 || op == 7 {
                    var neg = [Float](repeating: 0, count: x.count)
                    table.unary_f32(op, x.map { -$0 }, &neg, Int64(x.count), 0, 0)
                    for i in x.indices where !x[i].isNaN { XCTAssertEqual(neg[i], -got[i], "\(name) op \(op) odd at \(x[i])") }
                }
            }
        }
    }

    /// A row of the float GEMM and an element of a unary op come out the same bits whatever else
    /// is computed with them: batch 1 equals batch 13, and threads splitting rows change nothing.
    /// The fused LSTM cell against the portable one: every H around the 8-unit groups, with and
    /// without a previous state, saturating gates, and NaN carried through.
    func testLSTMCellMatchesTheReference() {
        var rng = SystemRandomNumberGenerator()
        let ref = mn_reference_kernels()!.pointee
        for table in tables {
            for hidden in [1, 3, 7, 8, 9, 16, 17, 48, 50] {
                for withState in [false, true] {
                    var g = (0..<(4 * hidden)).map { _ in Float.random(in: -6...6, using: &rng) }
                    if hidden > 2 { g[1] = 120; g[2 * hidden] = -95; g[3 * hidden + 1] = 60 }  // past exp's clamp
                    let c = (0..<hidden).map { _ in Float.random(in: -3...3, using: &rng) }
                    var ga = g, gb = g, ha = [Float](repeating: 0, count: hidden), hb = ha
                    c.withUnsafeBufferPointer { cp in
                        ref.lstm_cell_f32(&ga, withState ? cp.baseAddress : nil, &ha, Int64(hidden))
                        table.lstm_cell_f32(&gb, withState ? cp.baseAddress : nil, &hb, Int64(hidden))
                    }
                    for k in 0..<hidden {
                        // c = f c_prev + i cand: |c_prev| <= 3 times the gate bound, plus rounding.
                        XCTAssertEqual(ga[k], gb[k], accuracy: 2e-6, "\(String(cString: table.name)) H=\(hidden) cell \(k)")
                        XCTAssertEqual(ha[k], hb[k], accuracy: 2e-6, "\(String(cString: table.name)) H=\(hidden) h \(k)")
                    }
                }
            }
            var g: [Float] = [.nan, 0, 0, .nan, 1, 1, 1, 1], h: [Float] = [0, 0]  // i of unit 0, o of unit 1
            table.lstm_cell_f32(&g, nil, &h, 2)
            XCTAssertTrue(g[0].isNaN && h[0].isNaN && h[1].isNaN, "NaN gates give NaN, \(g) \(h)")
        }
    }

    func testFloatResultsDoNotDependOnTheBatch() {
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            let name = String(cString: table.name)
            for (k, n) in [(17, 33), (300, 9)] {
                let m = 13
                let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
                let w = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) }
                let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                let act = mn_activation(kind: 1, lo: 0, hi: 0, alpha: 0)
                var all = [Float](repeating: 0, count: m * n)
                table.dense_f32(a, w, bias, &all, Int32(m), Int32(k), Int32(n), act)
                for r in 0..<m {
                    var one = [Float](repeating: 0, count: n)
                    table.dense_f32(Array(a[(r * k)..<((r + 1) * k)]), w, bias, &one, 1, Int32(k), Int32(n), act)
                    XCTAssertEqual(one, Array(all[(r * n)..<((r + 1) * n)]), "\(name) dense_f32 row \(r) alone vs in a batch of \(m)")
                }
            }
            let x = (0..<37).map { _ in Float.random(in: -6...6, using: &rng) }
            for op: Int32 in [2, 3, 5, 7, 10, 11] {
                var all = [Float](repeating: 0, count: x.count)
                table.unary_f32(op, x, &all, Int64(x.count), 0, 0)
                for i in x.indices {
                    var one: Float = 0
                    table.unary_f32(op, [x[i]], &one, 1, 0, 0)
                    XCTAssertEqual(one.bitPattern, all[i].bitPattern, "\(name) unary \(op) element \(i) alone vs among \(x.count)")
                }
            }
        }
    }

    /// Every table's LayerNorm is the reference's to the bit: widths around the 8-lane step (tails
    /// of 1 to 7), with and without beta, with a residual added in (the same bits as the Add's
    /// output normalized), several rows per call, and in place over x or over the residual.
    func testLayerNormIsTheReferenceToTheBit() {
        let all = [mn_reference_kernels().pointee] + tables
        for dim in [1, 3, 7, 8, 9, 15, 16, 17, 32, 33, 100, 384] {
            let rows = 3, n = rows * dim
            let x = (0..<n).map { _ in Float.random(in: -4...4) + 2 }, r = (0..<n).map { _ in Float.random(in: -3...3) }
            let gamma = (0..<dim).map { _ in Float.random(in: 0.5...1.5) }, beta = (0..<dim).map { _ in Float.random(in: -1...1) }
            var sum = [Float](repeating: 0, count: n)
            let dims: [Int64] = [1, 1, 1, Int64(n)], unit: [Int64] = [0, 0, Int64(n), 1]
            mn_binary_f32(0, x, unit, r, unit, &sum, dims)
            for withBeta in [false, true] {
                let b: [Float]? = withBeta ? beta : nil
                var want = [Float](repeating: 0, count: n), wantSum = want
                mn_layer_norm_f32(x, nil, gamma, b, &want, Int64(rows), Int64(dim), 1e-5)
                mn_layer_norm_f32(sum, nil, gamma, b, &wantSum, Int64(rows), Int64(dim), 1e-5)
                for table in all {
                    let name = String(cString: table.name)
                    var got = [Float](repeating: 0, count: n), gotSum = got
                    table.layer_norm_f32(x, nil, gamma, b, &got, Int64(rows), Int64(dim), 1e-5)
                    table.layer_norm_f32(x, r, gamma, b, &gotSum, Int64(rows), Int64(dim), 1e-5)
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(name) dim \(dim) beta \(withBeta)")
                    XCTAssertEqual(gotSum.map(\.bitPattern), wantSum.map(\.bitPattern), "\(name) dim \(dim) beta \(withBeta) residual")
                    var overX = x, overR = r
                    overX.withUnsafeMutableBufferPointer { p in
                        table.layer_norm_f32(p.baseAddress, r, gamma, b, p.baseAddress, Int64(rows), Int64(dim), 1e-5)
                    }
                    overR.withUnsafeMutableBufferPointer { p in
                        table.layer_norm_f32(x, p.baseAddress, gamma, b, p.baseAddress, Int64(rows), Int64(dim), 1e-5)
                    }
                    XCTAssertEqual(overX.map(\.bitPattern), wantSum.map(\.bitPattern), "\(name) dim \(dim) in place over x")
                    XCTAssertEqual(overR.map(\.bitPattern), wantSum.map(\.bitPattern), "\(name) dim \(dim) in place over the residual")
                }
            }
        }
    }

    /// Attention's fused row, softmax((x OP s) + mask), is the three ops run apart to the bit on
    /// every table (the reference included): rows around the 8- and 16-lane widths, each scale op,
    /// masks with -1e9 and -inf, and rows masked out entirely (NaN, as the separate ops give).
    func testMaskedSoftmaxRowIsTheThreeOpsToTheBit() {
        let all = [mn_reference_kernels().pointee] + tables
        for cols in [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 51, 64, 100, 128, 200] {
            let x = (0..<cols).map { _ in Float.random(in: -30...30) }
            var masks: [[Float]] = [(0..<cols).map { _ in Float.random(in: -2...2) }]
            masks.append((0..<cols).map { $0 % 3 == 1 ? -1e9 : 0 })
            masks.append((0..<cols).map { $0 % 4 == 2 ? -.infinity : 0 })
            masks.append([Float](repeating: -.infinity, count: cols))
            for mask in masks {
                for (op, scale): (Int32, Float) in [(-1, 1), (2, 0.17677669), (2, 0.25), (3, 4), (3, 5.656854)] {
                    let dims: [Int64] = [1, 1, 1, Int64(cols)], unit: [Int64] = [0, 0, Int64(cols), 1], none: [Int64] = [0, 0, 0, 0]
                    var t = x
                    if op >= 0 { mn_binary_f32(op, x, unit, [scale], none, &t, dims) }
                    var masked = t
                    mn_binary_f32(0, t, unit, mask, unit, &masked, dims)
                    for table in all {
                        let name = String(cString: table.name)
                        var want = [Float](repeating: 0, count: cols), got = want
                        table.softmax_f32(masked, &want, 1, Int64(cols), 0)
                        table.softmax_masked_f32(x, mask, 0, &got, 1, Int64(cols), op, scale)
                        for c in 0..<cols where !(want[c].isNaN && got[c].isNaN) {
                            XCTAssertEqual(got[c].bitPattern, want[c].bitPattern, "\(name) cols \(cols) op \(op) s \(scale) col \(c): \(got[c]) vs \(want[c])")
                        }
                        // In place (y = x), as the reference contract allows.
                        var inPlace = x
                        inPlace.withUnsafeMutableBufferPointer { p in
                            table.softmax_masked_f32(p.baseAddress, mask, 0, p.baseAddress, 1, Int64(cols), op, scale)
                        }
                        XCTAssertEqual(inPlace.map { $0.isNaN ? 0 : $0.bitPattern }, want.map { $0.isNaN ? 0 : $0.bitPattern }, "\(name) in place")
                    }
                }
            }
        }
    }

    /// Several rows per call (the kernel overlaps blocks of four or eight): each row comes out as it does
    /// alone, with a mask per row (stride cols), one mask for all rows (stride 0), and a fully
    /// masked row inside a block.
    func testMaskedSoftmaxRowsInBlocksAreEachRowAlone() {
        let all = [mn_reference_kernels().pointee] + tables
        for cols in [5, 16, 51, 128] {
            for rows in [1, 3, 4, 7, 8, 9, 17] {
                let x = (0..<(rows * cols)).map { _ in Float.random(in: -30...30) }
                var mask = (0..<(rows * cols)).map { $0 % 7 == 3 ? -Float.infinity : Float.random(in: -1...0) }
                if rows > 2 { for c in 0..<cols { mask[2 * cols + c] = -.infinity } }
                for table in all {
                    let name = String(cString: table.name)
                    for stride in [0, cols] {
                        var want = [Float](repeating: 0, count: rows * cols), got = want
                        for r in 0..<rows {
                            var row = [Float](repeating: 0, count: cols)
                            table.softmax_masked_f32(Array(x[(r * cols)..<((r + 1) * cols)]), Array(mask[(r * stride)..<(r * stride + cols)]),
                                                     0, &row, 1, Int64(cols), 2, 0.125)
                            want.replaceSubrange((r * cols)..<((r + 1) * cols), with: row)
                        }
                        table.softmax_masked_f32(x, mask, Int64(stride), &got, Int64(rows), Int64(cols), 2, 0.125)
                        XCTAssertEqual(got.map { $0.isNaN ? 1 : $0.bitPattern }, want.map { $0.isNaN ? 1 : $0.bitPattern },
                                       "\(name) rows \(rows) cols \(cols) mask stride \(stride)")
                    }
                }
            }
        }
    }

    /// The fused attention (tables that have one) is the table's own three ops to the bit: the
    /// scores' GEMM, the masked softmax and the output GEMM, at query counts around its 8-row
    /// blocks, key counts around 16 lanes and its 32-key chunks, head widths around 16 and 32,
    /// keys stored as rows (K [N, d]) or transposed ([d, N]), a mask per row or one for all rows
    /// with fully masked rows (NaN, and 0 with nan_to_zero), operands at strides wider than dense,
    /// and O written over Q.
    func testFusedAttentionIsTheThreeOpsToTheBit() {
        // Every SIMD table has the kernel; the reference keeps the three ops (the fusion then stays off).
        XCTAssertNil(mn_reference_kernels().pointee.attention_f32)
        XCTAssertTrue(tables.allSatisfy { $0.attention_f32 != nil }, "every SIMD table has attention_f32")
        for table in tables {
            let name = String(cString: table.name)
            for (m, n, d, dv) in [(1, 1, 1, 1), (3, 5, 16, 16), (8, 16, 16, 16), (9, 17, 8, 8), (51, 51, 16, 16), (16, 33, 32, 32),
                                  (17, 64, 32, 40), (20, 128, 64, 64), (7, 100, 24, 80), (64, 200, 3, 5)] {
                for kRows: Int32 in [1, 0] {
                    for (maskStride, nanToZero) in [(n, false), (0, false), (n, true)] {
                        for (op, scale): (Int32, Float) in [(2, 0.25), (3, 5.656854), (-1, 1)] {
                            // Operands at wider row strides than dense, as attention's head split reads them.
                            let ldq = d + 3, ldk = (kRows == 1 ? d : n) + 2, ldv = dv + 5, ldo = d == dv ? ldq : dv + 1
                            let q = (0..<(m * ldq)).map { _ in Float.random(in: -2...2) }
                            let k = (0..<((kRows == 1 ? n : d) * ldk)).map { _ in Float.random(in: -2...2) }
                            let v = (0..<(n * ldv)).map { _ in Float.random(in: -2...2) }
                            var mask = (0..<(max(m, 1) * n)).map { $0 % 5 == 2 ? -Float.infinity : Float.random(in: -1...0) }
                            if m > 2, maskStride > 0 { for c in 0..<n { mask[2 * n + c] = -.infinity } }
                            // Apart: scores = Q K^T, probabilities in place, O = P V.
                            var scores = [Float](repeating: 0, count: m * n)
                            table.gemm_f32(q, Int64(ldq), k, Int64(ldk), kRows, nil, &scores, Int64(n), Int64(m), Int64(n), Int64(d), 0)
                            scores.withUnsafeMutableBufferPointer { p in
                                table.softmax_masked_f32(p.baseAddress, mask, Int64(maskStride), p.baseAddress, Int64(m), Int64(n), op, scale)
                            }
                            if nanToZero { scores = scores.map { $0.isNaN ? 0 : $0 } }
                            var want = [Float](repeating: -7, count: m * ldo)
                            table.gemm_f32(scores, Int64(n), v, Int64(ldv), 0, nil, &want, Int64(ldo), Int64(m), Int64(dv), Int64(n), 0)
                            var got = [Float](repeating: -7, count: m * ldo)
                            table.attention_f32(q, Int64(ldq), k, Int64(ldk), kRows, v, Int64(ldv), mask, Int64(maskStride), &got, Int64(ldo),
                                                Int64(m), Int64(n), Int64(d), Int64(dv), op, scale, nanToZero ? 1 : 0)
                            XCTAssertEqual(got.map { $0.isNaN ? 1 : $0.bitPattern }, want.map { $0.isNaN ? 1 : $0.bitPattern },
                                           "\(name) M \(m) N \(n) d \(d) dv \(dv) k_rows \(kRows) mask stride \(maskStride) op \(op)")
                            // O written over Q's own elements (the memory plan's reuse of Q's slot).
                            if d == dv && ldq == ldo {
                                assertOutputOverQ(q, ldq: ldq, m: m, dv: dv, want: want, "\(name) O over Q, M \(m) N \(n)") { p in
                                    table.attention_f32(p, Int64(ldq), k, Int64(ldk), kRows, v, Int64(ldv), mask, Int64(maskStride),
                                                        p, Int64(ldo), Int64(m), Int64(n), Int64(d), Int64(dv), op, scale, nanToZero ? 1 : 0)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// An attention kernel run with O written over Q's own elements (ldo = ldq, dv = d: the memory
    /// plan's reuse of Q's slot) gives `want`'s bytes (NaN where `want` has NaN).
    func assertOutputOverQ(_ q: [Float], ldq: Int, m: Int, dv: Int, want: [Float], _ what: String,
                           run: (UnsafeMutablePointer<Float>) -> Void) {
        var qo = q
        qo.withUnsafeMutableBufferPointer { run($0.baseAddress!) }
        for i in 0..<m {
            for c in 0..<dv where !(qo[i * ldq + c].isNaN && want[i * ldq + c].isNaN) {
                XCTAssertEqual(qo[i * ldq + c].bitPattern, want[i * ldq + c].bitPattern, "\(what), row \(i)")
            }
        }
    }

    /// bfloat16 the way the hardware rounds (to nearest even); NaN stays NaN.
    func bf16(_ x: Float) -> Double {
        guard !x.isNaN else { return .nan }
        let u = x.bitPattern
        return Double(Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000))
    }

    /// attention_bf16 against its definition: scores from bf16 Q and K (exact products, summed in
    /// Double here), the table's masked softmax on them, outputs from bf16 probabilities and V. A
    /// probability within rounding of a bf16 tie may round the other way in the kernel (its scores
    /// are fp32 sums), so each output may differ by one bf16 step (2^-8 relative) of its terms.
    /// Wrong pairing, a wrong pad or a wrong stride misses by far more. O over Q is the same bytes.
    func testBF16AttentionRoundsOnlyTheProductsOperands() {
        XCTAssertNil(mn_reference_kernels().pointee.attention_bf16)
        XCTAssertNil(mn_avx2_kernels()?.pointee.attention_bf16)
        // Every AVX-512 table carries the entry; the runtime uses it only where the CPU detection
        // says AVX512-BF16, and that detection must agree with the kernel's view of the CPU.
        let withKernel = tables.filter { $0.attention_bf16 != nil }
        XCTAssertEqual(withKernel.map { String(cString: $0.name) }, tables.map { String(cString: $0.name) }.filter { $0 != "avx2" })
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
            XCTAssertEqual(mn_cpu_has_avx512bf16() != 0, flags.split(separator: " ").contains("avx512_bf16"),
                           "mn_cpu_has_avx512bf16 against /proc/cpuinfo")
        }
        // The kernel itself only where the CPU has the instructions (elsewhere it would fault, and
        // RecommendationFixtureTests checks the model then runs f32 bytes).
        let runnable = mn_cpu_has_avx512bf16() != 0 ? withKernel : []
        if runnable.isEmpty, !withKernel.isEmpty { print("attention_bf16 not run: this CPU has no AVX512-BF16") }
        for table in runnable {
            let name = String(cString: table.name)
            for (m, n, d, dv) in [(1, 1, 1, 1), (3, 5, 16, 16), (9, 17, 7, 8), (51, 51, 16, 16), (16, 33, 32, 32), (17, 64, 33, 40),
                                  (20, 128, 64, 64), (7, 100, 24, 80), (64, 200, 3, 5)] {
                for kRows: Int32 in [1, 0] {
                    for (maskStride, nanToZero) in [(n, false), (0, false), (n, true)] {
                        let (op, scale): (Int32, Float) = (2, 0.25)
                        let ldq = d + 3, ldk = (kRows == 1 ? d : n) + 2, ldv = dv + 5, ldo = d == dv ? ldq : dv + 1
                        let q = (0..<(m * ldq)).map { _ in Float.random(in: -2...2) }
                        let k = (0..<((kRows == 1 ? n : d) * ldk)).map { _ in Float.random(in: -2...2) }
                        let v = (0..<(n * ldv)).map { _ in Float.random(in: -2...2) }
                        var mask = (0..<(max(m, 1) * n)).map { $0 % 5 == 2 ? -Float.infinity : Float.random(in: -1...0) }
                        if m > 2, maskStride > 0 { for c in 0..<n { mask[2 * n + c] = -.infinity } }
                        var p = [Float](repeating: 0, count: m * n)
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0
                                for c in 0..<d { sum += bf16(q[i * ldq + c]) * bf16(kRows == 1 ? k[j * ldk + c] : k[c * ldk + j]) }
                                p[i * n + j] = Float(sum)
                            }
                        }
                        p.withUnsafeMutableBufferPointer { b in
                            table.softmax_masked_f32(b.baseAddress, mask, Int64(maskStride), b.baseAddress, Int64(m), Int64(n), op, scale)
                        }
                        if nanToZero { p = p.map { $0.isNaN ? 0 : $0 } }
                        var got = [Float](repeating: -7, count: m * ldo)
                        table.attention_bf16(q, Int64(ldq), k, Int64(ldk), kRows, v, Int64(ldv), mask, Int64(maskStride), &got, Int64(ldo),
                                             Int64(m), Int64(n), Int64(d), Int64(dv), op, scale, nanToZero ? 1 : 0)
                        let what = "\(name) M \(m) N \(n) d \(d) dv \(dv) k_rows \(kRows) mask stride \(maskStride)"
                        for i in 0..<m {
                            for c in 0..<dv {
                                var want = 0.0, size = 0.0
                                for j in 0..<n {
                                    want += bf16(p[i * n + j]) * bf16(v[j * ldv + c])
                                    size += abs(Double(p[i * n + j]) * Double(v[j * ldv + c]))
                                }
                                let g = Double(got[i * ldo + c])
                                if want.isNaN || g.isNaN {
                                    XCTAssertTrue(want.isNaN && g.isNaN, "\(what) row \(i): NaN where the definition has \(want)")
                                } else {
                                    XCTAssertLessThanOrEqual(abs(g - want), size / 256 + 1e-5, "\(what) row \(i) column \(c)")
                                }
                            }
                            for c in dv..<ldo { XCTAssertEqual(got[i * ldo + c], -7, "\(what): wrote past dv") }
                        }
                        if d == dv && ldq == ldo {
                            assertOutputOverQ(q, ldq: ldq, m: m, dv: dv, want: got, "\(what): O over Q") { p in
                                table.attention_bf16(p, Int64(ldq), k, Int64(ldk), kRows, v, Int64(ldv), mask, Int64(maskStride),
                                                     p, Int64(ldo), Int64(m), Int64(n), Int64(d), Int64(dv), op, scale, nanToZero ? 1 : 0)
                            }
                        }
                    }
                }
            }
        }
    }
}
