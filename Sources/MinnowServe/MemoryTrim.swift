#if canImport(Glibc)
import Glibc
#endif

/// Hands freed heap pages back to the OS. glibc keeps memory freed by other threads in
/// per-thread arenas, so after a burst (thousands of connections, a retired model version) the
/// server's RSS would stay at its peak although nothing holds it. The model manager calls this
/// after each repository poll (once per `--poll-seconds`, off the request path); it costs about a
/// millisecond on a heap of a few hundred MB. Measured in tools/tests/test_serve_faults.py.
enum MemoryTrim {
    /// glibc's `malloc_trim` (not in Swift's Glibc module), looked up once; nil elsewhere.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    static func releaseFreeMemory() {
        _ = mallocTrim?(0)
    }
}
