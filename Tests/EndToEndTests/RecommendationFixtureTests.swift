import CAllocCounter
import Foundation
import MinnowConvert
import MinnowFormat
import MinnowKernels
import MinnowParity
import MinnowRuntime
import XCTest

/// The recommendation and sequence fixtures (stock torch exports with embeddings, interactions,
/// attention, a bidirectional LSTM): converted with no flags beyond the calibration set, in every mode, they must pass
/// their parity specs, run allocation-free, and keep embedding tables int8 per row.
final class RecommendationFixtureTests: XCTestCase {
    static let names = ["dlrm_ctr", "bst_seqrec", "bilstm_nextitem"]

    /// Conversions are shared by the tests of this class (DLRM's tables make them the slow part).
    nonisolated(unsafe) static var cache: [String: (Model, ConversionSummary)] = [:]

    func convert(_ name: String, _ mode: QuantizationMode) throws -> (model: Model, summary: ConversionSummary) {
        let key = "\(name)/\(mode)"
        if let hit = Self.cache[key] { return hit }
        var options = ConvertOptions()
        options.mode = mode
        options.calibrationPath = fixture(name, "calibration.npz")
        let result = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: options)
        let entry = (try Model(bytes: AlignedBytes(result.bytes)), result.summary)
        Self.cache[key] = entry
        return entry
    }

    func report(_ model: Model, _ name: String) throws -> ParityReport {
        try Parity.evaluate(model: model, referencePath: fixture(name, "reference.npz"),
                            spec: try ParitySpec.load(path: fixture(name, "parity.json")))
    }

    func testEveryModePassesItsParitySpec() throws {
        for name in Self.names {
            for mode in QuantizationMode.allCases {
                let r = try report(try convert(name, mode).model, name)
                XCTAssertTrue(r.passed, "\(name) \(mode)\n\(r.table())")
                // The thresholds: AUC within 0.003 (DLRM) / 0.005 (BST), recall@10 within a point.
                let (metric, limit) = name == "bilstm_nextitem" ? ("recall_at_k", 0.01) : ("roc_auc", name == "dlrm_ctr" ? 0.003 : 0.005)
                let row = r.rows.first { $0.metric == metric && $0.against == .labels }!
                XCTAssertLessThanOrEqual(row.trainer! - row.ours, limit, "\(name) \(mode)")
                if mode == .float {
                    let err = r.rows.first { $0.metric == "max_abs_error" && $0.against == .trainer }!
                    XCTAssertLessThanOrEqual(err.ours, 1e-4, "\(name) float")
                }
            }
        }
    }

    func testEmbeddingTablesAreInt8WithCompactParametersAndReported() throws {
        for name in Self.names {
            let (model, summary) = try convert(name, .static)
            let tables = model.description.operators.filter { $0.opcode == .gather }.map { model.description.tensors[Int($0.inputs[0])] }
                .filter(\.isConstant)
            XCTAssertFalse(tables.isEmpty, name)
            for t in tables {
                XCTAssertEqual(t.dtype, .int8, "\(name) \(t.name)")
                // Per tensor (no bytes a row) or per row (format 1.5 may log-code them, by measured error).
                let q = try XCTUnwrap(t.quant, "\(name) \(t.name)")
                XCTAssertTrue(q.axis == -1 ? q.scales.count == 1 : q.axis == 0 && q.scales.count == Int(t.shape[0]), "\(name) \(t.name): \(q.axis)")
            }
            let rows = tables.reduce(0) { $0 + Int($1.shape[0] * $1.shape[1]) }
            XCTAssertEqual(summary.embeddingBytesFP32, rows * 4, name)
            XCTAssertLessThan(summary.embeddingBytesStored, rows * 4 / 3, name)
            let (floatModel, _) = try convert(name, .float)
            XCTAssertTrue(floatModel.description.operators.filter { $0.opcode == .gather }
                .allSatisfy { floatModel.description.tensors[Int($0.inputs[0])].dtype != .int8 }, "float mode keeps float tables")
        }
    }

    func testInferenceIsAllocationFreeAtEveryBatch() throws {
        XCTAssertEqual(minnow_alloc_counter_active(), 1)
        for name in Self.names {
            for mode in QuantizationMode.allCases {
                let model = try convert(name, mode).model
                let reference = try ReferenceSet.load(path: fixture(name, "reference.npz"), model: model)
                let session = try Session(model: model, maxBatch: 64)
                for (i, spec) in model.inputs.enumerated() {
                    try session.setInput(i, floats: Array(reference.inputs[i].prefix(64 * spec.elementsPerSample)))
                }
                try session.run(batch: 64)
                for batch in [1, 7, 64] {
                    minnow_alloc_reset()
                    try session.run(batch: batch)
                    XCTAssertEqual(minnow_alloc_count(), 0, "\(name) \(mode) batch \(batch)")
                }
            }
        }
    }

    /// Also when the bad id is in the second thread's samples of a sample-split run: the error
    /// names the position in the whole batch.
    func testAnIdOutsideItsTableIsATypedRunError() throws {
        let model = try convert("dlrm_ctr", .static).model
        for threads in [1, 2] {
            let session = try Session(model: model, maxBatch: 2, threads: threads)
            XCTAssertEqual(session.parallelism(batch: 2), threads == 1 ? "none" : "samples")
            let sparse = model.inputs.firstIndex { $0.name == "sparse" }!
            var ids = [Float](repeating: 1, count: 2 * 26)
            ids[26 + 3] = 6000  // table 3 has 5,000 rows
            try session.setInput(sparse, floats: ids)
            XCTAssertThrowsError(try session.run(batch: 2)) { e in
                guard case let .idOutOfRange(_, position, id, rows)? = e as? RunError else { return XCTFail("\(e)") }
                XCTAssertEqual(id, 6000)
                XCTAssertEqual(position, 1)  // the second sample of table 3's column
                XCTAssertEqual(rows, 5000)
            }
            // The session stays usable: fix the id and run again.
            ids[26 + 3] = 3
            try session.setInput(sparse, floats: ids)
            XCTAssertNoThrow(try session.run(batch: 2))
        }
    }

    func testThreadsGiveIdenticalResults() throws {
        for name in Self.names {
            let model = try convert(name, .static).model
            let reference = try ReferenceSet.load(path: fixture(name, "reference.npz"), model: model)
            let inputs = reference.inputs.enumerated().map { i, v in Array(v.prefix(200 * model.inputs[i].elementsPerSample)) }
            let one = try Session(model: model, maxBatch: 64, threads: 1)
            let expected = try one.predict(inputs: inputs, samples: 200)
            for threads in [2, 3] {
                let many = try Session(model: model, maxBatch: 64, threads: threads)
                XCTAssertEqual(expected, try many.predict(inputs: inputs, samples: 200), "\(name) threads \(threads)")
            }
        }
    }

    /// BST's head split and merge (13 copies as lowered) become strides of its four products:
    /// one layout copy is left (the last position's pick), and the outputs are the same bits as
    /// a conversion that keeps the copies.
    func testAttentionLayoutCopiesFoldIntoTheProducts() throws {
        let folded = try convert("bst_seqrec", .auto).model
        var options = ConvertOptions()
        options.calibrationPath = fixture("bst_seqrec", "calibration.npz")
        options.foldLayouts = false
        let kept = try Model(bytes: AlignedBytes(try Converter.convert(onnxPath: fixture("bst_seqrec", "model.onnx"), options: options).bytes))
        func copies(_ m: Model) -> Int { m.description.operators.filter { $0.opcode == .stridedCopy }.count }
        XCTAssertEqual(copies(kept), 13)
        XCTAssertEqual(copies(folded), 1)
        let reference = try ReferenceSet.load(path: fixture("bst_seqrec", "reference.npz"), model: folded)
        let inputs = reference.inputs.enumerated().map { i, v in Array(v.prefix(300 * folded.inputs[i].elementsPerSample)) }
        let a = try Session(model: folded, maxBatch: 64, threads: 1).predict(inputs: inputs, samples: 300)
        let b = try Session(model: kept, maxBatch: 64, threads: 1).predict(inputs: inputs, samples: 300)
        XCTAssertEqual(a, b)
    }

    /// BST's two attention blocks run as one operator each (scores, scale, mask, softmax and
    /// output product) on every table with a fused attention kernel (the x86 ones), and as the
    /// separate operators on the reference table; either way the bytes are those of a load
    /// without fusion, over 300 reference rows in batches that do not divide by 8, at one and two threads.
    func testAttentionRunsAsOneOperatorWithTheSameBytes() throws {
        let bytes = try convertBytes("bst_seqrec")
        for table in Model.kernelTables.filter(\.supported).map(\.name) {
            let fused = try Model(bytes: AlignedBytes(bytes), kernels: table)
            let apart = try Model(bytes: AlignedBytes(bytes), kernels: table, fuseAtLoad: false)
            let reference = try ReferenceSet.load(path: fixture("bst_seqrec", "reference.npz"), model: fused)
            let inputs = reference.inputs.enumerated().map { i, v in Array(v.prefix(300 * fused.inputs[i].elementsPerSample)) }
            let session = try Session(model: fused, maxBatch: 37, threads: 1)
            let a = try session.predict(inputs: inputs, samples: 300)
            let b = try Session(model: apart, maxBatch: 37, threads: 1).predict(inputs: inputs, samples: 300)
            XCTAssertEqual(a, b, table)
            XCTAssertEqual(try Session(model: fused, maxBatch: 37, threads: 2).predict(inputs: inputs, samples: 300), a, "\(table), 2 threads")
            let ran = try session.profile(batch: 5, runs: 1).operators
            let kernel = table != "reference"
            XCTAssertEqual(ran.filter { $0.opcode == "Attention" }.count, kernel ? 2 : 0, "\(table): \(ran.map(\.opcode))")
            XCTAssertEqual(ran.filter { $0.opcode == "MatMul" }.count, kernel ? 0 : 4, "\(table): \(ran.map(\.opcode))")
            XCTAssertEqual(ran.filter { $0.opcode == "Softmax" }.count, kernel ? 0 : 2, "\(table): \(ran.map(\.opcode))")
        }
    }

    /// Opt-in bf16 attention products (`attention: .bf16`): where the CPU has AVX512-BF16 the
    /// AVX-512 tables run BST's two attentions with them (the profile says so), allocation-free,
    /// the same bytes at two threads, within a bf16-sized distance of the f32 outputs; elsewhere the
    /// request runs f32, the default's very bytes. MINNOW_ATTENTION asks the same, and a value it
    /// does not know is a typed error.
    func testBF16AttentionIsOptInAndCloseToF32() throws {
        XCTAssertEqual(minnow_alloc_counter_active(), 1)
        let bytes = try convertBytes("bst_seqrec")
        for table in Model.kernelTables.filter(\.supported).map(\.name) {
            let f32 = try Model(bytes: AlignedBytes(bytes), kernels: table)
            let bf16 = try Model(bytes: AlignedBytes(bytes), kernels: table, attention: .bf16)
            let runs = ["avx512vnni", "amx"].contains(table) && mn_cpu_has_avx512bf16() != 0
            XCTAssertEqual(f32.attentionPrecision, .f32, table)
            XCTAssertEqual(bf16.attentionPrecision, runs ? .bf16 : .f32, table)
            let reference = try ReferenceSet.load(path: fixture("bst_seqrec", "reference.npz"), model: f32)
            let inputs = reference.inputs.enumerated().map { i, v in Array(v.prefix(300 * f32.inputs[i].elementsPerSample)) }
            let want = try Session(model: f32, maxBatch: 37, threads: 1).predict(inputs: inputs, samples: 300)
            let session = try Session(model: bf16, maxBatch: 37, threads: 1)
            let got = try session.predict(inputs: inputs, samples: 300)
            guard runs else {
                XCTAssertEqual(got, want, "\(table): bf16 asked for, f32 run")
                continue
            }
            XCTAssertNotEqual(got, want, "\(table): the bf16 products change some bits")
            for (g, w) in zip(got, want) {
                let scale = w.map { abs($0) }.max() ?? 0
                let worst = zip(g, w).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 0.02 * max(scale, 1), "\(table): bf16 attention moved an output by \(worst)")
            }
            XCTAssertEqual(try Session(model: bf16, maxBatch: 37, threads: 2).predict(inputs: inputs, samples: 300), got,
                           "\(table), 2 threads")
            let ran = try session.profile(batch: 5, runs: 1).operators.filter { $0.opcode == "Attention" }
            XCTAssertEqual(ran.count, 2, table)
            XCTAssertTrue(ran.allSatisfy { $0.kernel.hasPrefix("bf16 products") }, "\(table): \(ran.map(\.kernel))")
            try session.run(batch: 37)
            minnow_alloc_reset()
            try session.run(batch: 37)
            XCTAssertEqual(minnow_alloc_count(), 0, "\(table) bf16 attention")
        }
        setenv("MINNOW_ATTENTION", "bf16", 1)
        defer { unsetenv("MINNOW_ATTENTION") }
        let fromEnvironment = try Model(bytes: AlignedBytes(bytes))
        XCTAssertEqual(fromEnvironment.attentionPrecision,
                       fromEnvironment.kernelName.hasPrefix("avx512") || fromEnvironment.kernelName == "amx"
                           ? (mn_cpu_has_avx512bf16() != 0 ? .bf16 : .f32) : .f32)
        XCTAssertEqual(try Model(bytes: AlignedBytes(bytes), attention: .f32).attentionPrecision, .f32, "the argument wins")
        setenv("MINNOW_ATTENTION", "fp16", 1)
        XCTAssertThrowsError(try Model(bytes: AlignedBytes(bytes))) { error in
            XCTAssertTrue("\(error)".contains("MINNOW_ATTENTION='fp16'"), "\(error)")
        }
    }

    /// The converted BST file's bytes (calibrated, default mode).
    func convertBytes(_ name: String) throws -> [UInt8] {
        var options = ConvertOptions()
        options.calibrationPath = fixture(name, "calibration.npz")
        return try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: options).bytes
    }
}
