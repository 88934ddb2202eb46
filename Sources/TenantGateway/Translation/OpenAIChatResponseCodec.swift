/// Translates OpenAI `chat.completion` response bodies to and from the IR.
package enum OpenAIChatResponseCodec {
    // MARK: - Decoding an upstream body

    /// Decodes a whole `chat.completion` body from an OpenAI-format upstream (the first choice).
    ///
    /// Some OpenAI-compatible servers report `finish_reason: "stop"` for a turn that called tools;
    /// a response with tool calls is therefore always reported as `toolCalls`.
    package static func decode(_ body: JSON) throws(GatewayError) -> ChatResponse {
        guard case .object(let object) = body else { throw UpstreamProblem.invalidResponse("the response is not a JSON object") }
        guard case .array(let choices)? = object["choices"], let choice = choices.first?.objectValue else {
            throw UpstreamProblem.invalidResponse("the response has no choices")
        }
        guard case .object(let message)? = choice["message"] else {
            throw UpstreamProblem.invalidResponse("the first choice has no message")
        }
        var content: [ContentPart] = []
        if let reasoning = message["reasoning_content"]?.stringValue ?? message["reasoning"]?.stringValue, !reasoning.isEmpty {
            content.append(.reasoning(Reasoning(text: reasoning)))
        }
        switch message["content"] {
        case .string(let text)?:
            if !text.isEmpty { content.append(.text(text)) }
        case .array(let parts)?:
            for part in parts {
                if let text = part["text"]?.stringValue, !text.isEmpty { content.append(.text(text)) }
            }
        default:
            break
        }
        if let refusal = message["refusal"]?.stringValue, !refusal.isEmpty { content.append(.text(refusal)) }
        var hasToolCalls = false
        if case .array(let calls)? = message["tool_calls"] {
            for call in calls {
                guard let function = call["function"]?.objectValue, let name = function["name"]?.stringValue else {
                    throw UpstreamProblem.invalidResponse("a tool call has no function name")
                }
                let id = call["id"]?.stringValue ?? generatedToolCallID()
                content.append(.toolCall(ToolCall(id: id, name: name, arguments: function["arguments"]?.stringValue ?? "")))
                hasToolCalls = true
            }
        }
        var finishReason = choice["finish_reason"]?.stringValue.map(finishReason(from:))
        if hasToolCalls, finishReason == .stop || finishReason == nil { finishReason = .toolCalls }
        return ChatResponse(
            id: object["id"]?.stringValue ?? "",
            model: object["model"]?.stringValue ?? "",
            content: content,
            finishReason: finishReason,
            usage: object["usage"].flatMap(usage(from:)))
    }

    /// The IR finish reason for an OpenAI `finish_reason`.
    package static func finishReason(from value: String) -> FinishReason {
        switch value {
        case "stop": .stop
        case "length": .length
        case "tool_calls", "function_call": .toolCalls
        case "content_filter": .contentFilter
        default: .other(value)
        }
    }

    /// The IR usage for an OpenAI `usage` object, or nil when it is absent or null.
    package static func usage(from value: JSON) -> Usage? {
        guard case .object(let usage) = value else { return nil }
        return Usage(
            inputTokens: usage["prompt_tokens"]?.intValue ?? 0,
            outputTokens: usage["completion_tokens"]?.intValue ?? 0,
            cachedInputTokens: usage["prompt_tokens_details"]?["cached_tokens"]?.intValue,
            reasoningTokens: usage["completion_tokens_details"]?["reasoning_tokens"]?.intValue)
    }

    // MARK: - Encoding a client body

    /// Encodes the IR as a `chat.completion` body for an OpenAI client.
    ///
    /// Reasoning goes into `reasoning_content`; when it carries Anthropic signatures or encrypted blocks they
    /// are also listed in `thinking_blocks` (the LiteLLM convention), which a client can send back so that an
    /// Anthropic upstream accepts the reasoning in the next turn.
    package static func encode(_ response: ChatResponse, clientModel: String, created: Int) -> JSON {
        var text = ""
        var reasoning = ""
        var thinkingBlocks: [JSON] = []
        var hasSignedReasoning = false
        var calls: [JSON] = []
        for part in response.content {
            switch part {
            case .text(let fragment):
                text += fragment
            case .reasoning(let thought):
                reasoning += thought.text
                var block: JSONObject = ["type": "thinking", "thinking": .string(thought.text)]
                if let signature = thought.signature, !signature.isEmpty {
                    block["signature"] = .string(signature)
                    hasSignedReasoning = true
                }
                thinkingBlocks.append(.object(block))
            case .redactedReasoning(let data):
                thinkingBlocks.append(["type": "redacted_thinking", "data": .string(data)])
                hasSignedReasoning = true
            case .toolCall(let call):
                calls.append([
                    "id": .string(call.id),
                    "type": "function",
                    "function": ["name": .string(call.name), "arguments": .string(call.arguments.isEmpty ? "{}" : call.arguments)],
                ])
            case .image, .toolResult:
                break
            }
        }
        var message: JSONObject = ["role": "assistant"]
        message["content"] = text.isEmpty && !calls.isEmpty ? .null : .string(text)
        if !reasoning.isEmpty { message["reasoning_content"] = .string(reasoning) }
        if hasSignedReasoning { message["thinking_blocks"] = .array(thinkingBlocks) }
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        message["refusal"] = .null

        var body: JSONObject = [
            "id": .string(openAIID(fromUpstream: response.id)),
            "object": "chat.completion",
            "created": JSON(created),
            "model": .string(clientModel),
            "choices": [
                [
                    "index": 0,
                    "message": .object(message),
                    "logprobs": .null,
                    "finish_reason": .string(finishReasonText(response.finishReason ?? .stop)),
                ]
            ],
        ]
        if let usage = response.usage { body["usage"] = encodeUsage(usage) }
        return .object(body)
    }

    /// The OpenAI `finish_reason` for an IR finish reason; unknown reasons become `stop`.
    package static func finishReasonText(_ reason: FinishReason) -> String {
        switch reason {
        case .stop, .stopSequence, .other: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        }
    }

    /// The OpenAI `usage` object for IR usage.
    package static func encodeUsage(_ usage: Usage) -> JSON {
        var encoded: JSONObject = [
            "prompt_tokens": JSON(usage.inputTokens),
            "completion_tokens": JSON(usage.outputTokens),
            "total_tokens": JSON(usage.inputTokens + usage.outputTokens),
            "prompt_tokens_details": ["cached_tokens": JSON(usage.cachedInputTokens ?? 0)],
        ]
        if let reasoning = usage.reasoningTokens {
            encoded["completion_tokens_details"] = ["reasoning_tokens": JSON(reasoning)]
        }
        return .object(encoded)
    }

    /// An OpenAI-style id (`chatcmpl-…`) for an upstream response id, derived from it so logs can be correlated.
    package static func openAIID(fromUpstream id: String) -> String {
        if id.hasPrefix("chatcmpl-") { return id }
        let core = id.hasPrefix("msg_") ? String(id.dropFirst(4)) : id
        return "chatcmpl-" + (core.isEmpty ? randomIDSuffix() : core)
    }
}

/// Builders for the errors an unusable upstream answer produces.
enum UpstreamProblem {
    /// The upstream's 2xx body could not be understood.
    static func invalidResponse(_ detail: String, cause: (any Error)? = nil) -> GatewayError {
        GatewayError(.upstream, code: "upstream_invalid_response", message: "upstream: \(detail)", cause: cause)
    }

    /// The upstream stream ended before its final event.
    static var truncatedStream: GatewayError {
        GatewayError(.upstream, code: "upstream_stream_truncated", message: "the upstream stream ended before completing")
    }
}

/// 24 random letters and digits, for ids the upstream did not supply.
func randomIDSuffix() -> String {
    let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
    var generator = SystemRandomNumberGenerator()
    var bytes: [UInt8] = []
    bytes.reserveCapacity(24)
    for _ in 0..<24 { bytes.append(alphabet[Int(generator.next() % UInt64(alphabet.count))]) }
    return String(decoding: bytes, as: UTF8.self)
}

/// A tool call id for an upstream that sent a call without one.
func generatedToolCallID() -> String {
    "call_" + randomIDSuffix()
}

/// The current time in whole seconds since 1970, for OpenAI's `created` fields.
package func currentUnixTime() -> Int {
    wallClockSeconds()
}

#if canImport(Glibc)
    import Glibc
    private func wallClockSeconds() -> Int { Int(time(nil)) }
#elseif canImport(Musl)
    import Musl
    private func wallClockSeconds() -> Int { Int(time(nil)) }
#elseif canImport(Darwin)
    import Darwin
    private func wallClockSeconds() -> Int { Int(time(nil)) }
#endif
