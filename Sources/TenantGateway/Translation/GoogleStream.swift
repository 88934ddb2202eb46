/// Turns the `GenerateContentResponse` chunks of a Google-format upstream (`alt=sse`) into IR stream events.
///
/// Every part of every chunk is kept, including the text of the chunk that also carries `finishReason`
/// (a chunk is read whole: parts first, then the finish reason, then usage). Google streams have no final
/// marker: the stream is complete when the upstream closes it after a `finishReason`, which the caller
/// reports with `endOfStream`. Function calls arrive whole; each becomes a start, its arguments and an end.
struct GoogleStreamDecoder: Sendable {
    private var started = false
    private var sawFinish = false
    private var sawToolCall = false
    private var nextToolIndex = 0

    /// Decodes one upstream event, appending the IR events it stands for.
    mutating func decode(_ event: SSEEvent, into events: inout [StreamEvent]) {
        guard let chunk = try? JSON.parse(event.data.utf8), case .object(let object) = chunk else {
            events.append(.failure(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object")))
            return
        }
        if object["error"] != nil {
            events.append(.failure(Translation.decodeStreamError(chunk, upstream: .googleGenAI)))
            return
        }
        if !started {
            started = true
            events.append(.start(id: object["responseId"]?.stringValue ?? "", usage: nil))
        }
        let candidate = object["candidates"]?.arrayValue?.first?.objectValue
        for part in candidate?["content"]?["parts"]?.arrayValue ?? [] {
            decodePart(part, into: &events)
        }
        var finish = candidate?["finishReason"]?.stringValue.map(GoogleResponseCodec.finishReason(from:))
        if candidate == nil, object["promptFeedback"]?["blockReason"] != nil { finish = .contentFilter }
        if var finish, !sawFinish {
            sawFinish = true
            if sawToolCall, finish == .stop { finish = .toolCalls }
            events.append(.finish(finish, stopSequence: nil))
        }
        if let usage = object["usageMetadata"].flatMap(GoogleResponseCodec.usage(from:)) { events.append(.usage(usage)) }
    }

    private mutating func decodePart(_ part: JSON, into events: inout [StreamEvent]) {
        let signature = part["thoughtSignature"]?.stringValue
        if let call = part["functionCall"]?.objectValue {
            if let signature { events.append(signatureEvent(signature)) }
            let index = nextToolIndex
            nextToolIndex += 1
            sawToolCall = true
            events.append(.toolCallStart(index: index, id: call["id"]?.stringValue ?? generatedToolCallID(), name: call["name"]?.stringValue ?? ""))
            events.append(.toolCallArguments(index: index, fragment: (call["args"] ?? .object([:])).text))
            events.append(.toolCallEnd(index: index))
            return
        }
        let text = part["text"]?.stringValue ?? ""
        if part["thought"]?.boolValue == true {
            if !text.isEmpty { events.append(.reasoningDelta(text)) }
            if let signature { events.append(signatureEvent(signature)) }
        } else {
            if let signature { events.append(signatureEvent(signature)) }
            if !text.isEmpty { events.append(.textDelta(text)) }
        }
    }

    private func signatureEvent(_ signature: String) -> StreamEvent {
        if signature.hasPrefix(GoogleRequestCodec.redactedThinkingPrefix) {
            return .redactedReasoning(data: String(signature.dropFirst(GoogleRequestCodec.redactedThinkingPrefix.count)))
        }
        return .reasoningSignature(signature)
    }

    /// Handles the upstream closing the stream: complete after a finish reason; before one nothing is
    /// emitted and the translator reports the stream as truncated.
    mutating func endOfStream(into events: inout [StreamEvent]) {
        if sawFinish { events.append(.end) }
    }
}

/// Writes IR stream events as Google `GenerateContentResponse` chunks (`data: {…}` events) for a Google client.
///
/// Text and thoughts are sent as they arrive; a function call is sent whole when its arguments are
/// complete (Google never splits one). A signature that follows reasoning is sent as an empty signed
/// thought part; one that precedes a function call or text rides on that part. The last chunk carries
/// `finishReason` and `usageMetadata`. Every chunk carries `modelVersion` (the client's model name) and
/// `responseId`.
struct GoogleStreamEncoder: Sendable {
    private let clientModel: String
    private var responseID = ""
    private var lastWasReasoning = false
    private var pendingSignature: String?
    private var toolCalls: [Int: (id: String, name: String, arguments: String)] = [:]
    private var toolOrder: [Int] = []
    private var finish: FinishReason?
    private var usage: Usage?

    init(clientModel: String) {
        self.clientModel = clientModel
    }

    /// Writes the client bytes for one IR event; returns an error when the event cannot be represented.
    mutating func encode(_ event: StreamEvent, into output: inout [UInt8]) -> GatewayError? {
        switch event {
        case .start(let id, let usage):
            if responseID.isEmpty { responseID = id.isEmpty ? randomIDSuffix() : id }
            if let usage { self.usage = usage }
        case .textDelta(let text):
            var part: JSONObject = ["text": .string(text)]
            if let signature = pendingSignature { part["thoughtSignature"] = .string(signature) }
            pendingSignature = nil
            lastWasReasoning = false
            writeChunk(parts: [.object(part)], into: &output)
        case .reasoningDelta(let text):
            flushSignature(into: &output)
            lastWasReasoning = true
            writeChunk(parts: [["text": .string(text), "thought": true]], into: &output)
        case .reasoningSignature(let signature):
            if lastWasReasoning {
                writeChunk(parts: [GoogleResponseCodec.thoughtSignaturePart(signature)], into: &output)
                lastWasReasoning = false
            } else {
                flushSignature(into: &output)
                pendingSignature = signature
            }
        case .redactedReasoning(let data):
            flushSignature(into: &output)
            lastWasReasoning = false
            writeChunk(parts: [GoogleResponseCodec.thoughtSignaturePart(GoogleRequestCodec.redactedThinkingPrefix + data)], into: &output)
        case .toolCallStart(let index, let id, let name):
            lastWasReasoning = false
            guard toolCalls[index] == nil else { return nil }
            toolCalls[index] = (id, name, "")
            toolOrder.append(index)
        case .toolCallArguments(let index, let fragment):
            toolCalls[index]?.arguments += fragment
        case .toolCallEnd(let index):
            return writeToolCall(index, into: &output)
        case .usage(let usage):
            self.usage = usage
        case .finish(let reason, _):
            finish = reason
        case .end:
            for index in toolOrder {
                if let error = writeToolCall(index, into: &output) { return error }
            }
            flushSignature(into: &output)
            var last: JSONObject = [
                "candidates": [
                    [
                        "content": ["parts": [["text": ""]], "role": "model"],
                        "finishReason": .string(GoogleResponseCodec.finishReasonText(finish ?? .stop)),
                        "index": 0,
                    ]
                ]
            ]
            last["usageMetadata"] = GoogleResponseCodec.encodeUsage(usage ?? Usage(inputTokens: 0, outputTokens: 0))
            last["modelVersion"] = .string(clientModel)
            last["responseId"] = .string(responseID.isEmpty ? randomIDSuffix() : responseID)
            SSEWriter.write(event: nil, data: .object(last), into: &output)
        case .failure:
            return nil
        }
        return nil
    }

    private mutating func writeToolCall(_ index: Int, into output: inout [UInt8]) -> GatewayError? {
        guard let call = toolCalls.removeValue(forKey: index) else { return nil }
        toolOrder.removeAll { $0 == index }
        let functionCall: JSON
        do {
            functionCall = try GoogleResponseCodec.functionCall(id: call.id, name: call.name, arguments: call.arguments)
        } catch {
            return error
        }
        var part: JSONObject = ["functionCall": functionCall]
        if let signature = pendingSignature { part["thoughtSignature"] = .string(signature) }
        pendingSignature = nil
        writeChunk(parts: [.object(part)], into: &output)
        return nil
    }

    private mutating func flushSignature(into output: inout [UInt8]) {
        guard let signature = pendingSignature else { return }
        pendingSignature = nil
        writeChunk(parts: [GoogleResponseCodec.thoughtSignaturePart(signature)], into: &output)
    }

    private mutating func writeChunk(parts: [JSON], into output: inout [UInt8]) {
        if responseID.isEmpty { responseID = randomIDSuffix() }
        let chunk: JSON = [
            "candidates": [["content": ["parts": .array(parts), "role": "model"], "index": 0]],
            "modelVersion": .string(clientModel),
            "responseId": .string(responseID),
        ]
        SSEWriter.write(event: nil, data: chunk, into: &output)
    }
}

/// Reframes a Google client's SSE stream (`data: {…}` events) as the JSON array that
/// `streamGenerateContent` without `alt=sse` returns: `[` and the first object, `,` before each next
/// object, `]` at the end, each piece written as soon as its event is complete.
package struct GoogleJSONArrayFramer: Sendable {
    private var parser = SSEParser()
    private var wroteOpening = false

    /// Creates a framer at the start of a stream.
    package init() {}

    /// Consumes SSE bytes and returns the array bytes for the events they completed.
    package mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        for event in parser.feed(bytes) { append(event, into: &output) }
        return output
    }

    /// Ends the array (an empty one when no event came).
    package mutating func finish() -> [UInt8] {
        var output: [UInt8] = []
        for event in parser.finish() { append(event, into: &output) }
        if !wroteOpening { output.append(UInt8(ascii: "[")) }
        output.append(contentsOf: "]\n".utf8)
        return output
    }

    private mutating func append(_ event: SSEEvent, into output: inout [UInt8]) {
        output.append(contentsOf: wroteOpening ? ",\r\n".utf8 : "[".utf8)
        wroteOpening = true
        output.append(contentsOf: event.data.utf8)
    }
}
