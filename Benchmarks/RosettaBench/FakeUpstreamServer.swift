import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The fast fake upstream: an HTTP/1.1 server on 127.0.0.1 answering OpenAI Chat and Anthropic Messages requests.
///
/// It runs on its own event loop group (one thread by default, so it takes little of the machine),
/// keeps connections alive, and writes each SSE event of a stream with its own flush.
final class FakeUpstreamServer: Sendable {
    /// The lifecycle of the server's listener.
    private enum State {
        case running(Channel)
        case stopped
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    let port: Int
    /// What the server answers.
    let responder: FakeUpstreamResponder
    private let group: MultiThreadedEventLoopGroup
    private let state: Mutex<State>
    private let servedCounter: FakeUpstreamCounter

    /// How many requests the server has answered so far.
    var servedRequests: Int { servedCounter.value }

    private init(port: Int, responder: FakeUpstreamResponder, group: MultiThreadedEventLoopGroup, channel: Channel, counter: FakeUpstreamCounter) {
        self.port = port
        self.responder = responder
        self.group = group
        self.state = Mutex(.running(channel))
        self.servedCounter = counter
    }

    /// Starts a server on 127.0.0.1 at an ephemeral port.
    static func start(responder: FakeUpstreamResponder, threads: Int) async throws -> FakeUpstreamServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let counter = FakeUpstreamCounter()
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 512)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(
                            FakeUpstreamHandler(responder: responder, counter: counter)
                        )
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            guard let port = channel.localAddress?.port else {
                try? await channel.close()
                throw BenchFailure("the fake upstream's listener has no port")
            }
            return FakeUpstreamServer(port: port, responder: responder, group: group, channel: channel, counter: counter)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Closes the listener and stops the event loop threads.
    func stop() async {
        let channel: Channel? = state.withLock { state in
            defer { state = .stopped }
            if case .running(let channel) = state { return channel }
            return nil
        }
        guard let channel else { return }
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// A request counter shared by every connection of the fake upstream.
final class FakeUpstreamCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// The number counted so far.
    var value: Int { count.load(ordering: .relaxed) }

    /// Counts one more request and returns its sequence number (starting at 1).
    func next() -> Int {
        count.wrappingAdd(1, ordering: .relaxed).newValue
    }
}

/// Collects one request per exchange and writes the responder's reply.
private final class FakeUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: FakeUpstreamResponder
    private let counter: FakeUpstreamCounter
    private var requestHead: HTTPRequestHead?
    private var requestBody: ByteBuffer?

    init(responder: FakeUpstreamResponder, counter: FakeUpstreamCounter) {
        self.responder = responder
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestHead = head
            requestBody = nil
        case .body(var chunk):
            if requestBody == nil {
                requestBody = chunk
            } else {
                requestBody!.writeBuffer(&chunk)
            }
        case .end:
            guard let head = requestHead else { return }
            requestHead = nil
            let body = requestBody ?? ByteBuffer()
            requestBody = nil
            respond(context: context, to: head, body: body)
        }
    }

    private func respond(context: ChannelHandlerContext, to head: HTTPRequestHead, body: ByteBuffer) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        let reply = responder.reply(
            method: head.method.rawValue,
            path: path,
            header: { head.headers.first(name: $0) },
            body: body.readableBytesView,
            sequence: counter.next()
        )
        let keepAlive = head.isKeepAlive
        var responseHead = HTTPResponseHead(version: head.version, status: .ok)
        responseHead.headers.add(name: "date", value: "Mon, 01 Jan 2024 00:00:00 GMT")
        switch reply {
        case .whole(let status, let bytes):
            responseHead.status = HTTPResponseStatus(statusCode: status)
            responseHead.headers.add(name: "content-type", value: "application/json")
            responseHead.headers.add(name: "content-length", value: String(bytes.count))
            responseHead.headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        case .stream(let events):
            responseHead.headers.add(name: "content-type", value: "text/event-stream; charset=utf-8")
            responseHead.headers.add(name: "cache-control", value: "no-cache")
            responseHead.headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
            context.writeAndFlush(wrapOutboundOut(.head(responseHead)), promise: nil)
            if let pace = head.headers.first(name: FakeUpstreamResponder.chunkIntervalHeader).flatMap(Int64.init), pace > 0 {
                // A paced stream (the isolation scenario): one event every `pace` ms, the end after the last.
                writePaced(events: events, every: .milliseconds(pace), on: context.channel, keepAlive: keepAlive)
                return
            }
            for event in events {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: event)))), promise: nil)
            }
        }
        let channel = context.channel
        let ended = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: ended)
        if !keepAlive {
            ended.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Writes one event per `interval` through the channel (scheduled on its event loop), then the end of the response.
    private func writePaced(events: [[UInt8]], every interval: TimeAmount, on channel: Channel, keepAlive: Bool) {
        for (index, event) in events.enumerated() {
            channel.eventLoop.scheduleTask(in: interval * Int64(index + 1)) {
                channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: event))), promise: nil)
            }
        }
        channel.eventLoop.scheduleTask(in: interval * Int64(events.count + 1)) {
            let ended = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: ended)
            if !keepAlive { ended.futureResult.whenComplete { _ in channel.close(promise: nil) } }
        }
    }
}
