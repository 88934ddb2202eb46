/// How an Anthropic-format upstream is asked to think.
package enum AnthropicThinkingStyle: Sendable, Hashable {
    /// `thinking: {type: enabled, budget_tokens: N}`: Claude models up to 4.6.
    case budgetTokens
    /// `thinking: {type: adaptive}` with `output_config.effort`: required by Claude Opus 4.7 and later.
    case adaptive
}

/// Translates Anthropic Messages request bodies to and from the IR.
///
/// `decode` validates a client body and rejects, with a 400 naming the field, what an OpenAI-format upstream
/// cannot honour; `encode` builds the body for an Anthropic-format upstream, merging consecutive turns of
/// one role and filling `max_tokens`. docs/translation.md lists every field and what becomes of it.
package enum AnthropicRequestCodec {
    // MARK: - Decoding a client body

    /// Decodes and validates an Anthropic Messages request body.
    package static func decode(_ body: JSON) throws(GatewayError) -> ChatRequest {
        let reader = try FieldReader(body: body)
        let model = try reader.requiredString("model")
        guard !model.isEmpty else { throw RequestProblem.invalidValue("model", "must not be empty") }
        try rejectUntranslatableFields(reader)

        let messageValues = try reader.requiredNonEmptyArray("messages", of: "message")
        var messages: [ChatMessage] = []
        messages.reserveCapacity(messageValues.count)
        for (index, value) in messageValues.enumerated() {
            let message = try FieldReader(value, path: "messages[\(index)]")
            let role: ChatMessage.Role
            switch try message.requiredString("role") {
            case "user": role = .user
            case "assistant": role = .assistant
            case let other:
                throw RequestProblem.invalidValue(message.path("role"), "must be \"user\" or \"assistant\", but it is \"\(other)\"")
            }
            messages.append(ChatMessage(role: role, parts: try content(message, role: role)))
        }

        var request = ChatRequest(model: model, system: try system(reader), messages: messages)
        request.tools = try tools(reader)
        (request.toolChoice, request.parallelToolCalls) = try toolChoice(reader)
        request.generation = try generationSettings(reader)
        request.reasoning = try reasoning(reader)
        request.stream = try reader.bool("stream") ?? false
        request.includeUsage = true
        return request
    }

    static func rejectUntranslatableFields(_ reader: FieldReader) throws(GatewayError) {
        let target = "the OpenAI Chat Completions API this model is served through"
        for field in ["mcp_servers", "container"] where reader.value(field) != nil {
            throw RequestProblem.unsupported(field, "\(field) is not supported: \(target) has no equivalent")
        }
        if let config = try reader.object("output_config") {
            for member in config.object where member.key != "effort" && !member.value.isNull {
                throw RequestProblem.unsupported(
                    config.path(member.key), "\(config.path(member.key)) is not supported: \(target) has no equivalent")
            }
        }
    }

    static func system(_ reader: FieldReader) throws(GatewayError) -> [String] {
        guard let system = reader.value("system") else { return [] }
        switch system {
        case .string(let text):
            return [text]
        case .array(let blocks):
            var texts: [String] = []
            for (index, value) in blocks.enumerated() {
                let block = try FieldReader(value, path: "system[\(index)]")
                let type = try block.requiredString("type")
                guard type == "text" else {
                    throw RequestProblem.invalidValue(block.path("type"), "must be \"text\", but it is \"\(type)\"")
                }
                texts.append(try block.requiredString("text"))
            }
            return texts
        default:
            throw RequestProblem.wrongType("system", expected: "a string or an array of text blocks", found: system)
        }
    }

    static func content(_ message: FieldReader, role: ChatMessage.Role) throws(GatewayError) -> [ContentPart] {
        guard let content = message.value("content") else { throw RequestProblem.missing(message.path("content")) }
        switch content {
        case .string(let text):
            return [.text(text)]
        case .array(let blocks):
            var parts: [ContentPart] = []
            parts.reserveCapacity(blocks.count)
            for (index, value) in blocks.enumerated() {
                let block = try FieldReader(value, path: message.path("content") + "[\(index)]")
                parts.append(try contentBlock(block, role: role))
            }
            return parts
        default:
            throw RequestProblem.wrongType(message.path("content"), expected: "a string or an array of content blocks", found: content)
        }
    }

    static func contentBlock(_ block: FieldReader, role: ChatMessage.Role) throws(GatewayError) -> ContentPart {
        let type = try block.requiredString("type")
        switch type {
        case "text":
            return .text(try block.requiredString("text"))
        case "image":
            return .image(try imageSource(block))
        case "tool_use" where role == .assistant:
            let id = try block.requiredString("id")
            let name = try block.requiredString("name")
            let input = block.value("input") ?? .object([:])
            guard case .object = input else {
                throw RequestProblem.wrongType(block.path("input"), expected: "an object", found: input)
            }
            return .toolCall(ToolCall(id: id, name: name, arguments: input.text))
        case "tool_result" where role == .user:
            let id = try block.requiredString("tool_use_id")
            var content: [ContentPart] = []
            if let value = block.value("content") {
                switch value {
                case .string(let text):
                    content = [.text(text)]
                case .array(let items):
                    for (index, item) in items.enumerated() {
                        let inner = try FieldReader(item, path: block.path("content") + "[\(index)]")
                        switch try inner.requiredString("type") {
                        case "text": content.append(.text(try inner.requiredString("text")))
                        case "image": content.append(.image(try imageSource(inner)))
                        case let other:
                            throw RequestProblem.unsupported(
                                inner.path("type"),
                                "\(inner.path("type")): \"\(other)\" blocks in tool results cannot be translated to the OpenAI Chat Completions API; send text or images")
                        }
                    }
                default:
                    throw RequestProblem.wrongType(block.path("content"), expected: "a string or an array of content blocks", found: value)
                }
            }
            return .toolResult(ToolResult(toolCallID: id, content: content, isError: try block.bool("is_error") ?? false))
        case "thinking" where role == .assistant:
            return .reasoning(Reasoning(text: try block.string("thinking") ?? "", signature: try block.string("signature")))
        case "redacted_thinking" where role == .assistant:
            return .redactedReasoning(data: try block.requiredString("data"))
        case "tool_use", "tool_result", "thinking", "redacted_thinking":
            throw RequestProblem.invalidValue(block.path("type"), "\"\(type)\" blocks are not allowed in \(role.rawValue) messages")
        default:
            throw RequestProblem.unsupported(
                block.path("type"),
                "\(block.path("type")): \"\(type)\" blocks cannot be translated to the OpenAI Chat Completions API this model is served through")
        }
    }

    static func imageSource(_ block: FieldReader) throws(GatewayError) -> ImageSource {
        let source = try block.requiredObject("source")
        switch try source.requiredString("type") {
        case "base64":
            return .base64(mediaType: try source.requiredString("media_type"), data: try source.requiredString("data"))
        case "url":
            return .url(try source.requiredString("url"))
        case let other:
            throw RequestProblem.unsupported(
                source.path("type"), "\(source.path("type")): image sources of type \"\(other)\" cannot be translated; send base64 data or a URL")
        }
    }

    static func tools(_ reader: FieldReader) throws(GatewayError) -> [ToolDefinition] {
        guard let values = try reader.array("tools") else { return [] }
        var tools: [ToolDefinition] = []
        tools.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            let tool = try FieldReader(value, path: "tools[\(index)]")
            if let type = try tool.string("type"), type != "custom" {
                throw RequestProblem.unsupported(
                    tool.path("type"),
                    "\(tool.path("type")): the server tool \"\(type)\" has no equivalent in the OpenAI Chat Completions API this model is served through")
            }
            let name = try tool.requiredString("name")
            guard let schema = tool.value("input_schema") else { throw RequestProblem.missing(tool.path("input_schema")) }
            guard case .object = schema else {
                throw RequestProblem.wrongType(tool.path("input_schema"), expected: "an object (a JSON schema)", found: schema)
            }
            tools.append(ToolDefinition(name: name, description: try tool.string("description"), parameters: schema))
        }
        return tools
    }

    static func toolChoice(_ reader: FieldReader) throws(GatewayError) -> (ToolChoice?, Bool?) {
        guard let choice = try reader.object("tool_choice") else { return (nil, nil) }
        let parallel = try choice.bool("disable_parallel_tool_use").map { !$0 }
        switch try choice.requiredString("type") {
        case "auto": return (.auto, parallel)
        case "any": return (.required, parallel)
        case "none": return (ToolChoice.none, parallel)
        case "tool": return (.tool(name: try choice.requiredString("name")), parallel)
        case let other:
            throw RequestProblem.invalidValue(choice.path("type"), "must be \"auto\", \"any\", \"tool\" or \"none\", but it is \"\(other)\"")
        }
    }

    static func generationSettings(_ reader: FieldReader) throws(GatewayError) -> GenerationSettings {
        var settings = GenerationSettings()
        settings.maxTokens = try reader.int("max_tokens", atLeast: 1)
        settings.temperature = try reader.number("temperature", in: 0...1)
        settings.topP = try reader.number("top_p", in: 0...1)
        settings.topK = try reader.int("top_k", atLeast: 1)
        if let sequences = try reader.array("stop_sequences") {
            for (index, sequence) in sequences.enumerated() {
                guard case .string(let text) = sequence else {
                    throw RequestProblem.wrongType("stop_sequences[\(index)]", expected: "a string", found: sequence)
                }
                settings.stopSequences.append(text)
            }
        }
        settings.user = try reader.object("metadata")?.string("user_id")
        return settings
    }

    static func reasoning(_ reader: FieldReader) throws(GatewayError) -> ReasoningSetting? {
        var effort: ReasoningEffort?
        if let config = try reader.object("output_config"), let level = try config.string("effort") {
            switch level {
            case "low": effort = .low
            case "medium": effort = .medium
            case "high": effort = .high
            case "max", "xhigh": effort = .xhigh
            default:
                throw RequestProblem.invalidValue(config.path("effort"), "must be one of low, medium, high or max, but it is \"\(level)\"")
            }
        }
        guard let thinking = try reader.object("thinking") else { return effort.map(ReasoningSetting.effort) }
        switch try thinking.requiredString("type") {
        case "enabled":
            guard let budget = try thinking.int("budget_tokens", atLeast: 1) else {
                throw RequestProblem.missing(thinking.path("budget_tokens"))
            }
            return effort.map(ReasoningSetting.effort) ?? .budget(tokens: budget)
        case "disabled":
            return .disabled
        case "adaptive":
            return .adaptive(effort: effort)
        case let other:
            throw RequestProblem.invalidValue(thinking.path("type"), "must be \"enabled\", \"disabled\" or \"adaptive\", but it is \"\(other)\"")
        }
    }

    // MARK: - Encoding an upstream body

    /// Encodes the IR as an Anthropic Messages body for an Anthropic-format upstream.
    ///
    /// `max_tokens` is the client's limit or `defaultMaxTokens`; see docs/translation.md for how a thinking
    /// budget interacts with it.
    package static func encode(
        _ request: ChatRequest, defaultMaxTokens: Int, thinkingStyle: AnthropicThinkingStyle = .budgetTokens
    ) throws(GatewayError) -> JSON {
        let messages = try encodeMessages(request.messages)
        var maxTokens = request.generation.maxTokens ?? defaultMaxTokens
        var thinking: JSON?
        var effortLevel: String?
        if let reasoning = request.reasoning, reasoning != .disabled {
            let (budget, effort) = thinkingRequest(reasoning, style: thinkingStyle)
            effortLevel = effort
            if var budget {
                if request.generation.maxTokens == nil, budget >= maxTokens {
                    maxTokens = budget + defaultMaxTokens
                } else if budget >= maxTokens {
                    budget = maxTokens - 1
                }
                guard budget >= 1024 else {
                    let parameter = if case .budget = reasoning { "thinking.budget_tokens" } else { "reasoning_effort" }
                    throw RequestProblem.unsupported(
                        parameter,
                        "reasoning needs max_tokens above 1024 on the Anthropic Messages API this model is served through (the thinking budget must be at least 1024 tokens and below max_tokens, which is \(maxTokens)); raise the token limit or turn reasoning off")
                }
                thinking = ["type": "enabled", "budget_tokens": JSON(budget)]
            } else {
                thinking = ["type": "adaptive"]
            }
            if !lastAssistantTurnCanContinueThinking(messages) {
                thinking = nil
                effortLevel = nil
            }
        }

        var body = JSONObject()
        body["model"] = .string(request.model)
        body["max_tokens"] = JSON(maxTokens)
        let systemParts = request.system.filter { !$0.isEmpty }
        if systemParts.count == 1 {
            body["system"] = .string(systemParts[0])
        } else if systemParts.count > 1 {
            body["system"] = .array(systemParts.map { ["type": "text", "text": .string($0)] })
        }
        body["messages"] = .array(messages)
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map(encodeTool))
            if var choice = encodeToolChoice(request.toolChoice) {
                if request.parallelToolCalls == false, request.toolChoice != ToolChoice.none {
                    choice["disable_parallel_tool_use"] = true
                }
                body["tool_choice"] = .object(choice)
            } else if request.parallelToolCalls == false {
                body["tool_choice"] = ["type": "auto", "disable_parallel_tool_use": true]
            }
        }
        if let thinking { body["thinking"] = thinking }
        if let effortLevel { body["output_config"] = ["effort": .string(effortLevel)] }
        let settings = request.generation
        if !settings.stopSequences.isEmpty { body["stop_sequences"] = .array(settings.stopSequences.map(JSON.string)) }
        if let temperature = settings.temperature {
            guard temperature <= 1 else {
                throw RequestProblem.unsupported(
                    "temperature",
                    "temperature must be between 0 and 1 on the Anthropic Messages API this model is served through, but it is \(FieldReader.format(temperature))")
            }
            body["temperature"] = JSON(temperature)
        }
        if let topP = settings.topP { body["top_p"] = JSON(topP) }
        if let topK = settings.topK { body["top_k"] = JSON(topK) }
        if let user = settings.user { body["metadata"] = ["user_id": .string(user)] }
        if request.stream { body["stream"] = true }
        return .object(body)
    }

    /// The thinking budget (nil for adaptive thinking) and the `output_config.effort` level for a reasoning setting.
    static func thinkingRequest(_ reasoning: ReasoningSetting, style: AnthropicThinkingStyle) -> (budget: Int?, effort: String?) {
        switch (reasoning, style) {
        case (.disabled, _): (nil, nil)
        case (.budget(let tokens), .budgetTokens): (tokens, nil)
        case (.budget(let tokens), .adaptive): (nil, anthropicEffort(ReasoningEffort(thinkingBudget: tokens)))
        case (.effort(let effort), .budgetTokens): (effort.thinkingBudget, nil)
        case (.effort(let effort), .adaptive): (nil, anthropicEffort(effort))
        case (.adaptive(let effort), .budgetTokens): ((effort ?? .medium).thinkingBudget, nil)
        case (.adaptive(let effort), .adaptive): (nil, effort.map(anthropicEffort))
        }
    }

    /// The `output_config.effort` level for an effort: minimal and low → low, xhigh → max.
    static func anthropicEffort(_ effort: ReasoningEffort) -> String {
        switch effort {
        case .minimal, .low: "low"
        case .medium: "medium"
        case .high: "high"
        case .xhigh: "max"
        }
    }

    /// Anthropic rejects thinking when the final assistant turn calls tools without starting with a signed
    /// thinking block (which a client in another dialect usually cannot send back); thinking is then left off.
    static func lastAssistantTurnCanContinueThinking(_ messages: [JSON]) -> Bool {
        guard let last = messages.last(where: { $0["role"] == "assistant" }), case .array(let blocks)? = last["content"] else {
            return true
        }
        guard blocks.contains(where: { $0["type"] == "tool_use" }) else { return true }
        let firstType = blocks.first?["type"]
        return firstType == "thinking" || firstType == "redacted_thinking"
    }

    /// Messages with consecutive turns of one role merged, empty text dropped, and tool results first in user turns.
    static func encodeMessages(_ messages: [ChatMessage]) throws(GatewayError) -> [JSON] {
        var roles: [ChatMessage.Role] = []
        var contents: [[JSON]] = []
        roles.reserveCapacity(messages.count)
        contents.reserveCapacity(messages.count)
        for message in messages {
            var blocks: [JSON] = []
            blocks.reserveCapacity(message.parts.count)
            for part in message.parts {
                if let block = try encodeBlock(part) { blocks.append(block) }
            }
            if blocks.isEmpty { continue }
            if roles.last == message.role {
                contents[contents.count - 1].append(contentsOf: blocks)
            } else {
                roles.append(message.role)
                contents.append(blocks)
            }
        }
        var encoded: [JSON] = []
        encoded.reserveCapacity(roles.count)
        for (role, var blocks) in zip(roles, contents) {
            if role == .user, let firstOther = blocks.firstIndex(where: { $0["type"] != "tool_result" }),
                blocks[firstOther...].contains(where: { $0["type"] == "tool_result" })
            {
                let results = blocks.filter { $0["type"] == "tool_result" }
                blocks = results + blocks.filter { $0["type"] != "tool_result" }
            }
            if role == .user, blocks.count == 1, case .string(let text)? = blocks[0]["text"], blocks[0]["type"] == "text" {
                encoded.append(["role": "user", "content": .string(text)])
            } else {
                encoded.append(["role": .string(role.rawValue), "content": .array(blocks)])
            }
        }
        return encoded
    }

    /// One content block, or nil for parts Anthropic would reject and that carry nothing it can use
    /// (empty text, reasoning without a signature).
    static func encodeBlock(_ part: ContentPart) throws(GatewayError) -> JSON? {
        switch part {
        case .text(let text):
            return text.isEmpty ? nil : ["type": "text", "text": .string(text)]
        case .image(let source):
            return ["type": "image", "source": encodeImageSource(source)]
        case .toolCall(let call):
            return ["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": try toolInput(call)]
        case .toolResult(let result):
            var block: JSONObject = ["type": "tool_result", "tool_use_id": .string(result.toolCallID)]
            let content = result.content.filter { if case .text(let text) = $0 { !text.isEmpty } else { true } }
            if content.count == 1, case .text(let text) = content[0] {
                block["content"] = .string(text)
            } else if !content.isEmpty {
                var items: [JSON] = []
                for item in content {
                    switch item {
                    case .text(let text): items.append(["type": "text", "text": .string(text)])
                    case .image(let source): items.append(["type": "image", "source": encodeImageSource(source)])
                    default: break
                    }
                }
                block["content"] = .array(items)
            }
            if result.isError { block["is_error"] = true }
            return .object(block)
        case .reasoning(let reasoning):
            guard let signature = reasoning.signature, !signature.isEmpty else { return nil }
            return ["type": "thinking", "thinking": .string(reasoning.text), "signature": .string(signature)]
        case .redactedReasoning(let data):
            return ["type": "redacted_thinking", "data": .string(data)]
        }
    }

    static func encodeImageSource(_ source: ImageSource) -> JSON {
        switch source {
        case .base64(let mediaType, let data): ["type": "base64", "media_type": .string(mediaType), "data": .string(data)]
        case .url(let url): ["type": "url", "url": .string(url)]
        }
    }

    /// A tool call's arguments as the `input` object Anthropic wants; empty arguments mean `{}`.
    static func toolInput(_ call: ToolCall) throws(GatewayError) -> JSON {
        if call.arguments.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([:]) }
        guard let input = try? JSON.parse(call.arguments), case .object = input else {
            throw GatewayError(
                .invalidRequest, code: "invalid_value",
                message: "the arguments of tool call \(call.id) must be a JSON object encoded as a string",
                parameter: "tool_calls")
        }
        return input
    }

    static func encodeTool(_ tool: ToolDefinition) -> JSON {
        var encoded: JSONObject = ["name": .string(tool.name)]
        if let description = tool.description { encoded["description"] = .string(description) }
        encoded["input_schema"] = tool.parameters
        return .object(encoded)
    }

    static func encodeToolChoice(_ choice: ToolChoice?) -> JSONObject? {
        switch choice {
        case nil: nil
        case .auto?: ["type": "auto"]
        case .none?: ["type": "none"]
        case .required?: ["type": "any"]
        case .tool(let name)?: ["type": "tool", "name": .string(name)]
        }
    }
}
