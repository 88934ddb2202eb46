/// Translates OpenAI Responses `response` objects to and from the IR.
package enum ResponsesResponseCodec {
    // MARK: - Decoding an upstream body

    /// Decodes a whole `response` object from an `openai_responses` upstream.
    ///
    /// A `failed` response becomes an upstream error; `incomplete` because of `max_output_tokens` becomes `length`,
    /// because of `content_filter` becomes `contentFilter`; a turn with function calls becomes `toolCalls`.
    package static func decode(_ body: JSON) throws(GatewayError) -> ChatResponse {
        guard case .object(let object) = body else { throw UpstreamProblem.invalidResponse("the response is not a JSON object") }
        if object["status"] == "failed" {
            throw Translation.decodeStreamError(["error": object["error"] ?? .null], upstream: .openAIResponses)
        }
        guard case .array(let output)? = object["output"] else { throw UpstreamProblem.invalidResponse("the response has no output") }
        var content: [ContentPart] = []
        for item in output {
            switch item["type"]?.stringValue {
            case "reasoning":
                var texts: [String] = []
                if case .array(let summary)? = item["summary"] {
                    texts = summary.compactMap { $0["text"]?.stringValue }
                }
                if texts.isEmpty, case .array(let parts)? = item["content"] {
                    texts = parts.compactMap { $0["text"]?.stringValue }
                }
                let encrypted = item["encrypted_content"]?.stringValue
                if !texts.isEmpty || encrypted != nil {
                    content.append(.reasoning(Reasoning(text: texts.joined(separator: "\n\n"), encryptedContent: encrypted)))
                }
            case "message":
                guard case .array(let parts)? = item["content"] else { continue }
                for part in parts {
                    if let text = part["text"]?.stringValue ?? part["refusal"]?.stringValue, !text.isEmpty { content.append(.text(text)) }
                }
            case "function_call":
                guard let name = item["name"]?.stringValue else { throw UpstreamProblem.invalidResponse("a function_call item has no name") }
                let id = item["call_id"]?.stringValue ?? generatedToolCallID()
                content.append(.toolCall(ToolCall(id: id, name: name, arguments: item["arguments"]?.stringValue ?? "")))
            case "custom_tool_call":
                guard let name = item["name"]?.stringValue else { throw UpstreamProblem.invalidResponse("a custom_tool_call item has no name") }
                let arguments = JSON.object([ResponsesRequestCodec.customToolInputParameter: .string(item["input"]?.stringValue ?? "")]).text
                content.append(.toolCall(ToolCall(id: item["call_id"]?.stringValue ?? generatedToolCallID(), name: name, arguments: arguments)))
            default:
                continue
            }
        }
        let hasToolCalls = content.contains { if case .toolCall = $0 { true } else { false } }
        let finishReason: FinishReason
        if object["status"] == "incomplete" {
            finishReason = incompleteReason(object["incomplete_details"]?["reason"]?.stringValue)
        } else {
            finishReason = hasToolCalls ? .toolCalls : .stop
        }
        return ChatResponse(
            id: object["id"]?.stringValue ?? "",
            model: object["model"]?.stringValue ?? "",
            content: content,
            finishReason: finishReason,
            usage: object["usage"].flatMap(usage(from:)))
    }

    /// The IR finish reason for `incomplete_details.reason`.
    static func incompleteReason(_ reason: String?) -> FinishReason {
        switch reason {
        case "max_output_tokens"?, nil: .length
        case "content_filter"?: .contentFilter
        case let other?: .other(other)
        }
    }

    /// The IR usage for a Responses `usage` object.
    package static func usage(from value: JSON) -> Usage? {
        guard case .object(let usage) = value else { return nil }
        return Usage(
            inputTokens: usage["input_tokens"]?.intValue ?? 0,
            outputTokens: usage["output_tokens"]?.intValue ?? 0,
            cachedInputTokens: usage["input_tokens_details"]?["cached_tokens"]?.intValue,
            reasoningTokens: usage["output_tokens_details"]?["reasoning_tokens"]?.intValue)
    }

    // MARK: - Encoding a client body

    /// Encodes the IR as a Responses `response` object for a Responses client.
    ///
    /// Calls to tools named in `customToolNames` (the client's custom tools) become `custom_tool_call` items
    /// whose `input` is the call's `input` argument; other calls become `function_call` items.
    package static func encode(_ response: ChatResponse, clientModel: String, customToolNames: Set<String>, created: Int) -> JSON {
        let responseID = responseID(fromUpstream: response.id)
        var items = ItemBuilder(responseID: responseID)
        var output: [JSON] = []
        var text = ""
        func flushText() {
            guard !text.isEmpty else { return }
            output.append(items.message(text: text, status: "completed"))
            text = ""
        }
        for part in response.content {
            switch part {
            case .text(let fragment):
                text += fragment
            case .reasoning(let reasoning):
                flushText()
                output.append(items.reasoning(text: reasoning.text, encryptedContent: reasoning.encryptedContent))
            case .toolCall(let call):
                flushText()
                output.append(items.toolCall(call, custom: customToolNames.contains(call.name), status: "completed"))
            case .redactedReasoning, .image, .toolResult:
                continue
            }
        }
        flushText()
        let reason = response.finishReason ?? .stop
        return responseObject(
            id: responseID, clientModel: clientModel, created: created, status: status(for: reason),
            incompleteReason: incompleteReasonText(reason), output: output, usage: response.usage)
    }

    /// `incomplete` for a length or content-filter stop, else `completed`.
    static func status(for reason: FinishReason) -> String {
        incompleteReasonText(reason) == nil ? "completed" : "incomplete"
    }

    static func incompleteReasonText(_ reason: FinishReason) -> String? {
        switch reason {
        case .length: "max_output_tokens"
        case .contentFilter: "content_filter"
        default: nil
        }
    }

    /// A full `response` object with the fields the OpenAI SDKs read.
    static func responseObject(
        id: String, clientModel: String, created: Int, status: String, incompleteReason: String?, output: [JSON], usage: Usage?
    ) -> JSON {
        [
            "id": .string(id),
            "object": "response",
            "created_at": JSON(created),
            "status": .string(status),
            "background": false,
            "error": .null,
            "incomplete_details": incompleteReason.map { ["reason": .string($0)] } ?? .null,
            "instructions": .null,
            "max_output_tokens": .null,
            "model": .string(clientModel),
            "output": .array(output),
            "parallel_tool_calls": true,
            "previous_response_id": .null,
            "reasoning": ["effort": .null, "summary": .null],
            "store": false,
            "temperature": .null,
            "text": ["format": ["type": "text"]],
            "tool_choice": "auto",
            "tools": [],
            "top_p": .null,
            "truncation": "disabled",
            "usage": usage.map(encodeUsage) ?? .null,
            "metadata": [:],
        ]
    }

    /// The Responses `usage` object for IR usage.
    package static func encodeUsage(_ usage: Usage) -> JSON {
        [
            "input_tokens": JSON(usage.inputTokens),
            "input_tokens_details": ["cached_tokens": JSON(usage.cachedInputTokens ?? 0)],
            "output_tokens": JSON(usage.outputTokens),
            "output_tokens_details": ["reasoning_tokens": JSON(usage.reasoningTokens ?? 0)],
            "total_tokens": JSON(usage.inputTokens + usage.outputTokens),
        ]
    }

    /// A Responses id (`resp_…`) for an upstream response id, derived from it so logs can be correlated.
    package static func responseID(fromUpstream id: String) -> String {
        if id.hasPrefix("resp_") { return id }
        var core = Substring(id)
        for prefix in ["chatcmpl-", "msg_"] where core.hasPrefix(prefix) { core = core.dropFirst(prefix.count) }
        let safe = core.filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        return "resp_" + (safe.isEmpty ? randomIDSuffix() : String(safe))
    }
}

/// Builds output items with ids derived from the response id, so whole and streamed responses name items alike.
struct ItemBuilder: Sendable {
    private let stem: String
    private var count = 0

    init(responseID: String) {
        stem = String(responseID.dropFirst("resp_".count))
    }

    /// The next item id with the given prefix (`msg`, `rs`, `fc`, `ctc`).
    mutating func nextID(_ prefix: String) -> String {
        count += 1
        return "\(prefix)_\(stem)_\(count)"
    }

    mutating func message(text: String, status: String) -> JSON {
        Self.message(id: nextID("msg"), text: text, status: status)
    }

    static func message(id: String, text: String?, status: String) -> JSON {
        [
            "id": .string(id), "type": "message", "status": .string(status), "role": "assistant",
            "content": text.map { [outputText($0)] } ?? [],
        ]
    }

    static func outputText(_ text: String) -> JSON {
        ["type": "output_text", "text": .string(text), "annotations": [], "logprobs": []]
    }

    mutating func reasoning(text: String, encryptedContent: String?) -> JSON {
        Self.reasoning(id: nextID("rs"), text: text, encryptedContent: encryptedContent)
    }

    static func reasoning(id: String, text: String?, encryptedContent: String?) -> JSON {
        var item: JSONObject = ["id": .string(id), "type": "reasoning"]
        item["summary"] = text.map { $0.isEmpty ? [] : [["type": "summary_text", "text": .string($0)]] } ?? []
        if let encryptedContent { item["encrypted_content"] = .string(encryptedContent) }
        return .object(item)
    }

    mutating func toolCall(_ call: ToolCall, custom: Bool, status: String) -> JSON {
        Self.toolCall(id: nextID(custom ? "ctc" : "fc"), call: call, custom: custom, status: status)
    }

    static func toolCall(id: String, call: ToolCall, custom: Bool, status: String) -> JSON {
        if custom {
            return [
                "id": .string(id), "type": "custom_tool_call", "status": .string(status), "call_id": .string(call.id),
                "name": .string(call.name), "input": .string(customInput(fromArguments: call.arguments)),
            ]
        }
        return [
            "id": .string(id), "type": "function_call", "status": .string(status), "call_id": .string(call.id),
            "name": .string(call.name), "arguments": .string(call.arguments.isEmpty ? "{}" : call.arguments),
        ]
    }

    /// The raw input of a custom tool call: the `input` string argument, or the arguments text when the model
    /// did not produce that shape.
    static func customInput(fromArguments arguments: String) -> String {
        if let parsed = try? JSON.parse(arguments), let input = parsed[ResponsesRequestCodec.customToolInputParameter]?.stringValue {
            return input
        }
        return arguments
    }
}
