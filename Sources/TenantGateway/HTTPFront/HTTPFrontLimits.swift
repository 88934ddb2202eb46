/// The limits and timeouts one HTTP front enforces on every connection.
///
/// The defaults suit a gateway for interactive model clients: request bodies carry whole
/// conversations (images included), so 32 MiB; headers are small; a client that starts a
/// request must finish sending it within 30 s; an unused keep-alive connection lives 60 s.
package struct HTTPFrontLimits: Sendable, Equatable {
    /// The largest request body accepted; a larger declared or received body gets 413 and the connection is closed.
    package var maxBodyBytes: Int
    /// The largest request head (request line and header fields) accepted; a larger one gets 431 and the connection is closed.
    package var maxHeaderBytes: Int
    /// How long a client may take from the first byte of a request to its last before it gets 408 and the connection is closed.
    package var requestReadTimeout: Duration
    /// How long a keep-alive connection may stay open without a request before it is closed quietly.
    package var idleTimeout: Duration
    /// After a final response on a connection that is being closed, how long to wait for the client
    /// to close its side before the connection is torn down (so the response is not lost to a reset).
    package var closeLingerTimeout: Duration
    /// How many requests a client may send ahead (HTTP pipelining) while a response is still being produced;
    /// beyond that the connection is closed after the current response.
    package var maxPipelinedRequests: Int

    /// Creates limits, each defaulting to the gateway's standard value.
    package init(
        maxBodyBytes: Int = 32 * 1024 * 1024,
        maxHeaderBytes: Int = 64 * 1024,
        requestReadTimeout: Duration = .seconds(30),
        idleTimeout: Duration = .seconds(60),
        closeLingerTimeout: Duration = .seconds(2),
        maxPipelinedRequests: Int = 4
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.requestReadTimeout = requestReadTimeout
        self.idleTimeout = idleTimeout
        self.closeLingerTimeout = closeLingerTimeout
        self.maxPipelinedRequests = maxPipelinedRequests
    }
}
