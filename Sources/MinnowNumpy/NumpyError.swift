/// Why a `.npy` or `.npz` file could not be read or written. Names the file and the array.
public enum NumpyError: Error, Equatable, CustomStringConvertible, Sendable {
    case io(path: String, reason: String)
    case notNpz(path: String, reason: String)
    case badNpy(array: String, reason: String)
    case unsupportedDtype(array: String, descr: String)
    case tooLarge(array: String, bytes: Int64, limit: Int64)

    public var description: String {
        switch self {
        case let .io(path, reason): return "\(path): \(reason)"
        case let .notNpz(path, reason): return "\(path): not a readable .npz archive (\(reason))"
        case let .badNpy(array, reason): return "array '\(array)': malformed .npy data (\(reason))"
        case let .unsupportedDtype(array, descr): return "array '\(array)': unsupported dtype '\(descr)' (use float32, float64, int64, int32, int8, uint8 or bool)"
        case let .tooLarge(array, bytes, limit): return "array '\(array)': \(bytes) bytes exceeds the limit of \(limit)"
        }
    }
}
