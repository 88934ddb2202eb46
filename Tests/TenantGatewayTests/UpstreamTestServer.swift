import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A one-shot event tests and fake servers wait on with a bound.
final class TestSignal: Sendable {
    private struct State {
        var fired = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID = 0
    }

    private let state = Mutex(State())

    /// Whether the event has happened.
    var hasFired: Bool { state.withLock { $0.fired } }

    /// Marks the event as happened and wakes every waiter.
    func fire() {
        let waiters = state.withLock { state in
            state.fired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the event happens or the timeout passes; true when it happened.
    func wait(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitUntilFiredOrCancelled()
                return self.hasFired
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return self.hasFired
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || hasFired
        }
    }

    private func waitUntilFiredOrCancelled() async {
        let id = state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

/// Waits, polling every few milliseconds, until a condition holds or the timeout passes.
func waitUntil(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return true
}

/// A request as the fake upstream received it.
struct ReceivedRequest: Sendable {
    var method: String
    var uri: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// The server-side number of the connection it came on (0, 1, ...).
    var connectionNumber: Int

    /// The values of the header fields with this name, compared case-insensitively.
    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// Lets a test's responder write the response part by part and watch its connection.
struct TestResponseWriter: Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    let connectionClosed: TestSignal

    /// Writes a response head; without `content-length` the body goes chunked.
    func head(_ status: Int, _ headers: [(String, String)] = []) async throws {
        try await outbound.write(.head(HTTPResponseHead(
            version: .http1_1,
            status: HTTPResponseStatus(statusCode: status),
            headers: HTTPHeaders(headers)
        )))
    }

    /// Writes body bytes, flushed at once.
    func body(_ bytes: some Sequence<UInt8>) async throws {
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: bytes))))
    }

    /// Writes body text, flushed at once.
    func body(_ text: String) async throws {
        try await body(Array(text.utf8))
    }

    /// Ends the response.
    func end() async throws {
        try await outbound.write(.end(nil))
    }

    /// Waits until the client closes the connection; true when it did within the timeout.
    func waitForClose(timeout: Duration) async -> Bool {
        await connectionClosed.wait(timeout: timeout)
    }
}

/// A fake upstream: HTTP/1.1 on 127.0.0.1 or a Unix socket, answering through a test's responder.
final class UpstreamTestServer: Sendable {
    typealias Responder = @Sendable (ReceivedRequest, TestResponseWriter) async throws -> Void

    private struct State {
        var acceptedConnections = 0
        var closedConnections = 0
        var requests: [ReceivedRequest] = []
    }

    private let state = Mutex(State())
    /// The TCP port, when listening on TCP.
    let port: Int?

    private init(port: Int?) {
        self.port = port
    }

    /// How many connections the server accepted.
    var acceptedConnections: Int { state.withLock { $0.acceptedConnections } }
    /// How many of them are closed.
    var closedConnections: Int { state.withLock { $0.closedConnections } }
    /// The requests received, in order.
    var requests: [ReceivedRequest] { state.withLock { $0.requests } }

    /// Runs a server for the duration of `body`, then stops it.
    static func with<Result: Sendable>(
        unixSocketPath: String? = nil,
        respond: @escaping Responder,
        _ body: (UpstreamTestServer) async throws -> Result
    ) async throws -> Result {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let initializer: @Sendable (Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
            }
        }
        let listener = if let unixSocketPath {
            try await bootstrap.bind(unixDomainSocketPath: unixSocketPath, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
        } else {
            try await bootstrap.bind(host: "127.0.0.1", port: 0, childChannelInitializer: initializer)
        }
        let server = UpstreamTestServer(port: listener.channel.localAddress?.port)

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withThrowingDiscardingTaskGroup { connections in
                    try await listener.executeThenClose { inbound in
                        for try await connection in inbound {
                            connections.addTask { await server.serve(connection, respond: respond) }
                        }
                    }
                }
            }
            do {
                let result = try await body(server)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    private func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        respond: Responder
    ) async {
        let number = state.withLock { state in
            defer { state.acceptedConnections += 1 }
            return state.acceptedConnections
        }
        let closed = TestSignal()
        connection.channel.closeFuture.whenComplete { _ in
            self.state.withLock { $0.closedConnections += 1 }
            closed.fire()
        }
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body = []
                case .body(let buffer):
                    body.append(contentsOf: buffer.readableBytesView)
                case .end:
                    guard let head else { continue }
                    let request = ReceivedRequest(
                        method: head.method.rawValue,
                        uri: head.uri,
                        headers: head.headers.map { (name: $0.name, value: $0.value) },
                        body: body,
                        connectionNumber: number
                    )
                    state.withLock { $0.requests.append(request) }
                    try await respond(request, TestResponseWriter(outbound: outbound, connectionClosed: closed))
                }
            }
        }
    }
}
