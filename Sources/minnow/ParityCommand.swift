import ArgumentParser
import Foundation
import MinnowFormat
import MinnowParity
import MinnowRuntime

struct ParityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parity",
        abstract: "Compare a .minnow model with the trainer's recorded outputs; exit 1 when a threshold is violated.",
        discussion: "Exit codes: 0 every threshold holds, 1 a threshold is violated, 2 usage or input error.")

    @Argument(help: "A .minnow file.") var file: String
    @Option(help: "Reference set (.npz): inputs/<name>, outputs/<name>, optional labels/<name>.") var reference: String
    @Option(help: "Parity spec (JSON) with thresholds per output and metric (see docs/parity.md).") var spec: String?
    @Option(help: "Directory for parity.json, junit.xml and parity.html.") var report: String?
    @Option(help: "Samples per run.") var batch: Int?
    @Option(help: "The source ONNX model, for --per-layer.") var source: String?
    @Flag(help: "Attribute the quantization error to layers (needs --source).") var perLayer = false

    func run() {
        do {
            let model: Model
            model = try loadModel(file, code: 2)
            let parsed: ParitySpec?
            do { parsed = try spec.map { try ParitySpec.load(path: $0) } } catch { throw CLIFailure("\(error)", code: 2) }
            if perLayer && source == nil { throw CLIFailure("--per-layer needs --source MODEL.onnx", code: 2) }
            var result: ParityReport
            do {
                let bar = ProgressBar()
                result = try Parity.evaluate(model: model, referencePath: reference, spec: parsed, batch: batch) { bar.update("parity", $0) }
                bar.finish()
                if perLayer, let source {
                    let refs = try ReferenceSet.load(path: reference, model: model)
                    result.layers = try LayerAttribution.compute(quantized: try ModelFile(path: file), sourceONNX: source, reference: refs)
                }
            } catch {
                throw CLIFailure("\(error)", code: 2)
            }
            print(result.table(color: isatty(1) != 0))
            if let report { try ParityCommand.write(result, to: report, title: file) }
            if !result.passed { throw ExitCode(1) }
        } catch let f as CLIFailure {
            printErr("error: \(f.message)")
            Foundation.exit(f.code)
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch {
            printErr("error: \(error)")
            Foundation.exit(2)
        }
    }

    static func write(_ r: ParityReport, to dir: String, title: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let url = URL(fileURLWithPath: dir)
            try r.json().write(to: url.appendingPathComponent("parity.json"))
            try Data(r.junitXML().utf8).write(to: url.appendingPathComponent("junit.xml"))
            try Data(r.html(title: (title as NSString).lastPathComponent).utf8).write(to: url.appendingPathComponent("parity.html"))
        } catch {
            throw CLIFailure("--report \(dir): \(error.localizedDescription)", code: 2)
        }
        printErr("reports: \(dir)/parity.json, junit.xml, parity.html")
    }
}
