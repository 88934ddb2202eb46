/// Translates an upstream's server-sent event stream into the client's dialect, event by event.
///
/// Feed it the upstream body as it arrives; each call returns the client bytes for the events completed
/// so far (nothing is held back beyond an incomplete event). At upstream end-of-file call `finish()`,
/// which throws when the stream broke off before its final event. An upstream error event becomes the
/// client's error event (`GatewayError.streamEvent(in:)`) and the translator stops, failed; after the
/// translator completed or failed, further input is ignored.
///
/// Same-dialect streams pass through unchanged except for the model name (OpenAI: every chunk's `model`;
/// Anthropic: `message_start.message.model`), with the same truncation and error detection.
package struct StreamTranslator: Sendable {
    /// Where the translation stands.
    package enum State: Sendable {
        /// Events are still expected.
        case streaming
        /// The upstream finished normally and the client has its final event.
        case completed
        /// The upstream failed or broke off; the client has (or, from `finish()`, must be sent) an error event.
        case failed(GatewayError)
    }

    /// Where the translation stands.
    package private(set) var state = State.streaming
    /// The upstream's dialect.
    package let upstream: Dialect
    /// The client's dialect.
    package let client: Dialect

    private let clientModel: String
    private var parser = SSEParser()
    private var sawOpenAIFinish = false
    private var sawGoogleFinish = false
    private var modelRename: (upstreamModel: String, needle: [UInt8], replacement: [UInt8])?
    private var decoder: StreamDecoderBox?
    private var encoder: StreamEncoderBox?
    private var pending: [StreamEvent] = []
    /// The next `sequence_number` for an event the gateway adds to a passed-through Responses stream.
    private var nextResponsesSequenceNumber = 0

    /// Creates a translator; `includeUsage` asks for OpenAI's final usage chunk (an OpenAI client's
    /// `stream_options.include_usage`); `created` stamps OpenAI chunks and defaults to now; `customToolNames`
    /// are a Responses client's custom tools.
    package init(
        upstream: Dialect, client: Dialect, clientModel: String, includeUsage: Bool, created: Int = currentUnixTime(),
        customToolNames: Set<String> = []
    ) {
        self.upstream = upstream
        self.client = client
        self.clientModel = clientModel
        if upstream != client || !client.passesThroughUnchanged {
            decoder = StreamDecoderBox(dialect: upstream)
            encoder = StreamEncoderBox(
                dialect: client, clientModel: clientModel, includeUsage: includeUsage, created: created, customToolNames: customToolNames)
        }
    }

    /// Whether the upstream finished normally.
    package var isCompleted: Bool {
        if case .completed = state { return true }
        return false
    }

    /// The error that ended the stream, if it failed.
    package var failure: GatewayError? {
        if case .failed(let error) = state { return error }
        return nil
    }

    /// Whether no more input is expected (completed or failed).
    package var isFinished: Bool {
        if case .streaming = state { return false }
        return true
    }

    /// Consumes a chunk of the upstream body and returns the client bytes it produced (possibly none).
    package mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
        guard case .streaming = state else { return [] }
        var output: [UInt8] = []
        for event in parser.feed(bytes) {
            process(event, into: &output)
            if isFinished { break }
        }
        return output
    }

    /// Handles upstream end-of-file: returns the last client bytes, or throws when the stream was cut short.
    ///
    /// After a failure already reported in the stream (an upstream error event), this returns the
    /// remaining bytes without throwing: the client has its error event.
    package mutating func finish() throws(GatewayError) -> [UInt8] {
        guard case .streaming = state else { return [] }
        var output: [UInt8] = []
        // An event cut off mid-JSON is what a broken connection leaves behind: it is dropped, and the
        // stream is reported as truncated below rather than as an invalid event.
        for event in parser.finish() where event.isDoneMarker || (try? JSON.parse(event.data.utf8)) != nil {
            process(event, into: &output)
            if isFinished { break }
        }
        if case .streaming = state, var decoder {
            decoder.endOfStream(into: &pending)
            self.decoder = decoder
            deliverPending(into: &output)
        }
        if case .streaming = state, decoder == nil, client == .googleGenAI, sawGoogleFinish {
            state = .completed
        }
        if case .streaming = state {
            state = .failed(UpstreamProblem.truncatedStream)
            throw UpstreamProblem.truncatedStream
        }
        return output
    }

    private mutating func process(_ event: SSEEvent, into output: inout [UInt8]) {
        if var decoder {
            decoder.decode(event, into: &pending)
            self.decoder = decoder
            deliverPending(into: &output)
            return
        }
        switch client {
        case .anthropicMessages: passAnthropicEvent(event, into: &output)
        case .openAIResponses: passResponsesEvent(event, into: &output)
        case .googleGenAI: passGoogleEvent(event, into: &output)
        default: passOpenAIEvent(event, into: &output)
        }
    }

    private mutating func deliverPending(into output: inout [UInt8]) {
        defer { pending.removeAll(keepingCapacity: true) }
        for event in pending {
            if case .failure(let error) = event {
                fail(error, into: &output)
                return
            }
            if let error = encoder?.encode(event, into: &output) {
                fail(error, into: &output)
                return
            }
            if case .end = event {
                state = .completed
                return
            }
        }
    }

    private mutating func fail(_ error: GatewayError, into output: inout [UInt8]) {
        output.append(contentsOf: errorEvent(for: error))
        state = .failed(error)
    }

    /// The client's error event for a failure the caller reports itself (a truncated stream, a broken transfer).
    ///
    /// Equal to `error.streamEvent(in: client)` except in Responses streams, where it carries the next `sequence_number`.
    package mutating func errorEvent(for error: GatewayError) -> [UInt8] {
        if var encoder {
            let bytes = encoder.errorEvent(error, dialect: client)
            self.encoder = encoder
            return bytes
        }
        guard client == .openAIResponses else { return error.streamEvent(in: client) }
        defer { nextResponsesSequenceNumber += 1 }
        return error.responsesStreamEvent(sequenceNumber: nextResponsesSequenceNumber)
    }

    // MARK: - Same-dialect pass-through

    private mutating func passOpenAIEvent(_ event: SSEEvent, into output: inout [UInt8]) {
        if event.isDoneMarker {
            guard sawOpenAIFinish else {
                fail(UpstreamProblem.truncatedStream, into: &output)
                return
            }
            output.append(contentsOf: "data: [DONE]\n\n".utf8)
            state = .completed
            return
        }
        guard let chunk = try? JSON.parse(event.data.utf8), case .object(var object) = chunk else {
            fail(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object"), into: &output)
            return
        }
        if object["error"] != nil || object["object"] == "error" {
            fail(Translation.decodeStreamError(chunk, upstream: .openAIChat), into: &output)
            return
        }
        if case .array(let choices)? = object["choices"],
            choices.contains(where: { $0["finish_reason"]?.stringValue != nil })
        {
            sawOpenAIFinish = true
        }
        guard case .string(let upstreamModel)? = object["model"] else {
            SSEWriter.write(event: event.event, rawData: event.data, into: &output)
            return
        }
        if let renamed = renameModel(in: event.data, upstreamModel: upstreamModel) {
            if let name = event.event {
                output.append(contentsOf: "event: ".utf8)
                output.append(contentsOf: name.utf8)
                output.append(0x0A)
            }
            output.append(contentsOf: "data: ".utf8)
            output.append(contentsOf: renamed)
            output.append(contentsOf: "\n\n".utf8)
        } else {
            object["model"] = .string(clientModel)
            SSEWriter.write(event: event.event, data: .object(object), into: &output)
        }
    }

    /// The chunk's bytes with its `"model":"<upstream>"` member replaced by the client's model name, or nil
    /// when the member is not spelled compactly. An unescaped `"model":` can only be a key (quotes inside
    /// strings are escaped), so splicing keeps everything else byte for byte and avoids re-serializing.
    private mutating func renameModel(in data: String, upstreamModel: String) -> [UInt8]? {
        if modelRename?.upstreamModel != upstreamModel {
            var needle = Array(#""model":"#.utf8)
            JSON.serializeString(upstreamModel, into: &needle)
            var replacement = Array(#""model":"#.utf8)
            JSON.serializeString(clientModel, into: &replacement)
            modelRename = (upstreamModel, needle, replacement)
        }
        guard let rename = modelRename else { return nil }
        let bytes = Array(data.utf8)
        guard let start = Self.firstIndex(of: rename.needle, in: bytes) else { return nil }
        var renamed: [UInt8] = []
        renamed.reserveCapacity(bytes.count - rename.needle.count + rename.replacement.count)
        renamed.append(contentsOf: bytes[..<start])
        renamed.append(contentsOf: rename.replacement)
        renamed.append(contentsOf: bytes[(start + rename.needle.count)...])
        return renamed
    }

    /// Where `needle` first occurs in `haystack`.
    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        return haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pin in
                var index = 0
                let last = hay.count - pin.count
                while index <= last {
                    if hay[index] == first {
                        var offset = 1
                        while offset < pin.count, hay[index + offset] == pin[offset] { offset += 1 }
                        if offset == pin.count { return index }
                    }
                    index += 1
                }
                return nil
            }
        }
    }

    /// Passes a Responses event on, renaming the model in the events that carry the response object.
    private mutating func passResponsesEvent(_ event: SSEEvent, into output: inout [UInt8]) {
        if event.isDoneMarker { return }
        guard let parsed = try? JSON.parse(event.data.utf8), case .object(var object) = parsed else {
            fail(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object"), into: &output)
            return
        }
        let type = object["type"]?.stringValue ?? event.event
        if let number = object["sequence_number"]?.intValue {
            // The gateway's own error event replaces the upstream's and takes its number.
            nextResponsesSequenceNumber = max(nextResponsesSequenceNumber, type == "error" ? number : number + 1)
        }
        if type == "error" {
            fail(Translation.decodeStreamError(parsed, upstream: .openAIResponses), into: &output)
            return
        }
        guard case .object(var response)? = object["response"] else {
            SSEWriter.write(event: event.event, rawData: event.data, into: &output)
            return
        }
        response["model"] = .string(clientModel)
        object["response"] = .object(response)
        SSEWriter.write(event: event.event, data: .object(object), into: &output)
        switch type {
        case "response.completed", "response.incomplete":
            state = .completed
        case "response.failed":
            fail(Translation.decodeStreamError(["error": response["error"] ?? .null], upstream: .openAIResponses), into: &output)
        default:
            break
        }
    }

    /// Google chunks pass through byte for byte (`modelVersion` stays the upstream's); the stream is
    /// complete when it closes after a chunk with a `finishReason` (or a blocked prompt).
    private mutating func passGoogleEvent(_ event: SSEEvent, into output: inout [UInt8]) {
        guard let chunk = try? JSON.parse(event.data.utf8), case .object(let object) = chunk else {
            fail(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object"), into: &output)
            return
        }
        if object["error"] != nil {
            fail(Translation.decodeStreamError(chunk, upstream: .googleGenAI), into: &output)
            return
        }
        if object["candidates"]?.arrayValue?.contains(where: { $0["finishReason"]?.stringValue != nil }) == true
            || object["promptFeedback"]?["blockReason"] != nil
        {
            sawGoogleFinish = true
        }
        SSEWriter.write(event: event.event, rawData: event.data, into: &output)
    }

    private mutating func passAnthropicEvent(_ event: SSEEvent, into output: inout [UInt8]) {
        var type = event.event
        var parsed: JSON?
        if type == nil || type == "message_start" || type == "error" {
            parsed = try? JSON.parse(event.data.utf8)
            type = type ?? parsed?["type"]?.stringValue
        }
        switch type {
        case "message_start":
            guard case .object(var object)? = parsed, case .object(var message)? = object["message"] else {
                fail(UpstreamProblem.invalidResponse("the stream's message_start event has no message"), into: &output)
                return
            }
            message["model"] = .string(clientModel)
            object["message"] = .object(message)
            SSEWriter.write(event: event.event, data: .object(object), into: &output)
        case "error":
            fail(Translation.decodeStreamError(parsed ?? .string(event.data), upstream: .anthropicMessages), into: &output)
        case "message_stop":
            SSEWriter.write(event: event.event, rawData: event.data, into: &output)
            state = .completed
        default:
            SSEWriter.write(event: event.event, rawData: event.data, into: &output)
        }
    }
}
