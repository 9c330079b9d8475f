import ArgumentParser
import Foundation
import MinnowRuntime

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a .minnow file (structure, checksums, every operator) and optionally rerun its golden samples.",
        discussion: "Exit codes: 0 verified (and the self-test matched), 1 otherwise.")

    @Argument(help: "A .minnow file.") var file: String
    @Flag(help: "Rerun the golden samples bundled at conversion (convert --bundle-reference) and compare.") var selfTest = false
    @Option(help: "Also require a valid signature by this public key (minnow keygen, minnow sign).") var publicKey: String?

    func run() {
        reportingErrors {
            let model: Model
            model = try loadModel(file, requireSignature: publicKey)
            let d = model.description
            if publicKey != nil { print("\(file): signature valid") }
            print("\(file): verified (format \(d.formatMajor).\(d.formatMinor), \(d.operators.count) operators, \(d.buffers.count) buffers checksummed, kernels \(model.kernelName))")
            guard selfTest else { return }
            guard let result = try model.selfTest() else {
                throw CLIFailure("\(file): no golden samples bundled (convert with --bundle-reference REF.npz)")
            }
            for (name, diff) in result.maxDifference {
                print("  \(name): max difference \(diff) (\(result.tolerance == 0 ? "bit-exact required" : "tolerance \(result.tolerance)"))")
            }
            guard result.passed else {
                throw CLIFailure("\(file): self-test failed: this machine computes different outputs than the converter did")
            }
            print("self-test: \(result.samples) golden samples match")
        }
    }
}
