#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TenantGateway
import Testing

/// A raw HTTP/1.1 client over NIO: sends exactly the bytes a test writes and parses what comes back.
typealias RawConnection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

enum RawClient {
    static func connect(port: Int) async throws -> RawConnection {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try RawConnection(wrappingChannelSynchronously: channel) }
            }
    }

    static func connect(unixSocket path: String) async throws -> RawConnection {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path) { channel in
                channel.eventLoop.makeCompletedFuture { try RawConnection(wrappingChannelSynchronously: channel) }
            }
    }
}

/// A response as the raw client parsed it.
struct RawResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name == name.lowercased() }?.value
    }

    var json: JSON? { try? JSON.parse(body) }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Reads responses from a raw connection's inbound side.
struct RawResponseReader {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var buffer = ByteBuffer()
    private(set) var reachedEnd = false

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) {
        iterator = inbound.makeAsyncIterator()
    }

    /// Reads more bytes; false once the server closed (or reset) the connection.
    private mutating func fill() async -> Bool {
        guard !reachedEnd else { return false }
        do {
            if let more = try await iterator.next() {
                buffer.writeImmutableBuffer(more)
                return true
            }
        } catch {}
        reachedEnd = true
        return false
    }

    private mutating func readLine() async -> String? {
        while true {
            let view = buffer.readableBytesView
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - view.startIndex + 1
                var line = buffer.readBytes(length: length)!
                while let last = line.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
                    line.removeLast()
                }
                return String(decoding: line, as: UTF8.self)
            }
            guard await fill() else { return nil }
        }
    }

    private mutating func readBytes(_ count: Int) async -> [UInt8]? {
        while buffer.readableBytes < count {
            guard await fill() else { return nil }
        }
        return buffer.readBytes(length: count)
    }

    /// Reads a status line and headers; nil when the connection ends first.
    mutating func readHead() async -> (status: Int, headers: [(name: String, value: String)])? {
        guard let statusLine = await readLine() else { return nil }
        let fields = statusLine.split(separator: " ", maxSplits: 2)
        guard fields.count >= 2, let status = Int(fields[1]) else { return nil }
        var headers: [(name: String, value: String)] = []
        while let line = await readLine(), !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            headers.append((name, String(value)))
        }
        return (status, headers)
    }

    /// Reads one chunk of a chunked body; nil at the terminating chunk (or when the connection ends).
    mutating func readChunk() async -> [UInt8]? {
        guard let sizeLine = await readLine(),
              let sizeText = sizeLine.split(separator: ";").first,
              let size = Int(sizeText, radix: 16)
        else { return nil }
        if size == 0 {
            while let trailer = await readLine(), !trailer.isEmpty {}
            return nil
        }
        let chunk = await readBytes(size)
        _ = await readLine()
        return chunk
    }

    /// Reads one whole response (skipping `100 Continue` unless asked); nil when the connection ends first.
    mutating func readResponse(skippingInformational: Bool = true) async -> RawResponse? {
        while true {
            guard let head = await readHead() else { return nil }
            if skippingInformational, (100..<200).contains(head.status) { continue }
            var response = RawResponse(status: head.status, headers: head.headers, body: [])
            if let lengthText = response.header("content-length"), let length = Int(lengthText) {
                guard let body = await readBytes(length) else { return nil }
                response.body = body
            } else if response.header("transfer-encoding") == "chunked" {
                while let chunk = await readChunk() { response.body += chunk }
            } else if (100..<200).contains(head.status) || head.status == 204 || head.status == 304 {
                response.body = []
            } else {
                response.body = await readToEnd()
            }
            return response
        }
    }

    /// Reads everything until the server closes the connection.
    mutating func readToEnd() async -> [UInt8] {
        while await fill() {}
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// Whether the server closes the connection without sending anything more.
    mutating func closesWithoutData() async -> Bool {
        await readToEnd().isEmpty
    }
}

extension NIOAsyncChannelOutboundWriter<ByteBuffer> {
    func send(_ text: String) async throws {
        try await write(ByteBuffer(string: text))
    }
}

/// Runs a test conversation on a fresh raw connection and closes it afterwards.
func withRawConnection<Result: Sendable>(
    _ connection: RawConnection,
    _ body: (inout RawResponseReader, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Result
) async throws -> Result {
    try await connection.executeThenClose { inbound, outbound in
        var reader = RawResponseReader(inbound)
        return try await body(&reader, outbound)
    }
}

/// A counting semaphore the test opens to let a handler go on.
final class TestGate: Sendable {
    private struct State {
        var permits = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func open() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let proceed: Bool = state.withLock { state in
                if state.permits > 0 {
                    state.permits -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
    }
}

/// What the test handler saw, as it happened.
enum HandlerEvent: Sendable {
    case received(GatewayRequest)
    /// The handler saw cancellation; `writeFailed` tells whether a write attempted afterwards threw.
    case cancelled(requestID: String, writeFailed: Bool)
}

/// A tiny handler: `/echo` answers with the body, `/stream` streams three events with a gate between them,
/// `/slow` waits a long time (reporting cancellation), `/silent` writes nothing.
struct TestHandler: GatewayRequestHandler {
    let events: AsyncStream<HandlerEvent>.Continuation
    let gate: TestGate

    func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        events.yield(.received(request))
        var headers = HTTPHeaders()
        switch request.path {
        case "/echo":
            headers.add(name: "content-type", value: "application/octet-stream")
            try? await writer.writeWhole(status: .ok, headers: headers, body: request.body)
        case "/stream":
            headers.add(name: "content-type", value: "text/event-stream")
            do {
                try await writer.startStream(status: .ok, headers: headers)
                for index in 1...3 {
                    if index > 1 { await gate.wait() }
                    try await writer.writeChunk(Array("data: \(index)\n\n".utf8))
                }
                try await writer.finishStream()
            } catch {}
        case "/slow":
            do {
                try await Task.sleep(for: .seconds(60))
                try await writer.writeWhole(status: .ok, headers: headers, body: Array("late".utf8))
            } catch {
                var writeFailed = false
                do {
                    try await writer.writeWhole(status: .ok, headers: headers, body: Array("too late".utf8))
                } catch {
                    writeFailed = true
                }
                events.yield(.cancelled(requestID: request.id, writeFailed: writeFailed))
            }
        case "/silent":
            return
        default:
            try? await writer.writeWhole(status: .notFound, headers: headers, body: [])
        }
    }
}

/// A running server on fresh listeners, with the handler's events and gate, torn down by a drain.
struct FrontHarness {
    let server: HTTPFrontServer
    let gate: TestGate
    var handlerEvents: AsyncStream<HandlerEvent>.AsyncIterator

    /// The next request the handler received.
    mutating func nextReceivedRequest() async -> GatewayRequest? {
        while let event = await handlerEvents.next() {
            if case .received(let request) = event { return request }
        }
        return nil
    }

    /// The next cancellation the handler observed, and whether its later write failed.
    mutating func nextCancellation() async -> (requestID: String, writeFailed: Bool)? {
        while let event = await handlerEvents.next() {
            if case .cancelled(let requestID, let writeFailed) = event { return (requestID, writeFailed) }
        }
        return nil
    }
}

/// Serves the listeners with a `TestHandler` while `body` runs, then drains and waits for `run()` to return.
func withFrontServer(
    _ listeners: [HTTPFrontListener],
    _ body: (inout FrontHarness) async throws -> Void
) async throws {
    let (events, eventSink) = AsyncStream<HandlerEvent>.makeStream()
    let gate = TestGate()
    let server = HTTPFrontServer(listeners: listeners, handler: TestHandler(events: eventSink, gate: gate))
    var harness = FrontHarness(server: server, gate: gate, handlerEvents: events.makeAsyncIterator())
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await server.run() }
        do {
            try await body(&harness)
        } catch {
            await server.drain(deadline: .now)
            throw error
        }
        await server.drain(deadline: .now + .milliseconds(500))
        try await group.waitForAll()
    }
    eventSink.finish()
}

/// A fresh directory path under /tmp for a Unix socket (kept short: socket paths are limited to 107 bytes).
func makeTemporarySocketPath(directoryExists: Bool = false) -> (directory: String, socket: String) {
    let base = "/tmp/rgw-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    let directory = base + "/run"
    if directoryExists {
        mkdir(base, 0o700)
        mkdir(directory, 0o755)
        chmod(directory, 0o755)
    }
    return (directory, directory + "/front.sock")
}

/// Removes a temporary socket directory tree made by `makeTemporarySocketPath`.
func removeTemporarySocketTree(_ directory: String) {
    let base = String(directory.dropLast("/run".count))
    unlink(directory + "/front.sock")
    rmdir(directory)
    rmdir(base)
}

/// The permission bits of a path (not following a symlink at the path).
func permissionBits(_ path: String) -> mode_t? {
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    return status.st_mode & 0o777
}

/// A small HTTP/1.1 request as raw text.
func rawRequest(_ method: String, _ target: String, headers: [(String, String)] = [], body: String = "") -> String {
    var text = "\(method) \(target) HTTP/1.1\r\nhost: localhost\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" { text += "content-length: \(body.utf8.count)\r\n" }
    return text + "\r\n" + body
}

/// Leaves a socket file at the path with no listener behind it, as a crashed server would.
func makeStaleSocket(at path: String) throws {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    let address = try SocketAddress(unixDomainSocketPath: path)
    let result = address.withSockAddr { pointer, length in bind(descriptor, pointer, socklen_t(length)) }
    #expect(result == 0)
}
