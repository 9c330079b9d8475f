import CAllocCounter
import Foundation
import MinnowConvert
import MinnowFormat
import MinnowParity
import MinnowRuntime
import XCTest

/// BERT encoders from Hugging Face `transformers`, exported by the stock torch exporter with no
/// hand edits: `tiny_bert` (the fixture, mean-pooled) and `bert_user_seq128` (another config,
/// exported the way a user does, with dynamic batch and sequence axes, converted with --max-seq).
final class BertFixtureTests: XCTestCase {
    nonisolated(unsafe) static var cache: [String: Model] = [:]

    /// With `maxSeq`, the model takes lengths 2, 17, 64 and maxSeq: every length (the default) is
    /// the Python suite's to try against onnxruntime; converting 127 graphs in the AddressSanitizer
    /// run would take four minutes.
    func convert(_ name: String, _ mode: QuantizationMode, maxSeq: Int? = nil) throws -> Model {
        let key = "\(name)/\(mode)"
        if let hit = Self.cache[key] { return hit }
        var options = ConvertOptions()
        options.mode = mode
        options.maxSeq = maxSeq
        options.sequenceLengths = [2, 17, 64]
        options.calibrationPath = fixture(name, "calibration.npz")
        let result = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: options)
        let model = try Model(bytes: AlignedBytes(result.bytes))
        Self.cache[key] = model
        return model
    }

    func report(_ model: Model, _ name: String) throws -> ParityReport {
        try Parity.evaluate(model: model, referencePath: fixture(name, "reference.npz"),
                            spec: try ParitySpec.load(path: fixture(name, "parity.json")))
    }

    func testTinyBertKeepsEmbeddingCosineInEveryMode() throws {
        for mode in QuantizationMode.allCases {
            let r = try report(try convert("tiny_bert", mode), "tiny_bert")
            XCTAssertTrue(r.passed, "\(mode)\n\(r.table())")
            let cos = r.rows.first { $0.metric == "cosine_min" && $0.against == .trainer }!
            XCTAssertGreaterThanOrEqual(cos.ours, 0.99, "\(mode): the worst sample's embedding cosine")
            if mode == .float {
                XCTAssertLessThanOrEqual(r.rows.first { $0.metric == "max_abs_error" }!.ours, 1e-4)
            }
        }
    }

    func testDefaultConversionKeepsTheMaskPathFloat() throws {
        // DESIGN §11: the additive mask (Where(mask, 0, -3.4e38)) and the softmax it feeds stay fp32.
        let model = try convert("tiny_bert", .static)
        let ops = model.description.operators
        let masks = ops.filter { $0.opcode == .where }
        XCTAssertFalse(masks.isEmpty)
        for op in ops where op.opcode == .where || op.opcode == .softmax {
            XCTAssertEqual(model.description.tensors[Int(op.outputs[0])].dtype, .float32, "\(op.opcode)")
        }
        XCTAssertTrue(ops.contains { $0.opcode == .dense && model.description.tensors[Int($0.inputs[1])].dtype == .int8 },
                      "the projections are int8")
    }

    func testPaddedTokensDoNotChangeTheEmbedding() throws {
        // The attention mask works: whatever ids sit under mask 0, the mean-pooled embedding is the same.
        let model = try convert("tiny_bert", .float)
        let reference = try ReferenceSet.load(path: fixture("tiny_bert", "reference.npz"), model: model)
        let seq = model.inputs[0].elementsPerSample
        let ids = Array(reference.inputs[0].prefix(8 * seq)), mask = Array(reference.inputs[1].prefix(8 * seq))
        XCTAssertTrue(mask.contains(0), "the reference has padded samples")
        var noisy = ids
        for i in noisy.indices where mask[i] == 0 { noisy[i] = Float(10 + (i * 37) % 900) }
        let session = try Session(model: model, maxBatch: 8)
        try session.setInput(1, floats: mask)
        try session.setInput(0, floats: ids)
        try session.run(batch: 8)
        let clean = session.outputFloats(0, batch: 8)
        try session.setInput(0, floats: noisy)
        try session.run(batch: 8)
        let padded = session.outputFloats(0, batch: 8)
        for (a, b) in zip(clean, padded) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testInferenceIsAllocationFreeAtEveryBatch() throws {
        XCTAssertEqual(minnow_alloc_counter_active(), 1)
        for (name, maxSeq) in [("tiny_bert", nil), ("bert_user_seq128", 128)] as [(String, Int?)] {
            let model = try convert(name, .static, maxSeq: maxSeq)
            let reference = try ReferenceSet.load(path: fixture(name, "reference.npz"), model: model)
            let session = try Session(model: model, maxBatch: 32)
            for (i, spec) in model.inputs.enumerated() {
                try session.setInput(i, floats: Array(reference.inputs[i].prefix(32 * spec.elementsPerSample)))
            }
            try session.run(batch: 32)
            for batch in [1, 7, 32] {
                minnow_alloc_reset()
                try session.run(batch: batch)
                XCTAssertEqual(minnow_alloc_count(), 0, "\(name) batch \(batch)")
            }
        }
    }

    func testSequenceLengthsSwitchPerRunWithoutAllocating() throws {
        // bert_user_seq128 converted with --max-seq 128 and lengths 2, 17, 64 (every length by
        // default: tools/tests/test_sequence_lengths.py).
        let model = try convert("bert_user_seq128", .static, maxSeq: 128)
        XCTAssertEqual(model.sequenceLengths, [2, 17, 64, 128])
        let session = try Session(model: model, maxBatch: 8)
        XCTAssertEqual(session.sequenceLength, 128, "a session starts at the longest length")
        XCTAssertThrowsError(try session.setSequenceLength(3)) { e in
            XCTAssertEqual("\(e)", "sequence length 3 is not one the model accepts (2, 17, 64, 128)")
        }
        XCTAssertThrowsError(try session.setSequenceLength(129))
        let ids = (0..<(8 * 128)).map { Float(1 + ($0 * 7919) % 2999) }
        var last: [Float] = []
        for length in [17, 2, 128, 64, 17] {
            try session.setSequenceLength(length)
            XCTAssertEqual(session.inputs.map(\.shape), [[-1, length], [-1, length]])
            XCTAssertEqual(session.outputs[0].shape, [-1, length, 96])
            try session.setInput(0, floats: Array(ids.prefix(8 * length)))
            try session.setInput(1, floats: [Float](repeating: 1, count: 8 * length))
            try session.run(batch: 8)
            for batch in [1, 8] {
                minnow_alloc_reset()
                try session.setSequenceLength(length)
                try session.run(batch: batch)
                XCTAssertEqual(minnow_alloc_count(), 0, "length \(length) batch \(batch)")
            }
            let pooled = session.outputFloats(1, batch: 8)
            XCTAssertEqual(pooled.count, 8 * 96)
            XCTAssertTrue(pooled.allSatisfy(\.isFinite))
            if length == 17 && !last.isEmpty { XCTAssertEqual(pooled, last, "the same inputs at the same length give the same result") }
            if length == 17 { last = pooled }
        }
        // A fixed-length model has no lengths to switch to.
        let fixed = try Session(model: try convert("tiny_bert", .static))
        XCTAssertEqual(fixed.model.sequenceLengths, [])
        XCTAssertThrowsError(try fixed.setSequenceLength(16)) { e in XCTAssertTrue("\(e)".contains("fixed length"), "\(e)") }
    }

    func testAUsersBertExportConvertsWithMaxSeq() throws {
        // Exported with dynamic batch and sequence axes: refused without a length, with the flag named.
        var options = ConvertOptions()
        options.mode = .float
        XCTAssertThrowsError(try Converter.convert(onnxPath: fixture("bert_user_seq128", "model.onnx"), options: options)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("input_ids") && text.contains("dimension 1") && text.contains("--max-seq"), text)
        }
        for mode in [QuantizationMode.static, .float] {
            let model = try convert("bert_user_seq128", mode, maxSeq: 128)
            XCTAssertEqual(model.inputs.map(\.elementsPerSample), [128, 128])
            let r = try report(model, "bert_user_seq128")
            XCTAssertTrue(r.passed, "\(mode)\n\(r.table())")
            for row in r.rows where row.metric == "cosine_min" {
                XCTAssertGreaterThanOrEqual(row.ours, 0.99, "\(mode) \(row.output)")
            }
        }
    }
}
