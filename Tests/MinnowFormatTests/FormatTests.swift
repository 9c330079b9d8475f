import Foundation
import MinnowFormat
import XCTest

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A small description that exercises every table, union member and vector type of the schema.
func sampleDescription() -> ModelDescription {
    var d = ModelDescription()
    d.producer = "test"
    d.sourceHash = "xxh64:1234"
    d.metadata = [KeyValue("task", "classification"), KeyValue("note", "ünïcode ok")]
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 4]),
        TensorInfo(name: "w", dtype: .int8, shape: [3, 4], quant: QuantParams(scales: [0.1, 0.2, 0.3], zeroPoints: [0, 0, 0], axis: 0), buffer: 1),
        TensorInfo(name: "b", dtype: .float32, shape: [3], buffer: 2),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 3], arenaOffsetPerSample: 64),
        TensorInfo(name: "z", dtype: .float32, shape: [-1, 3], arenaOffsetPerSample: 128),
    ]
    d.operators = [
        OperatorInfo(opcode: .dense, inputs: [0, 1, 2], outputs: [3],
                     options: .dense(DenseOptions(activation: .clip, actMin: -1, actMax: 6, dynamicQuant: true)), name: "fc"),
        OperatorInfo(opcode: .softmax, inputs: [3], outputs: [4], options: .softmax(axis: -1), name: "sm"),
    ]
    d.inputs = [0]
    d.outputs = [4]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 192, maxBatch: 8)
    d.golden = GoldenSamples(count: 1, inputs: [2], outputs: [2], tolerance: 0.5)
    return d
}

func sampleSegments() -> [SegmentPayload] {
    let w: [Int8] = [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12]
    let b: [Float] = [0.5, -0.25, 1]
    return [SegmentPayload(bytes: w.withUnsafeBytes { Array($0) }),
            SegmentPayload(bytes: b.withUnsafeBytes { Array($0) }, shuffleWidth: 4)]
}

final class FormatTests: XCTestCase {
    func testWriteReadRoundTrip() throws {
        let bytes = ModelFileWriter.write(sampleDescription(), segments: sampleSegments())
        let file = try ModelFile(bytes: AlignedBytes(bytes))
        var expected = sampleDescription()
        expected.buffers = file.description.buffers
        expected.segmentBase = file.description.segmentBase
        XCTAssertEqual(file.description, expected)
        XCTAssertEqual(file.description.segmentBase % 64, 0)
        XCTAssertEqual(try file.segment(2).elements(as: Float.self), [0.5, -0.25, 1])
        XCTAssertEqual(try file.segment(1).elements(as: Int8.self), [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12])
    }

    func testWriterIsDeterministic() {
        XCTAssertEqual(ModelFileWriter.write(sampleDescription(), segments: sampleSegments()),
                       ModelFileWriter.write(sampleDescription(), segments: sampleSegments()))
    }

    func testZstdSegmentsRoundTripAndShrink() throws {
        let zeros = SegmentPayload(bytes: [UInt8](repeating: 0, count: 100_000), shuffleWidth: 4)
        var d = sampleDescription()
        d.tensors.append(TensorInfo(name: "big", dtype: .float32, shape: [25_000], buffer: 3))
        let bytes = ModelFileWriter.write(d, segments: sampleSegments() + [zeros], codec: .zstd, zstdLevel: 3)
        XCTAssertLessThan(bytes.count, 10_000)
        let file = try ModelFile(bytes: AlignedBytes(bytes))
        XCTAssertEqual(file.description.buffers[2].codec, .zstd)
        let seg = try file.segment(3).elements(as: UInt8.self)
        XCTAssertEqual(seg.count, 100_000)
        XCTAssertTrue(seg.allSatisfy { $0 == 0 })
    }

    func testXXH64KnownVectors() {
        XCTAssertEqual(Segments.checksum(UnsafeRawBufferPointer(start: nil, count: 0)), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(Array("abc".utf8).withUnsafeBytes { Segments.checksum($0) }, 0x44BC_2CF5_AD77_0999)
        let long = Array("Nobody inspects the spammish repetition".utf8)
        XCTAssertEqual(long.withUnsafeBytes { Segments.checksum($0) }, 0xFBCE_A83C_8A37_8BF1)
    }

    // MARK: bad files

    func testTruncatedFilesAreRejected() {
        let bytes = ModelFileWriter.write(sampleDescription(), segments: sampleSegments())
        for length in [0, 4, 8, 15, 16, 40, bytes.count / 2, bytes.count - 1] {
            let cut = Array(bytes.prefix(length))
            XCTAssertThrowsError(try ModelFile(bytes: AlignedBytes(cut)).segment(2), "length \(length)")
        }
    }

    func testBadIdentifier() {
        var bytes = ModelFileWriter.write(sampleDescription(), segments: sampleSegments())
        bytes.replaceSubrange(4..<8, with: Array("ONNX".utf8))
        XCTAssertThrowsError(try ModelFile(bytes: AlignedBytes(bytes))) { e in
            XCTAssertEqual(e as? FormatError, .badIdentifier(found: "ONNX"))
        }
    }

    func testNewerMajorVersionIsRefused() {
        var d = sampleDescription()
        d.formatMajor = 2
        d.formatMinor = 3
        let bytes = ModelFileWriter.write(d, segments: sampleSegments())
        XCTAssertThrowsError(try ModelFile(bytes: AlignedBytes(bytes))) { e in
            XCTAssertEqual(e as? FormatError, .unsupportedVersion(found: "2.3", supported: "1.x"))
            XCTAssertEqual("\(e)", "format version 2.3 is not supported (this runtime reads 1.x)")
        }
    }

    func testFlippedSegmentByteFailsChecksum() throws {
        var bytes = ModelFileWriter.write(sampleDescription(), segments: sampleSegments())
        let file = try ModelFile(bytes: AlignedBytes(bytes))
        let at = Int(file.description.segmentBase + file.description.buffers[0].offset)
        bytes[at] ^= 0x40
        let corrupt = try ModelFile(bytes: AlignedBytes(bytes))
        XCTAssertThrowsError(try corrupt.segment(1)) { e in
            guard case .checksumMismatch(buffer: 1, _, _)? = e as? FormatError else { return XCTFail("\(e)") }
        }
    }

    func testSegmentOutsideFileIsRefused() {
        var d = sampleDescription()
        d.formatMinor = 0
        var bytes = ModelFileWriter.write(d, segments: sampleSegments())
        bytes.removeLast(8)  // the last segment now runs past the end
        XCTAssertThrowsError(try ModelFile(bytes: AlignedBytes(bytes))) { e in
            guard case .segmentOutOfBounds? = e as? FormatError else { return XCTFail("\(e)") }
        }
    }

    func testRandomBitFlipsNeverCrash() {
        let bytes = ModelFileWriter.write(sampleDescription(), segments: sampleSegments())
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                b[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            }
            if let f = try? ModelFile(bytes: AlignedBytes(b)) {
                for i in 0..<f.description.buffers.count { _ = try? f.segment(i + 1) }
            }
        }
    }

    // MARK: stock flatc as the oracle

    func testStockFlatcDecodesOurFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minnow-flatc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("m.minnow")
        try Data(ModelFileWriter.write(sampleDescription(), segments: sampleSegments())).write(to: path)
        try runTool("flatc", ["--json", "--raw-binary", "--strict-json", "--defaults-json", "-o", dir.path,
                              repoRoot.appendingPathComponent("formats/minnow.fbs").path, "--", path.path])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("m.json"))) as! [String: Any]
        XCTAssertEqual(json["producer"] as? String, "test")
        let tensors = json["tensors"] as! [[String: Any]]
        XCTAssertEqual(tensors.map { $0["name"] as! String }, ["x", "w", "b", "y", "z"])
        XCTAssertEqual(tensors[1]["dtype"] as? String, "int8")
        let ops = json["operators"] as! [[String: Any]]
        XCTAssertEqual(ops[0]["opcode"] as? String, "dense")
        XCTAssertEqual(ops[0]["options_type"] as? String, "DenseOptions")
        XCTAssertEqual((ops[0]["options"] as! [String: Any])["activation"] as? String, "clip")
        XCTAssertEqual((json["memory_plan"] as! [String: Any])["max_batch"] as? Int, 8)
        XCTAssertEqual((json["golden"] as! [String: Any])["tolerance"] as? Double, 0.5)
        XCTAssertEqual(json["format_minor"] as? Int, Int(ModelDescription.formatMinor))
    }

    func testWeReadAFileThatFlatcBuiltFromJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minnow-flatcb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let json = """
        {"format_major": 1, "format_minor": 0, "producer": "flatc",
         "tensors": [{"name": "x", "dtype": "float32", "shape": [-1, 3]},
                     {"name": "y", "dtype": "float32", "shape": [-1, 3], "arena_offset_per_sample": 64}],
         "operators": [{"opcode": "sigmoid", "inputs": [0], "outputs": [1], "name": "act"}],
         "inputs": [0], "outputs": [1],
         "memory_plan": {"arena_bytes_per_sample": 128, "max_batch": 4}}
        """
        let jsonPath = dir.appendingPathComponent("tiny.json")
        try Data(json.utf8).write(to: jsonPath)
        try runTool("flatc", ["-b", "-o", dir.path, repoRoot.appendingPathComponent("formats/minnow.fbs").path, jsonPath.path])
        let file = try ModelFile(path: dir.appendingPathComponent("tiny.minnow").path)
        XCTAssertEqual(file.description.producer, "flatc")
        XCTAssertEqual(file.description.operators, [OperatorInfo(opcode: .sigmoid, inputs: [0], outputs: [1], name: "act")])
        XCTAssertEqual(file.description.memoryPlan, MemoryPlanInfo(arenaBytesPerSample: 128, maxBatch: 4))
    }

    func testCommittedVerifierHeaderMatchesSchema() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minnow-cpp-\(UUID().uuidString)")
        try runTool("flatc", ["--cpp", "-o", dir.path, repoRoot.appendingPathComponent("formats/minnow.fbs").path])
        let fresh = try Data(contentsOf: dir.appendingPathComponent("minnow_generated.h"))
        let committed = try Data(contentsOf: repoRoot.appendingPathComponent("Sources/CMinnowFormat/minnow_generated.h"))
        XCTAssertEqual(fresh, committed, "regenerate with: flatc --cpp -o Sources/CMinnowFormat formats/minnow.fbs")
    }
}

func runTool(_ tool: String, _ args: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + args
    try p.run()
    p.waitUntilExit()
    if p.terminationStatus != 0 { throw NSError(domain: "tool", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "\(tool) \(args) failed"]) }
}
