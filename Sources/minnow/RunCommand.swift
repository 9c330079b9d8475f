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
            let maxBatch = min(batch ?? model.maxBatch, model.maxBatch)
            guard maxBatch >= 1 else { throw CLIFailure("--batch must be at least 1") }
            let session = try Session(model: model, maxBatch: maxBatch)
            if let length = try RunCommand.sequenceLength(model, arrays, file: input) { try session.setSequenceLength(length) }
            let data = try RunCommand.matchInputs(session.inputs, arrays, file: input)
            let total = data.count
            let outs = try session.predict(inputs: data.values, samples: total)
            let named = session.outputs.enumerated().map { i, spec in
                (name: "outputs/\(spec.name)", array: NpyArray(floats: outs[i], shape: [total] + spec.shape.dropFirst()))
            }
            do { try Npz.write(path: output, arrays: named) } catch { throw CLIFailure("\(error)") }
            print("ran \(total) samples in batches of \(maxBatch); wrote \(output) (\(session.outputs.map { $0.description }.joined(separator: "; ")))")
        }
    }

    /// The array given for `spec` (by name; the only array for a single-input model).
    static func array(for spec: TensorSpec, inputCount: Int, _ arrays: [(name: String, array: NpyArray)]) -> NpyArray? {
        (arrays.first { $0.name == "inputs/\(spec.name)" } ?? arrays.first { $0.name == spec.name }
            ?? (inputCount == 1 && arrays.count == 1 ? arrays.first : nil))?.array
    }

    /// For a model that accepts several sequence lengths: the one the arrays' shapes have
    /// (nil for a fixed-length model, or when an array is missing: matchInputs names it).
    static func sequenceLength(_ model: Model, _ arrays: [(name: String, array: NpyArray)], file: String) throws -> Int? {
        guard !model.sequenceLengths.isEmpty else { return nil }
        var shapes: [[Int]] = []
        for spec in model.inputs {
            guard let a = array(for: spec, inputCount: model.inputs.count, arrays) else { return nil }
            shapes.append(a.shape)
        }
        guard let length = model.sequenceLength(forInputShapes: shapes) else {
            let given = zip(model.inputs, shapes).map { "'\($0.name)' \($1)" }.joined(separator: ", ")
            throw CLIFailure("\(file): input shapes \(given) match no sequence length the model accepts (\(IOError.ranges(model.sequenceLengths)); at the longest: \(model.inputs.map(\.description).joined(separator: "; ")))")
        }
        return length
    }

    /// Finds each model input among the arrays and checks its per-sample shape.
    static func matchInputs(_ specs: [TensorSpec], _ arrays: [(name: String, array: NpyArray)], file: String) throws -> (values: [[Float]], count: Int) {
        var values: [[Float]] = []
        var count: Int?
        for spec in specs {
            let found = array(for: spec, inputCount: specs.count, arrays)
            guard let a = found else {
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
