import Synchronization

/// What the gateway learns about one request while handling it (its route, its failure), for the request log
/// and the metrics; the observing wrapper binds one per request as a task-local and reads it when the request ends.
package final class RequestObservation: Sendable {
    /// The observation of the request the current task handles, when it is observed.
    @TaskLocal package static var current: RequestObservation?

    /// What has been noted so far.
    package struct Notes: Sendable, Equatable {
        /// The catalog alias of the model the request was routed to.
        package var model: String?
        /// The provider the request was sent to.
        package var provider: String?
        /// The failure's kind (`GatewayError.Kind` raw value), when the request failed.
        package var errorClass: String?
        /// The failure's stable code, when the request failed.
        package var errorCode: String?
    }

    private let notes = Mutex(Notes())

    /// Creates an empty observation.
    package init() {}

    /// Notes the route a model call took.
    package func noteRoute(model: String, provider: String) {
        notes.withLock { $0.model = model; $0.provider = provider }
    }

    /// Notes a failure (answered as an error, or breaking a stream off); the first one noted is kept.
    package func noteFailure(_ error: GatewayError) {
        notes.withLock { notes in
            guard notes.errorClass == nil else { return }
            notes.errorClass = error.kind.rawValue
            notes.errorCode = error.code
        }
    }

    /// Notes a failure by class and code when no `GatewayError` is at hand (a client that went away).
    package func noteFailure(class errorClass: String, code: String) {
        notes.withLock { notes in
            guard notes.errorClass == nil else { return }
            notes.errorClass = errorClass
            notes.errorCode = code
        }
    }

    /// A copy of what has been noted.
    package var snapshot: Notes { notes.withLock { $0 } }
}

/// Finds the token counts in the responses a client receives, in any dialect: whole bodies and streamed events.
///
/// OpenAI Chat (`usage.prompt_tokens`/`completion_tokens`), Anthropic and Responses (`usage.input_tokens`/
/// `output_tokens`, also under `message` and `response` in stream events) and Google (`usageMetadata.promptTokenCount`/
/// `candidatesTokenCount`). In a stream the last count seen wins (Anthropic's `message_delta` carries the final one).
package struct UsageScanner: Sendable {
    /// Input (prompt) tokens, when a usage was seen.
    package private(set) var inputTokens: Int?
    /// Output (completion) tokens, when a usage was seen.
    package private(set) var outputTokens: Int?
    private var pendingLine: [UInt8] = []
    /// A stream line longer than this is not scanned (usage events are small).
    private static let maxLineBytes = 1 << 20

    /// Creates a scanner that has seen nothing.
    package init() {}

    /// Scans a whole JSON response body.
    package mutating func scanWhole(_ body: [UInt8]) {
        guard Self.mentionsUsage(body[...]), let json = try? JSON.parse(body) else { return }
        take(json)
    }

    /// Scans one chunk of a stream (server-sent events, or a JSON array of objects one per line).
    package mutating func scanStreamChunk(_ bytes: [UInt8]) {
        var start = bytes.startIndex
        while let newline = bytes[start...].firstIndex(of: 0x0A) {
            if pendingLine.isEmpty {
                scanLine(bytes[start..<newline])
            } else {
                pendingLine += bytes[start..<newline]
                let line = pendingLine
                pendingLine.removeAll(keepingCapacity: true)
                scanLine(line[...])
            }
            start = newline + 1
        }
        if start < bytes.endIndex {
            if pendingLine.count + (bytes.endIndex - start) > Self.maxLineBytes {
                pendingLine.removeAll()
            } else {
                pendingLine += bytes[start...]
            }
        }
    }

    /// Scans what remains after the stream's last chunk.
    package mutating func finish() {
        guard !pendingLine.isEmpty else { return }
        let line = pendingLine
        pendingLine.removeAll()
        scanLine(line[...])
    }

    private mutating func scanLine(_ line: ArraySlice<UInt8>) {
        guard Self.mentionsUsage(line) else { return }
        var payload = line
        if payload.starts(with: Array("data:".utf8)) { payload = payload.dropFirst(5) }
        // A JSON-array stream frames each object as `[{…}`, `,{…}` or `{…}]`.
        while let first = payload.first, first == 0x20 || first == 0x5B || first == 0x2C || first == 0x09 { payload = payload.dropFirst() }
        while let last = payload.last, last == 0x20 || last == 0x5D || last == 0x2C || last == 0x0D || last == 0x09 { payload = payload.dropLast() }
        guard payload.first == 0x7B, let json = try? JSON.parse(payload) else { return }
        take(json)
    }

    private mutating func take(_ json: JSON) {
        for usage in [json["usage"], json["message"]?["usage"], json["response"]?["usage"], json["usageMetadata"]] {
            guard let usage, case .object = usage else { continue }
            if let input = usage["input_tokens"]?.intValue ?? usage["prompt_tokens"]?.intValue ?? usage["promptTokenCount"]?.intValue {
                inputTokens = input
            }
            if let output = usage["output_tokens"]?.intValue ?? usage["completion_tokens"]?.intValue ?? usage["candidatesTokenCount"]?.intValue {
                outputTokens = output
            }
        }
    }

    /// Whether the bytes contain `usage` (which `usageMetadata` also contains): only such lines are parsed.
    static func mentionsUsage(_ bytes: ArraySlice<UInt8>) -> Bool {
        let needle: [UInt8] = Array("sage".utf8)
        var index = bytes.startIndex
        while let found = bytes[index...].firstIndex(of: 0x75) {  // "u"
            let rest = bytes[(found + 1)...]
            if rest.starts(with: needle) { return true }
            index = found + 1
        }
        return false
    }
}
