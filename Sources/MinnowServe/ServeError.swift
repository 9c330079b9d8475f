/// What went wrong with a request or a model version, with the HTTP status it answers with.
/// Messages name the problem (model, version, input, expected vs found); they are built at the
/// HTTP edge, never on the inference path.
public struct ServeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case badRequest          // 400: malformed JSON, missing input, wrong shape or dtype, non-numeric value
        case notFound            // 404: unknown model, version or route
        case methodNotAllowed    // 405
        case bodyTooLarge        // 413
        case overloaded          // 503: the version's queue is full (with Retry-After)
        case unavailable         // 503: known model with no version in service, or shutting down
        case internalError       // 500: a run failed (should not happen: sessions validate at creation)
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var status: Int {
        switch kind {
        case .badRequest: 400
        case .notFound: 404
        case .methodNotAllowed: 405
        case .bodyTooLarge: 413
        case .overloaded, .unavailable: 503
        case .internalError: 500
        }
    }

    public var description: String { message }

    static func badRequest(_ m: String) -> ServeError { ServeError(.badRequest, m) }
    static func notFound(_ m: String) -> ServeError { ServeError(.notFound, m) }
}
