/// Turns the `chat.completion.chunk` events of an OpenAI-format upstream into IR stream events.
///
/// Only the first choice is read (translated requests never ask for more). A stream is complete when a
/// `finish_reason` has been seen and `data: [DONE]` arrives; `[DONE]` without a finish reason means the
/// upstream cut the answer short.
struct OpenAIChatStreamDecoder: Sendable {
    private var started = false
    private var sawFinish = false
    private var sawToolCall = false
    private var startedToolIndices: [Int] = []

    /// Decodes one upstream event, appending the IR events it stands for.
    mutating func decode(_ event: SSEEvent, into events: inout [StreamEvent]) {
        if event.isDoneMarker {
            events.append(sawFinish ? .end : .failure(UpstreamProblem.truncatedStream))
            return
        }
        guard let chunk = try? JSON.parse(event.data.utf8), case .object(let object) = chunk else {
            events.append(.failure(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object")))
            return
        }
        if object["error"] != nil || object["object"] == "error" {
            events.append(.failure(Translation.decodeStreamError(chunk, upstream: .openAIChat)))
            return
        }
        let usage = object["usage"].flatMap(OpenAIChatResponseCodec.usage(from:))
        if !started {
            started = true
            events.append(.start(id: object["id"]?.stringValue ?? "", usage: usage))
        }
        if case .array(let choices)? = object["choices"],
            let choice = choices.first(where: { ($0["index"]?.intValue ?? 0) == 0 })?.objectValue
        {
            if case .object(let delta)? = choice["delta"] {
                decodeDelta(delta, into: &events)
            }
            if let reason = choice["finish_reason"]?.stringValue {
                sawFinish = true
                var finish = OpenAIChatResponseCodec.finishReason(from: reason)
                if sawToolCall, finish == .stop { finish = .toolCalls }
                events.append(.finish(finish, stopSequence: nil))
            }
        }
        if let usage { events.append(.usage(usage)) }
    }

    private mutating func decodeDelta(_ delta: JSONObject, into events: inout [StreamEvent]) {
        if let reasoning = delta["reasoning_content"]?.stringValue ?? delta["reasoning"]?.stringValue, !reasoning.isEmpty {
            events.append(.reasoningDelta(reasoning))
        }
        if let text = delta["content"]?.stringValue, !text.isEmpty {
            events.append(.textDelta(text))
        }
        guard case .array(let calls)? = delta["tool_calls"] else { return }
        for (position, call) in calls.enumerated() {
            let index = call["index"]?.intValue ?? position
            let function = call["function"]
            if !startedToolIndices.contains(index) {
                startedToolIndices.append(index)
                sawToolCall = true
                events.append(
                    .toolCallStart(
                        index: index, id: call["id"]?.stringValue ?? generatedToolCallID(),
                        name: function?["name"]?.stringValue ?? ""))
            }
            if let fragment = function?["arguments"]?.stringValue, !fragment.isEmpty {
                events.append(.toolCallArguments(index: index, fragment: fragment))
            }
        }
    }
}

/// Writes IR stream events as an OpenAI `chat.completion.chunk` stream for an OpenAI client.
///
/// Every chunk carries the same id, `created` and the client's model name. The first chunk carries
/// `role: "assistant"`; the last content chunk carries `finish_reason`; with `includeUsage` a chunk with
/// `choices: []` and the usage follows (and every other chunk has `usage: null`, as OpenAI sends them);
/// `data: [DONE]` ends the stream. Reasoning signatures and encrypted reasoning have no place in a
/// chunk and are not sent.
struct OpenAIChatStreamEncoder: Sendable {
    private let clientModel: String
    private let includeUsage: Bool
    private let created: Int
    private var started = false
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…`, built once per stream.
    private var chunkHeader: [UInt8] = []
    private var toolIndicesWithArguments: [Int] = []
    private var finish: FinishReason?
    private var usage: Usage?

    init(clientModel: String, includeUsage: Bool, created: Int) {
        self.clientModel = clientModel
        self.includeUsage = includeUsage
        self.created = created
    }

    /// Writes the client bytes for one IR event.
    ///
    /// Chunks are written straight to bytes (with the header built once per stream) rather than as JSON
    /// values: this runs once per token.
    mutating func encode(_ event: StreamEvent, into output: inout [UInt8]) {
        switch event {
        case .start(let upstreamID, let usage):
            guard !started else { return }
            started = true
            makeHeader(id: OpenAIChatResponseCodec.openAIID(fromUpstream: upstreamID))
            if let usage { self.usage = usage }
            writeChunk(into: &output) { $0.append(contentsOf: #""role":"assistant","content":"""#.utf8) }
        case .textDelta(let text):
            writeChunk(into: &output) { delta in
                delta.append(contentsOf: #""content":"#.utf8)
                JSON.serializeString(text, into: &delta)
            }
        case .reasoningDelta(let text):
            writeChunk(into: &output) { delta in
                delta.append(contentsOf: #""reasoning_content":"#.utf8)
                JSON.serializeString(text, into: &delta)
            }
        case .reasoningSignature, .redactedReasoning:
            return
        case .toolCallStart(let index, let callID, let name):
            writeChunk(into: &output) { delta in
                delta.append(contentsOf: #""tool_calls":[{"index":"#.utf8)
                delta.append(contentsOf: String(index).utf8)
                delta.append(contentsOf: #","id":"#.utf8)
                JSON.serializeString(callID, into: &delta)
                delta.append(contentsOf: #","type":"function","function":{"name":"#.utf8)
                JSON.serializeString(name, into: &delta)
                delta.append(contentsOf: #","arguments":""}}]"#.utf8)
            }
        case .toolCallArguments(let index, let fragment):
            if !toolIndicesWithArguments.contains(index) { toolIndicesWithArguments.append(index) }
            writeArguments(index: index, fragment: fragment, into: &output)
        case .toolCallEnd(let index):
            // A call without arguments gets "{}", which clients can parse; Anthropic sends no fragment at all.
            guard !toolIndicesWithArguments.contains(index) else { return }
            toolIndicesWithArguments.append(index)
            writeArguments(index: index, fragment: "{}", into: &output)
        case .usage(let usage):
            self.usage = usage
        case .finish(let reason, _):
            finish = reason
        case .end:
            writeChunk(finishReason: OpenAIChatResponseCodec.finishReasonText(finish ?? .stop), into: &output) { _ in }
            if includeUsage {
                output.append(contentsOf: chunkHeader)
                output.append(contentsOf: #","choices":[],"usage":"#.utf8)
                OpenAIChatResponseCodec.encodeUsage(usage ?? Usage(inputTokens: 0, outputTokens: 0)).serialize(into: &output)
                output.append(contentsOf: "}\n\n".utf8)
            }
            output.append(contentsOf: "data: [DONE]\n\n".utf8)
        case .failure:
            return
        }
    }

    private mutating func makeHeader(id: String) {
        chunkHeader.removeAll(keepingCapacity: true)
        chunkHeader.append(contentsOf: #"data: {"id":"#.utf8)
        JSON.serializeString(id, into: &chunkHeader)
        chunkHeader.append(contentsOf: #","object":"chat.completion.chunk","created":"#.utf8)
        chunkHeader.append(contentsOf: String(created).utf8)
        chunkHeader.append(contentsOf: #","model":"#.utf8)
        JSON.serializeString(clientModel, into: &chunkHeader)
    }

    private mutating func writeArguments(index: Int, fragment: String, into output: inout [UInt8]) {
        writeChunk(into: &output) { delta in
            delta.append(contentsOf: #""tool_calls":[{"index":"#.utf8)
            delta.append(contentsOf: String(index).utf8)
            delta.append(contentsOf: #","function":{"arguments":"#.utf8)
            JSON.serializeString(fragment, into: &delta)
            delta.append(contentsOf: "}}]".utf8)
        }
    }

    /// Writes one chunk whose single choice has the delta members `writeDelta` appends.
    private mutating func writeChunk(finishReason: String? = nil, into output: inout [UInt8], _ writeDelta: (inout [UInt8]) -> Void) {
        if chunkHeader.isEmpty { makeHeader(id: OpenAIChatResponseCodec.openAIID(fromUpstream: "")) }
        output.append(contentsOf: chunkHeader)
        output.append(contentsOf: #","choices":[{"index":0,"delta":{"#.utf8)
        writeDelta(&output)
        output.append(contentsOf: #"},"logprobs":null,"finish_reason":"#.utf8)
        if let finishReason {
            JSON.serializeString(finishReason, into: &output)
        } else {
            output.append(contentsOf: "null".utf8)
        }
        output.append(contentsOf: "}]".utf8)
        if includeUsage { output.append(contentsOf: #","usage":null"#.utf8) }
        output.append(contentsOf: "}\n\n".utf8)
    }
}

/// Writes server-sent events.
enum SSEWriter {
    /// Appends one event: an optional `event:` line, one `data:` line holding compact JSON, a blank line.
    static func write(event: String?, data: JSON, into output: inout [UInt8]) {
        if let event {
            output.append(contentsOf: "event: ".utf8)
            output.append(contentsOf: event.utf8)
            output.append(0x0A)
        }
        output.append(contentsOf: "data: ".utf8)
        data.serialize(into: &output)
        output.append(contentsOf: "\n\n".utf8)
    }

    /// Appends an event whose data is already text; multi-line data is split into several `data:` lines.
    static func write(event: String?, rawData: String, into output: inout [UInt8]) {
        if let event {
            output.append(contentsOf: "event: ".utf8)
            output.append(contentsOf: event.utf8)
            output.append(0x0A)
        }
        for line in rawData.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            output.append(contentsOf: "data: ".utf8)
            output.append(contentsOf: line)
            output.append(0x0A)
        }
        output.append(0x0A)
    }
}
