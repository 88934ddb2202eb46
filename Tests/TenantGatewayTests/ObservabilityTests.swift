import Glibc
import Logging
import Prometheus
import Testing
@testable import TenantGateway

@Suite("Observability: usage, request log, redaction, metrics, config")
struct ObservabilityTests {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    func temporaryDirectory() throws -> String {
        var template = Array("/tmp/rosetta-observe-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(path != nil)
        return String(cString: path!)
    }

    func record(_ id: String, status: Int = 200) -> RequestLogRecord {
        RequestLogRecord(
            startedAtMilliseconds: 1_700_000_000_123, requestID: id, method: "POST", path: "/v1/chat/completions",
            dialect: .openAIChat, model: "gpt", upstream: "openai", status: status, stream: false, inputTokens: 3,
            outputTokens: 5, durationMilliseconds: 42, errorClass: status >= 400 ? "invalid_request" : nil, errorCode: nil)
    }

    // MARK: Usage

    @Test func usageFromWholeBodiesInEveryDialect() {
        var chat = UsageScanner()
        chat.scanWhole(Array(#"{"id":"x","usage":{"prompt_tokens":11,"completion_tokens":7}}"#.utf8))
        #expect(chat.inputTokens == 11 && chat.outputTokens == 7)
        var anthropic = UsageScanner()
        anthropic.scanWhole(Array(#"{"type":"message","usage":{"input_tokens":4,"output_tokens":9}}"#.utf8))
        #expect(anthropic.inputTokens == 4 && anthropic.outputTokens == 9)
        var google = UsageScanner()
        google.scanWhole(Array(#"{"candidates":[],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3}}"#.utf8))
        #expect(google.inputTokens == 2 && google.outputTokens == 3)
        var none = UsageScanner()
        none.scanWhole(Array(#"{"id":"x"}"#.utf8))
        #expect(none.inputTokens == nil && none.outputTokens == nil)
    }

    @Test func usageFromAnthropicStreamSplitAcrossChunks() {
        var scanner = UsageScanner()
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
            + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n"
            + "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n"
        let bytes = Array(stream.utf8)
        // Cut in awkward places: every 7 bytes.
        var index = 0
        while index < bytes.count {
            scanner.scanStreamChunk(Array(bytes[index..<min(index + 7, bytes.count)]))
            index += 7
        }
        scanner.finish()
        #expect(scanner.inputTokens == 25)
        #expect(scanner.outputTokens == 15)
    }

    @Test func usageFromResponsesAndGoogleArrayStreams() {
        var responses = UsageScanner()
        responses.scanStreamChunk(Array("data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":8,\"output_tokens\":2}}}\n\n".utf8))
        #expect(responses.inputTokens == 8 && responses.outputTokens == 2)
        var google = UsageScanner()
        google.scanStreamChunk(Array("[{\"candidates\":[]}\n,{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":6,\"candidatesTokenCount\":1}}\n]".utf8))
        google.finish()
        #expect(google.inputTokens == 6 && google.outputTokens == 1)
    }

    // MARK: Records

    @Test func recordLineHasTheDocumentedFields() throws {
        let json = try JSON.parse(record("abc").line.dropLast())
        #expect(json["time"] == .string("2023-11-14T22:13:20.123Z"))
        #expect(json["request_id"] == .string("abc"))
        #expect(json["dialect"] == .string("openai_chat"))
        #expect(json["model"] == .string("gpt"))
        #expect(json["upstream"] == .string("openai"))
        #expect(json["status"]?.intValue == 200)
        #expect(json["tokens_in"]?.intValue == 3 && json["tokens_out"]?.intValue == 5)
        #expect(json["duration_ms"]?.intValue == 42)
        #expect(json["error_class"] == .null)
        #expect(json["debug"] == nil)
        #expect(record("abc").line.last == 0x0A)
    }

    // MARK: The log file

    @Test func requestLogIsPrivateRotatesBySizeAndKeepsN() async throws {
        let directory = try temporaryDirectory()
        let lineLength = record("r0000").line.count
        let log = RequestLog(directory: directory, settings: RequestLogSettings(maxBytes: lineLength * 3, keep: 2), logger: Self.quiet)
        for number in 0..<10 { await log.append(record("r\(String(1000 + number))")) }
        var status = stat()
        #expect(lstat(directory + "/requests.log", &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(status.st_size <= lineLength * 3)
        #expect(access(directory + "/requests.log.1", F_OK) == 0)
        #expect(access(directory + "/requests.log.2", F_OK) == 0)
        #expect(access(directory + "/requests.log.3", F_OK) != 0)
        // 10 records, 3 per file: .2 holds 1003–1005, .1 1006–1008, the current file 1009.
        let (lines, sequence) = await log.tail(4)
        #expect(sequence == 10)
        let ids = lines.compactMap { try? JSON.parse($0)["request_id"]?.stringValue }
        #expect(ids == ["r1006", "r1007", "r1008", "r1009"])
        let (followed, _) = await log.lines(after: 8)
        #expect(followed.count == 2)
    }

    @Test func requestLogRefusesASymlinkAndDropsRecordsWithoutFailing() async throws {
        let directory = try temporaryDirectory()
        let target = directory + "/elsewhere"
        #expect(symlink(target, directory + "/requests.log") == 0)
        let log = RequestLog(directory: directory, settings: RequestLogSettings(), logger: Self.quiet)
        await log.append(record("x"))
        #expect(access(target, F_OK) != 0)
        // The in-memory tail for --follow still has it.
        #expect(await log.lines(after: 0).lines.count == 1)
    }

    @Test func debugSwitchIsPersisted() async throws {
        let directory = try temporaryDirectory()
        let log = RequestLog(directory: directory, settings: RequestLogSettings(), logger: Self.quiet)
        #expect(await log.debug == false)
        try await log.setDebug(true)
        let again = RequestLog(directory: directory, settings: RequestLogSettings(), logger: Self.quiet)
        #expect(await again.debug == true)
        var status = stat()
        #expect(lstat(directory + "/request-log.json", &status) == 0 && status.st_mode & 0o777 == 0o600)
    }

    @Test func tailReadsAcrossBlockBoundaries() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/big"
        let descriptor = open(path, O_WRONLY | O_CREAT, 0o600)
        var expected: [String] = []
        for number in 0..<3000 {
            let line = "line-\(number)-" + String(repeating: "x", count: number % 50)
            expected.append(line)
            _ = Array((line + "\n").utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        }
        close(descriptor)
        let lines = RequestLog.lastLines(of: path, count: 2500).map { String(decoding: $0, as: UTF8.self) }
        #expect(lines == Array(expected.suffix(2500)))
    }

    // MARK: Redaction

    @Test func redactionMasksHeadersQueryKeysBearerAndTheTenantToken() throws {
        let token = "rst-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        let redactor = Redactor(secrets: [token])
        let headers = redactor.headers([
            "Authorization": "Bearer \(token)", "x-api-key": "sk-abc", "x-goog-api-key": "AIzaSomething",
            "content-type": "application/json", "x-note": "see \(token)",
        ])
        #expect(headers["authorization"] == .string(Redactor.mask))
        #expect(headers["x-api-key"] == .string(Redactor.mask))
        #expect(headers["x-goog-api-key"] == .string(Redactor.mask))
        #expect(headers["content-type"] == .string("application/json"))
        #expect(headers["x-note"] == .string("see \(Redactor.mask)"))
        #expect(redactor.query("alt=sse&key=AIzaSecret&api_key=x") == "alt=sse&key=\(Redactor.mask)&api_key=\(Redactor.mask)")
        let body = redactor.body(Array("""
            {"model":"m","api_key":"sk-live-123","messages":[{"role":"user","content":"my key is sk-ant-api03-abcdefghijklmnopqrstuvwxyz and Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig and \(token)"}]}
            """.utf8))
        let text = String(decoding: body.bytes, as: UTF8.self)
        #expect(!text.contains("sk-live-123"))
        #expect(!text.contains("sk-ant-api03"))
        #expect(!text.contains("eyJhbGci"))
        #expect(!text.contains(token))
        #expect(text.contains("my key is"))
        #expect(body["model"] == .string("m"))
    }

    // MARK: Metrics

    @Test func metricsAreRecordedWithBoundedLabels() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: RosettaMetricsSystem.factory(registry: registry), tenant: "alice")
        metrics.requestStarted()
        metrics.requestFinished(RequestOutcome(
            dialect: .anthropicMessages, provider: "anthropic", model: "claude", status: 200, errorClass: nil,
            duration: .milliseconds(120), timeToFirstByte: .milliseconds(30), inputTokens: 10, outputTokens: 4))
        metrics.requestStarted()
        metrics.requestFinished(RequestOutcome(
            dialect: .openAIChat, provider: "none", model: "other", status: 404, errorClass: "not_found",
            duration: .milliseconds(2), timeToFirstByte: nil, inputTokens: nil, outputTokens: nil))
        let text = registry.emitToString()
        #expect(text.contains(#"rosetta_requests_total{dialect="anthropic",provider="anthropic",model="claude",status_class="2xx",tenant="alice"} 1"#))
        #expect(text.contains(#"rosetta_request_errors_total{dialect="openai_chat",provider="none",model="other",class="not_found",tenant="alice"} 1"#))
        #expect(text.contains(#"rosetta_requests_in_flight{tenant="alice"} 0"#))
        #expect(text.contains(#"rosetta_tokens_total{provider="anthropic",model="claude",direction="out",tenant="alice"} 4"#))
        #expect(text.contains(#"rosetta_time_to_first_byte_seconds_count{provider="anthropic",model="claude",tenant="alice"} 1"#))
        #expect(text.contains(#"rosetta_request_duration_seconds_bucket{provider="anthropic",model="claude",tenant="alice",le="0.25"} 1"#))
        #expect(RequestOutcome(dialect: .openAIChat, provider: "p", model: "m", status: 503, errorClass: nil, duration: .zero, timeToFirstByte: nil, inputTokens: nil, outputTokens: nil).statusClass == "5xx")
    }

    @Test func tunnelStateGaugeMovesBetweenStates() {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(factory: RosettaMetricsSystem.factory(registry: registry))
        metrics.tunnelStateChanged(from: nil, to: "idle")
        metrics.tunnelStateChanged(from: "idle", to: "connecting")
        metrics.tunnelStateChanged(from: "connecting", to: "connecting")
        metrics.tunnelStateChanged(from: "connecting", to: "up")
        let text = registry.emitToString()
        #expect(text.contains(#"rosetta_tunnels{state="idle"} 0"#))
        #expect(text.contains(#"rosetta_tunnels{state="connecting"} 0"#))
        #expect(text.contains(#"rosetta_tunnels{state="up"} 1"#))
    }

    // MARK: Config

    @Test func observabilityConfigParses() throws {
        let config = try GatewayConfig.parse(yaml: """
            request_log:
              max_bytes: 5MB
              keep: 2
            metrics:
              per_tenant_labels: true
              listen: 127.0.0.1:9464
            """, file: "t.yaml", environment: [:])
        #expect(config.observability.requestLog.maxBytes == 5 << 20)
        #expect(config.observability.requestLog.keep == 2)
        #expect(config.observability.metrics.perTenantLabels)
        #expect(config.observability.metrics.listen?.port == 9464)
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "metrics:\n  listen: 0.0.0.0:9464\n", file: "t", environment: [:]) }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "request_log:\n  max_bytes: 12\n", file: "t", environment: [:]) }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: "request_log:\n  rotate: 1\n", file: "t", environment: [:]) }
        #expect(ObservabilityConfig.parseByteSize("10MB") == 10 << 20)
        #expect(ObservabilityConfig.parseByteSize("512kb") == 512 << 10)
        #expect(ObservabilityConfig.parseByteSize("4096") == 4096)
        #expect(ObservabilityConfig.parseByteSize("lots") == nil)
    }

    @Test func tableRendersRecords() throws {
        let rows = RequestLogTable.render([record("abc").json, record("def", status: 400).json])
        let lines = rows.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("TIME"))
        #expect(lines[1].contains("2023-11-14 22:13:20") && lines[1].contains("gpt") && lines[1].contains("42"))
        #expect(lines[2].contains("400") && lines[2].contains("invalid_request"))
    }
}
