import NIOCore
import NIOHTTP1

/// One connection as the accept loop receives it: the configured channel, who is on the other end, and its event stream.
///
/// The channel is wrapped in a `NIOAsyncChannel` only when its serving task adopts it (`adopt()`),
/// and it reads nothing before that. An accepted connection the accept loop never picks up (the
/// listener closed or the server was cancelled while it was being accepted) is therefore simply
/// closed when its adoption deadline passes, instead of tripping over an async writer that was
/// never finished (swift-nio issues 2637 and 2813).
struct AcceptedHTTPConnection: Sendable {
    typealias AsyncHTTPChannel = NIOAsyncChannel<HTTPServerRequestPart, HTTPPart<HTTPResponseHead, ByteBuffer>>

    /// The connection's channel, with the HTTP handlers installed and reading paused.
    let channel: any Channel
    /// The front the connection arrived on.
    let origin: RequestOrigin
    /// The peer's credentials, on the Unix-socket front.
    let peer: PeerCredentials?
    /// Everything that happens on the connection, in order, for its driver.
    let events: AsyncStream<HTTPConnectionStateMachine.Event>
    /// Where the pipeline, the timers, the handler and the server report events.
    let eventSink: AsyncStream<HTTPConnectionStateMachine.Event>.Continuation
    /// Closes the channel if no task adopts it in time.
    let adoptionDeadline: Scheduled<Void>

    /// Wraps the channel for async use and starts reading from it.
    func adopt() async throws -> AsyncHTTPChannel {
        let channel = self.channel
        let adoptionDeadline = self.adoptionDeadline
        return try await channel.eventLoop.submit {
            adoptionDeadline.cancel()
            let asyncChannel = try AsyncHTTPChannel(
                wrappingChannelSynchronously: channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            try channel.syncOptions?.setOption(.autoRead, value: true)
            return asyncChannel
        }.get()
    }
}

enum HTTPFrontPipeline {
    /// Installs the HTTP/1.1 server handlers on a freshly accepted channel (which must not be reading yet).
    ///
    /// Pipeline, head to tail: response encoder, request-bytes probe, request decoder (with the
    /// header limit, also bounding the request line), body-part adapter; `adopt()` adds the async
    /// channel handler last.
    static func configure(
        channel: any Channel,
        origin: RequestOrigin,
        peer: PeerCredentials?,
        limits: HTTPFrontLimits
    ) throws -> AcceptedHTTPConnection {
        let (events, eventSink) = AsyncStream<HTTPConnectionStateMachine.Event>.makeStream()
        let decoderLimits = {
            var configuration = NIOHTTPDecoderLimitConfiguration()
            configuration.maxHeaderFieldSize = limits.maxHeaderBytes
            configuration.maxHeaderListSize = limits.maxHeaderBytes
            return configuration
        }()
        let operations = channel.pipeline.syncOperations
        try operations.addHandler(HTTPResponseEncoder())
        try operations.addHandler(RequestBytesProbe(eventSink: eventSink))
        try operations.addHandler(
            ByteToMessageHandler(
                HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: decoderLimits),
                maximumBufferSize: limits.maxHeaderBytes
            )
        )
        try operations.addHandler(ResponseBodyAdapter())
        channel.closeFuture.whenComplete { _ in
            eventSink.yield(.inboundClosed)
        }
        let adoptionDeadline = channel.eventLoop.scheduleTask(in: TimeAmount(limits.idleTimeout)) {
            channel.close(promise: nil)
        }
        return AcceptedHTTPConnection(
            channel: channel,
            origin: origin,
            peer: peer,
            events: events,
            eventSink: eventSink,
            adoptionDeadline: adoptionDeadline
        )
    }
}

/// Reports when the first bytes of a request arrive, before they are decoded, so the read timeout covers a half-sent head.
///
/// It sits between the encoder and the decoder: inbound it sees raw bytes, outbound it sees
/// response parts, and it re-arms when a response ends.
final class RequestBytesProbe: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let eventSink: AsyncStream<HTTPConnectionStateMachine.Event>.Continuation
    private var awaitingRequest = true

    init(eventSink: AsyncStream<HTTPConnectionStateMachine.Event>.Continuation) {
        self.eventSink = eventSink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if awaitingRequest, Self.unwrapInboundIn(data).readableBytes > 0 {
            awaitingRequest = false
            eventSink.yield(.requestBytesArrived)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = Self.unwrapOutboundIn(data) {
            awaitingRequest = true
        }
        context.write(data, promise: promise)
    }
}

/// Turns the async channel's `ByteBuffer` body parts into the encoder's `IOData` parts.
final class ResponseBodyAdapter: ChannelOutboundHandler {
    typealias OutboundIn = HTTPPart<HTTPResponseHead, ByteBuffer>
    typealias OutboundOut = HTTPServerResponsePart

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch Self.unwrapOutboundIn(data) {
        case .head(let head):
            context.write(Self.wrapOutboundOut(.head(head)), promise: promise)
        case .body(let buffer):
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
        case .end(let trailers):
            context.write(Self.wrapOutboundOut(.end(trailers)), promise: promise)
        }
    }
}
