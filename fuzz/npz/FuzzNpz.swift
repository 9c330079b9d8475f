import MinnowFuzzing

// libFuzzer entry point (built by scripts/fuzz.sh with -sanitize=fuzzer,address).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.npz.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
