/// One HTTP request for an upstream model server, as the upstream client sends it.
///
/// The client frames the body itself (`Content-Length`), sends no `Expect: 100-continue`,
/// asks for no content encoding, follows no redirects and speaks HTTP/1.1.
package struct UpstreamRequest: Sendable {
    /// The full URL, `http://` or `https://`; with `unixSocketPath` its host still names the TLS peer and `Host`.
    package var url: String
    /// The request method, an HTTP token such as `POST` or `GET`.
    package var method: String
    /// Header fields sent as given, in order; `Content-Length` and `Transfer-Encoding` are ignored (the client frames the body).
    package var headers: [(name: String, value: String)]
    /// The request body; sent with `Content-Length` whenever it is non-empty or the method is POST, PUT or PATCH.
    package var body: [UInt8]
    /// The longest the connection may take to establish, TLS handshake included; zero or less means curl's default (300 s).
    package var connectTimeout: Duration
    /// Once connected, abort when no byte is sent or received for this long; zero or less disables the check.
    ///
    /// The clock runs while the request is sent and the response awaited or streamed, and stops while the
    /// body consumer is behind (receiving is paused for back-pressure).
    package var idleTimeout: Duration
    /// An optional cap on the whole exchange, connect to last body byte.
    package var totalTimeout: Duration?
    /// Connect to this Unix socket instead of the URL's host and port (for example an SSH tunnel's forward).
    package var unixSocketPath: String?
    /// A PEM bundle of CA certificates to trust instead of the system's.
    package var caFile: String?
    /// A proxy URL to go through; `nil` means no proxy at all, whatever `http_proxy` and friends say.
    package var proxy: String?

    /// Creates a request; only the URL is required.
    package init(
        url: String,
        method: String = "GET",
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        connectTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(300),
        totalTimeout: Duration? = nil,
        unixSocketPath: String? = nil,
        caFile: String? = nil,
        proxy: String? = nil
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.totalTimeout = totalTimeout
        self.unixSocketPath = unixSocketPath
        self.caFile = caFile
        self.proxy = proxy
    }
}

/// The status line and header fields of an upstream's final (non-1xx) response.
package struct UpstreamResponseHead: Sendable, Equatable {
    /// The HTTP status code.
    package var status: Int
    /// The header fields in the order received; names keep the upstream's spelling.
    package var headers: [UpstreamHeaderField]

    /// Creates a response head.
    package init(status: Int, headers: [UpstreamHeaderField]) {
        self.status = status
        self.headers = headers
    }
}

/// One header field of an upstream response.
package struct UpstreamHeaderField: Sendable, Hashable {
    /// The field name as received.
    package var name: String
    /// The field value, surrounding whitespace removed, continuation lines joined by one space.
    package var value: String

    /// Creates a header field.
    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// An upstream's answer: the final response head, available at once, and the body, streamed as it arrives.
package struct UpstreamResponse: Sendable {
    /// The HTTP status code of the final response.
    package var status: Int
    /// The header fields of the final response (interim 1xx heads are skipped).
    package var headers: [(name: String, value: String)]
    /// The body as an asynchronous sequence of byte chunks; dropping it, or leaving its loop, aborts the transfer.
    package var body: UpstreamBody

    /// Creates a response from its head and body.
    package init(head: UpstreamResponseHead, body: UpstreamBody) {
        self.status = head.status
        self.headers = head.headers.map { (name: $0.name, value: $0.value) }
        self.body = body
    }

    /// The value of the first header field with this name, compared case-insensitively.
    package func headerValue(named name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Reads the whole body, failing with `tooLarge` (and aborting the transfer) once it exceeds `maxBytes`.
    package func collectBody(upTo maxBytes: Int) async throws(UpstreamError) -> [UInt8] {
        var collected: [UInt8] = []
        var iterator = body.makeAsyncIterator()
        while let chunk = try await iterator.next() {
            guard collected.count + chunk.count <= maxBytes else {
                throw UpstreamError(
                    .tooLarge,
                    message: "the response body from \(body.targetDescription) exceeds \(maxBytes) bytes"
                )
            }
            collected.append(contentsOf: chunk)
        }
        return collected
    }
}

/// A failure of an upstream exchange, with a code to act on and a message safe to log.
///
/// Messages name the upstream's host and port and curl's explanation; they never contain
/// request headers, bodies or the URL's path and query (which may hold credentials).
package struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, coarsely enough to choose a response status or a retry.
    package enum Code: String, Sendable, Hashable {
        /// The request cannot be sent as given (bad URL, scheme, method or header).
        case invalidRequest = "invalid_request"
        /// No connection could be made (refused, unresolvable, unreachable, or the connect timeout passed);
        /// the request was not sent.
        case connectFailed = "connect_failed"
        /// The idle or the total timeout passed after the connection was made.
        case timedOut = "timed_out"
        /// The TLS handshake or the certificate check failed.
        case tls
        /// The connection broke or the upstream sent something that is not valid HTTP.
        case transfer
        /// The consumer went away (task cancelled, body dropped) before the exchange ended.
        case cancelled
        /// The body exceeded the size the consumer accepts.
        case tooLarge = "too_large"
        /// The client was shut down before or during the exchange.
        case shutdown
    }

    /// What went wrong.
    package var code: Code
    /// A human-readable explanation naming the upstream's host and port; never contains secrets.
    package var message: String
    /// The libcurl result code behind the failure, when curl reported one (the cause).
    package var curlCode: Int32?

    /// Creates an error.
    package init(_ code: Code, message: String, curlCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.curlCode = curlCode
    }

    /// A log-friendly rendering: code, message and curl's code when present.
    package var description: String {
        var text = "\(code.rawValue): \(message)"
        if let curlCode { text += " [curl \(curlCode)]" }
        return text
    }
}
