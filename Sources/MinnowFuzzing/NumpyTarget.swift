import MinnowNumpy

/// `.npy` bytes go to the array parser directly; anything else is read as an `.npz` archive
/// from a file, as `minnow run` and `minnow parity` read them.
enum NumpyTarget {
    static func run(_ data: UnsafeRawBufferPointer) -> Bool {
        if data.starts(with: [0x93] + Array("NUMPY".utf8)) {
            return (try? Npy.parse(Array(data), name: "fuzz", limit: 1 << 24)) != nil
        }
        return (try? Npz.read(path: writeScratch("input.npz", data), limit: 1 << 24)) != nil
    }
}
