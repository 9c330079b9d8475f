import CAllocCounter
import Foundation
import MinnowConvert
import MinnowFormat
import MinnowNumpy
import MinnowParity
import MinnowRuntime
import XCTest

/// Every fixture, in every mode, through the library: convert, load, compare with the trainer.
final class FixtureTests: XCTestCase {
    func convert(_ name: String, _ mode: QuantizationMode) throws -> Model {
        var options = ConvertOptions()
        options.mode = mode
        options.calibrationPath = fixture(name, "calibration.npz")
        let result = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: options)
        return try Model(bytes: AlignedBytes(result.bytes))
    }

    func report(_ model: Model, _ name: String) throws -> ParityReport {
        try Parity.evaluate(model: model, referencePath: fixture(name, "reference.npz"),
                            spec: try ParitySpec.load(path: fixture(name, "parity.json")))
    }

    func value(_ r: ParityReport, _ metric: String, _ against: ParityRow.Against = .trainer) -> (trainer: Double?, ours: Double) {
        let row = r.rows.first { $0.metric == metric && $0.against == against }!
        return (row.trainer, row.ours)
    }

    func testFloatModeMatchesTheTrainer() throws {
        for name in fixtureNames {
            let r = try report(try convert(name, .float), name)
            // float32 kernels sum in their own order (SIMD GEMM, FMA): a few ulps of the output's
            // magnitude (regression_mlp predicts values up to ~300, where one ulp is 3e-5).
            let scale = try Npz.read(path: fixture(name, "reference.npz")).filter { $0.name.hasPrefix("outputs/") }
                .flatMap { $0.array.floats() }.map { abs(Double($0)) }.max() ?? 1
            XCTAssertLessThanOrEqual(value(r, "max_abs_error").ours, max(1e-4, 1e-6 * scale), name)
            XCTAssertTrue(r.passed, "\(name)\n\(r.table())")
        }
    }

    func testStaticInt8MeetsTheIssueThresholds() throws {
        let digits = try report(try convert("digits_mlp", .static), "digits_mlp")
        XCTAssertGreaterThanOrEqual(value(digits, "top1_agreement").ours, 0.99)
        let ctr = try report(try convert("ctr_mlp", .static), "ctr_mlp")
        let auc = value(ctr, "roc_auc", .labels)
        XCTAssertLessThanOrEqual(auc.trainer! - auc.ours, 0.005)
        let reg = try report(try convert("regression_mlp", .static), "regression_mlp")
        let rmse = value(reg, "rmse", .labels)
        XCTAssertLessThanOrEqual(rmse.ours, rmse.trainer! * 1.03)
        let cnn = try report(try convert("cnn_digits", .static), "cnn_digits")
        XCTAssertGreaterThanOrEqual(value(cnn, "top1_agreement").ours, 0.99)
        for r in [digits, ctr, reg, cnn] { XCTAssertTrue(r.passed, r.table()) }
    }

    func testDynamicModePassesParity() throws {
        for name in fixtureNames {
            let r = try report(try convert(name, .dynamic), name)
            XCTAssertTrue(r.passed, "\(name)\n\(r.table())")
        }
    }

    func testStaticModelsRunInt8Kernels() throws {
        let model = try convert("digits_mlp", .static)
        let dense = model.description.operators.filter { $0.opcode == .dense }
        XCTAssertEqual(dense.count, 2)
        for op in dense { XCTAssertEqual(model.description.tensors[Int(op.inputs[1])].dtype, .int8) }
        // The first layer's output stays int8 (it feeds the second dense); the logits are fp32.
        XCTAssertEqual(model.description.tensors[Int(dense[0].outputs[0])].dtype, .int8)
        XCTAssertEqual(model.description.tensors[Int(dense[1].outputs[0])].dtype, .float32)
    }

    func testInferenceIsAllocationFreeOnEveryFixtureAndMode() throws {
        XCTAssertEqual(minnow_alloc_counter_active(), 1)
        for name in fixtureNames {
            for mode in QuantizationMode.allCases {
                let model = try convert(name, mode)
                let session = try Session(model: model, maxBatch: 64)
                let input = session.inputBuffer(0)
                for i in 0..<(input.count / 4) { input.storeBytes(of: Float(i % 7) * 0.1, toByteOffset: i * 4, as: Float.self) }
                try session.run(batch: 64)
                for batch in [1, 64] {
                    minnow_alloc_reset()
                    try session.run(batch: batch)
                    XCTAssertEqual(minnow_alloc_count(), 0, "\(name) \(mode) batch \(batch) (debug builds allocate; use -c release)")
                }
            }
        }
    }

    func testConversionIsDeterministic() throws {
        var options = ConvertOptions()
        options.calibrationPath = fixture("ctr_mlp", "calibration.npz")
        let a = try Converter.convert(onnxPath: fixture("ctr_mlp", "model.onnx"), options: options)
        let b = try Converter.convert(onnxPath: fixture("ctr_mlp", "model.onnx"), options: options)
        XCTAssertEqual(a.bytes, b.bytes)
    }

    func testPercentileCalibrationAlsoPasses() throws {
        var options = ConvertOptions()
        options.calibrationPath = fixture("digits_mlp", "calibration.npz")
        options.calibration = .percentile(99.99)
        let result = try Converter.convert(onnxPath: fixture("digits_mlp", "model.onnx"), options: options)
        let r = try report(try Model(bytes: AlignedBytes(result.bytes)), "digits_mlp")
        XCTAssertTrue(r.passed, r.table())
    }

    func testKeepFloatLeavesTheNamedLayerInFloat() throws {
        var options = ConvertOptions()
        options.calibrationPath = fixture("digits_mlp", "calibration.npz")
        options.keepFloat = ["Gemm"]
        let result = try Converter.convert(onnxPath: fixture("digits_mlp", "model.onnx"), options: options)
        XCTAssertEqual(result.summary.int8Dense, 0)
        XCTAssertEqual(result.summary.floatOps.filter { $0.reason.contains("--keep-float") }.count, 2)
        let model = try Model(bytes: AlignedBytes(result.bytes))
        XCTAssertTrue(model.description.tensors.allSatisfy { $0.dtype == .float32 })
    }
}

/// Sessions with a worker pool compute exactly what single-threaded sessions compute.
final class ThreadedSessionTests: XCTestCase {
    func testThreadsGiveIdenticalResults() throws {
        for name in fixtureNames + ["outlier_mlp"] {
            for mode in QuantizationMode.allCases {
                var options = ConvertOptions()
                options.mode = mode
                options.calibrationPath = fixture(name, "calibration.npz")
                let model = try Model(bytes: AlignedBytes(try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: options).bytes))
                let reference = try ReferenceSet.load(path: fixture(name, "reference.npz"), model: model)
                let one = try Session(model: model, maxBatch: 64, threads: 1)
                let two = try Session(model: model, maxBatch: 64, threads: 2)
                XCTAssertEqual(two.threads, 2)
                // Whole batches split by samples (each thread runs the plan on 32), except models
                // with recurrent ops; a short last chunk (200 = 3 x 64 + 8) splits by operators.
                let recurrent = model.description.operators.contains { $0.opcode == .lstm || $0.opcode == .gru }
                XCTAssertEqual(two.parallelism(batch: 64), recurrent ? "operators" : "samples", name)
                XCTAssertEqual(two.parallelism(batch: 8), "operators", name)
                XCTAssertEqual(try one.predict(inputs: reference.inputs, samples: reference.samples),
                               try two.predict(inputs: reference.inputs, samples: reference.samples), "\(name) \(mode)")
                // Zero allocations on the calling thread with the pool in use.
                try two.run(batch: 64)
                minnow_alloc_reset()
                try two.run(batch: 64)
                try two.run(batch: 37)
                XCTAssertEqual(minnow_alloc_count(), 0, "\(name) \(mode)")
            }
        }
    }

    func testPoolsStartAndStopCleanly() throws {
        var options = ConvertOptions()
        options.calibrationPath = fixture("digits_mlp", "calibration.npz")
        let model = try Model(bytes: AlignedBytes(try Converter.convert(onnxPath: fixture("digits_mlp", "model.onnx"), options: options).bytes))
        for threads in [1, 2, 3, 8] {
            for _ in 0..<10 {
                let s = try Session(model: model, maxBatch: 64, threads: threads)
                XCTAssertEqual(s.threads, threads)
                try s.run(batch: 64)
            }
        }
        XCTAssertThrowsError(try Session(model: model, threads: 0))
    }
}

/// The CNN fixture's two int8 convolutions run as implicit GEMMs on SIMD kernels (load-time
/// fusion needs the converter's plan to keep each image alive through its Dense), and stay two
/// ops on the reference kernels.
final class ConvFusionTests: XCTestCase {
    func testCNNConvolutionsAreFusedAtLoadOnSIMDKernels() throws {
        var options = ConvertOptions()
        options.calibrationPath = fixture("cnn_digits", "calibration.npz")
        let model = try Model(bytes: AlignedBytes(try Converter.convert(onnxPath: fixture("cnn_digits", "model.onnx"), options: options).bytes))
        let ops = model.description.operators
        if model.kernelName == "reference" {
            XCTAssertEqual(model.fusedAtLoad, [])
        } else {
            XCTAssertEqual(model.fusedAtLoad.count, 2, "both convolutions fused on \(model.kernelName)")
            for i in model.fusedAtLoad {
                XCTAssertEqual(ops[i].opcode, .im2col)
                XCTAssertEqual(ops[i + 1].opcode, .dense)
            }
        }
    }
}
