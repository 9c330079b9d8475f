import MinnowFormat

/// Why a model could not be loaded or a session made. Raised only at load and session creation,
/// never from `run` (DESIGN §9: validate in prepare, never fail in eval).
public enum ModelError: Error, Equatable, CustomStringConvertible, Sendable {
    case format(FormatError)
    /// A check on the model's meaning failed: which tensor or operator, and what was wrong.
    case invalid(String)
    case unsupported(String)
    case batchTooLarge(requested: Int, max: Int)
    case arenaTooLarge(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .format(e): return e.description
        case let .invalid(what): return "invalid model: \(what)"
        case let .unsupported(what): return "unsupported: \(what)"
        case let .batchTooLarge(requested, max):
            return "session max batch \(requested) exceeds the model's planned max batch \(max)"
        case let .arenaTooLarge(bytes, limit):
            return "session arena of \(bytes) bytes exceeds the limit of \(limit) (lower maxBatch or raise arenaLimit)"
        }
    }
}

/// Errors `Session.run` can raise. Payloads are plain integers, so throwing never allocates.
public enum RunError: Error, Equatable, CustomStringConvertible, Sendable {
    case batchOutOfRange(batch: Int, max: Int)
    /// An embedding id outside its table (ids are data: checked on every run). `position` is the
    /// flat index of the id within the batch's ids tensor of operator `operatorIndex`.
    case idOutOfRange(operatorIndex: Int, position: Int, id: Int64, rows: Int)

    public var description: String {
        switch self {
        case let .batchOutOfRange(batch, max): return "batch \(batch) is outside 1...\(max)"
        case let .idOutOfRange(op, position, id, rows):
            return "operator \(op) (Gather): id \(id) at position \(position) is outside the table's \(rows) rows"
        }
    }
}

/// Errors in feeding inputs or reading outputs by name or shape (outside the hot loop).
public enum IOError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownInput(String, known: [String])
    case unknownOutput(String, known: [String])
    case shapeMismatch(tensor: String, expected: String, found: String)
    case dtypeMismatch(tensor: String, expected: DType, found: DType)
    case batchOutOfRange(tensor: String, batch: Int, max: Int)
    case sequenceLength(Int, accepted: [Int])

    public var description: String {
        switch self {
        case let .unknownInput(n, known): return "unknown input '\(n)' (model inputs: \(known.joined(separator: ", ")))"
        case let .unknownOutput(n, known): return "unknown output '\(n)' (model outputs: \(known.joined(separator: ", ")))"
        case let .shapeMismatch(t, e, f): return "input '\(t)': expected shape \(e), found \(f)"
        case let .dtypeMismatch(t, e, f): return "input '\(t)': expected dtype \(e), found \(f)"
        case let .batchOutOfRange(t, b, m): return "input '\(t)': batch \(b) is outside 1...\(m)"
        case let .sequenceLength(l, accepted):
            if accepted.isEmpty { return "sequence length \(l): the model has a fixed length (convert with --max-seq N for lengths up to N)" }
            return "sequence length \(l) is not one the model accepts (\(IOError.ranges(accepted)))"
        }
    }
}

extension IOError {
    /// "1...32" or "8, 16, 32": accepted lengths, runs of consecutive values collapsed.
    public static func ranges(_ values: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        while i < values.count {
            var j = i
            while j + 1 < values.count && values[j + 1] == values[j] + 1 { j += 1 }
            parts.append(j > i ? "\(values[i])...\(values[j])" : "\(values[i])")
            i = j + 1
        }
        return parts.joined(separator: ", ")
    }
}
