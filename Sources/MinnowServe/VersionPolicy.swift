import Foundation

/// Which versions of a model are served, as TF Serving's `model_version_policy`:
/// `latest:N` (the N highest, default `latest:1`), `all`, or `specific:V[,V...]`.
public enum VersionPolicy: Equatable, Sendable, CustomStringConvertible {
    case latest(Int)
    case all
    case specific([Int])

    public init(parsing text: String) throws(ServeError) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts.first ?? "" {
        case "all" where parts.count == 1:
            self = .all
        case "latest":
            let n = parts.count == 2 ? Int(parts[1]) : 1
            guard let n, n >= 1 else {
                throw .badRequest("version policy '\(text)': latest takes a count of at least 1 (latest:N)")
            }
            self = .latest(n)
        case "specific" where parts.count == 2:
            let versions = parts[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !versions.isEmpty, versions.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                throw .badRequest("version policy '\(text)': specific takes version numbers (specific:1,3)")
            }
            self = .specific(versions.map { $0! })
        default:
            throw .badRequest("version policy '\(text)': expected latest:N, all or specific:V[,V...]")
        }
    }

    /// The versions to serve out of `candidates` (versions that are loadable now).
    public func select(from candidates: [Int]) -> Set<Int> {
        switch self {
        case .latest(let n): Set(candidates.sorted(by: >).prefix(n))
        case .all: Set(candidates)
        case .specific(let wanted): Set(candidates.filter(wanted.contains))
        }
    }

    public var description: String {
        switch self {
        case .latest(let n): "latest:\(n)"
        case .all: "all"
        case .specific(let v): "specific:" + v.map(String.init).joined(separator: ",")
        }
    }
}
