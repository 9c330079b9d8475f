import Foundation
import Logging
import MinnowRuntime

/// An HTTP answer, independent of the HTTP library.
public struct HTTPReply: Sendable {
    public var status: Int
    public var body: [UInt8]
    public var contentType = "application/json"
    /// Seconds a client should wait before retrying (sent as Retry-After on overload).
    public var retryAfterSeconds: Int?

    public init(status: Int, body: [UInt8], contentType: String = "application/json") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }

    static func error(_ e: ServeError) -> HTTPReply {
        var w = JSONWriter()
        w.beginObject(); w.key("error"); w.string(e.message); w.endObject()
        var reply = HTTPReply(status: e.status, body: w.bytes)
        if e.kind == .overloaded { reply.retryAfterSeconds = 1 }
        return reply
    }
}

/// The serving protocols on top of the model manager: one function from (method, path, body)
/// to a reply. The HTTP server adapts it; tests call it directly.
public final class ServingAPI: Sendable {
    public let manager: ModelManager
    let metrics: ServeMetrics
    let logger: Logger

    public init(manager: ModelManager, metrics: ServeMetrics, logger: Logger) {
        self.manager = manager
        self.metrics = metrics
        self.logger = logger
    }

    public func handle(method: String, path: String, body: [UInt8]) async -> HTTPReply {
        let start = ContinuousClock.now
        var route: Route?
        var served: ServableVersion?
        let reply: HTTPReply
        do throws(ServeError) {
            let r = try Route.match(method: method, path: path)
            route = r
            (reply, served) = try await answer(r, body: body)
        } catch {
            if error.kind == .internalError || error.kind == .overloaded {
                logger.warning("request failed", metadata: ["path": "\(path)", "status": "\(error.status)", "error": "\(error.message)"])
            }
            reply = .error(error)
        }
        if route != .metrics {
            metrics.request(protocol: route?.protocolLabel ?? "unknown",
                            model: served?.name ?? knownModel(route?.modelName),
                            version: served.map { String($0.version) } ?? "",
                            status: reply.status, duration: ContinuousClock.now - start, inference: route?.isPost ?? false)
        }
        return reply
    }

    /// A model name for metric labels only when the repository has it (clients cannot create series).
    private func knownModel(_ name: String?) -> String {
        guard let name, manager.status(name) != nil else { return "" }
        return name
    }

    private func answer(_ route: Route, body: [UInt8]) async throws(ServeError) -> (HTTPReply, ServableVersion?) {
        switch route {
        case .metrics:
            return (HTTPReply(status: 200, body: metrics.exposition(), contentType: "text/plain; version=0.0.4"), nil)

        case .tfStatus(let m, let v):
            guard var list = manager.status(m) else { throw .notFound("model '\(m)' not found") }
            if let v {
                list = list.filter { $0.version == v }
                guard !list.isEmpty else { throw .notFound("model '\(m)' has no version \(v)") }
            }
            return (HTTPReply(status: 200, body: TFServing.encodeStatus(list)), nil)

        case .tfMetadata(let m, let v):
            let s = try manager.lookup(m, version: v)
            return (HTTPReply(status: 200, body: TFServing.encodeMetadata(s)), s)

        case .tfPredict(let m, let v):
            let json = try JSONValue.parse(body)
            var format = TFServing.Format.row
            let (s, result) = try await infer(m, v) { model throws(ServeError) in
                let (request, f) = try TFServing.decodePredict(json, model: model)
                format = f
                return request
            }
            return (HTTPReply(status: 200, body: TFServing.encodePredict(result, model: s.model, format: format)), s)

        case .v2Server:
            var w = JSONWriter()
            w.beginObject()
            w.key("name"); w.string("minnow")
            w.key("version"); w.string(MinnowServeInfo.version)
            w.key("extensions"); w.beginArray(); w.endArray()
            w.endObject()
            return (HTTPReply(status: 200, body: w.bytes), nil)

        case .v2Live:
            return (HTTPReply(status: 200, body: Array(#"{"live":true}"#.utf8)), nil)

        case .v2Ready:
            let ready = manager.isReady
            return (HTTPReply(status: ready ? 200 : 503, body: Array(#"{"ready":\#(ready)}"#.utf8)), nil)

        case .v2Model(let m, let v):
            let s = try manager.lookup(m, version: v)
            let versions = (manager.status(m) ?? []).filter { $0.state == .available }.map(\.version)
            return (HTTPReply(status: 200, body: KServe.encodeModelMetadata(s, versions: versions)), s)

        case .v2ModelReady(let m, let v):
            guard let list = manager.status(m) else { throw .notFound("model '\(m)' not found") }
            let ready = list.contains { $0.state == .available && (v == nil || $0.version == v) }
            var w = JSONWriter()
            w.beginObject(); w.key("name"); w.string(m); w.key("ready"); w.bool(ready); w.endObject()
            return (HTTPReply(status: ready ? 200 : 503, body: w.bytes), nil)

        case .v2Infer(let m, let v):
            let json = try JSONValue.parse(body)
            var decoded: KServe.Decoded?
            let (s, result) = try await infer(m, v) { model throws(ServeError) in
                let d = try KServe.decodeInfer(json, model: model)
                decoded = d
                return d.request
            }
            return (HTTPReply(status: 200, body: KServe.encodeInfer(result, servable: s, id: decoded?.id, outputs: decoded?.outputs ?? [])), s)
        }
    }

    /// Looks the version up, decodes the request for its model and runs it. If the version is
    /// retired between lookup and submission (a swap), the request goes to the new one.
    private func infer(_ name: String, _ version: Int?,
                       decode: (Model) throws(ServeError) -> InferenceRequest) async throws(ServeError)
        -> (ServableVersion, InferenceResult) {
        for _ in 0..<4 {
            let s = try manager.lookup(name, version: version)
            let request = try decode(s.model)
            switch await s.infer(request) {
            case .success(let r): return (s, r)
            case .failure(.retired): continue
            case .failure(.failed(let e)): throw e
            }
        }
        throw ServeError(.unavailable, "model '\(name)' changed versions repeatedly during the request; retry")
    }
}

public enum MinnowServeInfo {
    public static let version = "0.3.0"
}
