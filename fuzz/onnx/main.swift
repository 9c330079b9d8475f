import CFuzzerDriver
import Foundation
import MinnowFuzzing

// libFuzzer over FuzzTarget.onnx (scripts/sanitizers.sh builds and runs it; libFuzzer flags apply).
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    FuzzTarget.onnx.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
