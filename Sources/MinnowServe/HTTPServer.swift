import Hummingbird
import Logging
import ServiceLifecycle

/// Where and how the HTTP server listens.
public struct HTTPServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8501
    /// Request bodies above this size get 413 before they are read further.
    public var maxBodyBytes = 64 << 20
    public init() {}
}

/// The HTTP/1.1 front end (Hummingbird): collects each body up to the limit and hands it to
/// `ServingAPI`. `onListening` receives the bound port (useful with port 0).
public enum HTTPServer {
    public static func make(api: ServingAPI, options: HTTPServerOptions, logger: Logger,
                            onListening: @escaping @Sendable (Int) async -> Void) -> some Service {
        let maxBody = options.maxBodyBytes
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            var request = request
            let bytes: [UInt8]
            do {
                let buffer = try await request.collectBody(upTo: maxBody)
                bytes = Array(buffer.readableBytesView)
            } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
                return response(.error(ServeError(.bodyTooLarge, "request body exceeds \(maxBody) bytes (--max-body-bytes)")))
            }
            let reply = await api.handle(method: request.method.rawValue, path: request.uri.path, body: bytes)
            return response(reply)
        }
        return Application(
            responder: responder,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "minnow"),
            services: [api.manager],
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? options.port) },
            logger: logger
        )
    }

    static func response(_ reply: HTTPReply) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = reply.contentType
        if let s = reply.retryAfterSeconds { headers[.retryAfter] = String(s) }
        return Response(status: .init(code: reply.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
    }
}
