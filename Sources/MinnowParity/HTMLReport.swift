import Foundation

// parity.html: one self-contained page (inline CSS and SVG, no scripts, no network) with the
// verdict, the metric table, and per output an error histogram, a reference-vs-ours scatter and,
// for binary classifiers, ROC curves; plus the per-layer attribution chart when computed.

extension ParityReport {
    public func html(title: String) -> String {
        var body = ""
        let verdict = passed ? "PASS" : "FAIL"
        body += "<h1>Minnow parity: \(esc(title))</h1>\n"
        body += "<div class=\"verdict \(passed ? "pass" : "fail")\" id=\"verdict\">\(verdict): "
        body += passed ? "every threshold holds" : "\(violations.count) threshold(s) violated (\(esc(violations.map { "\($0.output) \($0.metric)" }.joined(separator: ", "))))"
        body += "</div>\n<p>Task: <b>\(esc(task?.rawValue ?? "unknown"))</b> (\(esc(taskSource))); \(samples) samples; thresholds: \(esc(thresholdsSource)).</p>\n"
        body += metricTable()
        for s in series {
            body += "<h2>Output <code>\(esc(s.name))</code></h2>\n<div class=\"charts\">\n"
            body += errorHistogram(s)
            body += scatter(s)
            if let labels = s.labels, s.width == 1, task == .binary {
                let ints = labels.map { Int($0) }
                body += rocChart(trainer: Metrics.rocCurve(scores: s.reference, labels: ints),
                                 ours: Metrics.rocCurve(scores: s.ours, labels: ints), name: s.name)
            }
            body += "</div>\n"
        }
        if let layers, !layers.isEmpty { body += layerChart(layers) }
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Minnow parity: \(esc(title))</title>
        <style>
        body{font-family:system-ui,-apple-system,sans-serif;margin:2em;color:#222;max-width:1100px}
        .verdict{font-size:1.4em;font-weight:bold;padding:.5em 1em;border-radius:6px;margin:1em 0}
        .pass{background:#e3f6e8;color:#14642c}.fail{background:#fde8e8;color:#9b1c1c}
        table{border-collapse:collapse;font-size:.9em}td,th{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left}
        tr.bad td{color:#9b1c1c;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:1em}
        svg{background:#fafafa;border:1px solid #e5e5e5;border-radius:4px}svg text{font-size:11px;fill:#333}
        </style></head><body>
        \(body)</body></html>

        """
    }

    private func metricTable() -> String {
        var t = "<table id=\"metrics\"><tr><th>output</th><th>metric</th><th>against</th><th>trainer</th><th>minnow</th><th>threshold</th><th>status</th></tr>\n"
        for r in violations + rows.filter({ $0.passed != false }) {
            t += "<tr class=\"\(r.passed == false ? "bad" : "")\"><td>\(esc(r.output))</td><td>\(esc(r.metric))</td><td>\(r.against.rawValue)</td>"
            t += "<td>\(r.trainer.map(fmt) ?? "-")</td><td>\(fmt(r.ours))</td><td>\(esc(r.threshold?.description ?? ""))</td>"
            t += "<td>\(r.passed.map { $0 ? "ok" : "FAIL" } ?? "")</td></tr>\n"
        }
        return t + "</table>\n"
    }

    private func errorHistogram(_ s: OutputSeries) -> String {
        let errors = zip(s.ours, s.reference).map { Double($0 - $1) }
        let lo = errors.min() ?? 0, hi = errors.max() ?? 0
        let bins = 40
        var counts = [Int](repeating: 0, count: bins)
        let span = hi > lo ? hi - lo : 1
        for e in errors { counts[min(bins - 1, Int((e - lo) / span * Double(bins)))] += 1 }
        let chart = Chart(title: "Error histogram (minnow - trainer)", xLabel: "error", yLabel: "count",
                          x: (lo, hi > lo ? hi : lo + 1), y: (0, Double(counts.max() ?? 1)), id: "hist-\(s.name)")
        var marks = ""
        for (i, c) in counts.enumerated() where c > 0 {
            let x0 = chart.px(lo + Double(i) * span / Double(bins)), x1 = chart.px(lo + Double(i + 1) * span / Double(bins))
            let y = chart.py(Double(c))
            marks += "<rect x=\"\(f(x0))\" y=\"\(f(y))\" width=\"\(f(max(x1 - x0 - 1, 1)))\" height=\"\(f(chart.py(0) - y))\" fill=\"#4a7bd0\"/>"
        }
        return chart.svg(marks)
    }

    private func scatter(_ s: OutputSeries) -> String {
        let n = s.reference.count
        let step = max(1, n / 1500)
        let all = s.reference + s.ours
        let lo = Double(all.min() ?? 0), hi = Double(all.max() ?? 1)
        let range = hi > lo ? (lo, hi) : (lo - 1, hi + 1)
        let chart = Chart(title: "Trainer vs minnow (\(n > 1500 ? "every \(step)th of " : "")\(n) values)", xLabel: "trainer",
                          yLabel: "minnow", x: range, y: range, id: "scatter-\(s.name)")
        var marks = "<line x1=\"\(f(chart.px(range.0)))\" y1=\"\(f(chart.py(range.0)))\" x2=\"\(f(chart.px(range.1)))\" y2=\"\(f(chart.py(range.1)))\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>"
        for i in stride(from: 0, to: n, by: step) {
            marks += "<circle cx=\"\(f(chart.px(Double(s.reference[i]))))\" cy=\"\(f(chart.py(Double(s.ours[i]))))\" r=\"1.6\" fill=\"#d0573a\" fill-opacity=\".6\"/>"
        }
        return chart.svg(marks)
    }

    private func rocChart(trainer: [(fpr: Double, tpr: Double)], ours: [(fpr: Double, tpr: Double)], name: String) -> String {
        let chart = Chart(title: "ROC: trainer (blue) vs minnow (red, dashed)", xLabel: "false positive rate",
                          yLabel: "true positive rate", x: (0, 1), y: (0, 1), id: "roc-\(name)")
        func path(_ pts: [(fpr: Double, tpr: Double)]) -> String {
            pts.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(f(chart.px($0.element.fpr))),\(f(chart.py($0.element.tpr)))" }.joined()
        }
        let marks = "<line x1=\"\(f(chart.px(0)))\" y1=\"\(f(chart.py(0)))\" x2=\"\(f(chart.px(1)))\" y2=\"\(f(chart.py(1)))\" stroke=\"#ccc\"/>"
            + "<path class=\"roc-trainer\" d=\"\(path(trainer))\" fill=\"none\" stroke=\"#4a7bd0\" stroke-width=\"2\"/>"
            + "<path class=\"roc-ours\" d=\"\(path(ours))\" fill=\"none\" stroke=\"#d0573a\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>"
        return chart.svg(marks)
    }

    private func layerChart(_ layers: [LayerError]) -> String {
        let shown = Array(layers.prefix(30))
        let rowH = 22.0, left = 260.0, width = 760.0
        let height = Double(shown.count) * rowH + 50
        var svg = "<h2>Per-layer attribution</h2>\n<p>Each layer's SNR against the float graph and its share of the added quantization noise, worst first. Keep the worst layers in float with <code>--keep-float</code>.</p>\n"
        svg += "<svg id=\"layers\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (i, l) in shown.enumerated() {
            let y = 30 + Double(i) * rowH
            let w = max(1, (width - left - 120) * l.share)
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 14))\" text-anchor=\"end\">\(esc(String(l.layer.prefix(38)))) [\(esc(l.opType))]</text>"
            svg += "<rect class=\"layer-bar\" x=\"\(f(left))\" y=\"\(f(y + 3))\" width=\"\(f(w))\" height=\"\(f(rowH - 6))\" fill=\"\(l.int8 ? "#d0573a" : "#888")\"/>"
            svg += "<text x=\"\(f(left + w + 6))\" y=\"\(f(y + 14))\">\(String(format: "%.1f", l.share * 100))%, \(esc(fmt(l.snrDB))) dB</text>"
        }
        svg += "<text x=\"\(f(left))\" y=\"18\">share of quantization noise (red: int8 layer)</text></svg>\n"
        return svg
    }
}

/// A 360x260 plot area with linear axes, tick labels and a title.
struct Chart {
    let title: String, xLabel: String, yLabel: String
    let x: (Double, Double), y: (Double, Double)
    let id: String
    let w = 360.0, h = 260.0, ml = 52.0, mr = 12.0, mt = 26.0, mb = 40.0

    func px(_ v: Double) -> Double { ml + (v - x.0) / (x.1 - x.0) * (w - ml - mr) }
    func py(_ v: Double) -> Double { h - mb - (v - y.0) / (y.1 - y.0) * (h - mt - mb) }

    func svg(_ marks: String) -> String {
        var s = "<svg id=\"\(esc(id))\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" xmlns=\"http://www.w3.org/2000/svg\">"
        s += "<text x=\"\(f(w / 2))\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">\(esc(title))</text>"
        s += "<line x1=\"\(f(ml))\" y1=\"\(f(h - mb))\" x2=\"\(f(w - mr))\" y2=\"\(f(h - mb))\" stroke=\"#555\"/>"
        s += "<line x1=\"\(f(ml))\" y1=\"\(f(mt))\" x2=\"\(f(ml))\" y2=\"\(f(h - mb))\" stroke=\"#555\"/>"
        for i in 0...4 {
            let xv = x.0 + (x.1 - x.0) * Double(i) / 4, yv = y.0 + (y.1 - y.0) * Double(i) / 4
            s += "<text x=\"\(f(px(xv)))\" y=\"\(f(h - mb + 14))\" text-anchor=\"middle\">\(tick(xv))</text>"
            s += "<text x=\"\(f(ml - 4))\" y=\"\(f(py(yv) + 4))\" text-anchor=\"end\">\(tick(yv))</text>"
        }
        s += "<text x=\"\(f((ml + w - mr) / 2))\" y=\"\(f(h - 6))\" text-anchor=\"middle\">\(esc(xLabel))</text>"
        s += "<text x=\"12\" y=\"\(f((mt + h - mb) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(f((mt + h - mb) / 2)))\">\(esc(yLabel))</text>"
        return s + marks + "</svg>\n"
    }

    private func tick(_ v: Double) -> String {
        if abs(v) < 1e-9 * max(abs(x.1 - x.0), abs(y.1 - y.0), 1e-30) { return "0" }
        return abs(v) >= 1000 || (abs(v) < 0.01 && v != 0) ? String(format: "%.1e", v) : String(format: "%.3g", v)
    }
}

private func f(_ v: Double) -> String { String(format: "%.1f", v.isFinite ? v : 0) }
func esc(_ s: String) -> String { xmlEscape(s) }
