import Logging

/// The HTTP client for upstream model servers, built on libcurl's multi interface.
///
/// One dedicated thread (not an event loop, not the cooperative pool) drives every transfer, so no
/// Swift task blocks on network I/O; connections are kept and reused across requests. Responses
/// arrive as soon as their head does and their bodies stream chunk by chunk. A consumer that stops
/// reading, or whose task is cancelled, aborts its transfer at once and closes the connection.
///
/// Back-pressure: up to 1 MiB of unread body is buffered per response; beyond that, receiving is
/// paused (`CURL_WRITEFUNC_PAUSE`) until the consumer has drained the buffer to 256 KiB, so the
/// upstream's TCP window closes instead of memory growing.
package final class UpstreamHTTPClient: Sendable {
    private let loop: CurlMultiLoop

    /// Creates the client and starts its curl thread.
    package init(logger: Logger) {
        loop = CurlMultiLoop(logger: logger)
    }

    deinit {
        loop.shutdown()
    }

    /// Sends a request and returns once the final response head has arrived; the body streams afterwards.
    ///
    /// Cancelling the calling task before the head arrives aborts the transfer and throws `cancelled`.
    /// Non-2xx statuses are responses, not errors.
    package func execute(_ request: UpstreamRequest) async throws(UpstreamError) -> UpstreamResponse {
        let prepared = try PreparedUpstreamRequest(request)
        guard loop.isRunning else { throw CurlMultiLoop.shutdownError }
        let channel = UpstreamTransferChannel(loop: loop, targetDescription: prepared.targetDescription)
        let head = try await channel.responseHead {
            loop.submit(.start(channel, prepared))
        }.get()
        return UpstreamResponse(head: head, body: UpstreamBody(channel: channel))
    }

    /// Stops the curl thread: pending and running requests fail with `shutdown`, later ones at once. Returns immediately.
    package func shutdown() {
        loop.shutdown()
    }

    /// How many transfers the curl thread is running, as it last published (diagnostics and tests).
    package var activeTransferCount: Int {
        loop.activeTransferCount
    }

    /// How many of those transfers have receiving paused because their consumer is behind (diagnostics and tests).
    package var pausedTransferCount: Int {
        loop.pausedTransferCount
    }
}
