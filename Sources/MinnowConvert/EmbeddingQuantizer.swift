import Foundation
import MinnowFormat

// Embedding tables, int8, with the row parameters chosen per table by measured error. Row
// parameters are what decides the file size of a recommendation model at small dimensions: 1.2's
// float32 scale and int8 zero point cost 5 bytes a row, a third of a 16-wide int8 row. Candidates,
// smallest first:
//   per tensor        one scale for the table, symmetric           0 bytes a row
//   log symmetric     a 1-byte log-coded scale per row              1 byte
//   log asymmetric    log-coded scale and an int8 zero point        2 bytes
//   float32           float32 scale and int8 zero point (1.2)       5 bytes
// Each is measured as an SNR: the mean of each looked-up row's relative noise power over the
// lookups calibration made (a row counts as often as traffic reads it: the error the next layer
// sees, sample by sample), or over all rows alike without calibration data. The smallest
// candidate within `toleranceDB` of the best one's SNR is kept. The compact rule (auto mode) also
// takes one with at least `cleanDB`, as clean as a well-calibrated int8 activation, and auto keeps
// that only if the graph's outputs can afford it (AutoPrecision.refine): a 40 dB table is harmless
// after a 34 dB MLP (DLRM) and not before a 41 dB LSTM.

/// What embedding quantization knows: per ids tensor name, how often calibration looked each row
/// up; and whether the compact rule may be used (auto mode, which checks it end to end).
struct TableContext {
    var lookups: [String: [Int32]] = [:]
    var compact = false
}

enum EmbeddingQuantizer {
    static let toleranceDB = 1.0
    static let cleanDB = 40.0

    /// The candidates, smallest first.
    enum Choice: CaseIterable {
        case perTensor, logSymmetric, logAsymmetric, float32
    }

    /// The table quantized with the smallest candidate the rule accepts (see the top of the file).
    static func quantize(_ w: [Float], rows: Int, dim: Int, lookups: [Int32]? = nil, compact: Bool = false) -> (q: [Int8], params: QuantParams) {
        let weights = lookups.flatMap { l in l.count == rows && l.contains { $0 > 0 } ? l : nil }
        let results = Choice.allCases.map { c in
            let (q, p) = encode(c, w, rows: rows, dim: dim)
            return (q: q, params: p, snr: snrDB(w, q, p, rows: rows, dim: dim, lookups: weights))
        }
        let best = results.map(\.snr).max() ?? 0
        let pick = results.first { $0.snr >= (compact ? min(best - toleranceDB, cleanDB) : best - toleranceDB) } ?? results.last!
        return (pick.q, pick.params)
    }

    private static func encode(_ c: Choice, _ w: [Float], rows: Int, dim: Int) -> ([Int8], QuantParams) {
        switch c {
        case .float32:
            return Quantizer.quantizeRows(w, rows: rows, dim: dim)
        case .perTensor:
            let m = w.reduce(Float(0)) { max($0, abs($1)) }
            let s = m > 0 ? m / 127 : 1
            return (w.map { Int8(max(-127, min(127, ($0 / s).rounded(.toNearestOrEven)))) }, QuantParams(scales: [s], zeroPoints: [0], axis: -1))
        case .logSymmetric, .logAsymmetric:
            let symmetric = c == .logSymmetric
            var lo = [Float](repeating: 0, count: rows), hi = lo
            for r in 0..<rows {
                for v in w[(r * dim)..<((r + 1) * dim)] { lo[r] = min(lo[r], v); hi[r] = max(hi[r], v) }
            }
            // The scale each row needs, then rounded up to a code (so no row is clipped).
            let need = (0..<rows).map { r in symmetric ? max(-lo[r], hi[r]) / 127 : (hi[r] - lo[r]) / 255 }
            let largest = max(need.max() ?? 0, 1e-30)
            var q = [Int8](repeating: 0, count: rows * dim)
            var scales = [Float](repeating: 0, count: rows), zps = [Int32](repeating: 0, count: rows)
            for r in 0..<rows {
                let s = RowEncoding.scale(code: RowEncoding.code(for: max(need[r], 1e-30), largest: largest), largest: largest)
                scales[r] = s
                let zp = symmetric ? Float(0) : max(-128, min(127, (-128 - lo[r] / s).rounded(.toNearestOrEven)))
                zps[r] = Int32(zp)
                let (qmin, qmax): (Float, Float) = symmetric ? (-127, 127) : (-128, 127)
                for i in 0..<dim {
                    q[r * dim + i] = Int8(max(qmin, min(qmax, (w[r * dim + i] / s).rounded(.toNearestOrEven) + zp)))
                }
            }
            return (q, QuantParams(scales: scales, zeroPoints: zps, axis: 0, rowEncoding: symmetric ? .logSymmetric : .logAsymmetric))
        }
    }

    /// -10 log10 of the mean of |e_r|^2 / |w_r|^2 over the lookups calibration made (row r counted
    /// n_r times), or over the rows when there are no lookups (rows of zeros skipped).
    private static func snrDB(_ w: [Float], _ q: [Int8], _ p: QuantParams, rows: Int, dim: Int, lookups: [Int32]?) -> Double {
        var total = 0.0, counted = 0, perLookup = 0.0, lookupCount = 0.0
        for r in 0..<rows {
            let s = Double(p.axis == 0 ? p.scales[r] : p.scales[0]), z = Double(p.axis == 0 ? p.zeroPoints[r] : p.zeroPoints[0])
            var signal = 0.0, noise = 0.0
            for i in 0..<dim {
                let a = Double(w[r * dim + i]), e = s * (Double(q[r * dim + i]) - z) - a
                signal += a * a
                noise += e * e
            }
            if let lookups {
                if signal > 0 { perLookup += Double(lookups[r]) * noise / signal; lookupCount += Double(lookups[r]) }
            } else if signal > 0 {
                total += noise / signal
                counted += 1
            }
        }
        if lookups != nil {
            let mean = perLookup / max(lookupCount, 1)
            return mean > 0 ? -10 * log10(mean) : 200
        }
        let mean = counted > 0 ? total / Double(counted) : 0
        return mean > 0 ? -10 * log10(mean) : 200
    }
}
