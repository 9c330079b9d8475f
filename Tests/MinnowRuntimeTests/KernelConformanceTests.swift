import MinnowKernels
import XCTest

/// Every kernel table this host can run, entry by entry, against the reference on the values
/// where tables used to disagree: rows all -inf, NaN, +-inf, denormals, int32 extremes, tails.
/// (SIMDKernelTests covers the ordinary values at awkward sizes.) Prints which tables ran and
/// which this host lacks, so a log says what was and was not checked.
final class KernelConformanceTests: XCTestCase {
    /// (name, table or nil where this host lacks it) for every table the build knows, reference first.
    static var known: [(String, mn_kernel_table?)] {
        (0..<mn_kernel_table_count()).map { (String(cString: mn_kernel_table_name($0)), mn_kernel_table_at($0)?.pointee) }
    }
    /// The SIMD tables this host runs.
    var tables: [mn_kernel_table] { Self.known.dropFirst().compactMap { $0.1 } }

    override class func setUp() {
        let ran = known.dropFirst().filter { $0.1 != nil }.map(\.0), lacking = known.filter { $0.1 == nil }.map(\.0)
        print("kernel conformance: tables checked against the reference: \(ran.isEmpty ? "none" : ran.joined(separator: ", "));"
              + " not on this host: \(lacking.isEmpty ? "none" : lacking.joined(separator: ", ")); default: \(String(cString: mn_kernels()!.pointee.name))")
    }

    func testRegistryNamesEveryTableAndTheDefaultIsOne() {
        XCTAssertEqual(Self.known.map(\.0), ["reference", "avx2", "avx512vnni", "amx"])
        XCTAssertNotNil(Self.known[0].1, "the reference runs everywhere")
        let chosen = String(cString: mn_kernels()!.pointee.name)
        XCTAssertTrue(Self.known.contains { $0.0 == chosen && $0.1 != nil }, "default \(chosen) is a supported table")
        #if arch(x86_64)
        XCTAssertFalse(tables.isEmpty, "x86-64 CPUs since 2013 have AVX2")
        #endif
    }

    /// Rows a masked attention produces: all -inf (fully masked), -inf beside finite values, one
    /// +inf, a NaN, denormals, huge magnitudes; every width around the 8- and 16-lane loops. Where
    /// the reference gives NaN the table must too, and with the nan_to_zero flag both give 0.
    func testSoftmaxSpecialRowsMatchTheReference() {
        let specials: [[Float]] = [
            [-.infinity], [-.infinity, 0.5], [.infinity], [.infinity, 1], [.nan], [.nan, 2],
            [1e-40, -1e-40, 0], [1e30, -1e30], [-1e30], [Float.leastNonzeroMagnitude], [88, -88, 0.1],
        ]
        for table in tables {
            let name = String(cString: table.name)
            for cols in [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100] {
                var x: [Float] = []
                var rows = 0
                for pattern in specials {
                    // Pattern values at the start and at the tail of the row, the rest -inf (the
                    // mask) for the first half of the patterns and ordinary values for the rest.
                    var row = (0..<cols).map { i in rows % 2 == 0 ? -Float.infinity : Float(i % 5) * 0.3 - 0.6 }
                    for (i, v) in pattern.enumerated() where i < cols { row[i] = v; row[cols - 1 - i] = v }
                    x += row
                    rows += 1
                }
                x += [Float](repeating: -.infinity, count: cols)  // a fully masked row of every width
                rows += 1
                for flags: Int32 in [0, 2] {
                    var want = [Float](repeating: 7, count: x.count), got = want
                    mn_par_softmax_f32(nil, mn_reference_kernels(), x, &want, Int64(rows), Int64(cols), flags)
                    withUnsafePointer(to: table) { mn_par_softmax_f32(nil, $0, x, &got, Int64(rows), Int64(cols), flags) }
                    for i in x.indices {
                        let where_ = "\(name) softmax cols=\(cols) row \(i / cols) col \(i % cols) flags=\(flags)"
                        if want[i].isNaN { XCTAssertTrue(got[i].isNaN, "\(where_): \(got[i]), reference NaN"); continue }
                        XCTAssertFalse(got[i].isNaN, "\(where_): NaN, reference \(want[i])")
                        XCTAssertEqual(got[i], want[i], accuracy: max(1e-6 * want[i], 1e-30), where_)
                    }
                    if flags == 2 { XCTAssertFalse(got.contains { $0.isNaN }, "\(name): nan_to_zero leaves no NaN") }
                }
            }
        }
    }

    /// Denormal inputs and outputs, and special values at every position of short and tail-sized
    /// vectors (the tail goes through other code in some tables).
    func testUnarySpecialValuesAtEveryPosition() {
        let specials: [Float] = [.nan, .infinity, -.infinity, 1e-40, -1e-40, Float.leastNonzeroMagnitude, -0, 0, -87.5, -103, 88.8]
        for table in tables {
            let name = String(cString: table.name)
            for op: Int32 in [2, 3, 5, 7, 10, 11] {
                for n in [1, 7, 8, 9, 17] {
                    for at in 0..<n {
                        for s in specials {
                            var x = (0..<n).map { Float($0) * 0.25 - 1 }
                            x[at] = s
                            var want = [Float](repeating: 0, count: n), got = want
                            mn_unary_f32(op, x, &want, Int64(n), 0, 0)
                            table.unary_f32(op, x, &got, Int64(n), 0, 0)
                            let w = want[at], g = got[at], where_ = "\(name) op \(op) n=\(n) at \(at): x=\(s)"
                            if w.isNaN { XCTAssertTrue(g.isNaN, "\(where_) gave \(g)"); continue }
                            if w.isInfinite { XCTAssertEqual(g, w, where_); continue }
                            // exp's denormal results may flush to 0; everything else within the header's bounds.
                            let bound: Float = op == 5 ? max(3e-7 * w, Float.leastNormalMagnitude) : 3e-7 * max(1, abs(s))
                            XCTAssertEqual(g, w, accuracy: bound, where_)
                        }
                    }
                }
            }
        }
    }

    /// quantize_s8 on specials and denormals at every position of a tail: byte-exact.
    func testQuantizeSpecialValuesAreBitExact() {
        let specials: [Float] = [.nan, .infinity, -.infinity, 1e-40, -1e-40, 0.5, 1.5, -2.5, 63.5, -64.5, 1e30, -1e30, -0]
        for table in tables {
            for n in [1, 15, 16, 17, 33] {
                for at in stride(from: 0, to: n, by: max(1, n / 5)) {
                    for s in specials {
                        var x = (0..<n).map { Float($0) - 8 }
                        x[at] = s
                        var a = [Int8](repeating: 0, count: n), b = a
                        mn_quantize_s8(x, &a, Int64(n), 0.5, -3)
                        table.quantize_s8(x, &b, Int64(n), 0.5, -3)
                        XCTAssertEqual(a, b, "\(String(cString: table.name)) quantize n=\(n) \(s) at \(at)")
                    }
                }
            }
        }
    }

    /// Accumulators at the int32 extremes (bias within 2^17 of +-2^31), multipliers above and below
    /// 1, and the widest and narrowest output ranges: the requantization is byte-exact.
    func testInt8DenseAtInt32ExtremesIsBitExact() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            for (m, k, n) in [(1, 2, 16), (9, 3, 33), (17, 4, 8), (8, 1, 47)] {
                let x = (0..<(m * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
                let w = (0..<(n * k)).map { i in i % 7 == 0 ? Int8(-127) : Int8.random(in: -127...127, using: &rng) }
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                let bias = (0..<n).map { c in c % 2 == 0 ? Int32.max - (1 << 17) : Int32.min + (1 << 17) }
                var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
                for c in 0..<n {
                    let real: Double = [1.0 / 2_147_483_648, 0.999_999, 0.5, 1e-9, 2.5, 1e-5][c % 6]
                    mn_quantize_multiplier(real, &mult[c], &shift[c])
                }
                for (qmin, qmax): (Int32, Int32) in [(-128, 127), (0, 0), (-5, 100)] {
                    var a = [Int8](repeating: 0, count: m * n), b = a
                    ref.dense_s8(x, w, bias, wsum, mult, shift, 3, qmin, qmax, &a, Int32(m), Int32(k), Int32(n))
                    var packed = w
                    if let size = table.packed_s8_size, let pack = table.pack_s8 {
                        packed = [Int8](repeating: 0, count: size(Int32(k), Int32(n)))
                        pack(w, &packed, Int32(k), Int32(n))
                    }
                    table.dense_s8(x, packed, bias, wsum, mult, shift, 3, qmin, qmax, &b, Int32(m), Int32(k), Int32(n))
                    XCTAssertEqual(a, b, "\(String(cString: table.name)) dense_s8 at int32 extremes M=\(m) K=\(k) N=\(n) [\(qmin), \(qmax)]")
                }
            }
        }
    }

    /// Dynamic rows with specials (their min/max decide the row's scale): NaN, +-inf, all zeros,
    /// denormals, one huge value; more rows than a block so chunks and row blocks both turn over.
    func testDynamicDenseSpecialRowsAreBitExact() {
        let ref = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            for (k, n) in [(5, 17), (33, 16), (130, 40)] {
                let rows: [[Float]] = [
                    [Float](repeating: 0, count: k), [Float](repeating: 1e-40, count: k),
                    (0..<k).map { $0 == 1 % k ? .nan : Float($0) }, (0..<k).map { $0 == 0 ? .infinity : -Float($0) },
                    (0..<k).map { $0 == k - 1 ? -.infinity : 0.5 }, (0..<k).map { $0 == k / 2 ? 3e38 : 1 },
                ] + (0..<21).map { _ in (0..<k).map { _ in Float.random(in: -3...3, using: &rng) } }
                let m = rows.count, x = rows.flatMap { $0 }
                let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
                let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
                let wscale = (0..<n).map { _ in Float.random(in: 1e-3..<1e-2, using: &rng) }
                let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                var packed = w
                if let size = table.packed_s8_size, let pack = table.pack_s8 {
                    packed = [Int8](repeating: 0, count: size(Int32(k), Int32(n)))
                    pack(w, &packed, Int32(k), Int32(n))
                }
                for kind: Int32 in [0, 1, 2] {
                    let act = mn_activation(kind: kind, lo: -1, hi: 1, alpha: 0)
                    var a = [Float](repeating: 0, count: m * n), b = a
                    var qa = [Int8](repeating: 0, count: k), qb = qa
                    ref.dense_dyn(x, w, wsum, wscale, bias, &a, &qa, Int32(m), Int32(k), Int32(n), act)
                    table.dense_dyn(x, packed, wsum, wscale, bias, &b, &qb, Int32(m), Int32(k), Int32(n), act)
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(String(cString: table.name)) dense_dyn special rows K=\(k) N=\(n) act \(kind)")
                }
            }
        }
    }

    /// The SIMD float GEMMs run the same chain per element (init, then one FMA per k in order,
    /// stored every 256-deep block), so every table gives the AVX2 table's bits: a model's float
    /// paths do not change when the host's table does. Special values ride along (inf, NaN, denormals).
    func testFloatGemmIsTheSameBitsOnEverySIMDTable() {
        guard let base = mn_avx2_kernels()?.pointee else { return }
        var rng = SystemRandomNumberGenerator()
        for table in tables {
            for (m, n, k) in [(1, 1, 1), (9, 33, 257), (8, 32, 256), (13, 17, 600), (3, 50, 31), (17, 64, 48)] {
                for (bTrans, accumulate) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let lda = k + 1, ldb = (bTrans == 1 ? k : n) + 3, ldc = n + 2
                    var a = (0..<(m * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                    if a.count > 7 { a[3] = 1e-40; a[5] = .infinity; a[7] = .nan }
                    let b = (0..<((bTrans == 1 ? n : k) * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                    let bias: [Float]? = n % 2 == 1 ? (0..<n).map { _ in Float.random(in: -1...1, using: &rng) } : nil
                    let c0 = (0..<(m * ldc)).map { _ in Float.random(in: -1...1, using: &rng) }
                    var want = c0, got = c0
                    base.gemm_f32(a, Int64(lda), b, Int64(ldb), Int32(bTrans), bias, &want, Int64(ldc), Int64(m), Int64(n), Int64(k), Int32(accumulate))
                    table.gemm_f32(a, Int64(lda), b, Int64(ldb), Int32(bTrans), bias, &got, Int64(ldc), Int64(m), Int64(n), Int64(k), Int32(accumulate))
                    XCTAssertEqual(want.map(\.bitPattern), got.map(\.bitPattern),
                                   "\(String(cString: table.name)) gemm_f32 M=\(m) N=\(n) K=\(k) bTrans=\(bTrans) acc=\(accumulate)")
                }
            }
        }
    }

    /// The vector math is one template at every width (vector_math_x86.inc): an element's unary
    /// result and an LSTM unit's state are the same bits on every SIMD table, specials included.
    func testVectorMathIsTheSameBitsOnEverySIMDTable() {
        guard let base = mn_avx2_kernels()?.pointee else { return }
        var rng = SystemRandomNumberGenerator()
        var x: [Float] = [.nan, .infinity, -.infinity, 1e-40, -1e-40, 0, -0, 88.8, -87.4, -104, 0.039, 0.5, -0.5]
        x += (0..<1000).map { _ in Float.random(in: -30...30, using: &rng) }
        for table in tables {
            let name = String(cString: table.name)
            for op: Int32 in [2, 3, 5, 7, 10, 11] {
                for n in [1, 9, 16, 17, x.count] {
                    var want = [Float](repeating: 0, count: n), got = want
                    base.unary_f32(op, x, &want, Int64(n), 0, 0)
                    table.unary_f32(op, x, &got, Int64(n), 0, 0)
                    XCTAssertEqual(want.map(\.bitPattern), got.map(\.bitPattern), "\(name) unary \(op) n=\(n)")
                }
            }
            for hidden in [1, 8, 15, 16, 17, 33, 64] {
                let g = (0..<(4 * hidden)).map { i in i == 2 ? Float.nan : Float.random(in: -12...12, using: &rng) }
                let c = (0..<hidden).map { _ in Float.random(in: -3...3, using: &rng) }
                var ga = g, gb = g, ha = [Float](repeating: 0, count: hidden), hb = ha
                base.lstm_cell_f32(&ga, c, &ha, Int64(hidden))
                table.lstm_cell_f32(&gb, c, &hb, Int64(hidden))
                XCTAssertEqual(ga.map(\.bitPattern), gb.map(\.bitPattern), "\(name) LSTM cell H=\(hidden)")
                XCTAssertEqual(ha.map(\.bitPattern), hb.map(\.bitPattern), "\(name) LSTM h H=\(hidden)")
            }
        }
    }
}
