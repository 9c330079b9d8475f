@testable import MinnowFormat
import MinnowRuntime
import XCTest

// One crafted file per check the loader makes (docs/format.md, "What the loader checks"), each
// with the exact error it must produce. Files start from `handModel` (SessionTests.swift) and
// change one thing: a field of the description, or one scalar patched in the serialized bytes
// where the description cannot express the fault (unknown enum values, segment descriptors).

/// Loads `bytes` to a ready session; the error's text, or "loaded".
private func loadError(_ bytes: [UInt8]) -> String {
    do {
        _ = try Session(model: try Model(bytes: AlignedBytes(bytes)))
        return "loaded"
    } catch {
        return "\(error)"
    }
}

private func loadError(_ mutate: (inout ModelDescription) -> Void) -> String {
    loadError(handModel(mutate: mutate))
}

/// Where scalar field `slot` of the table `locate` finds lives in the serialized model.
private func fieldOffset(_ bytes: [UInt8], slot: Int, _ locate: (FBTable) throws -> FBTable?) -> Int {
    bytes.withUnsafeBytes { buf in
        let table = try! locate(try! FBTable.root(of: buf))!
        return try! table.fieldPosition(slot)!
    }
}

/// Overwrites scalar field `slot` (which must be present: the writer writes every scalar).
private func patch<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T, slot: Int,
                                         _ locate: @escaping (FBTable) throws -> FBTable? = { $0 }) {
    let at = fieldOffset(bytes, slot: slot, locate)
    withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(at..<(at + MemoryLayout<T>.size), with: $0) }
}

private func buffer(_ i: Int) -> (FBTable) throws -> FBTable? { { try $0.tables(Slot.Model.buffers)[i] } }
private func tensor(_ i: Int) -> (FBTable) throws -> FBTable? { { try $0.tables(Slot.Model.tensors)[i] } }
private func op(_ i: Int) -> (FBTable) throws -> FBTable? { { try $0.tables(Slot.Model.operators)[i] } }

private func patched(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
    var bytes = handModel()
    edit(&bytes)
    return bytes
}

/// x[-1, 256] → Dense(W: 4×256 zeros, zstd-compressed) → y[-1, 4], for the decompression checks.
private func zstdModel() -> (bytes: [UInt8], segmentStart: Int) {
    var d = ModelDescription()
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 256], arenaOffsetPerSample: 0),
        TensorInfo(name: "W", dtype: .float32, shape: [4, 256], buffer: 1),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 4], arenaOffsetPerSample: 1024),
    ]
    d.operators = [OperatorInfo(opcode: .dense, inputs: [0, 1, -1], outputs: [2], options: .dense(DenseOptions()), name: "fc")]
    d.inputs = [0]
    d.outputs = [2]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 1088, maxBatch: 4)
    let bytes = ModelFileWriter.write(d, segments: [SegmentPayload(bytes: [UInt8](repeating: 0, count: 4096))])
    let file = try! ModelFile(bytes: AlignedBytes(bytes))
    precondition(file.description.buffers[0].codec == .zstd)
    return (bytes, Int(file.description.segmentBase + file.description.buffers[0].offset))
}

/// Replaces buffer 1's stored bytes by `stored`, with a matching stored size and checksum.
private func replaceSegment(_ model: (bytes: [UInt8], segmentStart: Int), with stored: [UInt8]) -> [UInt8] {
    var bytes = Array(model.bytes.prefix(model.segmentStart)) + stored
    patch(&bytes, UInt64(stored.count), slot: Slot.Buffer.storedSize, buffer(0))
    patch(&bytes, stored.withUnsafeBytes { Segments.checksum($0) }, slot: Slot.Buffer.checksum, buffer(0))
    return bytes
}

final class LoadCheckTests: XCTestCase {
    // 1. Size and identifier.
    func testFileTooSmall() {
        XCTAssertEqual(loadError([UInt8](repeating: 0, count: 10)), "file is 10 bytes, too small to be a .minnow model")
    }

    func testIdentifier() {
        XCTAssertEqual(loadError(patched { $0.replaceSubrange(4..<8, with: Array("ONNX".utf8)) }),
                       "not a .minnow file: identifier is \"ONNX\", expected \"MNW1\"")
    }

    // 2. FlatBuffers structure.
    func testVerifierRejectsABadRootOffset() {
        XCTAssertEqual(loadError(patched { $0.replaceSubrange(0..<4, with: [0x00, 0xff, 0xff, 0x7f]) }),
                       "the FlatBuffers verifier rejected the model structure (truncated or corrupt file)")
    }

    func testVerifierRejectsATruncatedFlatBuffer() {
        XCTAssertEqual(loadError(Array(handModel().prefix(120))),
                       "the FlatBuffers verifier rejected the model structure (truncated or corrupt file)")
    }

    // 3. Version and enum values.
    func testMajorVersion() {
        XCTAssertEqual(loadError { $0.formatMajor = 2; $0.formatMinor = 3 },
                       "format version 2.3 is not supported (this runtime reads 1.x)")
    }

    func testUnknownEnumValues() {
        XCTAssertEqual(loadError(patched { patch(&$0, Int8(99), slot: Slot.Tensor.dtype, tensor(0)) }),
                       "malformed model: tensor 0: unknown dtype 99")
        XCTAssertEqual(loadError(patched { patch(&$0, Int8(7), slot: Slot.Buffer.codec, buffer(0)) }),
                       "malformed model: buffer 1: unknown codec 7")
        XCTAssertEqual(loadError(patched { patch(&$0, UInt16(999), slot: Slot.Op.opcode, op(0)) }),
                       "malformed model: operator 0: unknown opcode 999")
        XCTAssertEqual(loadError(patched { patch(&$0, UInt8(77), slot: Slot.Op.optionsType, op(1)) }),
                       "malformed model: operator 1: unknown options type 77")
        XCTAssertEqual(loadError(patched { patch(&$0, UInt8(OptionsTag.dense.rawValue), slot: Slot.Op.optionsType, op(1)) }),
                       "malformed model: operator 1: options of type 1 missing")
        XCTAssertEqual(loadError(patched { patch(&$0, Int8(42), slot: Slot.Dense.activation) { try $0.tables(Slot.Model.operators)[0].table(Slot.Op.options) } }),
                       "malformed model: operator 0: unknown activation 42")
    }

    // 4. Segment descriptors.
    func testSegmentBaseMustBeAlignedAndInside() {
        let base = try! ModelFile(bytes: AlignedBytes(handModel())).description.segmentBase
        XCTAssertEqual(loadError(patched { patch(&$0, base + 8, slot: Slot.Model.segmentBase) }),
                       "malformed model: segment base \(base + 8) is not a 64-byte-aligned offset inside the file")
        XCTAssertEqual(loadError(patched { patch(&$0, UInt64(1) << 40, slot: Slot.Model.segmentBase) }),
                       "malformed model: segment base 1099511627776 is not a 64-byte-aligned offset inside the file")
    }

    func testSegmentMustLieInsideTheFile() {
        let bytes = handModel()
        XCTAssertEqual(loadError(patched { patch(&$0, UInt64(1_000_000), slot: Slot.Buffer.storedSize, buffer(2)) }),
                       "buffer 3: segment [128, +1000000) lies outside the \(bytes.count)-byte file")
        // Offset + size would wrap around 2^64: refused, not wrapped.
        XCTAssertEqual(loadError(patched { patch(&$0, UInt64.max - 4, slot: Slot.Buffer.offset, buffer(0)) }),
                       "buffer 1: segment [18446744073709551611, +24) lies outside the \(bytes.count)-byte file")
    }

    func testDeclaredSizeCap() {
        XCTAssertEqual(loadError(patched { patch(&$0, UInt64(1) << 40, slot: Slot.Buffer.size, buffer(0)) }),
                       "buffer 1: declared size 1099511627776 exceeds the limit of 4294967296 bytes")
        // The cap is the caller's to lower.
        XCTAssertThrowsError(try ModelFile(bytes: AlignedBytes(handModel()), segmentLimit: 16)) { e in
            XCTAssertEqual("\(e)", "buffer 1: declared size 24 exceeds the limit of 16 bytes")
        }
    }

    func testUncompressedSegmentStoresItsSize() {
        XCTAssertEqual(loadError(patched { patch(&$0, UInt64(32), slot: Slot.Buffer.size, buffer(0)) }),
                       "malformed model: buffer 1: uncompressed segment stores 24 bytes but declares 32")
    }

    func testShuffleWidth() {
        XCTAssertEqual(loadError(patched { patch(&$0, UInt8(3), slot: Slot.Buffer.shuffle, buffer(0)) }),
                       "malformed model: buffer 1: unsupported shuffle width 3")
    }

    // 5. Memory plan header and tensors.
    func testPlanLimits() {
        XCTAssertEqual(loadError { $0.memoryPlan.maxBatch = 0 }, "invalid model: memory plan max batch 0 is outside 1...65536")
        XCTAssertEqual(loadError { $0.memoryPlan.maxBatch = 65537 }, "invalid model: memory plan max batch 65537 is outside 1...65536")
        XCTAssertEqual(loadError { $0.memoryPlan.arenaBytesPerSample = 1 << 40 },
                       "invalid model: arena of 1099511627776 bytes per sample is too large")
    }

    func testTensorShapes() {
        XCTAssertEqual(loadError { $0.tensors[3].shape = [-1, 1, 1, 1, 1, 1, 1, 1, 2] },
                       "unsupported: tensor 3 'h': rank 9 above 8")
        XCTAssertEqual(loadError { $0.tensors[1].shape = [2, -3] },
                       "invalid model: tensor 1 'W': shape [2, -3] has a negative or overflowing dimension")
        XCTAssertEqual(loadError { $0.tensors[1].shape = [1 << 40, 1 << 40] },
                       "invalid model: tensor 1 'W': shape [1099511627776, 1099511627776] has a negative or overflowing dimension")
    }

    func testConstants() {
        XCTAssertEqual(loadError { $0.tensors[1].buffer = 9 },
                       "invalid model: tensor 1 'W': buffer 9 does not exist (model has 3)")
        XCTAssertEqual(loadError { $0.tensors[1].shape = [-1, 3] },
                       "invalid model: tensor 1 'W': a constant cannot have a batch dimension")
        XCTAssertEqual(loadError { $0.tensors[1].shape = [3, 3] },
                       "invalid model: tensor 1 'W': buffer 1 holds 24 bytes, shape [3, 3] of float32 needs 36")
    }

    func testActivationsInTheArena() {
        XCTAssertEqual(loadError { $0.tensors[3].shape = [1, 2] },
                       "unsupported: tensor 3 'h': activation without a batch dimension (shape [1, 2])")
        XCTAssertEqual(loadError { $0.tensors[3].arenaOffsetPerSample = 65 },
                       "invalid model: tensor 3 'h': arena offset 65 is not 64-byte aligned")
        XCTAssertEqual(loadError { $0.tensors[5].arenaOffsetPerSample = 256 },
                       "invalid model: tensor 5 's': arena range [256, 264) per sample exceeds the arena of 256 bytes")
    }

    func testQuantizationParameters() {
        XCTAssertEqual(loadError { $0.tensors[1].quant = QuantParams(scales: [1], zeroPoints: [0], axis: 5) },
                       "invalid model: tensor 1 'W': quantization axis 5 outside shape [2, 3]")
        XCTAssertEqual(loadError { $0.tensors[1].quant = QuantParams(scales: [1], zeroPoints: [0], axis: 0) },
                       "invalid model: tensor 1 'W': 1 scales and 1 zero points, expected 2")
        XCTAssertEqual(loadError { $0.tensors[1].quant = QuantParams(scales: [0], zeroPoints: [0]) },
                       "invalid model: tensor 1 'W': quantization scale 0.0 is not a positive finite number")
        XCTAssertEqual(loadError { $0.tensors[1].quant = QuantParams(scales: [.nan], zeroPoints: [0]) },
                       "invalid model: tensor 1 'W': quantization scale nan is not a positive finite number")
        XCTAssertEqual(loadError { $0.tensors[1].quant = QuantParams(scales: [1], zeroPoints: [200]) },
                       "invalid model: tensor 1 'W': zero point 200 outside -128...127")
    }

    // 6. The graph.
    func testGraphOperands() {
        XCTAssertEqual(loadError { $0.inputs = [42] }, "invalid model: model input: tensor index 42 out of range 0..<7")
        XCTAssertEqual(loadError { $0.inputs = [1] }, "invalid model: model input 'W' is a constant")
        XCTAssertEqual(loadError { $0.operators[2].inputs = [99] },
                       "invalid model: operator 2 (Softmax 'sm'): tensor index 99 out of range 0..<7")
        XCTAssertEqual(loadError { $0.operators[2].outputs = [-3] },
                       "invalid model: operator 2 (Softmax 'sm'): tensor index -3 out of range 0..<7")
        XCTAssertEqual(loadError { $0.outputs = [7] }, "invalid model: model output: tensor index 7 out of range 0..<7")
    }

    func testGraphOrder() {
        XCTAssertEqual(loadError { $0.operators.swapAt(0, 1) },
                       "invalid model: operator 0 (Add 'add'): reads tensor 'h' before any operator writes it")
        XCTAssertEqual(loadError { $0.operators[2].outputs = [] }, "invalid model: operator 2 (Softmax 'sm'): has no outputs")
        XCTAssertEqual(loadError { $0.operators[1].outputs = [4] },
                       "invalid model: operator 1 (Add 'add'): writes tensor 'c' that is a constant or already written")
        XCTAssertEqual(loadError { $0.operators[2].outputs = [5] },
                       "invalid model: operator 2 (Softmax 'sm'): writes tensor 's' that is a constant or already written")
        XCTAssertEqual(loadError {
            $0.tensors.append(TensorInfo(name: "z", dtype: .float32, shape: [-1, 2], arenaOffsetPerSample: 0))
            $0.outputs = [7]
        }, "invalid model: model output 'z' is never written")
    }

    // 7. The memory plan: no two tensors alive at once share bytes.
    func testOverlappingLiveTensors() {
        // h (written by op 0, read by op 1) and s (written by op 1) are alive together.
        XCTAssertEqual(loadError { $0.tensors[5].arenaOffsetPerSample = 64 },
                       "invalid model: memory plan: tensors 3 'h' [64, 72) and 5 's' [64, 72) overlap while both are alive")
        // The input is alive until op 0 reads it; the output from op 2 to the end.
        XCTAssertEqual(loadError { $0.tensors[0].arenaOffsetPerSample = 64 },
                       "invalid model: memory plan: tensors 0 'x' [64, 76) and 3 'h' [64, 72) overlap while both are alive")
        XCTAssertEqual(loadError { $0.tensors[6].arenaOffsetPerSample = 128 },
                       "invalid model: memory plan: tensors 5 's' [128, 136) and 6 'y' [128, 136) overlap while both are alive")
        // Reuse across disjoint lifetimes is what the planner does, and is accepted: h dies at
        // op 1, y is born at op 2.
        XCTAssertEqual(loadError { $0.tensors[6].arenaOffsetPerSample = 64 }, "loaded")
    }

    /// 1.7: a copy whose output has its input's offset is a view of the same bytes. It may share
    /// them with its source, nothing else may while either is alive, and a 1.6 file may not.
    func testViewsShareTheirSourcesBytes() throws {
        // h (op 0) --copy--> v (op 1, same offset) --add--> s (op 2).
        func withView(_ d: inout ModelDescription) {
            d.tensors.append(TensorInfo(name: "v", dtype: .float32, shape: [-1, 1, 2], arenaOffsetPerSample: 64))
            d.operators.insert(OperatorInfo(opcode: .copy, inputs: [3], outputs: [7], name: "view"), at: 1)
            d.operators[2].inputs = [7, 4]
            d.tensors[4].shape = [1, 1, 2]
            d.tensors[5].shape = [-1, 1, 2]
            d.operators[3] = OperatorInfo(opcode: .copy, inputs: [5], outputs: [6], name: "flat")
        }
        XCTAssertEqual(loadError(withView), "loaded")
        let session = try Session(model: try Model(bytes: AlignedBytes(handModel(mutate: withView))))
        try session.setInput(0, floats: [1, 2, 3, -1, 0, 4])
        try session.run(batch: 2)
        // relu(W x + b) + c, no softmax: (max(0, 1-3), max(0, 3+1)) + (0.25, -0.25), ...
        XCTAssertEqual(Array(session.outputBuffer(0, batch: 2).bindMemory(to: Float.self)), [0.25, 3.75, 0.25, 2.25])
        XCTAssertEqual(loadError { withView(&$0); $0.formatMinor = 6 },
                       "invalid model: memory plan: tensors 3 'h' [64, 72) and 7 'v' [64, 72) overlap while both are alive")
        // s is written by the add that reads the view: they are alive together.
        XCTAssertEqual(loadError { withView(&$0); $0.tensors[5].arenaOffsetPerSample = 64 },
                       "invalid model: memory plan: tensors 5 's' [64, 72) and 7 'v' [64, 72) overlap while both are alive")
        // A view at another offset is an ordinary copy.
        XCTAssertEqual(loadError { withView(&$0); $0.tensors[7].arenaOffsetPerSample = 0 }, "loaded")
    }

    // 8. Segment contents.
    func testChecksum() throws {
        var bytes = handModel()
        let file = try ModelFile(bytes: AlignedBytes(bytes))
        let b = file.description.buffers[1]
        let at = Int(file.description.segmentBase + b.offset)
        bytes[at] ^= 0x40
        let found = bytes[at..<(at + Int(b.storedSize))].withUnsafeBytes { Segments.checksum($0) }
        XCTAssertEqual(loadError(bytes), "buffer 2: checksum mismatch (expected 0x\(String(b.checksum, radix: 16)), found 0x\(String(found, radix: 16)))")
    }

    func testZstdFrames() {
        let model = zstdModel()
        XCTAssertEqual(loadError(model.bytes), "loaded")
        XCTAssertEqual(loadError(replaceSegment(model, with: Segments.compress([UInt8](repeating: 0, count: 4032), level: 3))),
                       "buffer 1: zstd decompression failed: frame declares 4032, header says 4096")
        XCTAssertEqual(loadError(replaceSegment(model, with: [UInt8](repeating: 0x55, count: 16))),
                       "buffer 1: zstd decompression failed: frame declares no size, header says 4096")
        // A frame that declares the right size but ends early.
        let frame = Segments.compress([UInt8](repeating: 0, count: 4096), level: 3)
        XCTAssertEqual(loadError(replaceSegment(model, with: Array(frame.dropLast(2)))),
                       "buffer 1: zstd decompression failed: Src size is incorrect")
    }

    // 9. Operators.
    func testOperatorChecks() {
        XCTAssertEqual(loadError { $0.operators[1].inputs = [3] },
                       "invalid model: operator 1 (Add 'add'): 1 inputs and 1 outputs, expected 2...2 and 1")
        XCTAssertEqual(loadError { $0.operators[0].options = .none }, "invalid model: operator 0 (Dense 'fc'): missing DenseOptions")
        XCTAssertEqual(loadError { $0.tensors[3].shape = [-1, 4] },
                       "invalid model: operator 0 (Dense 'fc'): output shape [-1, 4], expected [-1, 2]")
        XCTAssertEqual(loadError { $0.tensors[5].dtype = .int8 },
                       "invalid model: operator 1 (Add 'add'): tensor 's' is int8, expected float32")
        XCTAssertEqual(loadError { $0.tensors[4].shape = [2, 1] },
                       "invalid model: operator 1 (Add 'add'): shape [2, 1] does not broadcast to [-1, 2]")
        XCTAssertEqual(loadError { $0.operators[2].options = .softmax(axis: 0) },
                       "unsupported: operator 2 (Softmax 'sm'): softmax over axis 0 of a rank-2 tensor (only the last axis)")
    }

    // 10. Golden samples.
    func testGoldenSamples() {
        XCTAssertEqual(loadError { $0.golden = GoldenSamples(count: 1, inputs: [], outputs: [], tolerance: 0) },
                       "invalid model: golden samples: 1 samples, 0 inputs and 0 outputs for a model with 1 and 1")
        XCTAssertEqual(loadError { $0.golden = GoldenSamples(count: 1, inputs: [9], outputs: [3], tolerance: 0) },
                       "invalid model: golden samples: buffer 9 for 'x' does not exist or is not float32")
        XCTAssertEqual(loadError { $0.golden = GoldenSamples(count: 1, inputs: [1], outputs: [3], tolerance: 0) },
                       "invalid model: golden samples: buffer 1 for 'x' holds 24 bytes, expected 1 samples × 12 bytes")
        XCTAssertEqual(loadError { $0.golden = GoldenSamples(count: 1, inputs: [1], outputs: [3], tolerance: .infinity) },
                       "invalid model: golden samples: tolerance inf is not a finite non-negative number")
    }

    // 11. The session.
    func testSessionLimits() throws {
        let model = try Model(bytes: AlignedBytes(handModel()))
        XCTAssertThrowsError(try Session(model: model, maxBatch: 9)) { e in
            XCTAssertEqual("\(e)", "session max batch 9 exceeds the model's planned max batch 8")
        }
        XCTAssertThrowsError(try Session(model: model, arenaLimit: 100)) { e in
            XCTAssertEqual("\(e)", "session arena of 2048 bytes exceeds the limit of 100 (lower maxBatch or raise arenaLimit)")
        }
        XCTAssertThrowsError(try Session(model: model, threads: 0)) { e in
            XCTAssertEqual("\(e)", "invalid model: threads must be in 1...256, got 0")
        }
        // No thread count asked for: the physical cores this process may use (SMT siblings once).
        XCTAssertEqual(try Session(model: model).threads, Session.defaultThreads)
        XCTAssertGreaterThanOrEqual(Session.defaultThreads, 1)
        XCTAssertLessThanOrEqual(Session.defaultThreads, ProcessInfo.processInfo.activeProcessorCount)
    }
}
