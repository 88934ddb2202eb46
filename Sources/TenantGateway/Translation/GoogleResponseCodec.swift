/// Translates Google GenAI `GenerateContentResponse` bodies to and from the IR.
package enum GoogleResponseCodec {
    // MARK: - Decoding an upstream body

    /// Decodes a whole `GenerateContentResponse` from a Google-format upstream (the first candidate).
    ///
    /// A response blocked before generation (`promptFeedback.blockReason`, no candidates) becomes an empty
    /// answer finished by the content filter. Google reports a turn that called functions as `STOP`; it is
    /// reported as `toolCalls`.
    package static func decode(_ body: JSON) throws(GatewayError) -> ChatResponse {
        guard case .object(let object) = body else { throw UpstreamProblem.invalidResponse("the response is not a JSON object") }
        let candidate = object["candidates"]?.arrayValue?.first?.objectValue
        if candidate == nil, object["promptFeedback"]?["blockReason"] == nil {
            throw UpstreamProblem.invalidResponse("the response has no candidates")
        }
        var content: [ContentPart] = []
        var hasToolCalls = false
        for part in candidate?["content"]?["parts"]?.arrayValue ?? [] {
            hasToolCalls = appendPart(part, to: &content) || hasToolCalls
        }
        var finish: FinishReason? = candidate?["finishReason"]?.stringValue.map(finishReason(from:))
        if candidate == nil { finish = .contentFilter }
        if hasToolCalls, finish == .stop || finish == nil { finish = .toolCalls }
        return ChatResponse(
            id: object["responseId"]?.stringValue ?? "",
            model: object["modelVersion"]?.stringValue ?? "",
            content: content,
            finishReason: finish,
            usage: object["usageMetadata"].flatMap(usage(from:)))
    }

    /// Appends the IR parts for one Google part; returns whether it was a function call.
    @discardableResult
    static func appendPart(_ part: JSON, to content: inout [ContentPart]) -> Bool {
        let signature = part["thoughtSignature"]?.stringValue
        if let call = part["functionCall"]?.objectValue {
            if let signature { content.append(GoogleRequestCodec.reasoningCarrying(signature)) }
            let name = call["name"]?.stringValue ?? ""
            content.append(.toolCall(ToolCall(id: call["id"]?.stringValue ?? generatedToolCallID(), name: name, arguments: (call["args"] ?? .object([:])).text)))
            return true
        }
        let text = part["text"]?.stringValue
        if part["thought"]?.boolValue == true {
            GoogleRequestCodec.appendThought(text: text ?? "", signature: signature, to: &content)
        } else if let text {
            if let signature { content.append(GoogleRequestCodec.reasoningCarrying(signature)) }
            if !text.isEmpty { content.append(.text(text)) }
        }
        return false
    }

    /// The IR finish reason for a Google `finishReason`.
    package static func finishReason(from value: String) -> FinishReason {
        switch value {
        case "STOP": .stop
        case "MAX_TOKENS": .length
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
            .contentFilter
        default: .other(value)
        }
    }

    /// The IR usage for `usageMetadata`: input is the prompt count (cached tokens included, as Google counts
    /// them), output is candidates plus thoughts.
    package static func usage(from value: JSON) -> Usage? {
        guard case .object(let metadata) = value else { return nil }
        let thoughts = metadata["thoughtsTokenCount"]?.intValue
        return Usage(
            inputTokens: (metadata["promptTokenCount"]?.intValue ?? 0) + (metadata["toolUsePromptTokenCount"]?.intValue ?? 0),
            outputTokens: (metadata["candidatesTokenCount"]?.intValue ?? 0) + (thoughts ?? 0),
            cachedInputTokens: metadata["cachedContentTokenCount"]?.intValue,
            reasoningTokens: thoughts)
    }

    // MARK: - Encoding a client body

    /// Encodes the IR as a `GenerateContentResponse` for a Google client.
    ///
    /// Tool calls keep their upstream id as `functionCall.id`, which Google clients echo in the
    /// `functionResponse`. Arguments that are not a JSON object make the response unusable (502).
    package static func encode(_ response: ChatResponse, clientModel: String) throws(GatewayError) -> JSON {
        var parts: [JSON] = []
        var pendingSignature: String?
        for part in response.content {
            switch part {
            case .text(let text):
                var object: JSONObject = ["text": .string(text)]
                if let signature = pendingSignature { object["thoughtSignature"] = .string(signature) }
                pendingSignature = nil
                if text.isEmpty, object["thoughtSignature"] == nil { continue }
                parts.append(.object(object))
            case .reasoning(let reasoning):
                if let signature = pendingSignature { parts.append(thoughtSignaturePart(signature)) }
                pendingSignature = nil
                if reasoning.text.isEmpty, let signature = reasoning.signature, !signature.isEmpty {
                    pendingSignature = signature
                    continue
                }
                var object: JSONObject = ["text": .string(reasoning.text), "thought": true]
                if let signature = reasoning.signature, !signature.isEmpty { object["thoughtSignature"] = .string(signature) }
                parts.append(.object(object))
            case .redactedReasoning(let data):
                if let signature = pendingSignature { parts.append(thoughtSignaturePart(signature)) }
                pendingSignature = nil
                parts.append(thoughtSignaturePart(GoogleRequestCodec.redactedThinkingPrefix + data))
            case .toolCall(let call):
                var object: JSONObject = ["functionCall": try functionCall(id: call.id, name: call.name, arguments: call.arguments)]
                if let signature = pendingSignature { object["thoughtSignature"] = .string(signature) }
                pendingSignature = nil
                parts.append(.object(object))
            case .image, .toolResult:
                break
            }
        }
        if let signature = pendingSignature { parts.append(thoughtSignaturePart(signature)) }
        if parts.isEmpty { parts.append(["text": ""]) }
        var body: JSONObject = [
            "candidates": [
                [
                    "content": ["parts": .array(parts), "role": "model"],
                    "finishReason": .string(finishReasonText(response.finishReason ?? .stop)),
                    "index": 0,
                ]
            ]
        ]
        body["usageMetadata"] = encodeUsage(response.usage ?? Usage(inputTokens: 0, outputTokens: 0))
        body["modelVersion"] = .string(clientModel)
        body["responseId"] = .string(response.id.isEmpty ? randomIDSuffix() : response.id)
        return .object(body)
    }

    /// An empty thought part that carries a signature.
    static func thoughtSignaturePart(_ signature: String) -> JSON {
        ["text": "", "thought": true, "thoughtSignature": .string(signature)]
    }

    /// A `functionCall` object; arguments must be a JSON object (empty means `{}`).
    static func functionCall(id: String, name: String, arguments: String) throws(GatewayError) -> JSON {
        let args: JSON
        if arguments.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            args = .object([:])
        } else if let parsed = try? JSON.parse(arguments), case .object = parsed {
            args = parsed
        } else {
            throw UpstreamProblem.invalidResponse("the model called tool \"\(name)\" with arguments that are not a JSON object")
        }
        return ["id": .string(id), "name": .string(name), "args": args]
    }

    /// The Google `finishReason` for an IR finish reason: stops of every kind, tool calls included, are `STOP`.
    package static func finishReasonText(_ reason: FinishReason) -> String {
        switch reason {
        case .stop, .stopSequence, .toolCalls: "STOP"
        case .length: "MAX_TOKENS"
        case .contentFilter: "SAFETY"
        case .other(let value): value == "MALFORMED_FUNCTION_CALL" ? value : "STOP"
        }
    }

    /// The `usageMetadata` object for IR usage: candidates exclude thoughts, and the total adds both to the prompt.
    package static func encodeUsage(_ usage: Usage) -> JSON {
        let thoughts = usage.reasoningTokens ?? 0
        var metadata: JSONObject = [
            "promptTokenCount": JSON(usage.inputTokens),
            "candidatesTokenCount": JSON(max(0, usage.outputTokens - thoughts)),
            "totalTokenCount": JSON(usage.inputTokens + usage.outputTokens),
        ]
        if let cached = usage.cachedInputTokens, cached > 0 { metadata["cachedContentTokenCount"] = JSON(cached) }
        if let reasoning = usage.reasoningTokens, reasoning > 0 { metadata["thoughtsTokenCount"] = JSON(reasoning) }
        return .object(metadata)
    }
}
