/// A failure the gateway reports to a client, carrying a code, a message and the underlying cause.
///
/// The kind decides the HTTP status and the error `type` in each dialect's envelope;
/// the message is what the client reads and must never contain a secret.
package struct GatewayError: Error, Sendable, CustomStringConvertible {
    /// The class of failure, which fixes the HTTP status and the envelope's error type.
    package enum Kind: String, Sendable, Hashable {
        /// The request is malformed or semantically invalid (400).
        case invalidRequest = "invalid_request"
        /// The caller did not present valid credentials (401).
        case authentication
        /// The caller is known but not allowed (403).
        case permission
        /// The route or model does not exist (404).
        case notFound = "not_found"
        /// The method is not allowed on the route (405).
        case methodNotAllowed = "method_not_allowed"
        /// The client was too slow to send its request (408).
        case requestTimeout = "request_timeout"
        /// The body exceeds the configured limit (413).
        case requestTooLarge = "request_too_large"
        /// The upstream or the gateway is rate-limiting (429).
        case rateLimited = "rate_limited"
        /// The gateway itself failed (500).
        case internalError = "internal"
        /// The upstream failed or answered with something unusable (502).
        case upstream
        /// The upstream is overloaded or unavailable (503 / Anthropic 529).
        case overloaded
        /// The upstream did not answer in time (504).
        case upstreamTimeout = "upstream_timeout"
    }

    /// The class of failure.
    package var kind: Kind
    /// A stable machine-readable code (for example `model_not_found`).
    package var code: String
    /// A human-readable explanation for the client; never contains secrets.
    package var message: String
    /// The HTTP status to answer with; defaults from the kind, overridable to mirror an upstream status.
    package var status: Int
    /// The name of the offending request parameter, when one is to blame.
    package var parameter: String?
    /// Seconds the client should wait before retrying, when known.
    package var retryAfter: Int?
    /// The underlying error, kept for logs; never shown to clients.
    package var cause: (any Error)?

    /// Creates an error of the given kind with the kind's default HTTP status.
    package init(
        _ kind: Kind,
        code: String,
        message: String,
        status: Int? = nil,
        parameter: String? = nil,
        retryAfter: Int? = nil,
        cause: (any Error)? = nil
    ) {
        self.kind = kind
        self.code = code
        self.message = message
        self.status = status ?? kind.defaultStatus
        self.parameter = parameter
        self.retryAfter = retryAfter
        self.cause = cause
    }

    /// A log-friendly rendering: code, status and message, plus the cause when present.
    package var description: String {
        var text = "\(code) (\(status)): \(message)"
        if let cause { text += " [cause: \(cause)]" }
        return text
    }
}

extension GatewayError.Kind {
    /// The HTTP status this kind maps to unless overridden.
    package var defaultStatus: Int {
        switch self {
        case .invalidRequest: 400
        case .authentication: 401
        case .permission: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .requestTimeout: 408
        case .requestTooLarge: 413
        case .rateLimited: 429
        case .internalError: 500
        case .upstream: 502
        case .overloaded: 503
        case .upstreamTimeout: 504
        }
    }

    /// Picks the kind that best matches an HTTP status received from an upstream.
    package static func forUpstreamStatus(_ status: Int) -> Self {
        switch status {
        case 400, 422: .invalidRequest
        case 401: .authentication
        case 403: .permission
        case 404: .notFound
        case 408: .upstreamTimeout
        case 413: .requestTooLarge
        case 429: .rateLimited
        case 503, 529: .overloaded
        case 504: .upstreamTimeout
        case 500..<600: .upstream
        default: .upstream
        }
    }
}
