import ArgumentParser
import Foundation
import MinnowConvert
import MinnowFormat
import MinnowNumpy
import MinnowRuntime
import MinnowParity

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert", abstract: "Compile an ONNX model into a .minnow file.")

    @Argument(help: "The trained fp32 model (ONNX, opset 13 to 21).") var model: String
    @Option(name: .shortAndLong, help: "Where to write the .minnow file.") var output: String
    @Option(help: "Calibration inputs (.npz with inputs/<name> arrays); needed by static mode, used by auto.") var calibration: String?
    @Option(help: "auto (default: per layer, the cheapest of static, dynamic and float within tolerance, measured on the calibration rows), static (int8 activations), dynamic (int8 weights, per-row activations) or float.")
    var mode: String = "auto"
    @Option(help: "Calibration range method: minmax or percentile:P (e.g. percentile:99.99).") var calibrationMethod: String = "minmax"
    @Option(help: "Largest batch a session may run; the memory plan is made for it.") var maxBatch: Int = 64
    @Option(help: "Longest length for dynamic dimensions other than the batch (an export with a dynamic sequence axis); the memory plan is made for it.")
    var maxSeq: Int?
    @Option(help: "With --max-seq N, the lengths the model accepts: all (every length 1...N), max (N only) or a list such as 16,32,64 (N is always included).")
    var seqLengths: String = "all"
    @Option(help: "Comma-separated node names, output names or ONNX op types to keep in fp32.") var keepFloat: String = ""
    @Option(help: "zstd level for weight segments (1-22).") var zstdLevel: Int = 3
    @Option(help: "Reference set (.npz): keep the most sensitive layers in float until parity holds (the --spec thresholds, or the task defaults).")
    var reference: String?
    @Option(help: "Parity spec (JSON) the converted model must meet (with --reference).") var spec: String?
    @Option(help: "Bundle golden samples from this reference set (.npz) for `minnow verify --self-test`.")
    var bundleReference: String?
    @Option(help: "How many golden samples to bundle.") var bundleCount: Int = 16
    @Flag(help: "Keep attention's head split and merge as copies instead of strides of the products (the same outputs; for comparison).")
    var keepLayoutCopies = false

    func run() {
        reportingErrors {
            var options = ConvertOptions()
            guard let m = QuantizationMode(rawValue: mode) else {
                throw CLIFailure("--mode must be auto, static, dynamic or float (got '\(mode)')")
            }
            options.mode = m
            options.calibrationPath = calibration
            options.maxBatch = maxBatch
            if let maxSeq {
                guard maxSeq >= 1, maxSeq <= 1 << 20 else { throw CLIFailure("--max-seq must be between 1 and 1048576 (got \(maxSeq))") }
                options.maxSeq = maxSeq
                switch seqLengths {
                case "all": options.sequenceLengths = nil
                case "max": options.sequenceLengths = []
                default:
                    let parts = seqLengths.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                    guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && (1...maxSeq).contains($0!) }) else {
                        throw CLIFailure("--seq-lengths must be all, max or a comma-separated list of lengths in 1...\(maxSeq) (got '\(seqLengths)')")
                    }
                    options.sequenceLengths = parts.map { $0! }
                }
            } else if seqLengths != "all" {
                throw CLIFailure("--seq-lengths needs --max-seq")
            }
            options.zstdLevel = Int32(clamping: zstdLevel)
            options.foldLayouts = !keepLayoutCopies
            options.keepFloat = keepFloat.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if calibrationMethod == "minmax" {
                options.calibration = .minMax
            } else if calibrationMethod.hasPrefix("percentile:"), let p = Double(calibrationMethod.dropFirst("percentile:".count)) {
                options.calibration = .percentile(p)
            } else {
                throw CLIFailure("--calibration-method must be minmax or percentile:P (got '\(calibrationMethod)')")
            }
            let bar = ProgressBar()
            options.progress = { stage, fraction in bar.update(stage, fraction) }
            defer { bar.finish() }
            if spec != nil && reference == nil { throw CLIFailure("--spec needs --reference REF.npz") }
            guard let reference else {
                let result = try Converter.convert(onnxPath: model, options: options)
                bar.finish()
                try write(result)
                return
            }
            let parsed = try spec.map { try ParitySpec.load(path: $0) }
            let search = try MixedPrecision.search(onnxPath: model, options: options, referencePath: reference, spec: parsed) {
                bar.finish()
                printErr("mixed precision: \($0)")
            }
            guard search.report.passed else {
                print(search.report.table(color: isatty(1) != 0))
                throw CLIFailure(search.achievable
                    ? "no mix of int8 and float layers meets the spec"
                    : "even the all-float model does not meet the spec: the thresholds ask for more than the source model gives")
            }
            try write(search.result)
            let cost = search.result.bytes.count - search.allInt8Bytes
            print("  parity: passes \(spec.map { "spec \($0)" } ?? "default thresholds") on \(search.report.samples) samples")
            print(search.keptFloat.isEmpty ? "  kept in float for accuracy: none"
                  : "  kept in float for accuracy: \(search.keptFloat.joined(separator: ", ")) (+\(cost) bytes over all-int8, \(String(format: "%.1f", 100 * Double(cost) / Double(search.allInt8Bytes)))%)")
        }
    }

    private func write(_ result: ConversionResult) throws {
        var bytes = result.bytes
        if let bundleReference {
            let model = try Model(bytes: AlignedBytes(bytes))
            let arrays: [(name: String, array: NpyArray)]
            do { arrays = try Npz.readAny(path: bundleReference) } catch { throw CLIFailure("\(bundleReference): \(error)") }
            let data = try RunCommand.matchInputs(model.inputs, arrays, file: bundleReference)
            bytes = try Converter.bundleGoldenSamples(bytes, inputs: data.values, count: bundleCount,
                                                      zstdLevel: Int32(clamping: zstdLevel))
        }
        guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
            throw CLIFailure("\(output): cannot write")
        }
        print("wrote \(output)")
        for line in result.summary.lines { print("  " + line) }
        if bundleReference != nil {
            let g = try Model(bytes: AlignedBytes(bytes)).golden!
            print("  golden samples: \(g.count) bundled (\(g.tolerance == 0 ? "integer path: checked bit-exactly" : "checked within \(g.tolerance)")), file now \(bytes.count) bytes")
        }
    }
}
