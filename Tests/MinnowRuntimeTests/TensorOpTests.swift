import MinnowFormat
import MinnowRuntime
import XCTest

// Format-1.2 ops built by hand: what they compute, and the load-time checks that let their
// kernels run without checking (the converter's side is covered against onnxruntime in
// tools/tests/test_tensor_ops_oracle.py).

/// x[-1, 2, 3] -> StridedCopy(params) -> y[-1, 3, 2] (a transpose with the default params).
private func transposeModel(params: [Int64] = [2, 3, 2, 1, 3, 0], minor: UInt16 = 2) -> [UInt8] {
    var d = ModelDescription()
    d.formatMinor = minor
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 2, 3], arenaOffsetPerSample: 0),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 3, 2], arenaOffsetPerSample: 64),
    ]
    d.operators = [OperatorInfo(opcode: .stridedCopy, inputs: [0], outputs: [1], options: .params(ints: params, floats: []), name: "t")]
    d.inputs = [0]
    d.outputs = [1]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 128, maxBatch: 4)
    return ModelFileWriter.write(d, segments: [])
}

/// Attention's scores with the heads read and written in place (1.8): x[-1, 3, 2, 2] holds 3
/// positions of 2 heads of 2 values; per head h, y = Q_h K_h^T with Q = K = x (A rows 4 apart at
/// head stride 2, B read transposed the same way), written as [-1, 3, 2, 3]: position, head, key
/// (y_stride 3, ldc 6): the merge layout.
private func headsModel(params: [Int64] = [2, 3, 2, 3, 2, 2, 1, 4, 4, 0, 0, 3, 6, 0], minor: UInt16 = 8) -> [UInt8] {
    var d = ModelDescription()
    d.formatMinor = minor
    d.tensors = [
        TensorInfo(name: "x", dtype: .float32, shape: [-1, 3, 2, 2], arenaOffsetPerSample: 0),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 3, 2, 3], arenaOffsetPerSample: 64),
    ]
    d.operators = [OperatorInfo(opcode: .matmul, inputs: [0, 0], outputs: [1], options: .params(ints: params, floats: []), name: "qk")]
    d.inputs = [0]
    d.outputs = [1]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 192, maxBatch: 4)
    return ModelFileWriter.write(d, segments: [])
}

/// ids[-1, 3] int64 -> Gather(table [4, 2] int8, per-row params in buffer 2) -> y[-1, 3, 2].
/// A 4-row int8 table looked up by 3 ids a sample. Its row parameters sit in segment 2: by
/// default 1.2's float32 scales and int8 zero points; with a log `encoding` (1.5) the codes for
/// scales 2, 1, 0.5, 0.25 (255, 239, 223, 207: one octave is 16 codes), zero points after them for
/// `.logAsymmetric`, and the largest scale in the vector.
private func embeddingModel(paramBytes: [UInt8]? = nil, encoding: RowEncoding = .float32, largest: [Float] = [2]) -> [UInt8] {
    let logCoded = encoding != .float32
    var d = ModelDescription()
    d.tensors = [
        TensorInfo(name: "ids", dtype: .int64, shape: [-1, 3], arenaOffsetPerSample: 0),
        TensorInfo(name: "table", dtype: .int8, shape: [4, 2],
                   quant: QuantParams(scales: logCoded ? largest : [], zeroPoints: [], axis: 0, buffer: 2, rowEncoding: encoding), buffer: 1),
        TensorInfo(name: "y", dtype: .float32, shape: [-1, 3, 2], arenaOffsetPerSample: 64),
    ]
    d.operators = [OperatorInfo(opcode: .gather, inputs: [1, 0], outputs: [2], name: "emb")]
    d.inputs = [0]
    d.outputs = [2]
    d.memoryPlan = MemoryPlanInfo(arenaBytesPerSample: 128, maxBatch: 4)
    let table: [Int8] = [0, 10, -128, 127, 5, 5, 1, 2]
    let scales: [Float] = [0.5, 1, 2, 0.25]
    let zps: [Int8] = [0, -128, 5, 1]
    let params: [UInt8]
    switch encoding {
    case .float32: params = scales.withUnsafeBytes { Array($0) } + zps.map { UInt8(bitPattern: $0) }
    case .logSymmetric: params = [255, 239, 223, 207]
    case .logAsymmetric: params = [255, 239, 223, 207] + zps.map { UInt8(bitPattern: $0) }
    }
    return ModelFileWriter.write(d, segments: [SegmentPayload(bytes: table.map { UInt8(bitPattern: $0) }),
                                               SegmentPayload(bytes: paramBytes ?? params)])
}

private func loadError(_ bytes: [UInt8]) -> String {
    do { _ = try Session(model: try Model(bytes: AlignedBytes(bytes))); return "loaded" } catch { return "\(error)" }
}

final class TensorOpTests: XCTestCase {
    func testStridedCopyTransposesEverySample() throws {
        let session = try Session(model: try Model(bytes: AlignedBytes(transposeModel())))
        try session.setInput(0, floats: (0..<12).map(Float.init))
        try session.run(batch: 2)
        XCTAssertEqual(session.outputFloats(0, batch: 2), [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11])
        // Inputs survive a run (1.2): a second run gives the same answer.
        try session.run(batch: 2)
        XCTAssertEqual(session.outputFloats(0, batch: 2), [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11])
    }

    func testStridedCopyThatWouldReadOutsideASampleIsRefused() {
        XCTAssertEqual(loadError(transposeModel(params: [2, 3, 2, 1, 3, 1])),
                       "invalid model: operator 0 (StridedCopy 't'): copy reads elements 1...6 of an input sample holding 6")
        XCTAssertEqual(loadError(transposeModel(params: [2, 3, 2, -1, 3, 0])),
                       "invalid model: operator 0 (StridedCopy 't'): copy reads elements -2...3 of an input sample holding 6")
        XCTAssertEqual(loadError(transposeModel(params: [7, 3])),
                       "invalid model: operator 0 (StridedCopy 't'): strided copy parameters must be [rank <= 6, dims, strides, offset], found 2 values")
        XCTAssertEqual(loadError(transposeModel(params: [2, 3, 3, 1, 3, 0])),
                       "invalid model: operator 0 (StridedCopy 't'): copy dims [3, 3] do not fill output [-1, 3, 2]")
    }

    func testNewOpcodesNeedFormat12() {
        XCTAssertEqual(loadError(transposeModel(minor: 1)),
                       "invalid model: operator 0 (StridedCopy 't'): opcode needs format 1.2, the file declares 1.1")
    }

    func testProductsReadAndWriteHeadsInPlace() throws {
        let batch = 2
        let x = (0..<(batch * 12)).map { _ in Float.random(in: -2...2) }
        // y[b, i, h, j] = sum_e x[b, i, h, e] * x[b, j, h, e]
        var want = [Float](repeating: 0, count: batch * 18)
        for b in 0..<batch { for i in 0..<3 { for h in 0..<2 { for j in 0..<3 {
            want[b * 18 + i * 6 + h * 3 + j] = (0..<2).reduce(Float(0)) { $0 + x[b * 12 + i * 4 + h * 2 + $1] * x[b * 12 + j * 4 + h * 2 + $1] }
        } } } }
        for threads in [1, 2] {
            let session = try Session(model: try Model(bytes: AlignedBytes(headsModel())), threads: threads)
            try session.setInput(0, floats: x)
            try session.run(batch: batch)
            let got = session.outputFloats(0, batch: batch)
            XCTAssertEqual(got.count, want.count)
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-5) }
        }
    }

    func testProductLayoutsThatReadPastOrWriteTwiceAreRefused() {
        let what = "invalid model: operator 0 (MatMul 'qk'): "
        // y_stride 1: head 1's rows land on head 0's.
        XCTAssertEqual(loadError(headsModel(params: [2, 3, 2, 3, 2, 2, 1, 4, 4, 0, 0, 1, 6, 0])),
                       what + "output [-1, 3, 2, 3] is not 2 x [3, 3] at y_stride 1, ldc 6, offset 0")
        // A from offset 1: the last head's last row ends one past the sample.
        XCTAssertEqual(loadError(headsModel(params: [2, 3, 2, 3, 2, 2, 1, 4, 4, 1, 0, 3, 6, 0])),
                       what + "2 products of [3, 2] x [2, 3] read past [-1, 3, 2, 2] or [-1, 3, 2, 2]")
        // Written from offset 1: past the end of y.
        XCTAssertEqual(loadError(headsModel(params: [2, 3, 2, 3, 2, 2, 1, 4, 4, 0, 0, 3, 6, 1])),
                       what + "output [-1, 3, 2, 3] is not 2 x [3, 3] at y_stride 3, ldc 6, offset 1")
        // The 1.8 form in a file that declares 1.7.
        XCTAssertTrue(loadError(headsModel(minor: 7)).hasPrefix(what + "matmul parameters [2, 3, 2, 3, 2, 2, 1, 4, 4, 0, 0, 3, 6, 0], expected"))
    }

    func testInt8EmbeddingRowsAreDequantizedPerRow() throws {
        let model = try Model(bytes: AlignedBytes(embeddingModel()))
        XCTAssertEqual(model.description.tensors[1].quant?.scales, [0.5, 1, 2, 0.25])
        XCTAssertEqual(model.description.tensors[1].quant?.zeroPoints, [0, -128, 5, 1])
        let session = try Session(model: model)
        try session.setInput(0, floats: [0, 1, 3, -1, 2, 2])  // -1 counts from the end (row 3)
        try session.run(batch: 2)
        // row r = scale[r] * (q - zp[r])
        let rows: [[Float]] = [[0, 5], [0, 255], [0, 0.25], [0, 0.25], [0, 0], [0, 0]]
        XCTAssertEqual(session.outputFloats(0, batch: 2), rows.flatMap { $0 })
        try session.setInput(0, floats: [0, 4, 1])
        XCTAssertThrowsError(try session.run(batch: 1)) { e in
            XCTAssertEqual("\(e)", "operator 0 (Gather): id 4 at position 1 is outside the table's 4 rows")
        }
    }

    func testLogCodedRowParametersDecodeToTheScalesTheyStandFor() throws {
        let sym = try Model(bytes: AlignedBytes(embeddingModel(encoding: .logSymmetric)))
        XCTAssertEqual(sym.description.tensors[1].quant?.scales, [2, 1, 0.5, 0.25])
        XCTAssertEqual(sym.description.tensors[1].quant?.zeroPoints, [0, 0, 0, 0])
        let session = try Session(model: sym)
        try session.setInput(0, floats: [0, 1, 3, 2, 2, 2])
        try session.run(batch: 2)
        XCTAssertEqual(session.outputFloats(0, batch: 2), [0, 20, -128, 127, 0.25, 0.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5])
        let asym = try Model(bytes: AlignedBytes(embeddingModel(encoding: .logAsymmetric)))
        XCTAssertEqual(asym.description.tensors[1].quant?.zeroPoints, [0, -128, 5, 1])
        // The converter's code for a scale is the smallest whose scale is at least it (no row is clipped).
        for s: Float in [2, 1.999, 1.3, 0.001, 1e-9] {
            let c = RowEncoding.code(for: s, largest: 2)
            XCTAssertGreaterThanOrEqual(RowEncoding.scale(code: c, largest: 2), s)
            if c > 0 { XCTAssertLessThan(RowEncoding.scale(code: c - 1, largest: 2), s) }
        }
    }

    func testMalformedLogCodedRowParametersAreRefused() {
        XCTAssertEqual(loadError(embeddingModel(paramBytes: [255, 239, 223], encoding: .logSymmetric)),
                       "invalid model: tensor 1 'table': quantization buffer 2 holds 3 bytes, 4 rows of logSymmetric parameters need 4")
        XCTAssertEqual(loadError(embeddingModel(paramBytes: [255, 239, 223, 207], encoding: .logAsymmetric)),
                       "invalid model: tensor 1 'table': quantization buffer 2 holds 4 bytes, 4 rows of logAsymmetric parameters need 8")
        for largest: [Float] in [[], [0], [-1], [.nan], [1, 2]] {
            XCTAssertEqual(loadError(embeddingModel(encoding: .logSymmetric, largest: largest)),
                           "invalid model: tensor 1 'table': quantization buffer 2 needs the largest scale (one positive value), a valid axis and an existing buffer")
        }
    }

    func testQuantParamsSegmentOfTheWrongSizeIsRefused() {
        XCTAssertEqual(loadError(embeddingModel(paramBytes: [UInt8](repeating: 0, count: 19))),
                       "invalid model: tensor 1 'table': quantization buffer 2 holds 19 bytes, 4 rows of float32 parameters need 20")
    }
}
