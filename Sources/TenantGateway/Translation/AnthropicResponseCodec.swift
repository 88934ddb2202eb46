/// Translates Anthropic `message` response bodies to and from the IR.
package enum AnthropicResponseCodec {
    // MARK: - Decoding an upstream body

    /// Decodes a whole `message` body from an Anthropic-format upstream.
    ///
    /// Blocks with no counterpart in the IR (server tool results, for example) are skipped; they can only
    /// appear when the client asked for server tools, which the request translation already refuses.
    package static func decode(_ body: JSON) throws(GatewayError) -> ChatResponse {
        guard case .object(let object) = body else { throw UpstreamProblem.invalidResponse("the response is not a JSON object") }
        guard case .array(let blocks)? = object["content"] else {
            throw UpstreamProblem.invalidResponse("the response has no content array")
        }
        var content: [ContentPart] = []
        content.reserveCapacity(blocks.count)
        for block in blocks {
            switch block["type"]?.stringValue {
            case "text":
                content.append(.text(block["text"]?.stringValue ?? ""))
            case "thinking":
                content.append(.reasoning(Reasoning(text: block["thinking"]?.stringValue ?? "", signature: block["signature"]?.stringValue)))
            case "redacted_thinking":
                content.append(.redactedReasoning(data: block["data"]?.stringValue ?? ""))
            case "tool_use":
                guard let id = block["id"]?.stringValue, let name = block["name"]?.stringValue else {
                    throw UpstreamProblem.invalidResponse("a tool_use block has no id or name")
                }
                content.append(.toolCall(ToolCall(id: id, name: name, arguments: (block["input"] ?? .object([:])).text)))
            default:
                continue
            }
        }
        return ChatResponse(
            id: object["id"]?.stringValue ?? "",
            model: object["model"]?.stringValue ?? "",
            content: content,
            finishReason: object["stop_reason"]?.stringValue.map(finishReason(from:)),
            stopSequence: object["stop_sequence"]?.stringValue,
            usage: object["usage"].flatMap(usage(from:)))
    }

    /// The IR finish reason for an Anthropic `stop_reason`.
    package static func finishReason(from value: String) -> FinishReason {
        switch value {
        case "end_turn": .stop
        case "stop_sequence": .stopSequence
        case "max_tokens", "model_context_window_exceeded": .length
        case "tool_use": .toolCalls
        case "refusal": .contentFilter
        default: .other(value)
        }
    }

    /// The IR usage for an Anthropic `usage` object; the IR's input count includes cache reads and writes.
    package static func usage(from value: JSON) -> Usage? {
        guard case .object(let usage) = value else { return nil }
        let cacheRead = usage["cache_read_input_tokens"]?.intValue
        let cacheCreation = usage["cache_creation_input_tokens"]?.intValue
        return Usage(
            inputTokens: (usage["input_tokens"]?.intValue ?? 0) + (cacheRead ?? 0) + (cacheCreation ?? 0),
            outputTokens: usage["output_tokens"]?.intValue ?? 0,
            cachedInputTokens: cacheRead,
            cacheCreationInputTokens: cacheCreation)
    }

    // MARK: - Encoding a client body

    /// Encodes the IR as a `message` body for an Anthropic client.
    ///
    /// Reasoning without a signature (from an OpenAI-format upstream) becomes a thinking block with an
    /// empty signature. Tool call arguments that are not a JSON object make the response unusable (502):
    /// Anthropic's `input` must be an object, and guessing would run the tool with the wrong input.
    package static func encode(_ response: ChatResponse, clientModel: String) throws(GatewayError) -> JSON {
        var blocks: [JSON] = []
        blocks.reserveCapacity(response.content.count)
        for part in response.content {
            switch part {
            case .text(let text):
                if !text.isEmpty { blocks.append(["type": "text", "text": .string(text)]) }
            case .reasoning(let reasoning):
                blocks.append(["type": "thinking", "thinking": .string(reasoning.text), "signature": .string(reasoning.signature ?? "")])
            case .redactedReasoning(let data):
                blocks.append(["type": "redacted_thinking", "data": .string(data)])
            case .toolCall(let call):
                let input: JSON
                if call.arguments.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                    input = .object([:])
                } else if let parsed = try? JSON.parse(call.arguments), case .object = parsed {
                    input = parsed
                } else {
                    throw UpstreamProblem.invalidResponse("the model called tool \"\(call.name)\" with arguments that are not a JSON object")
                }
                blocks.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": input])
            case .image, .toolResult:
                break
            }
        }
        let finish = response.finishReason ?? .stop
        return [
            "id": .string(anthropicID(fromUpstream: response.id)),
            "type": "message",
            "role": "assistant",
            "model": .string(clientModel),
            "content": .array(blocks),
            "stop_reason": .string(stopReasonText(finish)),
            "stop_sequence": finish == .stopSequence ? response.stopSequence.map(JSON.string) ?? .null : .null,
            "usage": encodeUsage(response.usage ?? Usage(inputTokens: 0, outputTokens: 0)),
        ]
    }

    /// The Anthropic `stop_reason` for an IR finish reason; unknown reasons become `end_turn`.
    package static func stopReasonText(_ reason: FinishReason) -> String {
        switch reason {
        case .stop: "end_turn"
        case .stopSequence: "stop_sequence"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .contentFilter: "refusal"
        case .other: "end_turn"
        }
    }

    /// The Anthropic `usage` object for IR usage; `input_tokens` excludes cached tokens, as Anthropic counts them.
    package static func encodeUsage(_ usage: Usage) -> JSON {
        [
            "input_tokens": JSON(usage.uncachedInputTokens),
            "cache_creation_input_tokens": JSON(usage.cacheCreationInputTokens ?? 0),
            "cache_read_input_tokens": JSON(usage.cachedInputTokens ?? 0),
            "output_tokens": JSON(usage.outputTokens),
        ]
    }

    /// An Anthropic-style id (`msg_…`) for an upstream response id, derived from it so logs can be correlated.
    package static func anthropicID(fromUpstream id: String) -> String {
        if id.hasPrefix("msg_") { return id }
        let core = id.hasPrefix("chatcmpl-") ? String(id.dropFirst(9)) : id
        return "msg_" + (core.isEmpty ? randomIDSuffix() : core)
    }
}
