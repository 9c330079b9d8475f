import MinnowKernels
import XCTest

/// Single kernels against straightforward double-precision math (DESIGN §9: test one kernel alone).
final class KernelTests: XCTestCase {
    func testQuantizeMultiplierRepresentsTheRealMultiplier() {
        for m in [0.0001, 0.003_14, 0.25, 0.5, 0.7, 0.999_999, 1.0, 1.5, 3.75] {
            var q: Int32 = 0, s: Int32 = 0
            mn_quantize_multiplier(m, &q, &s)
            let back = Double(q) / Double(1 << 31) * pow(2, Double(s))
            XCTAssertEqual(back, m, accuracy: m * 1e-9, "multiplier \(m)")
            XCTAssertGreaterThanOrEqual(q, 1 << 30)
        }
    }

    func testMultiplyByQuantizedMultiplierRoundsToNearest() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let m = Double.random(in: 1e-4..<0.99, using: &rng)
            let x = Int32.random(in: -1_000_000...1_000_000, using: &rng)
            var q: Int32 = 0, s: Int32 = 0
            mn_quantize_multiplier(m, &q, &s)
            let got = mn_multiply_by_quantized_multiplier(x, q, s)
            let exact = Double(x) * Double(q) / Double(1 << 31) * pow(2, Double(s))
            // Two roundings (high-mul, then shift) bound the error by one step, as in TFLite.
            XCTAssertLessThanOrEqual(abs(Double(got) - exact), 1.0, "x=\(x) m=\(m)")
        }
        // Known values: half rounds away from zero in the high-mul, then up in the shift.
        var q: Int32 = 0, s: Int32 = 0
        mn_quantize_multiplier(0.5, &q, &s)
        XCTAssertEqual(mn_multiply_by_quantized_multiplier(3, q, s), 2)
        XCTAssertEqual(mn_multiply_by_quantized_multiplier(-3, q, s), -1)
        XCTAssertEqual(mn_multiply_by_quantized_multiplier(100, q, s), 50)
    }

    func testDenseS8MatchesIntegerMath() {
        let kernels = mn_reference_kernels()!.pointee
        var rng = SystemRandomNumberGenerator()
        for (m, k, n) in [(1, 1, 1), (2, 3, 5), (3, 17, 7), (5, 33, 2), (7, 64, 31)] {
            let x = (0..<(m * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
            let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
            let bias = (0..<n).map { _ in Int32.random(in: -5000...5000, using: &rng) }
            var mult = [Int32](repeating: 0, count: n), shift = [Int32](repeating: 0, count: n)
            let reals = (0..<n).map { _ in Double.random(in: 0.0005..<0.01, using: &rng) }
            for c in 0..<n { mn_quantize_multiplier(reals[c], &mult[c], &shift[c]) }
            var y = [Int8](repeating: 0, count: m * n)
            let wsum = (0..<n).map { c in (0..<k).reduce(Int32(0)) { $0 + Int32(w[c * k + $1]) } }
            kernels.dense_s8(x, w, bias, wsum, mult, shift, 3, -128, 127, &y, Int32(m), Int32(k), Int32(n))
            for r in 0..<m {
                for c in 0..<n {
                    var acc = bias[c]
                    for i in 0..<k { acc += Int32(x[r * k + i]) * Int32(w[c * k + i]) }
                    let v = max(-128, min(127, 3 + mn_multiply_by_quantized_multiplier(acc, mult[c], shift[c])))
                    XCTAssertEqual(Int32(y[r * n + c]), v, "m=\(m) k=\(k) n=\(n) at (\(r), \(c))")
                    // and the fixed-point result is within one step of the real-valued one
                    XCTAssertLessThanOrEqual(abs(Double(v) - max(-128, min(127, 3 + Double(acc) * reals[c]))), 1.0)
                }
            }
        }
    }

    func testDenseF32AndActivations() {
        let kernels = mn_reference_kernels()!.pointee
        let x: [Float] = [1, -2, 3, 0.5, 0.25, -1]           // [2, 3]
        let w: [Float] = [0.5, 1, -1, 2, 0, 1]                // [2, 3]
        let b: [Float] = [0.1, -10]
        var y = [Float](repeating: 0, count: 4)
        kernels.dense_f32(x, w, b, &y, 2, 3, 2, mn_activation(kind: 0, lo: 0, hi: 0, alpha: 0))
        let want: [Float] = [-4.4, -5, 1.6, -10]
        for i in 0..<4 { XCTAssertEqual(y[i], want[i], accuracy: 1e-6) }
        kernels.dense_f32(x, w, b, &y, 2, 3, 2, mn_activation(kind: 1, lo: 0, hi: 0, alpha: 0))
        XCTAssertEqual(y, [0, 0, 1.6, 0])
        kernels.dense_f32(x, w, b, &y, 2, 3, 2, mn_activation(kind: 3, lo: 0, hi: 0, alpha: 0.1))
        XCTAssertEqual(y[0], -0.44, accuracy: 1e-6)
    }

    func testDynamicDenseIsCloseToFloat() {
        let kernels = mn_reference_kernels()!.pointee
        let (m, k, n) = (4, 40, 6)
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(m * k)).map { _ in Float.random(in: -3...2, using: &rng) }
        let wf = (0..<(n * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        var scales = [Float](repeating: 0, count: n), wq = [Int8](repeating: 0, count: n * k), wsum = [Int32](repeating: 0, count: n)
        for c in 0..<n {
            scales[c] = wf[(c * k)..<((c + 1) * k)].map(abs).max()! / 127
            for i in 0..<k {
                wq[c * k + i] = Int8((wf[c * k + i] / scales[c]).rounded())
                wsum[c] += Int32(wq[c * k + i])
            }
        }
        var y = [Float](repeating: 0, count: m * n), yf = [Float](repeating: 0, count: m * n), scratch = [Int8](repeating: 0, count: k)
        kernels.dense_dyn(x, wq, wsum, scales, nil, &y, &scratch, Int32(m), Int32(k), Int32(n), mn_activation(kind: 0, lo: 0, hi: 0, alpha: 0))
        kernels.dense_f32(x, wf, nil, &yf, Int32(m), Int32(k), Int32(n), mn_activation(kind: 0, lo: 0, hi: 0, alpha: 0))
        for i in 0..<(m * n) { XCTAssertEqual(y[i], yf[i], accuracy: 0.15) }
    }

    func testQuantizeRoundsHalfToEvenAndSaturates() {
        let x: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, 1000, -1000, .nan]
        var q = [Int8](repeating: 0, count: x.count)
        mn_quantize_s8(x, &q, Int64(x.count), 1, 0)
        XCTAssertEqual(q, [0, 2, 2, 0, -2, 127, -128, -128])
        var back = [Float](repeating: 0, count: 3)
        mn_dequantize_s8([-128, 0, 127], &back, 3, 0.5, -10)
        XCTAssertEqual(back, [-59, 5, 68.5])
    }

    func testSoftmaxAndLogSoftmax() {
        let x: [Float] = [1, 2, 3, 1000, 1000, 1000]
        var y = [Float](repeating: 0, count: 6)
        mn_softmax_f32(x, &y, 2, 3, 0)
        let e = [exp(-2.0), exp(-1.0), 1.0]
        for i in 0..<3 { XCTAssertEqual(Double(y[i]), e[i] / e.reduce(0, +), accuracy: 1e-6) }
        for i in 3..<6 { XCTAssertEqual(y[i], 1.0 / 3, accuracy: 1e-6) }
        mn_softmax_f32(x, &y, 2, 3, 1)
        XCTAssertEqual(Double(y[2]), log(1 / e.reduce(0, +)), accuracy: 1e-5)
    }

    /// One element a sample (a column of ids): the typed path against the general walk (rank 2,
    /// which does not take it), for 8- and 4-byte elements.
    func testStridedCopyOfOneElementPerSample() {
        let ids: [Int64] = (0..<(5 * 26)).map { Int64($0 * 7 - 40) }
        let ids32 = ids.map { Int32($0) }
        for column in [0, 13, 25] {
            var fast = [Int64](repeating: 0, count: 5), walked = fast
            var fast32 = [Int32](repeating: 0, count: 5), walked32 = fast32
            mn_strided_copy(ids, &fast, 8, 1, [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], Int64(column), 5, 26)
            mn_strided_copy(ids, &walked, 8, 2, [1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], Int64(column), 5, 26)
            mn_strided_copy(ids32, &fast32, 4, 1, [1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], Int64(column), 5, 26)
            mn_strided_copy(ids32, &walked32, 4, 2, [1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], Int64(column), 5, 26)
            let expected = (0..<5).map { ids[$0 * 26 + column] }
            XCTAssertEqual(fast, expected)
            XCTAssertEqual(walked, expected)
            XCTAssertEqual(fast32, expected.map { Int32($0) })
            XCTAssertEqual(walked32, expected.map { Int32($0) })
        }
    }

    /// Take of constant positions, single values (DLRM's triangle) and rows, over a batch.
    func testTakePicksThePositionsOfEverySample() {
        let rows = 9, batch = 3
        let picks: [Int64] = [3, 0, 8, 8, 4]
        for inner in [1, 3] {
            let x = (0..<(batch * rows * inner)).map { Float($0) * 0.5 }
            var y = [Float](repeating: -1, count: batch * picks.count * inner)
            mn_take_f32(x, Int64(rows), Int64(inner), picks, Int64(picks.count), Int64(batch), &y)
            var expected: [Float] = []
            for b in 0..<batch { for p in picks { for e in 0..<inner { expected.append(x[(b * rows + Int(p)) * inner + e]) } } }
            XCTAssertEqual(y, expected, "inner \(inner)")
        }
    }
}
