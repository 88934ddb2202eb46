import Logging
import NIOCore
import NIOPosix
import Synchronization
import TenantGateway
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The libcurl upstream client against real HTTP servers on loopback and on a Unix socket.
@Suite("UpstreamClient")
struct UpstreamClientTests {
    let client = UpstreamHTTPClient(logger: Logger(label: "upstream-client-tests"))

    private func url(_ server: UpstreamTestServer, _ path: String) -> String {
        "http://127.0.0.1:\(server.port!)\(path)"
    }

    @Test("a whole response arrives with status, headers and body; the request arrives as sent")
    func wholeResponse() async throws {
        defer { client.shutdown() }
        let requestBody = Array(#"{"model":"m","messages":[]}"#.utf8)
        try await UpstreamTestServer.with(respond: { request, writer in
            let reply = Array("echo:".utf8) + request.body
            try await writer.head(103, [("link", "</hint>; rel=preload")])
            try await writer.head(201, [
                ("content-type", "application/json"), ("x-reply", "yes"), ("content-length", "\(reply.count)"),
            ])
            try await writer.body(reply)
            try await writer.end()
        }) { server in
            let response = try await client.execute(UpstreamRequest(
                url: url(server, "/v1/messages?beta=true"),
                method: "POST",
                headers: [
                    ("content-type", "application/json"), ("x-api-key", "secret-key"),
                    ("anthropic-version", "2023-06-01"), ("x-empty", ""),
                ],
                body: requestBody
            ))
            #expect(response.status == 201)
            #expect(response.headerValue(named: "X-Reply") == "yes")
            #expect(response.headerValue(named: "content-type") == "application/json")
            #expect(response.headerValue(named: "link") == nil, "the interim 103 head must be skipped")
            #expect(try await response.collectBody(upTo: 1 << 20) == Array("echo:".utf8) + requestBody)

            let received = try #require(server.requests.first)
            #expect(received.method == "POST")
            #expect(received.uri == "/v1/messages?beta=true")
            #expect(received.body == requestBody)
            #expect(received.headerValues("content-type") == ["application/json"])
            #expect(received.headerValues("x-api-key") == ["secret-key"])
            #expect(received.headerValues("anthropic-version") == ["2023-06-01"])
            #expect(received.headerValues("x-empty") == [""])
            #expect(received.headerValues("content-length") == ["\(requestBody.count)"])
            #expect(received.headerValues("expect").isEmpty)
            #expect(received.headerValues("accept-encoding").isEmpty)
            #expect(received.headerValues("host") == ["127.0.0.1:\(server.port!)"])
        }
    }

    @Test("a GET without body sends no content type and no content length")
    func getWithoutBody() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200, [("content-length", "2")])
            try await writer.body("ok")
            try await writer.end()
        }) { server in
            let response = try await client.execute(UpstreamRequest(url: url(server, "/v1/models")))
            #expect(response.status == 200)
            #expect(try await response.collectBody(upTo: 16) == Array("ok".utf8))
            let received = try #require(server.requests.first)
            #expect(received.method == "GET")
            #expect(received.headerValues("content-type").isEmpty)
            #expect(received.headerValues("content-length").isEmpty)
        }
    }

    @Test("a large request body arrives intact without Expect: 100-continue")
    func largeRequestBody() async throws {
        defer { client.shutdown() }
        let requestBody = (0..<48).flatMap { [UInt8](repeating: UInt8($0), count: 64 << 10) }
        try await UpstreamTestServer.with(respond: { request, writer in
            let reply = Array("\(request.body.count)".utf8)
            try await writer.head(200, [("content-length", "\(reply.count)")])
            try await writer.body(reply)
            try await writer.end()
        }) { server in
            let response = try await client.execute(UpstreamRequest(
                url: url(server, "/upload"), method: "POST", headers: [("content-type", "application/json")], body: requestBody
            ))
            #expect(try await response.collectBody(upTo: 64) == Array("\(requestBody.count)".utf8))
            let received = try #require(server.requests.first)
            #expect(received.body == requestBody)
            #expect(received.headerValues("expect").isEmpty)
        }
    }

    @Test("https to a server that speaks plain HTTP fails with tls")
    func tlsFailure() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200, [("content-length", "0")])
            try await writer.end()
        }) { server in
            let error = await #expect(throws: UpstreamError.self) {
                _ = try await client.execute(UpstreamRequest(url: "https://127.0.0.1:\(server.port!)/v1/models"))
            }
            #expect(error?.code == .tls)
            #expect(error?.message.contains("127.0.0.1:\(server.port!)") == true)
        }
    }

    @Test("a streamed body's chunks reach the client before the server finishes")
    func streamedChunksArriveAsWritten() async throws {
        defer { client.shutdown() }
        let chunks = ["data: one\n\n", "data: two\n\n", "data: three\n\n"]
        let gates = chunks.map { _ in TestSignal() }
        let gateTimedOut = Mutex(false)
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200, [("content-type", "text/event-stream")])
            for (chunk, gate) in zip(chunks, gates) {
                try await writer.body(chunk)
                if await !gate.wait(timeout: .seconds(5)) { gateTimedOut.withLock { $0 = true } }
            }
            try await writer.end()
        }) { server in
            let response = try await client.execute(UpstreamRequest(url: url(server, "/stream"), method: "POST", body: [1]))
            #expect(response.headerValue(named: "transfer-encoding") == "chunked")
            var iterator = response.body.makeAsyncIterator()
            var received: [UInt8] = []
            for index in chunks.indices {
                let expected = chunks[...index].flatMap { Array($0.utf8) }
                while received.count < expected.count, let next = try await iterator.next() {
                    received += next
                }
                #expect(received == expected, "chunk \(index) arrived before the server wrote the next one")
                gates[index].fire()
            }
            #expect(try await iterator.next() == nil)
            #expect(!gateTimedOut.withLock { $0 }, "the server had to time out waiting for the client to see a chunk")
        }
    }

    @Test("fifty concurrent requests all complete with their own responses")
    func manyConcurrentRequests() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { request, writer in
            let reply = Array("reply-to:".utf8) + request.body
            try await writer.head(200, [("content-length", "\(reply.count)")])
            try await writer.body(reply)
            try await writer.end()
        }) { server in
            let replies = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let response = try await client.execute(UpstreamRequest(
                            url: url(server, "/echo"), method: "POST", body: Array("request-\(index)".utf8)
                        ))
                        return (index, try await response.collectBody(upTo: 1024))
                    }
                }
                var replies: [Int: [UInt8]] = [:]
                for try await (index, body) in group { replies[index] = body }
                return replies
            }
            #expect(replies.count == 50)
            for index in 0..<50 {
                #expect(replies[index] == Array("reply-to:request-\(index)".utf8))
            }
            #expect(server.requests.count == 50)
        }
    }

    @Test("sequential requests reuse one connection")
    func connectionReuse() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200)
            try await writer.body("chunked reply")
            try await writer.end()
        }) { server in
            for _ in 0..<3 {
                let response = try await client.execute(UpstreamRequest(url: url(server, "/again"), method: "POST", body: [0x7B, 0x7D]))
                #expect(try await response.collectBody(upTo: 64) == Array("chunked reply".utf8))
            }
            #expect(server.acceptedConnections == 1)
            #expect(server.requests.map(\.connectionNumber) == [0, 0, 0])
        }
    }

    @Test("cancelling the reading task closes the upstream connection at once")
    func cancellationClosesConnection() async throws {
        defer { client.shutdown() }
        let firstChunkRead = TestSignal()
        let closeSeen = TestSignal()
        let closedAt = Mutex<ContinuousClock.Instant?>(nil)
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200, [("content-type", "text/event-stream")])
            try await writer.body("data: first\n\n")
            if await writer.waitForClose(timeout: .seconds(5)) {
                closedAt.withLock { $0 = .now }
                closeSeen.fire()
            }
        }) { server in
            try await withThrowingTaskGroup(of: UpstreamError.Code?.self) { group in
                group.addTask {
                    let response = try await client.execute(UpstreamRequest(url: url(server, "/stream"), method: "POST", body: [1]))
                    var iterator = response.body.makeAsyncIterator()
                    _ = try await iterator.next()
                    firstChunkRead.fire()
                    do throws(UpstreamError) {
                        _ = try await iterator.next()
                        return nil
                    } catch {
                        return error.code
                    }
                }
                #expect(await firstChunkRead.wait(timeout: .seconds(5)))
                let cancelledAt = ContinuousClock.now
                group.cancelAll()
                let code = try await group.next()
                #expect(code == .cancelled)
                #expect(await closeSeen.wait(timeout: .seconds(2)), "the server never saw the connection close")
                // The server would wait 5 s for a close; seeing it within 2 s means the cancel aborted the transfer.
                if let closedAt = closedAt.withLock({ $0 }) {
                    #expect(closedAt - cancelledAt < .seconds(2))
                }
            }
            #expect(await waitUntil { client.activeTransferCount == 0 })
        }
    }

    @Test("leaving the body loop early closes the upstream connection at once")
    func breakingOutClosesConnection() async throws {
        defer { client.shutdown() }
        let closeSeen = TestSignal()
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200)
            try await writer.body("data: first\n\n")
            if await writer.waitForClose(timeout: .seconds(5)) { closeSeen.fire() }
        }) { server in
            let response = try await client.execute(UpstreamRequest(url: url(server, "/stream"), method: "POST", body: [1]))
            var chunks = 0
            for try await _ in response.body {
                chunks += 1
                break
            }
            #expect(chunks == 1)
            #expect(await closeSeen.wait(timeout: .seconds(2)), "the server never saw the connection close")
            #expect(await waitUntil { client.activeTransferCount == 0 })
        }
    }

    @Test("dropping an unread response closes the upstream connection")
    func droppingTheResponseClosesConnection() async throws {
        defer { client.shutdown() }
        let closeSeen = TestSignal()
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200)
            try await writer.body("never read")
            if await writer.waitForClose(timeout: .seconds(5)) { closeSeen.fire() }
        }) { server in
            _ = try await client.execute(UpstreamRequest(url: url(server, "/stream"), method: "POST", body: [1])).status
            #expect(await closeSeen.wait(timeout: .seconds(2)), "the server never saw the connection close")
            #expect(await waitUntil { client.activeTransferCount == 0 })
        }
    }

    @Test("a closed port fails promptly with connectFailed naming host and port, without secrets")
    func connectFailure() async throws {
        defer { client.shutdown() }
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        try await listener.close()

        let started = ContinuousClock.now
        let error = await #expect(throws: UpstreamError.self) {
            _ = try await client.execute(UpstreamRequest(
                url: "http://127.0.0.1:\(port)/v1/chat/completions?key=query-secret",
                method: "POST",
                headers: [("authorization", "Bearer sk-header-secret")],
                body: Array("body-secret".utf8)
            ))
        }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(error?.code == .connectFailed)
        #expect(error?.curlCode == 7)
        let message = error?.message ?? ""
        #expect(message.contains("127.0.0.1:\(port)"))
        for secret in ["sk-header-secret", "query-secret", "body-secret", "chat/completions"] {
            #expect(!message.contains(secret))
        }
        #expect(client.activeTransferCount == 0)
    }

    @Test("the idle timeout fires when the server stalls mid-body")
    func idleTimeoutMidBody() async throws {
        defer { client.shutdown() }
        let closeSeen = TestSignal()
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200)
            try await writer.body("data: first\n\n")
            if await writer.waitForClose(timeout: .seconds(5)) { closeSeen.fire() }
        }) { server in
            let response = try await client.execute(UpstreamRequest(
                url: url(server, "/stall"), method: "POST", body: [1], idleTimeout: .seconds(1)
            ))
            var iterator = response.body.makeAsyncIterator()
            #expect(try await iterator.next() == Array("data: first\n\n".utf8))
            let waitingSince = ContinuousClock.now
            let error = await #expect(throws: UpstreamError.self) { _ = try await iterator.next() }
            let waited = ContinuousClock.now - waitingSince
            #expect(error?.code == .timedOut)
            #expect(error?.message.contains("idle timeout") == true)
            #expect(waited >= .milliseconds(900) && waited < .seconds(4))
            #expect(await closeSeen.wait(timeout: .seconds(2)))
        }
    }

    @Test("the idle timeout fires when the server never answers")
    func idleTimeoutBeforeHead() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { _, writer in
            _ = await writer.waitForClose(timeout: .seconds(5))
        }) { server in
            let started = ContinuousClock.now
            let error = await #expect(throws: UpstreamError.self) {
                _ = try await client.execute(UpstreamRequest(
                    url: url(server, "/silent"), method: "POST", body: [1], idleTimeout: .seconds(1)
                ))
            }
            #expect(error?.code == .timedOut)
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test("the total timeout caps a response that keeps trickling")
    func totalTimeout() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200)
            for _ in 0..<100 {
                try await writer.body("tick\n")
                if await writer.waitForClose(timeout: .milliseconds(50)) { return }
            }
        }) { server in
            let response = try await client.execute(UpstreamRequest(
                url: url(server, "/trickle"), method: "POST", body: [1],
                idleTimeout: .seconds(5), totalTimeout: .milliseconds(400)
            ))
            let error = await #expect(throws: UpstreamError.self) { _ = try await response.collectBody(upTo: 1 << 20) }
            #expect(error?.code == .timedOut)
            #expect(error?.curlCode == 28)
        }
    }

    @Test("a request goes over a Unix socket while the URL names the host")
    func unixSocket() async throws {
        defer { client.shutdown() }
        let path = "/tmp/rosetta-upstream-test-\(UInt32.random(in: .min ... .max)).sock"
        defer { unlink(path) }
        try await UpstreamTestServer.with(unixSocketPath: path, respond: { request, writer in
            try await writer.head(200, [("content-length", "\(request.body.count)")])
            try await writer.body(request.body)
            try await writer.end()
        }) { server in
            for _ in 0..<2 {
                let response = try await client.execute(UpstreamRequest(
                    url: "http://localhost/v1/messages", method: "POST", body: Array("over unix".utf8),
                    idleTimeout: .seconds(2), unixSocketPath: path
                ))
                #expect(response.status == 200)
                #expect(try await response.collectBody(upTo: 64) == Array("over unix".utf8))
            }
            #expect(server.requests.map { $0.headerValues("host") } == [["localhost"], ["localhost"]])
            #expect(server.acceptedConnections == 1)
        }
    }

    @Test("a slow reader pauses receiving and still gets every byte in order")
    func backPressure() async throws {
        defer { client.shutdown() }
        // 4 MiB, well past the 1 MiB buffer; each 64 KiB chunk holds its own index, so a lost,
        // repeated or reordered chunk shows.
        let chunks = (0..<64).map { [UInt8](repeating: UInt8($0), count: 64 << 10) }
        let expected = chunks.flatMap { $0 }
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200, [("content-length", "\(expected.count)")])
            for chunk in chunks { try await writer.body(chunk) }
            try await writer.end()
        }) { server in
            let response = try await client.execute(UpstreamRequest(url: url(server, "/big"), method: "POST", body: [1]))
            #expect(await waitUntil { client.pausedTransferCount == 1 }, "receiving never paused")
            let body = try await response.collectBody(upTo: expected.count)
            #expect(body.count == expected.count)
            #expect(body == expected, "the body arrived corrupted or out of order")
            #expect(await waitUntil { client.pausedTransferCount == 0 && client.activeTransferCount == 0 })
        }
    }

    @Test("collecting a body beyond its cap fails with tooLarge")
    func collectCap() async throws {
        defer { client.shutdown() }
        try await UpstreamTestServer.with(respond: { _, writer in
            try await writer.head(200)
            try await writer.body([UInt8](repeating: 0x61, count: 1000))
            try await writer.end()
        }) { server in
            let response = try await client.execute(UpstreamRequest(url: url(server, "/big"), method: "POST", body: [1]))
            let error = await #expect(throws: UpstreamError.self) { _ = try await response.collectBody(upTo: 100) }
            #expect(error?.code == .tooLarge)
        }
    }

    @Test("shutdown fails a pending request and every later one")
    func shutdownFailsRequests() async throws {
        try await UpstreamTestServer.with(respond: { _, writer in
            _ = await writer.waitForClose(timeout: .seconds(5))
        }) { server in
            try await withThrowingTaskGroup(of: UpstreamError.Code?.self) { group in
                group.addTask {
                    do throws(UpstreamError) {
                        _ = try await client.execute(UpstreamRequest(url: url(server, "/pending"), method: "POST", body: [1]))
                        return nil
                    } catch {
                        return error.code
                    }
                }
                #expect(await waitUntil { server.requests.count == 1 })
                client.shutdown()
                let code = try await group.next()
                #expect(code == .shutdown)
            }
            let error = await #expect(throws: UpstreamError.self) {
                _ = try await client.execute(UpstreamRequest(url: url(server, "/later")))
            }
            #expect(error?.code == .shutdown)
        }
    }

    @Test("bad requests fail before anything is sent, without echoing header values")
    func invalidRequests() async throws {
        defer { client.shutdown() }
        let badScheme = await #expect(throws: UpstreamError.self) {
            _ = try await client.execute(UpstreamRequest(url: "ftp://127.0.0.1/file"))
        }
        #expect(badScheme?.code == .invalidRequest)

        let injected = await #expect(throws: UpstreamError.self) {
            _ = try await client.execute(UpstreamRequest(
                url: "http://127.0.0.1:1/", headers: [("authorization", "Bearer sk-1\r\nx-evil: 1")]
            ))
        }
        #expect(injected?.code == .invalidRequest)
        #expect(injected?.message.contains("sk-1") == false)

        let badMethod = await #expect(throws: UpstreamError.self) {
            _ = try await client.execute(UpstreamRequest(url: "http://127.0.0.1:1/", method: "GET /x"))
        }
        #expect(badMethod?.code == .invalidRequest)
    }
}
