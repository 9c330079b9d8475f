import MinnowFormat
import MinnowRuntime
import XCTest

// Format 1.3: a model's graph at shorter sequence lengths, kept as changes in a segment. A small
// hand-made model: x [-1, L] -> y = x + c[L] (a constant of the sequence length, stored at the
// longest, L = 4; shorter lengths use its prefix), at lengths 2 and 4.

private func variableModel(_ variants: [SequenceVariant], raw: [UInt8]? = nil) -> [UInt8] {
    var d = ModelDescription()
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 4], arenaOffsetPerSample: 0),
        TensorInfo(name: "c", dtype: .float32, shape: [4], buffer: 1),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 4], arenaOffsetPerSample: 64),
    ]
    d.operators = [OperatorInfo(opcode: .add, inputs: [0, 1], outputs: [2], name: "add")]
    d.inputs = [0]
    d.outputs = [2]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 128, maxBatch: 4)
    d.sequenceLength = 4
    d.sequenceVariants = 2
    let c: [Float] = [10, 20, 30, 40]
    return ModelFileWriter.write(d, segments: [SegmentPayload(bytes: c.withUnsafeBytes { Array($0) }),
                                               SegmentPayload(bytes: raw ?? SequenceVariant.encode(variants))])
}

private let lengthTwo = SequenceVariant(length: 2, tensors: [
    .init(tensor: 0, shape: [-1, 2]), .init(tensor: 1, shape: [2], prefix: true), .init(tensor: 2, shape: [-1, 2]),
], operators: [])

private func loadError(_ bytes: [UInt8]) -> String {
    do {
        _ = try Model(bytes: AlignedBytes(bytes))
        return "loaded"
    } catch {
        return "\(error)"
    }
}

final class SequenceVariantTests: XCTestCase {
    func testEachLengthRunsItsOwnGraph() throws {
        let model = try Model(bytes: AlignedBytes(variableModel([lengthTwo])))
        XCTAssertEqual(model.sequenceLengths, [2, 4])
        XCTAssertEqual(model.inputs(sequenceLength: 2)?.first?.shape, [-1, 2])
        XCTAssertEqual(model.sequenceLength(forInputShapes: [[3, 2]]), 2)
        XCTAssertNil(model.sequenceLength(forInputShapes: [[3, 3]]))
        let s = try Session(model: model, maxBatch: 4)
        try s.setInput(0, floats: [1, 2, 3, 4, 5, 6, 7, 8])
        try s.run(batch: 2)
        XCTAssertEqual(s.outputFloats(0, batch: 2), [11, 22, 33, 44, 15, 26, 37, 48])
        try s.setSequenceLength(2)
        XCTAssertEqual(s.inputs[0].elementsPerSample, 2)
        try s.setInput(0, floats: [1, 2, 3, 4, 5, 6])
        try s.run(batch: 3)
        XCTAssertEqual(s.outputFloats(0, batch: 3), [11, 22, 13, 24, 15, 26], "the constant's prefix, c[0..<2]")
        XCTAssertThrowsError(try s.setInput(0, floats: [1, 2, 3])) // not whole samples at length 2
        XCTAssertThrowsError(try s.setSequenceLength(3)) { e in
            XCTAssertEqual("\(e)", "sequence length 3 is not one the model accepts (2, 4)")
        }
    }

    func testHostileVariantsAreRefusedByName() {
        func with(_ change: (inout SequenceVariant) -> Void) -> String {
            var v = lengthTwo
            change(&v)
            return loadError(variableModel([v]))
        }
        XCTAssertEqual(with { $0.tensors[0].tensor = 9 },
                       "malformed model: sequence length 2: tensor 9 does not exist (model has 3)")
        XCTAssertEqual(with { $0.tensors[0].shape = [-1, 2, 1] },
                       "malformed model: sequence length 2: tensor 0 'x' changes rank 2 to 3")
        XCTAssertEqual(with { $0.length = 4 },
                       "invalid model: sequence length 4: variants must be distinct lengths in 1..<4 (the model's own)")
        XCTAssertEqual(with { $0.operators = [.init(op: 0, ints: [1], floats: [])] },
                       "malformed model: sequence length 2: operator 0 'add' has no parameters to change")
        XCTAssertEqual(with { $0.tensors[1].prefix = false },
                       "invalid model: sequence length 2: invalid model: tensor 1 'c': buffer 1 holds 16 bytes, shape [2] of float32 needs 8")
        XCTAssertEqual(with { $0.tensors[1].shape = [8] },
                       "invalid model: sequence length 2: invalid model: tensor 1 'c': buffer 1 holds 16 bytes, shape [8] of float32 needs 32")
        // Larger than its slot: the arena check names it.
        XCTAssertTrue(with { $0.tensors[0].shape = [-1, 40] }.contains("tensor 0 'x': arena range [0, 160) per sample exceeds the arena of 128 bytes"))
        XCTAssertEqual(with { $0.tensors[0].prefix = true },
                       "malformed model: sequence length 2: tensor 0 'x' is an activation but is marked a prefix")
        XCTAssertEqual(loadError(variableModel([lengthTwo, lengthTwo])),
                       "invalid model: sequence length 2: variants must be distinct lengths in 1..<4 (the model's own)")
        XCTAssertEqual(loadError(variableModel([], raw: [UInt8](repeating: 7, count: 64))),
                       "malformed model: sequence variants: the buffer is not a valid SequenceVariants FlatBuffer")
    }
}
