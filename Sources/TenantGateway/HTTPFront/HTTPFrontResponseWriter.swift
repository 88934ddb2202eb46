import NIOCore
import NIOHTTP1
import Synchronization

/// Flags one connection shares with the writer of its current response.
final class HTTPConnectionFlags: Sendable {
    private let closeAfterResponse = Mutex(false)

    init() {}

    /// Whether the response being written must announce `connection: close` (the server drains, or the connection cannot be reused).
    var mustCloseAfterResponse: Bool {
        get { closeAfterResponse.withLock { $0 } }
        set { closeAfterResponse.withLock { $0 = newValue } }
    }
}

/// Writes one response of the front to its client: whole with a `content-length`, or streamed with chunked encoding.
///
/// Every response carries `x-request-id`. Once the client has gone away (the connection noticed
/// its end, or a write failed), every further write throws `HTTPFrontError.clientDisconnected`.
final class HTTPFrontResponseWriter: ResponseWriter {
    private enum State {
        case awaitingHead
        case streaming
        case complete
        case clientGone
    }

    private let outbound: NIOAsyncChannelOutboundWriter<HTTPPart<HTTPResponseHead, ByteBuffer>>
    private let requestID: String
    private let requestHead: HTTPRequestHead
    private let connectionFlags: HTTPConnectionFlags
    private let state = Mutex(State.awaitingHead)
    /// Whether the response's framing requires closing the connection after it.
    private let framingRequiresClose = Mutex(false)

    init(
        outbound: NIOAsyncChannelOutboundWriter<HTTPPart<HTTPResponseHead, ByteBuffer>>,
        requestID: String,
        requestHead: HTTPRequestHead,
        connectionFlags: HTTPConnectionFlags
    ) {
        self.outbound = outbound
        self.requestID = requestID
        self.requestHead = requestHead
        self.connectionFlags = connectionFlags
    }

    /// Whether nothing has been written yet.
    var hasNotStarted: Bool {
        state.withLock { state in
            if case .awaitingHead = state { return true }
            return false
        }
    }

    /// How the response stands, for the connection to decide whether it can be reused.
    var outcome: HTTPConnectionStateMachine.ResponseOutcome {
        let closeConnection = framingRequiresClose.withLock { $0 }
        return state.withLock { state in
            if case .complete = state { return .complete(closeConnection: closeConnection) }
            return .incomplete
        }
    }

    /// Marks the client as gone: every later write throws.
    func markClientGone() {
        state.withLock { $0 = .clientGone }
    }

    func writeWhole(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) async throws {
        try transition(from: .awaitingHead, to: .complete, operation: "writeWhole")
        var head = try makeHead(status: status, headers: headers)
        head.headers.replaceOrAdd(name: "content-length", value: String(body.count))
        var parts: [HTTPPart<HTTPResponseHead, ByteBuffer>] = [.head(head)]
        if !body.isEmpty, requestHead.method != .HEAD {
            parts.append(.body(ByteBuffer(bytes: body)))
        }
        parts.append(.end(nil))
        try await send(parts)
    }

    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders) async throws {
        try transition(from: .awaitingHead, to: .streaming, operation: "startStream")
        // HTTP/1.0 has no chunked encoding, and a HEAD stream is ended without its terminating
        // chunk: either way the end of the response is the end of the connection.
        let isHTTP10 = requestHead.version.major == 1 && requestHead.version.minor == 0
        let head = try makeHead(status: status, headers: headers, closeForFraming: isHTTP10 || requestHead.method == .HEAD)
        try await send([.head(head)])
    }

    func writeChunk(_ bytes: [UInt8]) async throws {
        try requireState(.streaming, operation: "writeChunk")
        // An empty chunk would read as the end of a chunked body; a HEAD response has no body.
        guard !bytes.isEmpty, requestHead.method != .HEAD else { return }
        try await send([.body(ByteBuffer(bytes: bytes))])
    }

    func finishStream() async throws {
        try transition(from: .streaming, to: .complete, operation: "finishStream")
        if requestHead.method == .HEAD {
            // The encoder frames the HEAD response as chunked; it is ended by closing instead (see startStream).
            return
        }
        try await send([.end(nil)])
    }

    /// Builds the response head: the caller's headers minus framing headers, plus `x-request-id` and the connection disposition.
    private func makeHead(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        closeForFraming: Bool = false
    ) throws(HTTPFrontError) -> HTTPResponseHead {
        var headers = headers
        for (name, value) in headers where !Self.isSendable(name: name, value: value) {
            throw HTTPFrontError(.invalidResponseHeader, "the response header \(name) contains characters that cannot be sent")
        }
        headers.remove(name: "content-length")
        headers.remove(name: "transfer-encoding")
        headers.remove(name: "connection")
        headers.remove(name: "keep-alive")
        headers.replaceOrAdd(name: "x-request-id", value: requestID)

        let isHTTP10 = requestHead.version.major == 1 && requestHead.version.minor == 0
        if closeForFraming || !requestHead.isKeepAlive || connectionFlags.mustCloseAfterResponse {
            headers.add(name: "connection", value: "close")
            framingRequiresClose.withLock { $0 = true }
        } else if isHTTP10 {
            headers.add(name: "connection", value: "keep-alive")
        }
        let version: HTTPVersion = requestHead.version.major == 1 ? requestHead.version : .http1_1
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }

    private func send(_ parts: [HTTPPart<HTTPResponseHead, ByteBuffer>]) async throws {
        do {
            try await outbound.write(contentsOf: parts)
        } catch {
            state.withLock { $0 = .clientGone }
            throw HTTPFrontError(.clientDisconnected, "the client went away before the response was written", cause: error)
        }
    }

    private func transition(from expected: State, to next: State, operation: String) throws(HTTPFrontError) {
        let previous: State = state.withLock { state in
            let previous = state
            if previous == expected { state = next }
            return previous
        }
        try check(previous, expected: expected, operation: operation)
    }

    private func requireState(_ expected: State, operation: String) throws(HTTPFrontError) {
        let current = state.withLock { $0 }
        try check(current, expected: expected, operation: operation)
    }

    private func check(_ actual: State, expected: State, operation: String) throws(HTTPFrontError) {
        if actual == expected { return }
        if actual == .clientGone {
            throw HTTPFrontError(.clientDisconnected, "the client went away; \(operation) cannot be written")
        }
        throw HTTPFrontError(.responseOutOfOrder, "\(operation) called while the response is \(actual)")
    }

    private static func isSendable(name: String, value: String) -> Bool {
        !name.isEmpty
            && !name.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: ":") || $0 >= 0x7F })
            && !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 })
    }
}
