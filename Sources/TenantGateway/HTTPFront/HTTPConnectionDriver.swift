import Logging
import NIOCore
import NIOHTTP1

/// Serves one accepted connection: reads requests, runs the handler for each, enforces limits and timeouts.
///
/// The protocol decisions are `HTTPConnectionStateMachine`'s; this type performs them. Events come
/// from one stream: the decoded request parts (a reader task keeps reading while the handler runs,
/// so a client that leaves is noticed at once and the handler cancelled), the raw-bytes probe,
/// the timers, the handler's completion and the server's drain signals.
struct HTTPConnectionDriver {
    typealias Outbound = NIOAsyncChannelOutboundWriter<HTTPPart<HTTPResponseHead, ByteBuffer>>

    let connection: AcceptedHTTPConnection
    let handler: any GatewayRequestHandler
    let limits: HTTPFrontLimits
    let logger: Logger

    /// Serves the connection until it is closed; never throws, so one connection cannot disturb another.
    func run() async {
        defer { connection.eventSink.finish() }
        let asyncChannel: AcceptedHTTPConnection.AsyncHTTPChannel
        do {
            asyncChannel = try await connection.adopt()
        } catch {
            logger.debug("the connection closed before it could be served", metadata: ["error": "\(error)"])
            connection.channel.close(promise: nil)
            return
        }
        do {
            try await asyncChannel.executeThenClose { inbound, outbound in
                await serve(inbound: inbound, outbound: outbound)
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["error": "\(error)"])
        }
    }

    /// The handler now running on the connection and how to stop it.
    private struct RunningHandler {
        let writer: HTTPFrontResponseWriter
        let cancellation: AsyncStream<Never>.Continuation
        let logger: Logger
    }

    private func serve(
        inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>,
        outbound: Outbound
    ) async {
        let eventSink = connection.eventSink
        let channel = connection.channel
        let flags = HTTPConnectionFlags()

        await withDiscardingTaskGroup { group in
            group.addTask {
                await Self.readRequests(from: inbound, into: eventSink)
            }

            var machine = HTTPConnectionStateMachine(limits: limits)
            var timer: Scheduled<Void>?
            var running: RunningHandler?
            var actions = machine.connectionOpened()
            var events = connection.events.makeAsyncIterator()

            serving: while true {
                for action in actions {
                    switch action {
                    case .armTimer(let id, let delay):
                        timer?.cancel()
                        timer = channel.eventLoop.scheduleTask(in: TimeAmount(delay)) {
                            eventSink.yield(.timerFired(id))
                        }
                    case .disarmTimer:
                        timer?.cancel()
                        timer = nil
                    case .sendContinue(let version):
                        try? await outbound.write(.head(HTTPResponseHead(version: version, status: .continue)))
                    case .startHandler(let request):
                        running = startHandler(for: request, outbound: outbound, flags: flags, group: &group)
                    case .cancelHandler:
                        if let running {
                            if case .complete = running.writer.outcome {
                                // The response is out; the handler is only returning. Nothing is lost.
                                running.logger.debug("connection closed right after a complete response")
                            } else {
                                running.logger.info("cancelling the request: the client went away or the drain deadline passed")
                            }
                            running.writer.markClientGone()
                            running.cancellation.finish()
                        }
                    case .reject(let rejection):
                        await writeRejection(rejection, to: outbound)
                    case .closeOutput:
                        outbound.finish()
                    case .close:
                        break serving
                    }
                }
                guard let event = await events.next() else {
                    // The server's task was cancelled: stop at once.
                    break serving
                }
                if case .handlerFinished = event { running = nil }
                actions = machine.receive(event)
                flags.mustCloseAfterResponse = machine.willCloseAfterResponse
            }

            timer?.cancel()
            if let running {
                running.writer.markClientGone()
                running.cancellation.finish()
            }
            channel.close(promise: nil)
        }
    }

    /// Starts the handler in a task of its own, which a cancellation signal (the client left) can cancel.
    private func startHandler(
        for request: HTTPConnectionStateMachine.CompleteRequest,
        outbound: Outbound,
        flags: HTTPConnectionFlags,
        group: inout DiscardingTaskGroup
    ) -> RunningHandler {
        let requestID = Self.makeRequestID()
        let target = Self.splitTarget(request.head.uri)
        let gatewayRequest = GatewayRequest(
            id: requestID,
            method: request.head.method,
            path: target.path,
            query: target.query,
            headers: request.head.headers,
            body: request.body,
            origin: connection.origin
        )
        var requestLogger = logger
        requestLogger[metadataKey: "request.id"] = "\(requestID)"
        requestLogger.debug(
            "request received",
            metadata: [
                "http.method": "\(request.head.method.rawValue)",
                "http.path": "\(target.path)",
                "http.body_bytes": "\(request.body.count)",
            ]
        )

        let writer = HTTPFrontResponseWriter(
            outbound: outbound,
            requestID: requestID,
            requestHead: request.head,
            connectionFlags: flags
        )
        let (cancellation, cancellationTrigger) = AsyncStream<Never>.makeStream()
        let handler = self.handler
        let eventSink = connection.eventSink
        let handlerLogger = requestLogger
        group.addTask {
            await withTaskGroup(of: Void.self) { race in
                race.addTask { await handler.handle(gatewayRequest, writer: writer) }
                race.addTask { for await _ in cancellation {} }
                await race.next()
                race.cancelAll()
            }
            if writer.hasNotStarted {
                handlerLogger.error("the handler returned without writing a response; answering 500")
                let error = GatewayError(.internalError, code: "no_response", message: "The gateway produced no response.")
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "application/json")
                try? await writer.writeWhole(
                    status: HTTPResponseStatus(statusCode: error.status),
                    headers: headers,
                    body: error.responseBody(in: gatewayRequest.clientDialect)
                )
            }
            eventSink.yield(.handlerFinished(writer.outcome))
        }
        return RunningHandler(writer: writer, cancellation: cancellationTrigger, logger: requestLogger)
    }

    /// Answers a request the front refuses itself, in the client's error envelope, announcing the close.
    private func writeRejection(_ rejection: HTTPConnectionStateMachine.RejectionResponse, to outbound: Outbound) async {
        let requestID = Self.makeRequestID()
        let error = Self.gatewayError(for: rejection.rejection, limits: limits)
        logger.info(
            "request refused by the front",
            metadata: ["request.id": "\(requestID)", "http.status": "\(error.status)", "error.code": "\(error.code)"]
        )
        let body = error.responseBody(in: rejection.dialect)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.count))
        headers.add(name: "x-request-id", value: requestID)
        headers.add(name: "connection", value: "close")
        let head = HTTPResponseHead(version: rejection.version, status: HTTPResponseStatus(statusCode: error.status), headers: headers)
        try? await outbound.write(contentsOf: [.head(head), .body(ByteBuffer(bytes: body)), .end(nil)])
    }

    /// The error a front rejection is reported as.
    static func gatewayError(for rejection: HTTPConnectionStateMachine.Rejection, limits: HTTPFrontLimits) -> GatewayError {
        switch rejection {
        case .bodyTooLarge:
            GatewayError(
                .requestTooLarge,
                code: "request_too_large",
                message: "The request body exceeds the gateway's limit of \(limits.maxBodyBytes) bytes."
            )
        case .headersTooLarge:
            GatewayError(
                .invalidRequest,
                code: "request_header_fields_too_large",
                message: "The request line and headers exceed the gateway's limit of \(limits.maxHeaderBytes) bytes.",
                status: 431
            )
        case .malformed:
            GatewayError(.invalidRequest, code: "malformed_http_request", message: "The request is not a valid HTTP/1.1 request.")
        case .timedOut:
            GatewayError(
                .requestTimeout,
                code: "request_timeout",
                message: "The request was not received completely within \(limits.requestReadTimeout)."
            )
        }
    }

    /// Forwards decoded request parts until the inbound side ends, then reports how it ended.
    private static func readRequests(
        from inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>,
        into eventSink: AsyncStream<HTTPConnectionStateMachine.Event>.Continuation
    ) async {
        do {
            for try await part in inbound {
                eventSink.yield(.requestPart(part))
            }
            eventSink.yield(.inboundClosed)
        } catch let error as HTTPParserError {
            if case .headerOverflow = error {
                eventSink.yield(.inboundFailed(.headersTooLarge))
            } else {
                eventSink.yield(.inboundFailed(.malformed))
            }
        } catch is ByteToMessageDecoderError.PayloadTooLargeError {
            eventSink.yield(.inboundFailed(.headersTooLarge))
        } catch {
            eventSink.yield(.inboundClosed)
        }
    }

    /// A short random id for logs and `x-request-id`.
    static func makeRequestID() -> String {
        let digits = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Splits a request target into path and query; an absolute-form target (`http://host/path`) is reduced to its path.
    static func splitTarget(_ target: String) -> (path: String, query: String?) {
        var rest = Substring(target)
        if !rest.hasPrefix("/") {
            for scheme in ["http://", "https://"] where rest.prefix(scheme.count).lowercased() == scheme {
                let authorityAndPath = rest.dropFirst(scheme.count)
                rest = authorityAndPath.firstIndex(of: "/").map { authorityAndPath[$0...] } ?? "/"
            }
        }
        if let fragment = rest.firstIndex(of: "#") {
            rest = rest[..<fragment]
        }
        guard let questionMark = rest.firstIndex(of: "?") else {
            return (String(rest), nil)
        }
        return (String(rest[..<questionMark]), String(rest[rest.index(after: questionMark)...]))
    }
}

extension TimeAmount {
    /// The same span as a `Duration`, to nanosecond precision.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
