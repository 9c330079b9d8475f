import Foundation
import MinnowParity
import XCTest

final class MetricsTests: XCTestCase {
    func testROCAUCMatchesHandComputedValues() {
        XCTAssertEqual(Metrics.rocAUC(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]), 0.75, accuracy: 1e-12)
        XCTAssertEqual(Metrics.rocAUC(scores: [0.5, 0.5, 0.5, 0.5], labels: [0, 1, 0, 1]), 0.5, accuracy: 1e-12)
        XCTAssertEqual(Metrics.rocAUC(scores: [0.9, 0.8, 0.1], labels: [1, 1, 0]), 1, accuracy: 1e-12)
        XCTAssertTrue(Metrics.rocAUC(scores: [0.1, 0.2], labels: [1, 1]).isNaN)
    }

    func testErrorsCosineAndSNR() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 2, 3, 5]
        XCTAssertEqual(Metrics.maxAbsError(a, b), 1)
        XCTAssertEqual(Metrics.meanAbsError(a, b), 0.25)
        XCTAssertEqual(Metrics.rmse(a, b), 0.5)
        XCTAssertEqual(Metrics.snrDB(reference: a, ours: b), 10 * log10(30.0), accuracy: 1e-9)
        XCTAssertEqual(Metrics.cosines([1, 0, 0, 1], [2, 0, 0, -1], width: 2), [1, -1])
        XCTAssertEqual(Metrics.snrDB(reference: a, ours: a), .infinity)
    }

    func testClassificationMetrics() {
        let ref: [Float] = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4]
        let ours: [Float] = [0.8, 0.2, 0.6, 0.4, 0.7, 0.3]
        XCTAssertEqual(Metrics.top1Agreement(ref, ours, width: 2), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(Metrics.accuracy(scores: ref, width: 2, labels: [0, 1, 1]), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(Metrics.binaryAccuracy(scores: [0.2, 0.7, 0.5], labels: [0, 1, 0]), 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(Metrics.logLoss(probabilities: [0.5], labels: [1]), log(2), accuracy: 1e-9)
        XCTAssertEqual(Metrics.topKOverlap([3, 2, 1, 0], [0, 2, 3, 1], width: 4, k: 2), 0.5)
    }

    func testRankingMetrics() {
        // Two samples, four items; labels 2 and 0.
        let scores: [Float] = [0.1, 0.5, 0.4, 0.0, 0.9, 0.8, 0.7, 0.6]
        XCTAssertEqual(Metrics.recallAtK(scores: scores, width: 4, labels: [2, 0], k: 1), 0.5)
        XCTAssertEqual(Metrics.recallAtK(scores: scores, width: 4, labels: [2, 0], k: 2), 1)
        XCTAssertEqual(Metrics.ndcgAtK(scores: scores, width: 4, labels: [2, 0], k: 2), (1 / log2(3.0) + 1) / 2, accuracy: 1e-12)
        let prf = Metrics.precisionRecallF1(predicted: [1, 1, 0, 0], labels: [1, 0, 1, 0], classes: [1])
        XCTAssertEqual(prf.precision, 0.5)
        XCTAssertEqual(prf.recall, 0.5)
        XCTAssertEqual(prf.f1, 0.5)
        let roc = Metrics.rocCurve(scores: [0.9, 0.8, 0.3, 0.1], labels: [1, 0, 1, 0])
        XCTAssertEqual(roc.map(\.fpr), [0, 0, 0.5, 0.5, 1])
        XCTAssertEqual(roc.map(\.tpr), [0, 0.5, 0.5, 1, 1])
    }

    func testThresholds() {
        XCTAssertTrue(Threshold.min(0.99).holds(ours: 0.995, trainer: nil))
        XCTAssertFalse(Threshold.max(0.01).holds(ours: 0.02, trainer: nil))
        XCTAssertTrue(Threshold.maxDrop(0.005).holds(ours: 0.990, trainer: 0.994))
        XCTAssertFalse(Threshold.maxDrop(0.005).holds(ours: 0.980, trainer: 0.994))
        XCTAssertTrue(Threshold.maxRisePct(3).holds(ours: 102.9, trainer: 100))
        XCTAssertFalse(Threshold.maxRisePct(3).holds(ours: 103.1, trainer: 100))
        XCTAssertFalse(Threshold.min(0).holds(ours: .nan, trainer: nil))
    }

    func testSpecParsingNamesTheProblem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minnow-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func parse(_ json: String) -> String {
            let p = dir.appendingPathComponent("s.json")
            try! Data(json.utf8).write(to: p)
            do { _ = try ParitySpec.load(path: p.path); return "ok" } catch { return "\(error)" }
        }
        XCTAssertEqual(parse(#"{"task": "multiclass", "outputs": {"y": {"cosine_min": {"min": 0.99}}}, "labels": {"accuracy": {"max_drop": 0.005}}, "k": 10}"#), "ok")
        XCTAssertEqual(parse("{}"), "ok")
        XCTAssertTrue(parse(#"{"outputs": {"y": {"roc_auc": {"min": 1}}}}"#).contains("unknown metric 'roc_auc' in outputs.y"))
        XCTAssertTrue(parse(#"{"labels": {"auc": {"min": 1}}}"#).contains("unknown metric 'auc' in labels"))
        XCTAssertTrue(parse(#"{"labels": {"roc_auc": {"atleast": 1}}}"#).contains("unknown threshold 'atleast'"))
        XCTAssertTrue(parse(#"{"task": "classification"}"#).contains("task must be one of multiclass, binary, regression, ranking"))
        XCTAssertTrue(parse(#"{"k": 0}"#).contains("k must be a positive integer"))
        XCTAssertTrue(parse(#"{"thresholds": {}}"#).contains("unknown key 'thresholds'"))
        XCTAssertTrue(parse("not json").contains("not a JSON object"))
    }
}
