import NIOHTTP1

/// Where a request entered the gateway, which decides what it must prove.
package enum RequestOrigin: Sendable, Equatable {
    /// The tenant's private Unix socket; the peer's uid was checked against the owner.
    case unixSocket(peerUID: UInt32)
    /// The loopback TCP port; the request must carry the tenant token.
    case loopbackTCP
}

/// One complete HTTP request as the front hands it to the gateway.
package struct GatewayRequest: Sendable {
    /// A short random id for logs and the `x-request-id` response header.
    package var id: String
    /// The HTTP method, upper case (`GET`, `POST`, …).
    package var method: HTTPMethod
    /// The request target's path, without the query string (for example `/v1/messages`).
    package var path: String
    /// The raw query string without the leading `?`, when present.
    package var query: String?
    /// The request headers as received.
    package var headers: HTTPHeaders
    /// The complete request body (bounded by the configured limit).
    package var body: [UInt8]
    /// The front the request arrived on.
    package var origin: RequestOrigin

    /// Creates a request.
    package init(id: String, method: HTTPMethod, path: String, query: String?, headers: HTTPHeaders, body: [UInt8], origin: RequestOrigin) {
        self.id = id
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.origin = origin
    }

    /// The dialect to answer errors in, judged from the path and the `anthropic-version` header.
    package var clientDialect: Dialect {
        Dialect.ofClient(path: path, hasAnthropicVersionHeader: headers.contains(name: "anthropic-version"))
    }
}

/// Writes one response back to the client, either whole or as a stream of chunks.
///
/// Exactly one of `writeWhole` or `startStream` is called per request; after `startStream`,
/// any number of `writeChunk` calls follow and then one `finishStream`. A write throws once
/// the client has gone away, which the caller takes as the signal to abort upstream work.
package protocol ResponseWriter: Sendable {
    /// Sends a complete response with a `content-length`.
    func writeWhole(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) async throws
    /// Sends the response head of a streamed (chunked) response.
    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders) async throws
    /// Sends one chunk of a streamed response and flushes it.
    func writeChunk(_ bytes: [UInt8]) async throws
    /// Ends a streamed response.
    func finishStream() async throws
}

/// Answers requests the front has read; implemented by the tenant's gateway.
package protocol GatewayRequestHandler: Sendable {
    /// Handles one request and writes its response; cancellation means the client went away.
    func handle(_ request: GatewayRequest, writer: some ResponseWriter) async
}
