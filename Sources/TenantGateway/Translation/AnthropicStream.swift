/// Turns the events of an Anthropic-format upstream stream into IR stream events.
///
/// Tool-use blocks are numbered 0, 1, … in the order they start, which becomes the OpenAI tool call
/// `index`. `message_stop` completes the stream; an `error` event fails it; `ping` is ignored.
struct AnthropicStreamDecoder: Sendable {
    private var toolIndexByBlock: [Int: Int] = [:]
    private var nextToolIndex = 0
    private var sawFinish = false
    private var uncachedInput = 0
    private var cacheRead: Int?
    private var cacheCreation: Int?
    private var output = 0

    /// Decodes one upstream event, appending the IR events it stands for.
    mutating func decode(_ event: SSEEvent, into events: inout [StreamEvent]) {
        if event.event == "ping" { return }
        guard let payload = try? JSON.parse(event.data.utf8), case .object(let object) = payload else {
            events.append(.failure(UpstreamProblem.invalidResponse("the stream sent an event that is not a JSON object")))
            return
        }
        switch event.event ?? object["type"]?.stringValue {
        case "message_start":
            let message = object["message"]
            if let usage = message?["usage"] { absorbUsage(usage) }
            events.append(.start(id: message?["id"]?.stringValue ?? "", usage: message?["usage"] == nil ? nil : currentUsage))
        case "content_block_start":
            guard let index = object["index"]?.intValue, let block = object["content_block"] else { return }
            switch block["type"]?.stringValue {
            case "text":
                if let text = block["text"]?.stringValue, !text.isEmpty { events.append(.textDelta(text)) }
            case "thinking":
                if let text = block["thinking"]?.stringValue, !text.isEmpty { events.append(.reasoningDelta(text)) }
            case "redacted_thinking":
                events.append(.redactedReasoning(data: block["data"]?.stringValue ?? ""))
            case "tool_use":
                let toolIndex = nextToolIndex
                nextToolIndex += 1
                toolIndexByBlock[index] = toolIndex
                events.append(
                    .toolCallStart(
                        index: toolIndex, id: block["id"]?.stringValue ?? generatedToolCallID(),
                        name: block["name"]?.stringValue ?? ""))
                if case .object(let input)? = block["input"], !input.isEmpty {
                    events.append(.toolCallArguments(index: toolIndex, fragment: JSON.object(input).text))
                }
            default:
                return
            }
        case "content_block_delta":
            guard let delta = object["delta"] else { return }
            switch delta["type"]?.stringValue {
            case "text_delta":
                if let text = delta["text"]?.stringValue, !text.isEmpty { events.append(.textDelta(text)) }
            case "thinking_delta":
                if let text = delta["thinking"]?.stringValue, !text.isEmpty { events.append(.reasoningDelta(text)) }
            case "signature_delta":
                if let signature = delta["signature"]?.stringValue { events.append(.reasoningSignature(signature)) }
            case "input_json_delta":
                if let block = object["index"]?.intValue, let toolIndex = toolIndexByBlock[block],
                    let fragment = delta["partial_json"]?.stringValue, !fragment.isEmpty
                {
                    events.append(.toolCallArguments(index: toolIndex, fragment: fragment))
                }
            default:
                return
            }
        case "content_block_stop":
            if let block = object["index"]?.intValue, let toolIndex = toolIndexByBlock[block] {
                events.append(.toolCallEnd(index: toolIndex))
            }
        case "message_delta":
            if let reason = object["delta"]?["stop_reason"]?.stringValue {
                sawFinish = true
                events.append(
                    .finish(AnthropicResponseCodec.finishReason(from: reason), stopSequence: object["delta"]?["stop_sequence"]?.stringValue))
            }
            if let usage = object["usage"], usage.objectValue != nil {
                absorbUsage(usage)
                events.append(.usage(currentUsage))
            }
        case "message_stop":
            if !sawFinish { events.append(.finish(.stop, stopSequence: nil)) }
            events.append(.end)
        case "error":
            events.append(.failure(Translation.decodeStreamError(payload, upstream: .anthropicMessages)))
        default:
            return
        }
    }

    /// Takes the counts present in a `usage` object (message_start has them all; message_delta the cumulative output).
    private mutating func absorbUsage(_ usage: JSON) {
        if let value = usage["input_tokens"]?.intValue { uncachedInput = value }
        if let value = usage["cache_read_input_tokens"]?.intValue { cacheRead = value }
        if let value = usage["cache_creation_input_tokens"]?.intValue { cacheCreation = value }
        if let value = usage["output_tokens"]?.intValue { output = value }
    }

    private var currentUsage: Usage {
        Usage(
            inputTokens: uncachedInput + (cacheRead ?? 0) + (cacheCreation ?? 0), outputTokens: output,
            cachedInputTokens: cacheRead, cacheCreationInputTokens: cacheCreation)
    }
}

/// Writes IR stream events as an Anthropic Messages event stream for an Anthropic client.
///
/// Emits `message_start` (input tokens when the upstream already reported them, else 0), one content
/// block per run of text, reasoning or tool call (`content_block_start`, `…_delta`, `content_block_stop`,
/// each block closed before the next opens), then `message_delta` with the stop reason and usage, and
/// `message_stop`. Tool call arguments for a block already closed (an upstream interleaving several
/// calls) cannot be represented and fail the stream.
struct AnthropicStreamEncoder: Sendable {
    private enum OpenBlock: Equatable {
        case none
        case text
        case thinking
        case tool(index: Int)
    }

    private let clientModel: String
    private var started = false
    private var openBlock = OpenBlock.none
    private var nextBlockIndex = 0
    private var startedToolIndices: [Int] = []
    private var finish: FinishReason?
    private var stopSequence: String?
    private var usage: Usage?

    init(clientModel: String) {
        self.clientModel = clientModel
    }

    /// Writes the client bytes for one IR event; returns an error when the event cannot be represented.
    mutating func encode(_ event: StreamEvent, into output: inout [UInt8]) -> GatewayError? {
        switch event {
        case .start(let id, let usage):
            if let usage { self.usage = usage }
            start(id: id, into: &output)
        case .textDelta(let text):
            open(.text, block: ["type": "text", "text": ""], into: &output)
            writeDelta(type: "text_delta", field: "text", value: text, into: &output)
        case .reasoningDelta(let text):
            open(.thinking, block: ["type": "thinking", "thinking": "", "signature": ""], into: &output)
            writeDelta(type: "thinking_delta", field: "thinking", value: text, into: &output)
        case .reasoningSignature(let signature):
            open(.thinking, block: ["type": "thinking", "thinking": "", "signature": ""], into: &output)
            writeDelta(type: "signature_delta", field: "signature", value: signature, into: &output)
        case .redactedReasoning(let data):
            closeOpenBlock(into: &output)
            open(.none, block: ["type": "redacted_thinking", "data": .string(data)], into: &output)
            write("content_block_stop", ["type": "content_block_stop", "index": JSON(nextBlockIndex - 1)], into: &output)
        case .toolCallStart(let index, let id, let name):
            if startedToolIndices.contains(index) { return nil }
            startedToolIndices.append(index)
            closeOpenBlock(into: &output)
            open(.tool(index: index), block: ["type": "tool_use", "id": .string(id), "name": .string(name), "input": [:]], into: &output)
        case .toolCallArguments(let index, let fragment):
            guard openBlock == .tool(index: index) else {
                return UpstreamProblem.invalidResponse(
                    "the stream interleaved the arguments of several tool calls, which an Anthropic-format stream cannot represent")
            }
            writeDelta(type: "input_json_delta", field: "partial_json", value: fragment, into: &output)
        case .toolCallEnd(let index):
            if openBlock == .tool(index: index) { closeOpenBlock(into: &output) }
        case .usage(let usage):
            self.usage = usage
        case .finish(let reason, let sequence):
            closeOpenBlock(into: &output)
            finish = reason
            stopSequence = sequence
        case .end:
            start(id: "", into: &output)
            closeOpenBlock(into: &output)
            let reason = finish ?? .stop
            var usageObject: JSONObject = ["output_tokens": 0]
            if let usage, case .object(let encoded) = AnthropicResponseCodec.encodeUsage(usage) { usageObject = encoded }
            write(
                "message_delta",
                [
                    "type": "message_delta",
                    "delta": [
                        "stop_reason": .string(AnthropicResponseCodec.stopReasonText(reason)),
                        "stop_sequence": reason == .stopSequence ? stopSequence.map(JSON.string) ?? .null : .null,
                    ],
                    "usage": .object(usageObject),
                ], into: &output)
            write("message_stop", ["type": "message_stop"], into: &output)
        case .failure:
            return nil
        }
        return nil
    }

    private mutating func start(id: String, into output: inout [UInt8]) {
        guard !started else { return }
        started = true
        let message: JSON = [
            "id": .string(AnthropicResponseCodec.anthropicID(fromUpstream: id)),
            "type": "message",
            "role": "assistant",
            "model": .string(clientModel),
            "content": [],
            "stop_reason": .null,
            "stop_sequence": .null,
            "usage": AnthropicResponseCodec.encodeUsage(Usage(
                inputTokens: usage?.inputTokens ?? 0, outputTokens: 0,
                cachedInputTokens: usage?.cachedInputTokens, cacheCreationInputTokens: usage?.cacheCreationInputTokens)),
        ]
        write("message_start", ["type": "message_start", "message": message], into: &output)
    }

    /// Opens a block of the given kind unless one is already open (text and thinking runs continue).
    private mutating func open(_ kind: OpenBlock, block: JSON, into output: inout [UInt8]) {
        if kind != .none, openBlock == kind { return }
        start(id: "", into: &output)
        closeOpenBlock(into: &output)
        write("content_block_start", ["type": "content_block_start", "index": JSON(nextBlockIndex), "content_block": block], into: &output)
        nextBlockIndex += 1
        openBlock = kind
    }

    private mutating func closeOpenBlock(into output: inout [UInt8]) {
        guard openBlock != .none else { return }
        write("content_block_stop", ["type": "content_block_stop", "index": JSON(nextBlockIndex - 1)], into: &output)
        openBlock = .none
    }

    /// Writes a `content_block_delta` for the open block straight to bytes (it runs once per token).
    private func writeDelta(type: String, field: String, value: String, into output: inout [UInt8]) {
        output.append(contentsOf: #"event: content_block_delta"#.utf8)
        output.append(contentsOf: "\ndata: ".utf8)
        output.append(contentsOf: #"{"type":"content_block_delta","index":"#.utf8)
        output.append(contentsOf: String(nextBlockIndex - 1).utf8)
        output.append(contentsOf: #","delta":{"type":""#.utf8)
        output.append(contentsOf: type.utf8)
        output.append(contentsOf: #"",""#.utf8)
        output.append(contentsOf: field.utf8)
        output.append(contentsOf: #"":"#.utf8)
        JSON.serializeString(value, into: &output)
        output.append(contentsOf: "}}\n\n".utf8)
    }

    private func write(_ name: String, _ data: JSON, into output: inout [UInt8]) {
        SSEWriter.write(event: name, data: data, into: &output)
    }
}
