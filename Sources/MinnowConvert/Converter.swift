import Foundation
import MinnowFormat
import MinnowNumpy
import MinnowRuntime

/// What a conversion did, for the user: op counts, what stayed float and why, sizes.
public struct ConversionSummary: Sendable {
    public var mode: QuantizationMode
    public var opCounts: [(op: String, count: Int)]
    public var int8Dense: Int
    public var floatOps: [(op: String, opType: String, reason: String)]
    public var onnxBytes: Int
    /// fp32 bytes of the weights the converted graph uses.
    public var weightBytesFP32: Int
    /// Bytes of weights in the file (after quantization, before compression).
    public var weightBytesStored: Int
    public var fileBytes: Int
    public var calibrationSamples: Int
    public var arenaBytesPerSample: Int
    /// Embedding tables, reported apart (they dominate recommendation models).
    public var embeddings: EmbeddingStats?
    /// Sequence lengths accepted (a model converted with `--max-seq`).
    public var sequence: SequenceSummary?
    /// Auto mode: the precision chosen for each Dense and the measurements behind it.
    public var precision: [PrecisionChoice] = []
    /// Auto mode: why it chose one precision for the whole graph (no calibration data).
    public var autoNote: String?
    public var embeddingBytesFP32: Int { embeddings?.fp32Bytes ?? 0 }
    public var embeddingBytesStored: Int { embeddings?.storedBytes ?? 0 }

    public var lines: [String] {
        var out: [String] = []
        out.append("mode: \(mode.rawValue)" + (calibrationSamples > 0 ? " (calibrated on \(calibrationSamples) samples)" : ""))
        if let autoNote { out.append("auto: \(autoNote)") }
        if !precision.isEmpty {
            let counts = [LayerPrecision.static, .dynamic, .float].map { p in "\(precision.filter { $0.precision == p }.count) \(p.rawValue)" }
            out.append("precision per Dense (auto, measured on the calibration rows): " + counts.joined(separator: ", "))
            for c in precision { out.append("  \(c.op): \(c.line)") }
        }
        out.append("ops: " + opCounts.map { "\($0.op) x\($0.count)" }.joined(separator: ", ") + (int8Dense > 0 ? " (\(int8Dense) Dense in int8)" : ""))
        if floatOps.isEmpty {
            out.append("float ops: none")
        } else if floatOps.count <= 12 {
            out.append("float ops (\(floatOps.count)):")
            for f in floatOps { out.append("  \(f.op) [\(f.opType)]: \(f.reason)") }
        } else {
            // Large graphs (transformers): one line per op type and reason.
            out.append("float ops (\(floatOps.count), by type):")
            var groups: [(key: String, count: Int)] = []
            for f in floatOps {
                let key = "[\(f.opType)]: \(f.reason)"
                if let i = groups.firstIndex(where: { $0.key == key }) { groups[i].count += 1 } else { groups.append((key, 1)) }
            }
            for g in groups { out.append("  \(g.count) x \(g.key)") }
        }
        out.append("weights: \(kb(weightBytesFP32)) fp32 -> \(kb(weightBytesStored)) stored")
        if let e = embeddings {
            out.append("embeddings: \(e.tables) table\(e.tables == 1 ? "" : "s"), \(e.rows) rows, \(kb(e.fp32Bytes)) fp32 -> \(kb(e.storedBytes)) in the file "
                       + "(\(String(format: "%.2f", Double(e.fp32Bytes) / Double(max(e.storedBytes, 1))))x smaller)")
        }
        let ratio = fileBytes > 0 ? Double(onnxBytes) / Double(fileBytes) : 0
        out.append("file: \(kb(fileBytes)) (ONNX \(kb(onnxBytes)), \(String(format: "%.2f", ratio))x smaller, \(String(format: "%.1f", 100 * Double(fileBytes) / Double(max(onnxBytes, 1))))% of ONNX)")
        out.append("arena: \(arenaBytesPerSample) bytes per sample")
        if let sequence {
            out.append("sequence lengths: \(IOError.ranges(sequence.lengths))")
            for r in sequence.refused.prefix(5) { out.append("  length \(r.length) left out: \(r.reason)") }
            if sequence.refused.count > 5 { out.append("  (\(sequence.refused.count - 5) more lengths left out)") }
        }
        return out
    }

    private func kb(_ b: Int) -> String { b < 10_000 ? "\(b) B" : String(format: "%.1f KB", Double(b) / 1000) }
}

public struct SequenceSummary: Sendable {
    /// Every length the model accepts, ascending (the longest is the model's own graph).
    public var lengths: [Int]
    /// Lengths asked for but left out, with the reason.
    public var refused: [(length: Int, reason: String)]
}

public struct ConversionResult: Sendable {
    public let bytes: [UInt8]
    public let summary: ConversionSummary
}

public enum Converter {
    public static let version = "minnow-convert 0.1.0"

    public static func convert(onnxPath: String, options: ConvertOptions) throws(ConvertError) -> ConversionResult {
        guard options.maxBatch >= 1, options.maxBatch <= 1 << 16 else { throw .options("--max-batch must be in 1...65536") }
        guard (1...22).contains(options.zstdLevel) else { throw .options("--zstd-level must be in 1...22") }
        if case let .percentile(p) = options.calibration, !(p > 50 && p <= 100) {
            throw .options("percentile must be in (50, 100], got \(p)")
        }
        var onnx = try ONNXGraph.load(path: onnxPath)
        if let maxSeq = options.maxSeq, !onnx.inputs.contains(where: { $0.dims.dropFirst().contains(nil) }) {
            throw .options("--max-seq \(maxSeq): no input of this model has a dynamic dimension besides the batch (its lengths are fixed by the export)")
        }
        ONNXRewrites.run(&onnx)
        var g = try Lowering.lower(onnx, maxSeq: options.maxSeq)
        PatternFusion.run(&g)
        Fusion.run(&g)
        if options.foldLayouts { MatMulLayoutFolding.run(&g) }
        ChannelsLast.run(&g)
        let fusedNames = g.tensors.map(\.name)
        let weightBytesFP32 = g.tensors.filter(\.isConstant).reduce(0) { $0 + Int($1.shape.reduce(1, *)) * $1.dtype.byteSize }

        var floatOps: [FloatDecision] = []
        var samples = 0
        var precision: [PrecisionChoice] = []
        var autoNote: String?
        /// The same quantization, applied to the graph lowered at another sequence length.
        var quantizeVariant: (inout MGraph) -> Void = { _ in }
        var metadata = [KeyValue("mode", options.mode.rawValue), KeyValue("source_producer", onnx.producer),
                        KeyValue("source_opset", String(onnx.opset))]
        switch options.mode {
        case .float:
            floatOps = Quantizer.floatOnlyOps(g)
        case .dynamic:
            // Dynamic mode needs no calibration; given some, its lookups choose the embedding
            // tables' parameters (as in the other modes) when the model has tables.
            var tables = TableContext()
            let ids = Quantizer.embeddingIds(g)
            if let path = options.calibrationPath, !ids.isEmpty {
                let arrays: [(name: String, array: NpyArray)]
                do { arrays = try Npz.readAny(path: path) } catch { throw .calibration(error.description) }
                let result = try Calibrator.calibrate(g, arrays: try Calibrator.inputArrays(g, arrays, file: path), method: .minMax,
                                                      maxSamples: options.maxCalibrationSamples, batch: min(options.maxBatch, 64),
                                                      countIds: ids, progress: options.progress)
                tables.lookups = result.lookups
            }
            floatOps = Quantizer.applyDynamic(&g, keep: options.keepFloat, tables: tables)
            quantizeVariant = { [keep = options.keepFloat, tables] v in _ = Quantizer.applyDynamic(&v, keep: keep, tables: tables) }
        case .static, .auto:
            guard let path = options.calibrationPath else {
                guard options.mode == .auto else {
                    throw .options("static mode needs calibration data: --calibration CALIB.npz (or use --mode dynamic)")
                }
                // Without calibration rows there is nothing to measure static ranges on: auto is dynamic.
                floatOps = Quantizer.applyDynamic(&g, keep: options.keepFloat)
                quantizeVariant = { [keep = options.keepFloat] v in _ = Quantizer.applyDynamic(&v, keep: keep) }
                autoNote = "no --calibration: every Dense dynamic (int8 weights, per-row activations)"
                break
            }
            let arrays: [(name: String, array: NpyArray)]
            do { arrays = try Npz.readAny(path: path) } catch { throw .calibration(error.description) }
            let inputs = try Calibrator.inputArrays(g, arrays, file: path)
            let candidates = options.mode == .auto ? AutoPrecision.candidates(g, keep: options.keepFloat) : []
            let floatOutputs = g.outputs.filter { g.tensors[$0].dtype == .float32 }
            let result = try Calibrator.calibrate(g, arrays: inputs, method: options.calibration,
                                                  maxSamples: options.maxCalibrationSamples, batch: min(options.maxBatch, 64),
                                                  capture: Set(candidates.map { g.ops[$0].inputs[0] } + floatOutputs),
                                                  countIds: Quantizer.embeddingIds(g), progress: options.progress)
            var tables = TableContext(lookups: result.lookups)
            samples = result.samples
            if options.mode == .auto {
                options.progress?("precision", 0)
                let measured = try AutoPrecision.choose(g, candidates: candidates, ranges: result.ranges, captured: result.captured)
                // The end-to-end check runs on as many calibration samples as every output was captured for.
                let perSample = floatOutputs.map { Int(g.tensors[$0].shape.dropFirst().reduce(1, *)) }
                let n = min(256, zip(floatOutputs, perSample).map { (result.captured[$0.0]?.count ?? 0) / max($0.1, 1) }.min() ?? 0)
                if n > 0, !measured.isEmpty {
                    let check = AutoPrecision.Check(
                        inputs: zip(inputs, g.inputs).map { a, t in Array(a.floats().prefix(n * Int(g.tensors[t].shape.dropFirst().reduce(1, *)))) },
                        samples: n, outputs: zip(floatOutputs, perSample).map { Array(result.captured[$0.0]!.prefix(n * $0.1)) },
                        batch: min(options.maxBatch, 64))
                    let refined = try AutoPrecision.refine(g, choices: measured, ranges: result.ranges, keep: options.keepFloat,
                                                          tables: tables, check: check)
                    precision = refined.choices
                    tables.compact = refined.compactTables
                    autoNote = String(format: "graph outputs on %d calibration samples: SNR %.1f dB (all static %.1f dB, all dynamic %.1f dB)",
                                      n, refined.snr.mix, refined.snr.allStatic, refined.snr.allDynamic)
                        + (refined.tablesNote.map { "; \($0)" } ?? "")
                } else {
                    precision = measured
                }
                floatOps = AutoPrecision.apply(&g, precision, ranges: result.ranges, keep: options.keepFloat, tables: tables)
                floatOps += precision.filter { $0.precision == .float }.map { FloatDecision(op: $0.op, opType: $0.opType, reason: "auto: \($0.reason)") }
                quantizeVariant = { [keep = options.keepFloat, ranges = result.ranges, precision, tables] v in
                    AutoPrecision.apply(&v, precision, ranges: ranges, keep: keep, tables: tables)
                }
                metadata.append(KeyValue("precision", PrecisionChoice.encode(precision, in: g)))
                if let autoNote { metadata.append(KeyValue("precision_check", autoNote)) }
            } else {
                floatOps = Quantizer.applyStatic(&g, ranges: result.ranges, keep: options.keepFloat, tables: tables)
                quantizeVariant = { [keep = options.keepFloat, ranges = result.ranges, tables] v in
                    _ = Quantizer.applyStatic(&v, ranges: ranges, keep: keep, tables: tables)
                }
            }
            let method: String
            switch options.calibration {
            case .minMax: method = "minmax"
            case let .percentile(p): method = "percentile:\(p)"
            }
            metadata += [KeyValue("calibration_method", method), KeyValue("calibration_samples", String(samples)),
                         KeyValue("calibration_hash", result.dataHash)]
        }
        g.compact()
        let plan = MemoryPlanner.plan(g, reuse: options.reuseMemory)
        var (d, segments) = Emitter.describe(g, plan: plan, maxBatch: options.maxBatch, metadata: metadata, producer: version,
                                             sourceHash: onnx.sourceHash)
        var sequence: SequenceSummary?
        if let maxSeq = options.maxSeq {
            // Lengths in ascending order; the graph at maxSeq is the model's own.
            let wanted = Set((options.sequenceLengths ?? Array(1...maxSeq)).filter { $0 >= 1 && $0 < maxSeq }).sorted()
            var builder = SequenceVariantBuilder(main: g, segments: segments)
            var variants: [SequenceVariant] = []
            var refused: [(length: Int, reason: String)] = []
            for length in wanted {
                options.progress?("sequence lengths", Double(length) / Double(maxSeq))
                do {
                    var v = try Lowering.lower(onnx, maxSeq: length)
                    PatternFusion.run(&v)
                    Fusion.run(&v)
                    if options.foldLayouts { MatMulLayoutFolding.run(&v) }
                    ChannelsLast.run(&v)
                    guard v.tensors.map(\.name) == fusedNames else {
                        refused.append((length, "the lowered graph has other tensors than at length \(maxSeq)"))
                        continue
                    }
                    quantizeVariant(&v)
                    v.compact()
                    switch builder.variant(v, length: length) {
                    case let .success(variant): variants.append(variant)
                    case let .failure(why): refused.append((length, why.reason))
                    }
                } catch {
                    refused.append((length, error.description))
                }
            }
            segments = builder.segments
            d.sequenceLength = UInt32(maxSeq)
            if !variants.isEmpty {
                segments.append(SegmentPayload(bytes: SequenceVariant.encode(variants)))
                d.sequenceVariants = UInt32(segments.count)
            }
            sequence = SequenceSummary(lengths: variants.map { Int($0.length) } + [maxSeq], refused: refused)
            metadata.append(KeyValue("sequence_lengths", IOError.ranges(sequence!.lengths)))
            d.metadata = metadata
        }
        let bytes = ModelFileWriter.write(d, segments: segments, codec: .zstd, zstdLevel: options.zstdLevel)
        // The file we write must load: a converter bug surfaces here, not on the edge box.
        let written: Model
        do { written = try Model(bytes: AlignedBytes(bytes)) } catch { throw .model("\(error)") }
        let embeddings = EmbeddingStats(written.description)

        var counts: [(String, Int)] = []
        for op in g.ops {
            let name = op.opcode.description
            if let i = counts.firstIndex(where: { $0.0 == name }) { counts[i].1 += 1 } else { counts.append((name, 1)) }
        }
        let int8Dense = g.ops.filter { $0.opcode == .dense && g.tensors[$0.inputs[1]].dtype == .int8 }.count
        let stored = g.tensors.filter(\.isConstant).reduce(0) { $0 + ($1.data?.bytes.count ?? 0) }
        let onnxBytes = (try? FileManager.default.attributesOfItem(atPath: onnxPath)[.size] as? Int) ?? 0
        let summary = ConversionSummary(
            mode: options.mode, opCounts: counts, int8Dense: int8Dense,
            floatOps: floatOps.map { ($0.op, $0.opType, $0.reason) }, onnxBytes: onnxBytes,
            weightBytesFP32: weightBytesFP32, weightBytesStored: stored, fileBytes: bytes.count,
            calibrationSamples: samples, arenaBytesPerSample: Int(plan.arenaBytesPerSample),
            embeddings: embeddings.tables > 0 ? embeddings : nil, sequence: sequence, precision: precision, autoNote: autoNote)
        return ConversionResult(bytes: bytes, summary: summary)
    }
}

extension Converter {
    /// A loaded model re-planned so that no two activations share memory: after a run every
    /// intermediate tensor can be read (per-layer attribution, debugging). Weights are unchanged.
    public static func withoutMemoryReuse(_ file: ModelFile) throws(ConvertError) -> [UInt8] {
        var d = file.description
        var offset: UInt64 = 0
        for i in d.tensors.indices where !d.tensors[i].isConstant {
            d.tensors[i].arenaOffsetPerSample = offset
            let bytes = UInt64(d.tensors[i].shape.dropFirst().reduce(1, *)) * UInt64(d.tensors[i].dtype.byteSize)
            offset += (max(bytes, 1) + 63) / 64 * 64
        }
        d.memoryPlan.arenaBytesPerSample = offset
        var segments: [SegmentPayload] = []
        for i in d.buffers.indices {
            do { segments.append(SegmentPayload(bytes: try file.segment(i + 1).elements(as: UInt8.self))) } catch {
                throw .model("\(error)")
            }
        }
        return ModelFileWriter.write(d, segments: segments, codec: .none)
    }
}

extension Converter {
    /// Adds golden samples to a converted model: the first `count` rows of `inputs` (one fp32
    /// array per model input) and the outputs this model computes for them, here and now.
    /// Integer-only graphs are checked bit-exactly on the edge box; graphs with float ops
    /// (whose libm or summation order may differ by CPU) within a stated tolerance.
    public static func bundleGoldenSamples(_ bytes: [UInt8], inputs: [[Float]], count: Int,
                                           zstdLevel: Int32 = 3) throws(ConvertError) -> [UInt8] {
        do {
            let file = try ModelFile(bytes: AlignedBytes(bytes))
            let model = try Model(file: file)
            guard count >= 1, inputs.count == model.inputs.count else {
                throw ConvertError.options("--bundle-count must be at least 1 and the reference must hold every input")
            }
            let rows = zip(inputs, model.inputs).map { Array($0.0.prefix(count * $0.1.elementsPerSample)) }
            let n = rows[0].count / max(model.inputs[0].elementsPerSample, 1)
            let outputs = try Session(model: model, maxBatch: min(n, model.maxBatch)).predict(inputs: rows, samples: n)
            var d = file.description
            var segments = try d.buffers.indices.map { SegmentPayload(bytes: try file.segment($0 + 1).elements(as: UInt8.self)) }
            func add(_ values: [Float]) -> UInt32 {
                segments.append(SegmentPayload(bytes: values.withUnsafeBytes { Array($0) }, shuffleWidth: 4))
                return UInt32(segments.count)
            }
            let integerOnly = d.operators.allSatisfy { op in
                switch op.opcode {
                case .quantize, .dequantize, .copy, .concat: return true
                case .dense: return d.tensors[Int(op.inputs[0])].dtype == .int8
                default: return false
                }
            }
            let scale = outputs.flatMap { $0 }.reduce(Float(1)) { max($0, abs($1)) }
            d.golden = GoldenSamples(count: UInt32(n), inputs: rows.map(add), outputs: outputs.map(add),
                                     tolerance: integerOnly ? 0 : 1e-5 * scale)
            return ModelFileWriter.write(d, segments: segments, codec: .zstd, zstdLevel: zstdLevel)
        } catch let e as ConvertError {
            throw e
        } catch {
            throw .model("bundling golden samples: \(error)")
        }
    }
}
