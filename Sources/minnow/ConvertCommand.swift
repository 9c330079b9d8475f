import ArgumentParser
import Foundation
import MinnowConvert

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert", abstract: "Compile an ONNX model into a .minnow file.")

    @Argument(help: "The trained fp32 model (ONNX, opset 13 to 21).") var model: String
    @Option(name: .shortAndLong, help: "Where to write the .minnow file.") var output: String
    @Option(help: "Calibration inputs (.npz with inputs/<name> arrays); needed by static mode.") var calibration: String?
    @Option(help: "static (int8 activations, default), dynamic (int8 weights, per-row activations) or float.")
    var mode: String = "static"
    @Option(help: "Calibration range method: minmax or percentile:P (e.g. percentile:99.99).") var calibrationMethod: String = "minmax"
    @Option(help: "Largest batch a session may run; the memory plan is made for it.") var maxBatch: Int = 64
    @Option(help: "Comma-separated node names, output names or ONNX op types to keep in fp32.") var keepFloat: String = ""
    @Option(help: "zstd level for weight segments (1-22).") var zstdLevel: Int = 3

    func run() {
        reportingErrors {
            var options = ConvertOptions()
            guard let m = QuantizationMode(rawValue: mode) else {
                throw CLIFailure("--mode must be static, dynamic or float (got '\(mode)')")
            }
            options.mode = m
            options.calibrationPath = calibration
            options.maxBatch = maxBatch
            options.zstdLevel = Int32(clamping: zstdLevel)
            options.keepFloat = keepFloat.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if calibrationMethod == "minmax" {
                options.calibration = .minMax
            } else if calibrationMethod.hasPrefix("percentile:"), let p = Double(calibrationMethod.dropFirst("percentile:".count)) {
                options.calibration = .percentile(p)
            } else {
                throw CLIFailure("--calibration-method must be minmax or percentile:P (got '\(calibrationMethod)')")
            }
            let result = try Converter.convert(onnxPath: model, options: options)
            guard FileManager.default.createFile(atPath: output, contents: Data(result.bytes)) else {
                throw CLIFailure("\(output): cannot write")
            }
            print("wrote \(output)")
            for line in result.summary.lines { print("  " + line) }
        }
    }
}
