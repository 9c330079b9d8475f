/// The URL space of `minnow serve`: TF Serving REST under /v1, KServe v2 under /v2, and /metrics.
enum Route: Equatable {
    case tfStatus(model: String, version: Int?)
    case tfMetadata(model: String, version: Int?)
    case tfPredict(model: String, version: Int?)
    case v2Server
    case v2Live
    case v2Ready
    case v2Model(model: String, version: Int?)
    case v2ModelReady(model: String, version: Int?)
    case v2Infer(model: String, version: Int?)
    case metrics

    var isPost: Bool {
        switch self {
        case .tfPredict, .v2Infer: true
        default: false
        }
    }

    var protocolLabel: String {
        switch self {
        case .tfStatus, .tfMetadata, .tfPredict: "tfserving"
        case .v2Server, .v2Live, .v2Ready, .v2Model, .v2ModelReady, .v2Infer: "kserve"
        case .metrics: "metrics"
        }
    }

    var modelName: String? {
        switch self {
        case .tfStatus(let m, _), .tfMetadata(let m, _), .tfPredict(let m, _), .v2Model(let m, _),
             .v2ModelReady(let m, _), .v2Infer(let m, _): m
        default: nil
        }
    }

    /// Matches a request path (query string ignored) and method.
    static func match(method: String, path rawPath: String) throws(ServeError) -> Route {
        let path = rawPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let route: Route
        if parts == ["metrics"] {
            route = .metrics
        } else if parts.count >= 3, parts[0] == "v1", parts[1] == "models" {
            parts.removeFirst(2)
            route = try tfServing(parts, path: path)
        } else if parts.first == "v2" {
            parts.removeFirst()
            route = try kserve(parts, path: path)
        } else {
            throw .notFound("no route for \(path); see /v1/models/<model>[:predict], /v2/models/<model>/infer, /v2/health/ready, /metrics")
        }
        let expected = route.isPost ? "POST" : "GET"
        guard method == expected || (method == "HEAD" && expected == "GET") else {
            throw ServeError(.methodNotAllowed, "\(method) \(path): use \(expected)")
        }
        return route
    }

    /// [m], [m:predict], [m, metadata], [m, versions, v], [m, versions, v:predict], [m, versions, v, metadata].
    private static func tfServing(_ p: [String], path: String) throws(ServeError) -> Route {
        func split(_ s: String) -> (String, String?) {
            guard let colon = s.lastIndex(of: ":") else { return (s, nil) }
            return (String(s[..<colon]), String(s[s.index(after: colon)...]))
        }
        func verb(_ v: String?, _ model: String, _ version: Int?) throws(ServeError) -> Route {
            switch v {
            case nil: return .tfStatus(model: model, version: version)
            case "predict": return .tfPredict(model: model, version: version)
            case let other?: throw .notFound("\(path): ':\(other)' is not supported (minnow serves ':predict')")
            }
        }
        func version(_ s: String) throws(ServeError) -> Int {
            guard let v = ModelRepository.versionNumber(s) else { throw .notFound("\(path): version '\(s)' is not a number") }
            return v
        }
        switch p.count {
        case 1:
            let (m, v) = split(p[0])
            return try verb(v, m, nil)
        case 2 where p[1] == "metadata":
            return .tfMetadata(model: p[0], version: nil)
        case 3 where p[1] == "versions":
            let (vs, v) = split(p[2])
            return try verb(v, p[0], try version(vs))
        case 4 where p[1] == "versions" && p[3] == "metadata":
            return .tfMetadata(model: p[0], version: try version(p[2]))
        default:
            throw .notFound("no TF Serving route for \(path)")
        }
    }

    /// [], [health, live], [health, ready], [models, m(, versions, v)(, ready|infer)].
    private static func kserve(_ p: [String], path: String) throws(ServeError) -> Route {
        if p.isEmpty { return .v2Server }
        if p == ["health", "live"] { return .v2Live }
        if p == ["health", "ready"] { return .v2Ready }
        guard p.count >= 2, p[0] == "models" else { throw .notFound("no KServe v2 route for \(path)") }
        let model = p[1]
        var rest = Array(p.dropFirst(2))
        var version: Int?
        if rest.count >= 2, rest[0] == "versions" {
            guard let v = ModelRepository.versionNumber(rest[1]) else { throw .notFound("\(path): version '\(rest[1])' is not a number") }
            version = v
            rest.removeFirst(2)
        }
        switch rest {
        case []: return .v2Model(model: model, version: version)
        case ["ready"]: return .v2ModelReady(model: model, version: version)
        case ["infer"]: return .v2Infer(model: model, version: version)
        default: throw .notFound("no KServe v2 route for \(path)")
        }
    }
}
