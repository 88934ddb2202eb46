import Testing

import TenantGateway

/// Parses JSON test text, failing the test on malformed fixtures.
func jsonFixture(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
    do {
        return try JSON.parse(text)
    } catch {
        Issue.record("fixture is not valid JSON: \(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// Parses bytes produced by the code under test.
func jsonFixture(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
    do {
        return try JSON.parse(bytes)
    } catch {
        Issue.record("output is not valid JSON: \(error): \(String(decoding: bytes, as: UTF8.self))", sourceLocation: sourceLocation)
        throw error
    }
}

extension JSON {
    /// The value with every object's keys sorted, so comparisons ignore member order.
    var keySortedForComparison: JSON {
        switch self {
        case .object(let object):
            return .object(JSONObject(object.members.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value.keySortedForComparison) }))
        case .array(let elements):
            return .array(elements.map(\.keySortedForComparison))
        default:
            return self
        }
    }
}

/// Expects two JSON values to be equal regardless of key order, printing both on failure.
func expectSameJSON(_ actual: JSON, _ expectedText: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try jsonFixture(expectedText, sourceLocation: sourceLocation)
    #expect(actual.keySortedForComparison == expected.keySortedForComparison, "\nactual:   \(actual.keySortedForComparison.text)\nexpected: \(expected.keySortedForComparison.text)", sourceLocation: sourceLocation)
}

/// Runs a throwing translation step and returns the `GatewayError` it throws, failing the test if it does not throw.
func expectGatewayError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(GatewayError) -> Void
) -> GatewayError? {
    do {
        try body()
        Issue.record("expected a GatewayError, but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Prepares a client body for the upstream and returns the upstream body as JSON.
func upstreamBody(
    _ clientBody: String, client: Dialect, upstream: Dialect, model: String = "upstream-model", defaultMaxTokens: Int = 4096,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> (body: JSON, call: UpstreamCall) {
    let call = try Translation.prepareRequest(
        try jsonFixture(clientBody, sourceLocation: sourceLocation), client: client, upstream: upstream, upstreamModel: model,
        defaultMaxTokens: defaultMaxTokens)
    return (try jsonFixture(call.body, sourceLocation: sourceLocation), call)
}

/// Expects `prepareRequest` to reject a client body, returning the error.
func rejection(
    _ clientBody: String, client: Dialect, upstream: Dialect, sourceLocation: SourceLocation = #_sourceLocation
) throws -> GatewayError? {
    let body = try jsonFixture(clientBody, sourceLocation: sourceLocation)
    return expectGatewayError(sourceLocation: sourceLocation) { () throws(GatewayError) in
        _ = try Translation.prepareRequest(body, client: client, upstream: upstream, upstreamModel: "m", defaultMaxTokens: 1000)
    }
}

/// Ways of cutting a byte stream into chunks: whole, byte by byte, and several uneven patterns.
enum ByteChunking: CaseIterable, CustomStringConvertible {
    case whole
    case byteByByte
    case threes
    case uneven
    case lineAligned

    var description: String {
        switch self {
        case .whole: "whole"
        case .byteByByte: "byte by byte"
        case .threes: "3-byte chunks"
        case .uneven: "uneven chunks"
        case .lineAligned: "line by line"
        }
    }

    /// Splits bytes according to the pattern.
    func split(_ bytes: [UInt8]) -> [[UInt8]] {
        switch self {
        case .whole:
            return [bytes]
        case .byteByByte:
            return bytes.map { [$0] }
        case .threes:
            return stride(from: 0, to: bytes.count, by: 3).map { Array(bytes[$0..<min($0 + 3, bytes.count)]) }
        case .uneven:
            let sizes = [1, 7, 2, 31, 5, 64, 13, 3, 128, 11]
            var chunks: [[UInt8]] = []
            var start = 0
            var turn = 0
            while start < bytes.count {
                let end = min(start + sizes[turn % sizes.count], bytes.count)
                chunks.append(Array(bytes[start..<end]))
                start = end
                turn += 1
            }
            return chunks
        case .lineAligned:
            var chunks: [[UInt8]] = []
            var current: [UInt8] = []
            for byte in bytes {
                current.append(byte)
                if byte == 0x0A {
                    chunks.append(current)
                    current = []
                }
            }
            if !current.isEmpty { chunks.append(current) }
            return chunks
        }
    }
}

/// The outcome of running a whole upstream stream through a translator.
struct TranslatedStream {
    /// Everything the client received, including bytes from `finish()`.
    var bytes: [UInt8]
    /// The error `finish()` threw, if any.
    var finishError: GatewayError?
    /// The translator's state at the end.
    var translator: StreamTranslator
    /// How many `feed` calls returned bytes (shows that events are not held back).
    var nonEmptyFeeds: Int

    /// The client events, parsed back.
    var events: [SSEEvent] {
        var parser = SSEParser()
        return parser.feed(bytes) + parser.finish()
    }

    /// The JSON payloads of the client events (`[DONE]` excluded).
    func payloads() throws -> [JSON] {
        try events.filter { !$0.isDoneMarker }.map { try JSON.parse($0.data) }
    }

    /// The client's event names (Anthropic streams).
    var eventNames: [String] { events.compactMap(\.event) }
}

/// Runs an upstream stream through a new translator in the given chunking.
func translateStream(
    _ upstreamText: String, upstream: Dialect, client: Dialect, clientModel: String = "client-model", includeUsage: Bool = true,
    chunking: ByteChunking = .whole
) -> TranslatedStream {
    var translator = StreamTranslator(upstream: upstream, client: client, clientModel: clientModel, includeUsage: includeUsage, created: 1_700_000_000)
    var bytes: [UInt8] = []
    var nonEmptyFeeds = 0
    for chunk in chunking.split(Array(upstreamText.utf8)) {
        let output = translator.feed(chunk)
        if !output.isEmpty { nonEmptyFeeds += 1 }
        bytes += output
    }
    var finishError: GatewayError?
    do {
        bytes += try translator.finish()
    } catch {
        finishError = error
    }
    return TranslatedStream(bytes: bytes, finishError: finishError, translator: translator, nonEmptyFeeds: nonEmptyFeeds)
}
