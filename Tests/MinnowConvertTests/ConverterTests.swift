import Foundation
import MinnowConvert
import MinnowFormat
import MinnowNumpy
import MinnowRuntime
import XCTest

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
func fixture(_ name: String, _ file: String) -> String { repoRoot.appendingPathComponent("fixtures/\(name)/\(file)").path }

final class ConverterTests: XCTestCase {
    func convert(_ name: String, _ mode: QuantizationMode = .static, maxBatch: Int = 64) throws -> ConversionResult {
        var o = ConvertOptions()
        o.mode = mode
        o.maxBatch = maxBatch
        o.calibrationPath = fixture(name, "calibration.npz")
        return try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: o)
    }

    /// No two activations that are alive at the same time share arena bytes.
    func testMemoryPlanHasNoOverlapBetweenLiveTensors() throws {
        for name in ["digits_mlp", "ctr_mlp", "regression_mlp", "dlrm_ctr", "tiny_bert"] {
            for mode in QuantizationMode.allCases {
                let d = try ModelFile(bytes: AlignedBytes(try convert(name, mode).bytes)).description
                var first = [Int: Int](), last = [Int: Int]()
                for i in d.inputs { first[Int(i)] = -1; last[Int(i)] = -1 }
                for (k, op) in d.operators.enumerated() {
                    for i in op.inputs where i >= 0 && !d.tensors[Int(i)].isConstant { last[Int(i)] = k }
                    for o in op.outputs { first[Int(o)] = k; last[Int(o)] = max(last[Int(o)] ?? k, k) }
                }
                for o in d.outputs { last[Int(o)] = d.operators.count }
                let acts = Array(first.keys)
                func range(_ t: Int) -> Range<UInt64> {
                    let s = d.tensors[t]
                    let bytes = UInt64(s.shape.dropFirst().reduce(1, *)) * UInt64(s.dtype.byteSize)
                    return s.arenaOffsetPerSample..<(s.arenaOffsetPerSample + bytes)
                }
                // Views (1.7): a copy's output at its input's offset shares its bytes by design.
                var group = [Int: Int]()
                for op in d.operators where op.opcode == .copy
                    && d.tensors[Int(op.inputs[0])].arenaOffsetPerSample == d.tensors[Int(op.outputs[0])].arenaOffsetPerSample {
                    group[Int(op.outputs[0])] = group[Int(op.inputs[0])] ?? Int(op.inputs[0])
                }
                for a in acts {
                    for b in acts where a < b && first[a]! <= last[b]! && first[b]! <= last[a]! && (group[a] ?? a) != (group[b] ?? b) {
                        XCTAssertFalse(range(a).overlaps(range(b)), "\(name) \(mode): \(d.tensors[a].name) and \(d.tensors[b].name) overlap")
                    }
                }
                // Reuse happens: the arena is smaller than the sum of all activations.
                let sum = acts.map { range($0).count }.reduce(0, +)
                XCTAssertLessThanOrEqual(Int(d.memoryPlan.arenaBytesPerSample), sum + 64 * acts.count)
            }
        }
    }

    /// Reshapes, Unsqueezes and Flattens are views (format 1.7): their copies share the input's
    /// bytes and the session skips them; the outputs are the same, bit for bit, as those of the
    /// file planned without reuse, where every copy really copies.
    func testReshapesAreViewsOfTheirInput() throws {
        for name in ["dlrm_ctr", "tiny_bert"] {
            var o = ConvertOptions()
            o.maxBatch = 8
            o.calibrationPath = fixture(name, "calibration.npz")
            let viewed = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: o)
            o.reuseMemory = false
            let copied = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: o)
            let d = try ModelFile(bytes: AlignedBytes(viewed.bytes)).description
            let copies = d.operators.filter { $0.opcode == .copy }
            XCTAssertFalse(copies.isEmpty, name)
            for op in copies {
                XCTAssertEqual(d.tensors[Int(op.inputs[0])].arenaOffsetPerSample, d.tensors[Int(op.outputs[0])].arenaOffsetPerSample,
                               "\(name): copy '\(op.name)' is not a view")
            }
            XCTAssertLessThan(viewed.summary.arenaBytesPerSample, copied.summary.arenaBytesPerSample, name)
            let reference = Dictionary(try Npz.read(path: fixture(name, "reference.npz")), uniquingKeysWith: { a, _ in a })
            var outputs: [[[Float]]] = []
            for bytes in [viewed.bytes, copied.bytes] {
                let model = try Model(bytes: AlignedBytes(bytes))
                let inputs = try model.inputs.map { spec in Array(try XCTUnwrap(reference["inputs/" + spec.name]).floats().prefix(8 * spec.elementsPerSample)) }
                outputs.append(try Session(model: model, maxBatch: 8, threads: 1).predict(inputs: inputs, samples: 8))
            }
            XCTAssertEqual(outputs[0], outputs[1], name)
        }
    }

    func testMetadataRecordsHowTheFileWasMade() throws {
        let d = try ModelFile(bytes: AlignedBytes(try convert("ctr_mlp").bytes)).description
        XCTAssertEqual(d.metadataValue("mode"), "static")
        XCTAssertEqual(d.metadataValue("calibration_method"), "minmax")
        XCTAssertEqual(d.metadataValue("calibration_samples"), "398")
        XCTAssertTrue(d.metadataValue("calibration_hash")?.hasPrefix("xxh64:") ?? false)
        XCTAssertTrue(d.sourceHash.hasPrefix("xxh64:"))
        XCTAssertEqual(d.producer, Converter.version)
        XCTAssertEqual(d.metadataValue("source_opset"), "20")
    }

    func testSummaryReportsFloatOpsAndSizes() throws {
        let s = try convert("ctr_mlp").summary
        XCTAssertEqual(s.int8Dense, 3)
        XCTAssertEqual(Set(s.floatOps.map(\.opType)), ["Sub", "Div", "Sigmoid"])
        XCTAssertTrue(s.floatOps.allSatisfy { $0.reason.contains("no int8 kernel") })
        XCTAssertLessThan(s.fileBytes, s.onnxBytes)
        XCTAssertLessThan(s.weightBytesStored, s.weightBytesFP32 / 3)
        XCTAssertTrue(s.lines.joined().contains("float ops (3)"))
    }

    func testMaxBatchIsThePlannedLimit() throws {
        let model = try Model(bytes: AlignedBytes(try convert("digits_mlp", maxBatch: 4).bytes))
        XCTAssertEqual(model.maxBatch, 4)
        XCTAssertNoThrow(try Session(model: model, maxBatch: 4))
        XCTAssertThrowsError(try Session(model: model, maxBatch: 5))
    }

    func testStaticModeWithoutCalibrationSaysWhatIsMissing() {
        var o = ConvertOptions()
        o.mode = .static
        XCTAssertThrowsError(try Converter.convert(onnxPath: fixture("digits_mlp", "model.onnx"), options: o)) { e in
            XCTAssertTrue("\(e)".contains("--calibration"), "\(e)")
        }
    }

    func testCalibrationWithTheWrongInputNameIsRefused() throws {
        var o = ConvertOptions()
        o.calibrationPath = fixture("ctr_mlp", "calibration.npz")  // 30 features, digits wants 64
        XCTAssertThrowsError(try Converter.convert(onnxPath: fixture("digits_mlp", "model.onnx"), options: o)) { e in
            XCTAssertTrue("\(e)".contains("has shape [398, 30], expected [N, 64]"), "\(e)")
        }
    }
}

/// Corrupt ONNX files (truncations and bit flips of real exports) give a ConvertError or a
/// model; the converter never crashes or hangs on them.
final class CorruptONNXTests: XCTestCase {
    func testMutatedExportsNeverCrashTheConverter() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minnow-onnx-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SystemRandomNumberGenerator()
        var refused = 0, converted = 0
        for name in ["digits_mlp", "ctr_mlp", "regression_mlp"] {
            let original = try Data(contentsOf: URL(fileURLWithPath: fixture(name, "model.onnx")))
            for i in 0..<120 {
                var bytes = original
                if i % 3 == 0 {
                    bytes = bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng))
                } else {
                    // Flips concentrated in the graph structure (the first KB and the tail) where
                    // lengths, tags and dims live, plus a few anywhere.
                    for _ in 0..<Int.random(in: 1...6, using: &rng) {
                        let region = Bool.random(using: &rng) ? 0..<min(1024, bytes.count) : max(0, bytes.count - 1024)..<bytes.count
                        let at = Int.random(in: region, using: &rng)
                        bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                    }
                }
                let path = dir.appendingPathComponent("m.onnx").path
                try bytes.write(to: URL(fileURLWithPath: path))
                var options = ConvertOptions()
                options.mode = [QuantizationMode.float, .dynamic, .static][i % 3]
                options.calibrationPath = fixture(name, "calibration.npz")
                do {
                    _ = try Converter.convert(onnxPath: path, options: options)
                    converted += 1
                } catch {
                    refused += 1
                    XCTAssertFalse("\(error)".isEmpty)
                }
            }
        }
        XCTAssertGreaterThan(refused, 50)
        XCTAssertEqual(refused + converted, 360)
    }

    func testAutoModeRecordsEachChoiceInTheFile() throws {
        for name in ["digits_mlp", "ctr_mlp", "outlier_mlp"] {
            var o = ConvertOptions()  // auto is the default
            o.calibrationPath = fixture(name, "calibration.npz")
            let r = try Converter.convert(onnxPath: fixture(name, "model.onnx"), options: o)
            XCTAssertEqual(r.summary.mode, .auto)
            XCTAssertEqual(r.summary.precision.count, 3 - (name == "digits_mlp" ? 1 : 0), name)
            let d = try Model(bytes: AlignedBytes(r.bytes)).description
            let recorded = PrecisionChoice.decode(try XCTUnwrap(d.metadata.first { $0.key == "precision" }).value)
            XCTAssertEqual(recorded.map(\.precision), r.summary.precision.map(\.precision), name)
            for (rec, c) in zip(recorded, r.summary.precision) {
                let op = d.operators[rec.op]
                XCTAssertEqual(op.name, c.op, name)
                XCTAssertEqual(rec.staticDB, String(format: "%.1f", -10 * log10(c.staticNoise)), name)
                // The file runs each Dense the way the record says.
                guard case let .dense(options) = op.options else { return XCTFail("\(name): \(op.name) is not a Dense") }
                let int8Input = d.tensors[Int(op.inputs[0])].dtype == .int8, int8Weights = d.tensors[Int(op.inputs[1])].dtype == .int8
                switch rec.precision {
                case .static: XCTAssertTrue(int8Input && int8Weights && !options.dynamicQuant, "\(name) \(op.name)")
                case .dynamic: XCTAssertTrue(!int8Input && int8Weights && options.dynamicQuant, "\(name) \(op.name)")
                case .float: XCTAssertTrue(!int8Input && !int8Weights, "\(name) \(op.name)")
                }
            }
        }
    }
}
