import Foundation

// Parity metrics (DESIGN §6). Inputs are row-major [samples, width] arrays.

public enum Metrics {
    public static func maxAbsError(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { max($0, Double(abs($1.0 - $1.1))) }
    }

    public static func meanAbsError(_ a: [Float], _ b: [Float]) -> Double {
        a.isEmpty ? 0 : zip(a, b).reduce(0) { $0 + Double(abs($1.0 - $1.1)) } / Double(a.count)
    }

    public static func rmse(_ a: [Float], _ b: [Float]) -> Double {
        a.isEmpty ? 0 : (zip(a, b).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(a.count)).squareRoot()
    }

    /// Cosine similarity of each sample's row; a zero row against a zero row counts as 1.
    public static func cosines(_ a: [Float], _ b: [Float], width: Int) -> [Double] {
        guard width > 0 else { return [] }
        return stride(from: 0, to: a.count, by: width).map { s in
            var dot = 0.0, na = 0.0, nb = 0.0
            for i in s..<(s + width) {
                dot += Double(a[i]) * Double(b[i]); na += Double(a[i] * a[i]); nb += Double(b[i] * b[i])
            }
            if na == 0 && nb == 0 { return 1 }
            if na == 0 || nb == 0 { return 0 }
            return dot / (na.squareRoot() * nb.squareRoot())
        }
    }

    /// Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - ours)^2).
    public static func snrDB(reference: [Float], ours: [Float]) -> Double {
        var signal = 0.0, noise = 0.0
        for (r, o) in zip(reference, ours) { signal += Double(r * r); noise += Double((r - o) * (r - o)) }
        if noise == 0 { return .infinity }
        return 10 * log10(max(signal, 1e-30) / noise)
    }

    public static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = row.startIndex
        for i in row.indices where row[i] > row[best] { best = i }
        return best - row.startIndex
    }

    public static func top1Agreement(_ a: [Float], _ b: [Float], width: Int) -> Double {
        let n = a.count / width
        guard n > 0 else { return 1 }
        var agree = 0
        for s in 0..<n where argmax(a[(s * width)..<((s + 1) * width)]) == argmax(b[(s * width)..<((s + 1) * width)]) { agree += 1 }
        return Double(agree) / Double(n)
    }

    public static func topK(_ row: ArraySlice<Float>, _ k: Int) -> Set<Int> {
        Set(row.indices.sorted { row[$0] > row[$1] }.prefix(k).map { $0 - row.startIndex })
    }

    /// Mean fraction of the reference's top-k classes that ours also ranks in its top-k.
    public static func topKOverlap(_ a: [Float], _ b: [Float], width: Int, k: Int) -> Double {
        let n = a.count / width
        guard n > 0 else { return 1 }
        var total = 0.0
        for s in 0..<n {
            let r = (s * width)..<((s + 1) * width)
            total += Double(topK(a[r], k).intersection(topK(b[r], k)).count) / Double(min(k, width))
        }
        return total / Double(n)
    }

    /// Classification accuracy of scores [n, classes] against integer labels.
    public static func accuracy(scores: [Float], width: Int, labels: [Int]) -> Double {
        guard !labels.isEmpty else { return 0 }
        var right = 0
        for (s, l) in labels.enumerated() where argmax(scores[(s * width)..<((s + 1) * width)]) == l { right += 1 }
        return Double(right) / Double(labels.count)
    }

    /// Binary accuracy: a score at or above `threshold` predicts 1 (0.5 for probabilities, 0 for logits).
    public static func binaryAccuracy(scores: [Float], labels: [Int], threshold: Float = 0.5) -> Double {
        guard !labels.isEmpty else { return 0 }
        return Double(zip(scores, labels).filter { ($0.0 >= threshold ? 1 : 0) == $0.1 }.count) / Double(labels.count)
    }

    /// ROC AUC by the rank-sum (Mann-Whitney) statistic, with ties given average ranks.
    public static func rocAUC(scores: [Float], labels: [Int]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var ranks = [Double](repeating: 0, count: scores.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for k in i...j { ranks[order[k]] = avg }
            i = j + 1
        }
        let pos = labels.filter { $0 == 1 }.count, neg = labels.count - pos
        guard pos > 0, neg > 0 else { return .nan }
        let sumPos = zip(ranks, labels).filter { $0.1 == 1 }.reduce(0) { $0 + $1.0 }
        return (sumPos - Double(pos * (pos + 1)) / 2) / Double(pos * neg)
    }

    public static func logLoss(probabilities: [Float], labels: [Int]) -> Double {
        guard !labels.isEmpty else { return 0 }
        let eps = 1e-7
        return -zip(probabilities, labels).reduce(0.0) { acc, pl in
            let p = min(max(Double(pl.0), eps), 1 - eps)
            return acc + (pl.1 == 1 ? log(p) : log(1 - p))
        } / Double(labels.count)
    }

    /// 1-based rank of `label` in a row of scores (ties count against us).
    public static func rank(of label: Int, in row: ArraySlice<Float>) -> Int {
        let target = row[row.startIndex + label]
        return 1 + row.filter { $0 > target }.count
    }

    /// Fraction of samples whose label is among the top-k scores (one relevant item per sample).
    public static func recallAtK(scores: [Float], width: Int, labels: [Int], k: Int) -> Double {
        guard !labels.isEmpty else { return 0 }
        var hits = 0
        for (s, l) in labels.enumerated() where l >= 0 && l < width && rank(of: l, in: scores[(s * width)..<((s + 1) * width)]) <= k { hits += 1 }
        return Double(hits) / Double(labels.count)
    }

    /// NDCG@k with one relevant item per sample: 1 / log2(rank + 1) when rank <= k, else 0.
    public static func ndcgAtK(scores: [Float], width: Int, labels: [Int], k: Int) -> Double {
        guard !labels.isEmpty else { return 0 }
        var total = 0.0
        for (s, l) in labels.enumerated() where l >= 0 && l < width {
            let r = rank(of: l, in: scores[(s * width)..<((s + 1) * width)])
            if r <= k { total += 1 / log2(Double(r) + 1) }
        }
        return total / Double(labels.count)
    }

    /// Precision, recall and F1 of the positive class (binary), or macro-averaged over classes.
    public static func precisionRecallF1(predicted: [Int], labels: [Int], classes: [Int]) -> (precision: Double, recall: Double, f1: Double) {
        var ps: [Double] = [], rs: [Double] = [], fs: [Double] = []
        for c in classes {
            var tp = 0, fp = 0, fn = 0
            for (p, l) in zip(predicted, labels) {
                if p == c && l == c { tp += 1 } else if p == c { fp += 1 } else if l == c { fn += 1 }
            }
            let precision = tp + fp == 0 ? 0 : Double(tp) / Double(tp + fp)
            let recall = tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn)
            ps.append(precision)
            rs.append(recall)
            fs.append(precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall))
        }
        let n = Double(max(classes.count, 1))
        return (ps.reduce(0, +) / n, rs.reduce(0, +) / n, fs.reduce(0, +) / n)
    }

    /// Multiclass log loss of probability rows against integer labels.
    public static func logLoss(probabilities: [Float], width: Int, labels: [Int]) -> Double {
        guard !labels.isEmpty else { return 0 }
        var total = 0.0
        for (s, l) in labels.enumerated() where l >= 0 && l < width {
            total -= log(min(max(Double(probabilities[s * width + l]), 1e-7), 1))
        }
        return total / Double(labels.count)
    }

    /// ROC curve points (false positive rate, true positive rate), from the highest threshold down.
    public static func rocCurve(scores: [Float], labels: [Int]) -> [(fpr: Double, tpr: Double)] {
        let pos = Double(labels.filter { $0 == 1 }.count), neg = Double(labels.count) - pos
        guard pos > 0, neg > 0 else { return [] }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var points: [(Double, Double)] = [(0, 0)]
        var tp = 0.0, fp = 0.0
        var i = 0
        while i < order.count {
            let s = scores[order[i]]
            while i < order.count && scores[order[i]] == s {
                if labels[order[i]] == 1 { tp += 1 } else { fp += 1 }
                i += 1
            }
            points.append((fp / neg, tp / pos))
        }
        return points
    }
}
