#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import TenantGateway
import Testing

@Suite("HTTP front", .timeLimit(.minutes(1)))
struct HTTPFrontTests {
    // MARK: - Requests and responses

    @Test("a request reaches the handler whole, with its origin, and the response carries x-request-id")
    func requestReachesHandler() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { harness in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            let response = try await withRawConnection(connection) { reader, writer in
                try await writer.send(
                    rawRequest(
                        "POST",
                        "/echo?model=a&x=1",
                        headers: [("x-custom", "yes"), ("anthropic-version", "2023-06-01")],
                        body: "hello body"
                    )
                )
                return await reader.readResponse()
            }
            let request = try #require(await harness.nextReceivedRequest())
            #expect(request.method == .POST)
            #expect(request.path == "/echo")
            #expect(request.query == "model=a&x=1")
            #expect(request.headers["x-custom"] == ["yes"])
            #expect(request.headers["anthropic-version"] == ["2023-06-01"])
            #expect(request.body == Array("hello body".utf8))
            #expect(request.origin == .loopbackTCP)

            let echoed = try #require(response)
            #expect(echoed.status == 200)
            #expect(echoed.text == "hello body")
            #expect(echoed.header("content-length") == "10")
            #expect(echoed.header("content-type") == "application/octet-stream")
            #expect(echoed.header("x-request-id") == request.id)
        }
    }

    @Test("keep-alive serves sequential requests on one connection, and connection: close ends it")
    func keepAliveSequentialRequests() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                var requestIDs: Set<String> = []
                for index in 1...3 {
                    try await writer.send(rawRequest("POST", "/echo", body: "request \(index)"))
                    let response = try #require(await reader.readResponse())
                    #expect(response.status == 200)
                    #expect(response.text == "request \(index)")
                    #expect(response.header("connection") == nil)
                    requestIDs.insert(try #require(response.header("x-request-id")))
                }
                #expect(requestIDs.count == 3)

                try await writer.send(rawRequest("POST", "/echo", headers: [("connection", "close")], body: "last"))
                let last = try #require(await reader.readResponse())
                #expect(last.text == "last")
                #expect(last.header("connection") == "close")
                #expect(await reader.closesWithoutData())
            }
        }
    }

    @Test("pipelined requests are answered in order; a HEAD response carries no body")
    func pipelinedAndHeadRequests() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                try await writer.send(
                    rawRequest("POST", "/echo", body: "first") + rawRequest("HEAD", "/echo") + rawRequest("POST", "/echo", body: "third")
                )
                #expect(await reader.readResponse()?.text == "first")
                let head = try #require(await reader.readHead())
                #expect(head.status == 200)
                #expect(head.headers.contains { $0.name == "content-length" && $0.value == "0" })
                #expect(await reader.readResponse()?.text == "third")
            }
        }
    }

    @Test("a streamed response arrives chunk by chunk, before the handler has produced the rest")
    func streamArrivesIncrementally() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { harness in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            let gate = harness.gate
            try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("GET", "/stream"))
                let head = try #require(await reader.readHead())
                #expect(head.status == 200)
                #expect(head.headers.contains { $0.name == "transfer-encoding" && $0.value == "chunked" })
                #expect(!head.headers.contains { $0.name == "content-length" })
                #expect(head.headers.contains { $0.name == "x-request-id" })

                // The handler waits on the gate after the first event: it can only have arrived on its own.
                #expect(await reader.readChunk() == Array("data: 1\n\n".utf8))
                gate.open()
                #expect(await reader.readChunk() == Array("data: 2\n\n".utf8))
                gate.open()
                #expect(await reader.readChunk() == Array("data: 3\n\n".utf8))
                #expect(await reader.readChunk() == nil)
                #expect(!reader.reachedEnd)

                // The connection is still usable after the stream.
                try await writer.send(rawRequest("POST", "/echo", body: "after"))
                #expect(await reader.readResponse()?.text == "after")
            }
        }
    }

    @Test("a handler that writes nothing yields a 500 in the client's envelope")
    func silentHandlerGets500() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            let response = try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/silent", body: "{}"))
                return await reader.readResponse()
            }
            let answer = try #require(response)
            #expect(answer.status == 500)
            #expect(answer.json?["error"]?["type"]?.stringValue == "server_error")
        }
    }

    @Test("HTTP/1.0 without a Host header is answered, then the connection closes; a stream is delimited by the close")
    func http10WithoutHost() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { harness in
            let port = try #require(listener.port)
            let connection = try await RawClient.connect(port: port)
            try await withRawConnection(connection) { reader, writer in
                try await writer.send("GET /echo HTTP/1.0\r\n\r\n")
                let response = try #require(await reader.readResponse())
                #expect(response.status == 200)
                #expect(await reader.closesWithoutData())
            }

            let gate = harness.gate
            gate.open()
            gate.open()
            let streaming = try await RawClient.connect(port: port)
            try await withRawConnection(streaming) { reader, writer in
                try await writer.send("GET /stream HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
                let response = try #require(await reader.readResponse())
                #expect(response.status == 200)
                #expect(response.header("transfer-encoding") == nil)
                #expect(response.header("connection") == "close")
                #expect(response.text == "data: 1\n\ndata: 2\n\ndata: 3\n\n")
            }
        }
    }

    @Test("expect: 100-continue gets 100 Continue before the body is sent")
    func expectContinue() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                try await writer.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
                let interim = try #require(await reader.readResponse(skippingInformational: false))
                #expect(interim.status == 100)
                try await writer.send("ping")
                #expect(await reader.readResponse()?.text == "ping")
            }
        }
    }

    // MARK: - Limits

    @Test(
        "an oversized body gets 413 in the client's envelope, the connection closes, others are served",
        arguments: [
            ("/v1/chat/completions", Dialect.openAIChat),
            ("/v1/messages", Dialect.anthropicMessages),
            ("/v1beta/models/m:generateContent", Dialect.googleGenAI),
        ]
    )
    func oversizedDeclaredBody(path: String, dialect: Dialect) async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: HTTPFrontLimits(maxBodyBytes: 1024))
        try await withFrontServer([listener]) { _ in
            let port = try #require(listener.port)
            let first = try await RawClient.connect(port: port)
            try await withRawConnection(first) { reader, writer in
                try await writer.send("POST \(path) HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n")
                let response = try #require(await reader.readResponse())
                #expect(response.status == 413)
                #expect(response.header("content-type") == "application/json")
                #expect(response.header("connection") == "close")
                #expect(response.header("x-request-id") != nil)
                let json = try #require(response.json)
                switch dialect {
                case .openAIChat, .openAIResponses:
                    #expect(json["error"]?["code"]?.stringValue == "request_too_large")
                    #expect(json["error"]?["type"]?.stringValue == "invalid_request_error")
                    #expect(json["type"] == nil)
                case .anthropicMessages:
                    #expect(json["type"]?.stringValue == "error")
                    #expect(json["error"]?["type"]?.stringValue == "request_too_large")
                case .googleGenAI:
                    #expect(json["error"]?["code"]?.intValue == 413)
                    #expect(json["error"]?["status"]?.stringValue == "INVALID_ARGUMENT")
                }
                #expect(await reader.closesWithoutData())
            }

            let second = try await RawClient.connect(port: port)
            let other = try await withRawConnection(second) { reader, writer in
                try await writer.send(rawRequest("POST", "/echo", body: "still serving"))
                return await reader.readResponse()
            }
            #expect(other?.text == "still serving")
        }
    }

    @Test("a chunked body that grows past the limit gets 413 as soon as it does")
    func oversizedChunkedBody() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: HTTPFrontLimits(maxBodyBytes: 1024))
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                try await writer.send("POST /v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
                let chunk = String(repeating: "a", count: 800)
                try await writer.send("320\r\n\(chunk)\r\n")
                try await writer.send("320\r\n\(chunk)\r\n")
                let response = try #require(await reader.readResponse())
                #expect(response.status == 413)
                #expect(response.json?["error"]?["type"]?.stringValue == "request_too_large")
            }
        }
    }

    @Test(
        "oversized headers or request line get 431 and a close",
        arguments: [
            "GET /echo HTTP/1.1\r\nhost: x\r\nx-big: \(String(repeating: "b", count: 4000))\r\n\r\n",
            "GET /echo?\(String(repeating: "q", count: 4000)) HTTP/1.1\r\nhost: x\r\n\r\n",
        ]
    )
    func oversizedHeaders(request: String) async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: HTTPFrontLimits(maxHeaderBytes: 1024))
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                try await writer.send(request)
                let response = try #require(await reader.readResponse())
                #expect(response.status == 431)
                #expect(response.json?["error"]?["code"]?.stringValue == "request_header_fields_too_large")
                #expect(await reader.closesWithoutData())
            }
        }
    }

    @Test("bytes that are not HTTP get 400 and a close; the server keeps serving")
    func malformedRequest() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { _ in
            let port = try #require(listener.port)
            let garbage = [
                "NOT HTTP AT ALL\r\n\r\n",
                "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\ncontent-length: 3\r\n\r\nabc",
            ]
            for garbage in garbage {
                let connection = try await RawClient.connect(port: port)
                try await withRawConnection(connection) { reader, writer in
                    try await writer.send(garbage)
                    let response = try #require(await reader.readResponse())
                    #expect(response.status == 400)
                    #expect(await reader.closesWithoutData())
                }
            }
            let connection = try await RawClient.connect(port: port)
            let response = try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/echo", body: "fine"))
                return await reader.readResponse()
            }
            #expect(response?.text == "fine")
        }
    }

    @Test("a client that stalls mid-headers gets 408 within the read timeout and is closed")
    func slowClientTimesOut() async throws {
        let limits = HTTPFrontLimits(requestReadTimeout: .milliseconds(300))
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: limits)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                let clock = ContinuousClock()
                let start = clock.now
                try await writer.send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-")
                let response = try #require(await reader.readResponse())
                let elapsed = clock.now - start
                #expect(response.status == 408)
                #expect(response.json?["error"]?["code"]?.stringValue == "request_timeout")
                #expect(await reader.closesWithoutData())
                #expect(elapsed >= .milliseconds(250))
                #expect(elapsed < .seconds(5))
            }
        }
    }

    @Test("a client that stalls mid-body gets 408 in its own envelope")
    func slowBodyTimesOut() async throws {
        let limits = HTTPFrontLimits(requestReadTimeout: .milliseconds(300))
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: limits)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                try await writer.send("POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"partial\":")
                let response = try #require(await reader.readResponse())
                #expect(response.status == 408)
                #expect(response.json?["type"]?.stringValue == "error")
            }
        }
    }

    @Test("an idle keep-alive connection is closed quietly after the idle timeout")
    func idleConnectionCloses() async throws {
        let limits = HTTPFrontLimits(idleTimeout: .milliseconds(200))
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: limits)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/echo", body: "one"))
                #expect(await reader.readResponse()?.text == "one")
                let clock = ContinuousClock()
                let start = clock.now
                #expect(await reader.closesWithoutData())
                #expect(clock.now - start < .seconds(5))
            }
        }
    }

    // MARK: - Client disconnect

    @Test("a client that disconnects while the handler waits cancels the handler promptly, and later writes throw")
    func disconnectCancelsHandler() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        try await withFrontServer([listener]) { harness in
            let connection = try await RawClient.connect(port: try #require(listener.port))
            let request = try await withRawConnection(connection) { _, writer in
                try await writer.send(rawRequest("POST", "/slow", body: "{}"))
                return try #require(await harness.nextReceivedRequest())
            }  // leaving the scope closes the client's connection
            let clock = ContinuousClock()
            let start = clock.now
            let cancelled = try #require(await harness.nextCancellation())
            #expect(cancelled.requestID == request.id)
            #expect(cancelled.writeFailed, "a write after the client went away must throw")
            #expect(clock.now - start < .seconds(5))
        }
    }

    // MARK: - Unix socket

    @Test("the Unix socket is 0600 in a 0700 directory it created, and requests carry the peer uid")
    func unixSocketModesAndOrigin() async throws {
        let paths = makeTemporarySocketPath()
        defer { removeTemporarySocketTree(paths.directory) }
        let listener = try await HTTPFrontListener.bindUnixSocket(path: paths.socket, ownerUID: getuid())
        #expect(permissionBits(paths.socket) == 0o600)
        #expect(permissionBits(paths.directory) == 0o700)
        #expect(listener.port == nil)
        try await withFrontServer([listener]) { harness in
            let connection = try await RawClient.connect(unixSocket: paths.socket)
            let response = try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/echo", body: "over unix"))
                return await reader.readResponse()
            }
            #expect(response?.text == "over unix")
            let request = try #require(await harness.nextReceivedRequest())
            #expect(request.origin == .unixSocket(peerUID: getuid()))
        }
    }

    @Test("an existing group-readable socket directory is tightened to 0700 and a stale socket is replaced")
    func existingDirectoryTightenedAndStaleSocketReplaced() async throws {
        let paths = makeTemporarySocketPath(directoryExists: true)
        defer { removeTemporarySocketTree(paths.directory) }
        #expect(permissionBits(paths.directory) == 0o755)
        try makeStaleSocket(at: paths.socket)
        #expect(permissionBits(paths.socket) != nil)

        let second = try await HTTPFrontListener.bindUnixSocket(path: paths.socket, ownerUID: getuid())
        #expect(permissionBits(paths.directory) == 0o700)
        #expect(permissionBits(paths.socket) == 0o600)
        try await withFrontServer([second]) { _ in
            let connection = try await RawClient.connect(unixSocket: paths.socket)
            let response = try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/echo", body: "second"))
                return await reader.readResponse()
            }
            #expect(response?.text == "second")
        }
    }

    @Test("a live socket, a regular file or a symlink at the socket path is refused")
    func occupiedSocketPathRefused() async throws {
        let paths = makeTemporarySocketPath()
        defer { removeTemporarySocketTree(paths.directory) }
        let live = try await HTTPFrontListener.bindUnixSocket(path: paths.socket, ownerUID: getuid())
        #expect(await bindFailure { () async throws(HTTPFrontError) in try await bindUnix(paths.socket) }?.code == .addressInUse)
        await live.close()
        unlink(paths.socket)

        let file = open(paths.socket, O_CREAT | O_WRONLY, 0o600)
        close(file)
        #expect(await bindFailure { () async throws(HTTPFrontError) in try await bindUnix(paths.socket) }?.code == .socketPathOccupied)
        unlink(paths.socket)

        symlink("/tmp", paths.socket)
        #expect(await bindFailure { () async throws(HTTPFrontError) in try await bindUnix(paths.socket) }?.code == .socketPathOccupied)
        unlink(paths.socket)
    }

    @Test("a connection whose SO_PEERCRED uid is not the owner is closed without an answer")
    func foreignPeerRefused() async throws {
        let paths = makeTemporarySocketPath()
        defer { removeTemporarySocketTree(paths.directory) }
        let listener = try await HTTPFrontListener.bindUnixSocket(path: paths.socket, ownerUID: getuid() &+ 1)
        try await withFrontServer([listener]) { _ in
            let connection = try await RawClient.connect(unixSocket: paths.socket)
            try await withRawConnection(connection) { reader, writer in
                try? await writer.send(rawRequest("POST", "/echo", body: "let me in"))
                #expect(await reader.closesWithoutData())
            }
        }
    }

    // MARK: - Drain

    @Test("draining refuses new connections, closes idle ones and lets a stream in flight finish")
    func drainLetsStreamFinish() async throws {
        // A fresh connection that has sent nothing when the drain begins is given until the read (or idle)
        // timeout to send its first request, which is answered; keep it short so the silent client sees the close.
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0, limits: HTTPFrontLimits(idleTimeout: .seconds(3)))
        let port = try #require(listener.port)
        let (events, eventSink) = AsyncStream<HandlerEvent>.makeStream()
        let gate = TestGate()
        let server = HTTPFrontServer(listeners: [listener], handler: TestHandler(events: eventSink, gate: gate))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await server.run() }

            let idle = try await RawClient.connect(port: port)
            let streaming = try await RawClient.connect(port: port)
            try await withRawConnection(streaming) { reader, writer in
                try await writer.send(rawRequest("GET", "/stream"))
                #expect(await reader.readHead()?.status == 200)
                #expect(await reader.readChunk() == Array("data: 1\n\n".utf8))

                await server.drain(deadline: .now + .seconds(20))
                await #expect(throws: (any Error).self) {
                    let refused = try await RawClient.connect(port: port)
                    try await refused.executeThenClose { _, _ in }
                }
                try await withRawConnection(idle) { idleReader, _ in
                    #expect(await idleReader.closesWithoutData())
                }

                gate.open()
                #expect(await reader.readChunk() == Array("data: 2\n\n".utf8))
                gate.open()
                #expect(await reader.readChunk() == Array("data: 3\n\n".utf8))
                #expect(await reader.readChunk() == nil)
                #expect(await reader.closesWithoutData())
            }
            try await group.waitForAll()
        }
        eventSink.finish()
        _ = events
    }

    @Test("at the drain deadline the remaining connections are closed and their handlers cancelled")
    func drainDeadlineForcesClose() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        let port = try #require(listener.port)
        let (events, eventSink) = AsyncStream<HandlerEvent>.makeStream()
        var handlerEvents = events.makeAsyncIterator()
        let server = HTTPFrontServer(listeners: [listener], handler: TestHandler(events: eventSink, gate: TestGate()))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await server.run() }
            let connection = try await RawClient.connect(port: port)
            try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/slow", body: "{}"))
                guard case .received(let request) = await handlerEvents.next() else {
                    Issue.record("the handler did not receive the request")
                    return
                }
                await server.drain(deadline: .now + .milliseconds(200))
                #expect(await reader.closesWithoutData())
                guard case .cancelled(let cancelledID, _) = await handlerEvents.next() else {
                    Issue.record("the handler was not cancelled")
                    return
                }
                #expect(cancelledID == request.id)
            }
            try await group.waitForAll()
        }
        eventSink.finish()
    }

    @Test("cancelling run() stops at once: connections close and handlers are cancelled")
    func cancellingRunStopsEverything() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        let port = try #require(listener.port)
        let (events, eventSink) = AsyncStream<HandlerEvent>.makeStream()
        var handlerEvents = events.makeAsyncIterator()
        let server = HTTPFrontServer(listeners: [listener], handler: TestHandler(events: eventSink, gate: TestGate()))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await server.run() }
            let connection = try await RawClient.connect(port: port)
            try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/slow", body: "{}"))
                guard case .received(let request) = await handlerEvents.next() else {
                    Issue.record("the handler did not receive the request")
                    return
                }
                group.cancelAll()
                #expect(await reader.closesWithoutData())
                guard case .cancelled(let cancelledID, _) = await handlerEvents.next() else {
                    Issue.record("the handler was not cancelled")
                    return
                }
                #expect(cancelledID == request.id)
            }
            try await group.waitForAll()
        }
        await #expect(throws: (any Error).self) {
            let refused = try await RawClient.connect(port: port)
            try await refused.executeThenClose { _, _ in }
        }
        eventSink.finish()
    }

    // MARK: - Binding

    @Test("port 0 binds a real port, and binding a port in use fails with addressInUse")
    func portZeroAndAddressInUse() async throws {
        let listener = try await HTTPFrontListener.bindLoopbackTCP(port: 0)
        let port = try #require(listener.port)
        #expect(port > 0)
        #expect(listener.localAddress?.ipAddress == "127.0.0.1")
        let secondBind = await bindFailure { () async throws(HTTPFrontError) in
            try await HTTPFrontListener.bindLoopbackTCP(port: port)
        }
        #expect(secondBind?.code == .addressInUse)
        await listener.close()
    }

    @Test("an inherited listening socket (as systemd passes) is served")
    func adoptedSocketIsServed() async throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(descriptor >= 0)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        let bound = address.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
        #expect(bound == 0)
        #expect(listen(descriptor, 16) == 0)

        let listener = try await HTTPFrontListener.adoptListeningSocket(descriptor, front: .loopbackTCP)
        let port = try #require(listener.localAddress?.port)
        try await withFrontServer([listener]) { harness in
            let connection = try await RawClient.connect(port: port)
            let response = try await withRawConnection(connection) { reader, writer in
                try await writer.send(rawRequest("POST", "/echo", body: "adopted"))
                return await reader.readResponse()
            }
            #expect(response?.text == "adopted")
            #expect(await harness.nextReceivedRequest()?.origin == .loopbackTCP)
        }
    }
}

/// The error a bind fails with, or nil (closing the listener) when it succeeds.
private func bindFailure(_ bind: () async throws(HTTPFrontError) -> HTTPFrontListener) async -> HTTPFrontError? {
    do {
        let listener = try await bind()
        await listener.close()
        return nil
    } catch {
        return error
    }
}

/// Binds a Unix-socket listener owned by the test's own uid.
private func bindUnix(_ path: String) async throws(HTTPFrontError) -> HTTPFrontListener {
    try await HTTPFrontListener.bindUnixSocket(path: path, ownerUID: getuid())
}
