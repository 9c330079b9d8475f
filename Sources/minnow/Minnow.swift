import ArgumentParser

@main
struct Minnow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minnow",
        abstract: "Compile, run and verify int8 models.",
        discussion: """
        minnow convert MODEL.onnx -o MODEL.minnow --calibration CALIB.npz
        minnow run MODEL.minnow --input IN.npz -o OUT.npz
        minnow parity MODEL.minnow --reference REF.npz --spec parity.json
        """,
        subcommands: [ConvertCommand.self, RunCommand.self, InspectCommand.self, ParityCommand.self, VerifyCommand.self]
    )
}
