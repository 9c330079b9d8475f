import MinnowKernels
import XCTest

/// The pool's element-wise splits (broadcast arithmetic, layout copies, quantization) give the
/// bytes the unsplit kernels give, on shapes above the split size: the outer axis of a broadcast
/// that is 1 (the split moves inward), extents that do not divide by the thread count, a
/// quantization whose length is not a multiple of its 64-value chunks.
final class ParallelSplitTests: XCTestCase {
    func testElementwiseSplitsMatchOneThread() throws {
        let table = mn_kernels()!
        for threads: Int32 in [2, 3] {
            let pool = try XCTUnwrap(mn_pool_create(threads))
            defer { mn_pool_destroy(pool) }

            // y[i, j, k, l] = a[i, j, k, l] op b[i, 0, k, 0]: dims with a leading 1 and an odd outer extent.
            for dims: [Int64] in [[1, 37, 33, 41], [5, 3, 47, 53], [67, 1, 1, 600]] {
                let count = Int(dims.reduce(1, *))
                let a = (0..<count).map { _ in Float.random(in: -4...4) }
                let b = (0..<Int(dims[0] * dims[2])).map { _ in Float.random(in: 0.5...4) }
                let aS: [Int64] = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1]
                let bS: [Int64] = [dims[2], 0, 1, 0]
                for op: Int32 in [0, 3, 5] {
                    var one = [Float](repeating: .nan, count: count), split = one
                    mn_binary_f32(op, a, aS, b, bS, &one, dims)
                    mn_par_binary_f32(pool, op, a, aS, b, bS, &split, dims)
                    XCTAssertEqual(one.map(\.bitPattern), split.map(\.bitPattern), "binary op \(op) dims \(dims) threads \(threads)")
                }
            }

            // A transpose of each sample [S, H, D] -> [H, S, D] over 41 samples.
            let (batch, s, h, d): (Int64, Int64, Int64, Int64) = (41, 51, 2, 16)
            let x = (0..<Int(batch * s * h * d)).map { Float($0) }
            var one = [Float](repeating: .nan, count: x.count), split = one
            let dims: [Int64] = [h, s, d, 1, 1, 1], strides: [Int64] = [d, h * d, 1, 0, 0, 0]
            mn_strided_copy(x, &one, 4, 3, dims, strides, 0, batch, s * h * d)
            mn_par_strided_copy(pool, x, &split, 4, 3, dims, strides, 0, batch, s * h * d)
            XCTAssertEqual(one, split, "strided copy threads \(threads)")
            XCTAssertEqual(one[Int(d)], x[Int(h * d)], "head 0's second row is the second position's first head")

            let n = 40_000 + 13
            let f = (0..<n).map { _ in Float.random(in: -3...3) }
            var q1 = [Int8](repeating: 0, count: n), q2 = q1
            table.pointee.quantize_s8(f, &q1, Int64(n), 0.02, -3)
            mn_par_quantize_s8(pool, table, f, &q2, Int64(n), 0.02, -3)
            XCTAssertEqual(q1, q2, "quantize threads \(threads)")
        }
    }
}
