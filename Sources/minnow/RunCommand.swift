import ArgumentParser
import Foundation
import MinnowNumpy
import MinnowRuntime

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a .minnow model on inputs from .npz (or .npy) and write its outputs.")

    @Argument(help: "A .minnow file.") var file: String
    @Option(help: "Refuse the file unless it carries a valid signature by this public key.") var requireSignature: String?
    @Option(help: "Inputs: .npz with inputs/<name> (or <name>) arrays, or .npy for a single-input model.") var input: String
    @Option(name: .shortAndLong, help: "Where to write outputs (.npz with outputs/<name> arrays).") var output: String
    @Option(help: "Samples per run (default: the model's max batch).") var batch: Int?

    func run() {
        reportingErrors {
            let model: Model
            model = try loadModel(file, requireSignature: requireSignature)
            let arrays: [(name: String, array: NpyArray)]
            do { arrays = try Npz.readAny(path: input) } catch { throw CLIFailure("\(input): \(error)") }
            let data = try RunCommand.matchInputs(model, arrays, file: input)
            let total = data.count
            let maxBatch = min(batch ?? model.maxBatch, model.maxBatch)
            guard maxBatch >= 1 else { throw CLIFailure("--batch must be at least 1") }
            let session = try Session(model: model, maxBatch: maxBatch)
            let outs = try session.predict(inputs: data.values, samples: total)
            let named = model.outputs.enumerated().map { i, spec in
                (name: "outputs/\(spec.name)", array: NpyArray(floats: outs[i], shape: [total] + spec.shape.dropFirst()))
            }
            do { try Npz.write(path: output, arrays: named) } catch { throw CLIFailure("\(error)") }
            print("ran \(total) samples in batches of \(maxBatch); wrote \(output) (\(model.outputs.map { $0.description }.joined(separator: "; ")))")
        }
    }

    /// Finds each model input among the arrays and checks its per-sample shape.
    static func matchInputs(_ model: Model, _ arrays: [(name: String, array: NpyArray)], file: String) throws -> (values: [[Float]], count: Int) {
        var values: [[Float]] = []
        var count: Int?
        for spec in model.inputs {
            let found = arrays.first { $0.name == "inputs/\(spec.name)" } ?? arrays.first { $0.name == spec.name }
                ?? (model.inputs.count == 1 && arrays.count == 1 ? arrays.first : nil)
            guard let a = found?.array else {
                throw CLIFailure("\(file): no array for input '\(spec.name)' (expected key 'inputs/\(spec.name)' or '\(spec.name)'; found \(arrays.map(\.name).joined(separator: ", ")))")
            }
            let expected = Array(spec.shape.dropFirst())
            guard a.shape.count == spec.shape.count, Array(a.shape.dropFirst()) == expected else {
                throw CLIFailure("input '\(spec.name)': expected shape [N, \(expected.map(String.init).joined(separator: ", "))], found \(a.shape)")
            }
            if spec.dtype == .float32 {
                guard a.isFloatingPoint else { throw CLIFailure("input '\(spec.name)': expected float32 data, found \(a.type.rawValue)") }
            } else {
                guard !a.isFloatingPoint else {
                    throw CLIFailure("input '\(spec.name)': expected \(spec.dtype) data (ids or a mask), found \(a.type.rawValue)")
                }
                guard a.integersExactInFloat else {
                    throw CLIFailure("input '\(spec.name)': values beyond ±2^24 cannot pass through this tool's float path (the C API and serve take int64 directly)")
                }
            }
            if let c = count, c != a.shape[0] { throw CLIFailure("inputs have different sample counts (\(c) and \(a.shape[0]))") }
            count = a.shape[0]
            values.append(a.floats())
        }
        guard let n = count, n > 0 else { throw CLIFailure("\(file): no samples") }
        return (values, n)
    }
}
