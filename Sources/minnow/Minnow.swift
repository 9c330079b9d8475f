import ArgumentParser
import Foundation

@main
struct Minnow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minnow",
        abstract: "Compile, run and verify int8 models.",
        discussion: """
        minnow convert MODEL.onnx -o MODEL.minnow --calibration CALIB.npz
        minnow run MODEL.minnow --input IN.npz -o OUT.npz
        minnow parity MODEL.minnow --reference REF.npz --spec parity.json
        """,
        subcommands: [ConvertCommand.self, RunCommand.self, InspectCommand.self, ParityCommand.self, VerifyCommand.self,
                      BenchCommand.self, KernelsCommand.self, ServeCommand.self, KeygenCommand.self, SignCommand.self]
    )

    /// Usage errors exit 2 (as `minnow parity` documents), not ArgumentParser's 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
