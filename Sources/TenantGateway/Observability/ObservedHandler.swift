import Logging
import NIOHTTP1
import Synchronization

/// Wraps a tenant's request handler to observe every model call: the metrics, one "request finished" log line
/// (`REQUEST_ID`, `MODEL`, `UPSTREAM`, `STATUS`, `DURATION_MS` in the journal) and a request log record.
///
/// It also answers the request log's control routes (`GET /rosetta/v1/log`, `GET`/`POST /rosetta/v1/log/debug`)
/// and, when `servesMetrics` (user mode), `GET /metrics`, all on the Unix socket only.
package struct ObservedHandler<Inner: GatewayRequestHandler>: GatewayRequestHandler {
    /// The wrapped handler.
    package let inner: Inner
    /// The tenant's request log, when it has one.
    package let requestLog: RequestLog?
    /// Where the metrics go.
    package let metrics: GatewayMetrics
    /// Whether `GET /metrics` on the Unix socket is answered with the process's metrics (user mode).
    package let servesMetrics: Bool
    /// The secrets to mask in debug records (the tenant token, upstream keys), read when a record is made.
    package let secrets: @Sendable () -> [String]
    let logger: Logger

    /// Creates the wrapper.
    package init(
        inner: Inner, requestLog: RequestLog?, metrics: GatewayMetrics, servesMetrics: Bool,
        secrets: @escaping @Sendable () -> [String], logger: Logger
    ) {
        self.inner = inner
        self.requestLog = requestLog
        self.metrics = metrics
        self.servesMetrics = servesMetrics
        self.secrets = secrets
        self.logger = logger
    }

    /// Whether a request is a model call the metrics and the request log count: a `POST` outside the control routes.
    package static func isObserved(method: HTTPMethod, path: String) -> Bool {
        method == .POST && !path.hasPrefix("/rosetta/")
    }

    /// Handles one request: control routes of its own, else the inner handler, observed when it is a model call.
    package func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        if case .unixSocket = request.origin {
            if request.path == "/metrics", servesMetrics {
                await answerMetrics(request, writer: writer)
                return
            }
            if request.path == "/rosetta/v1/log" || request.path == "/rosetta/v1/log/debug" {
                await answerLogRoute(request, writer: writer)
                return
            }
        }
        guard Self.isObserved(method: request.method, path: request.path) else {
            await inner.handle(request, writer: writer)
            return
        }
        let startedAt = WallClock.nowMilliseconds()
        let start = ContinuousClock.now
        let debug = await requestLog?.debug ?? false
        let observation = RequestObservation()
        let observing = ObservingWriter(inner: writer, start: start, captureLimit: debug ? 64 * 1024 : 0)
        metrics.requestStarted()
        await RequestObservation.$current.withValue(observation) {
            await inner.handle(request, writer: observing)
        }
        let duration = ContinuousClock.now - start
        let seen = observing.finish()
        var notes = observation.snapshot
        if seen.clientWentAway, notes.errorClass == nil {
            notes.errorClass = "client_disconnected"
            notes.errorCode = "client_disconnected"
        }
        let dialect = request.clientDialect
        let outcome = RequestOutcome(
            dialect: dialect, provider: notes.provider ?? "none", model: notes.model ?? "other", status: seen.status,
            errorClass: notes.errorClass ?? (seen.status >= 400 ? "http_\(seen.status)" : nil), duration: duration,
            timeToFirstByte: seen.firstByte.map { $0 - start }, inputTokens: seen.inputTokens, outputTokens: seen.outputTokens)
        metrics.requestFinished(outcome)
        let milliseconds = Int(duration.nanoseconds / 1_000_000)
        var metadata: Logger.Metadata = [
            "request.id": "\(request.id)", "status": "\(seen.status)", "duration_ms": "\(milliseconds)", "dialect": "\(dialect.rawValue)",
        ]
        if let model = notes.model { metadata["model"] = "\(model)" }
        if let provider = notes.provider { metadata["upstream"] = "\(provider)" }
        if let errorClass = notes.errorClass { metadata["error.class"] = "\(errorClass)" }
        if let errorCode = notes.errorCode { metadata["error.code"] = "\(errorCode)" }
        if let input = seen.inputTokens { metadata["tokens.in"] = "\(input)" }
        if let output = seen.outputTokens { metadata["tokens.out"] = "\(output)" }
        logger.info("request finished", metadata: metadata)
        guard let requestLog else { return }
        var record = RequestLogRecord(
            startedAtMilliseconds: startedAt, requestID: request.id, method: request.method.rawValue, path: request.path,
            dialect: dialect, model: notes.model, upstream: notes.provider, status: seen.status, stream: seen.streamed,
            inputTokens: seen.inputTokens, outputTokens: seen.outputTokens, durationMilliseconds: milliseconds,
            errorClass: outcome.errorClass, errorCode: notes.errorCode)
        if debug {
            let redactor = Redactor(secrets: secrets())
            var captured: JSONObject = ["request_headers": redactor.headers(request.headers), "request_body": redactor.body(request.body)]
            if let query = request.query { captured["query"] = .string(redactor.query(query)) }
            captured["response_body"] = redactor.body(seen.captured)
            if seen.capturedTruncated { captured["response_truncated"] = true }
            record.debug = .object(captured)
        }
        await requestLog.append(record)
    }

    // MARK: Control routes

    private func answerMetrics(_ request: GatewayRequest, writer: some ResponseWriter) async {
        guard request.method == .GET || request.method == .HEAD else {
            await answer(writer, status: .methodNotAllowed, ["error": ["code": "method_not_allowed", "message": "GET /metrics only."]])
            return
        }
        await Self.writeMetrics(to: writer)
    }

    /// Writes the process's metrics in the Prometheus text format (503 before the metrics system is bootstrapped).
    package static func writeMetrics(to writer: some ResponseWriter) async {
        guard let exposition = RosettaMetricsSystem.exposition() else {
            try? await writer.writeWhole(
                status: .serviceUnavailable, headers: ["content-type": "text/plain; charset=utf-8"],
                body: Array("metrics are not enabled in this process\n".utf8))
            return
        }
        try? await writer.writeWhole(status: .ok, headers: ["content-type": RosettaMetricsSystem.contentType], body: exposition)
    }

    private func answerLogRoute(_ request: GatewayRequest, writer: some ResponseWriter) async {
        guard let requestLog else {
            await answer(writer, status: .notFound, ["error": ["code": "request_log_disabled", "message": "The request log is disabled in the configuration (request_log.enabled)."]])
            return
        }
        switch (request.method, request.path) {
        case (.GET, "/rosetta/v1/log"):
            let count = min(max(Self.queryInt("lines", in: request.query) ?? 20, 0), 10_000)
            let (lines, sequence) = if let after = Self.queryInt("after", in: request.query) {
                await requestLog.lines(after: after)
            } else {
                await requestLog.tail(count)
            }
            let entries: [JSON] = lines.map { line in (try? JSON.parse(line)) ?? .string(String(decoding: line, as: UTF8.self)) }
            await answer(writer, status: .ok, [
                "lines": .array(entries), "sequence": JSON(sequence), "debug": .bool(await requestLog.debug),
                "path": .string(requestLog.path),
            ])
        case (.GET, "/rosetta/v1/log/debug"):
            await answer(writer, status: .ok, ["debug": .bool(await requestLog.debug)])
        case (.POST, "/rosetta/v1/log/debug"):
            guard let body = try? JSON.parse(request.body), case .bool(let enabled)? = body["enabled"] else {
                await answer(writer, status: .badRequest, ["error": ["code": "invalid_request", "message": "The body must be {\"enabled\": true|false}."]])
                return
            }
            do {
                try await requestLog.setDebug(enabled)
                await answer(writer, status: .ok, ["debug": .bool(enabled)])
            } catch {
                await answer(writer, status: .internalServerError, ["error": ["code": "debug_switch_failed", "message": .string("Could not save the debug switch: \(error.message)")]])
            }
        default:
            await answer(writer, status: .methodNotAllowed, ["error": ["code": "method_not_allowed", "message": .string("\(request.method.rawValue) is not allowed on \(request.path).")]])
        }
    }

    private func answer(_ writer: some ResponseWriter, status: HTTPResponseStatus, _ body: JSON) async {
        try? await writer.writeWhole(status: status, headers: ["content-type": "application/json"], body: body.bytes)
    }

    static func queryInt(_ name: String, in query: String?) -> Int? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == name { return Int(parts[1]) }
        }
        return nil
    }
}

/// Passes a response through while noting its status, the time of its first byte, its usage and (debugging) its body.
final class ObservingWriter<Inner: ResponseWriter>: ResponseWriter {
    /// What was seen of the response.
    struct Seen: Sendable {
        var status = 0
        var streamed = false
        var firstByte: ContinuousClock.Instant?
        var clientWentAway = false
        var usage = UsageScanner()
        var captured: [UInt8] = []
        var capturedTruncated = false
        var inputTokens: Int? { usage.inputTokens }
        var outputTokens: Int? { usage.outputTokens }
    }

    let inner: Inner
    let captureLimit: Int
    private let seen = Mutex(Seen())

    init(inner: Inner, start: ContinuousClock.Instant, captureLimit: Int) {
        self.inner = inner
        self.captureLimit = captureLimit
    }

    /// What was seen, with the stream's trailing partial line scanned.
    func finish() -> Seen {
        seen.withLock { seen in
            seen.usage.finish()
            return seen
        }
    }

    private func capture(_ bytes: [UInt8], into seen: inout Seen) {
        guard captureLimit > 0, !seen.capturedTruncated else { return }
        let room = captureLimit - seen.captured.count
        if bytes.count > room {
            seen.captured += bytes.prefix(room)
            seen.capturedTruncated = true
        } else {
            seen.captured += bytes
        }
    }

    private func passing(_ write: () async throws -> Void) async throws {
        do {
            try await write()
        } catch {
            seen.withLock { $0.clientWentAway = true }
            throw error
        }
    }

    func writeWhole(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) async throws {
        seen.withLock { seen in
            seen.status = Int(status.code)
            seen.firstByte = .now
            if status.code < 300 { seen.usage.scanWhole(body) }
            capture(body, into: &seen)
        }
        try await passing { try await inner.writeWhole(status: status, headers: headers, body: body) }
    }

    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders) async throws {
        seen.withLock { seen in
            seen.status = Int(status.code)
            seen.streamed = true
        }
        try await passing { try await inner.startStream(status: status, headers: headers) }
    }

    func writeChunk(_ bytes: [UInt8]) async throws {
        seen.withLock { seen in
            if seen.firstByte == nil { seen.firstByte = .now }
            seen.usage.scanStreamChunk(bytes)
            capture(bytes, into: &seen)
        }
        try await passing { try await inner.writeChunk(bytes) }
    }

    func finishStream() async throws {
        try await passing { try await inner.finishStream() }
    }
}
