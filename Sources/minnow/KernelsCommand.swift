import ArgumentParser
import Foundation
import MinnowRuntime

/// `minnow kernels`: the kernel tables this build has, which this CPU can run, and the default.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "List the kernel tables and which this CPU runs (MINNOW_KERNELS or --kernels picks one).")

    @Flag(help: "Only the names of the tables this CPU can run, one a line (for scripts).") var supported = false
    @Flag(help: "Print JSON: {\"default\": NAME, \"tables\": [{\"name\", \"supported\", \"bf16_attention\"}]}.") var json = false

    func run() {
        reportingErrors {
            let tables = Model.kernelTables
            let chosen = Model.defaultKernelName
            if supported {
                for t in tables where t.supported { print(t.name) }
            } else if json {
                let object: [String: Any] = ["default": chosen, "tables": tables.map {
                    ["name": $0.name, "supported": $0.supported, "bf16_attention": Model.runsBF16Attention(table: $0.name)]
                }]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                for t in tables {
                    let why = t.name == "amx" ? " (not available here: needs AMX-INT8 and Linux's tile-data permission; MINNOW_AMX=0 turns it off)" : " (not available here: this CPU lacks it)"
                    print("\(t.name)\(t.supported ? "" : why)\(t.name == chosen ? " (default)" : "")")
                }
                let bf16 = tables.map(\.name).filter(Model.runsBF16Attention(table:))
                print("bf16 attention products (opt-in: MINNOW_ATTENTION=bf16): "
                      + (bf16.isEmpty ? "not on this CPU (needs AVX512-BF16 and an AVX-512 table)" : bf16.joined(separator: ", ")))
            }
        }
    }
}
