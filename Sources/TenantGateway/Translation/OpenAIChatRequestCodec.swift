/// Translates OpenAI Chat Completions request bodies to and from the IR.
///
/// `decode` validates a client body and rejects, with a 400 naming the field, everything that would change the
/// model's behaviour but has no Anthropic equivalent; `encode` builds the body for an OpenAI-format upstream.
/// docs/translation.md lists every field and what becomes of it.
package enum OpenAIChatRequestCodec {
    // MARK: - Decoding a client body

    /// Decodes and validates an OpenAI Chat Completions request body.
    package static func decode(_ body: JSON) throws(GatewayError) -> ChatRequest {
        let reader = try FieldReader(body: body)
        let model = try reader.requiredString("model")
        guard !model.isEmpty else { throw RequestProblem.invalidValue("model", "must not be empty") }
        try rejectUntranslatableFields(reader)

        let messageValues = try reader.requiredNonEmptyArray("messages", of: "message")
        var system: [String] = []
        var messages: [ChatMessage] = []
        messages.reserveCapacity(messageValues.count)
        for (index, value) in messageValues.enumerated() {
            let message = try FieldReader(value, path: "messages[\(index)]")
            let role = try message.requiredString("role")
            switch role {
            case "system", "developer":
                system.append(contentsOf: try textOnlyContent(message, required: true))
            case "user":
                messages.append(ChatMessage(role: .user, parts: try userContent(message)))
            case "assistant":
                messages.append(ChatMessage(role: .assistant, parts: try assistantContent(message)))
            case "tool":
                let id = try message.requiredString("tool_call_id")
                let content = try textOnlyContent(message, required: true).map(ContentPart.text)
                messages.append(ChatMessage(role: .user, parts: [.toolResult(ToolResult(toolCallID: id, content: content))]))
            case "function":
                throw RequestProblem.unsupported(
                    message.path("role"),
                    "\(message.path("role")): the deprecated \"function\" role cannot be translated; send tool results as \"tool\" messages")
            default:
                throw RequestProblem.invalidValue(
                    message.path("role"), "must be one of system, developer, user, assistant or tool, but it is \"\(role)\"")
            }
        }

        var request = ChatRequest(model: model, system: system, messages: messages)
        request.tools = try tools(reader)
        request.toolChoice = try toolChoice(reader)
        request.parallelToolCalls = try reader.bool("parallel_tool_calls")
        request.generation = try generationSettings(reader)
        request.reasoning = try reasoning(reader)
        request.stream = try reader.bool("stream") ?? false
        request.includeUsage = try reader.object("stream_options")?.bool("include_usage") ?? false
        return request
    }

    /// Rejects fields that change behaviour but have no Anthropic equivalent; harmless ones are left alone.
    static func rejectUntranslatableFields(_ reader: FieldReader) throws(GatewayError) {
        let target = "the Anthropic Messages API this model is served through"
        if let n = try reader.int("n"), n != 1 {
            throw RequestProblem.unsupported("n", "n=\(n) is not supported: \(target) returns one choice per request; send n=1 or omit n")
        }
        if try reader.bool("logprobs") == true {
            throw RequestProblem.unsupported("logprobs", "logprobs is not supported: \(target) does not return token log probabilities")
        }
        if let top = try reader.int("top_logprobs"), top > 0 {
            throw RequestProblem.unsupported("top_logprobs", "top_logprobs is not supported: \(target) does not return token log probabilities")
        }
        if let format = try reader.object("response_format") {
            let type = try format.requiredString("type")
            if type != "text" {
                throw RequestProblem.unsupported(
                    "response_format",
                    "response_format of type \"\(type)\" is not supported: \(target) has no equivalent to enforce it; describe the format in the prompt or use a tool")
            }
        }
        for penalty in ["frequency_penalty", "presence_penalty"] {
            if let value = try reader.number(penalty), value != 0 {
                throw RequestProblem.unsupported(penalty, "\(penalty) is not supported: \(target) has no equivalent; omit it or send 0")
            }
        }
        if let bias = reader.value("logit_bias") {
            guard case .object(let object) = bias else {
                throw RequestProblem.wrongType("logit_bias", expected: "an object", found: bias)
            }
            if !object.isEmpty {
                throw RequestProblem.unsupported("logit_bias", "logit_bias is not supported: \(target) has no equivalent")
            }
        }
        if reader.value("audio") != nil {
            throw RequestProblem.unsupported("audio", "audio output is not supported: \(target) produces text only")
        }
        if let modalities = try reader.array("modalities") {
            for (index, modality) in modalities.enumerated() where modality != .string("text") {
                throw RequestProblem.unsupported(
                    "modalities[\(index)]", "modalities may only contain \"text\": \(target) produces text only")
            }
        }
        if reader.value("web_search_options") != nil {
            throw RequestProblem.unsupported("web_search_options", "web_search_options is not supported: \(target) has no built-in equivalent")
        }
        for legacy in ["functions", "function_call"] where reader.value(legacy) != nil {
            throw RequestProblem.unsupported(legacy, "\(legacy) is deprecated and not translated; use tools and tool_choice")
        }
    }

    static func generationSettings(_ reader: FieldReader) throws(GatewayError) -> GenerationSettings {
        var settings = GenerationSettings()
        let maxCompletionTokens = try reader.int("max_completion_tokens", atLeast: 1)
        let maxTokens = try reader.int("max_tokens", atLeast: 1)
        settings.maxTokens = maxCompletionTokens ?? maxTokens
        settings.temperature = try reader.number("temperature", in: 0...2)
        settings.topP = try reader.number("top_p", in: 0...1)
        if let topK = try reader.int("top_k"), topK > 0 { settings.topK = topK }
        if let stop = reader.value("stop") {
            switch stop {
            case .string(let sequence):
                settings.stopSequences = [sequence]
            case .array(let sequences):
                for (index, sequence) in sequences.enumerated() {
                    guard case .string(let text) = sequence else {
                        throw RequestProblem.wrongType("stop[\(index)]", expected: "a string", found: sequence)
                    }
                    settings.stopSequences.append(text)
                }
            default:
                throw RequestProblem.wrongType("stop", expected: "a string or an array of strings", found: stop)
            }
        }
        let safetyIdentifier = try reader.string("safety_identifier")
        settings.user = try reader.string("user") ?? safetyIdentifier
        return settings
    }

    static func reasoning(_ reader: FieldReader) throws(GatewayError) -> ReasoningSetting? {
        guard let effort = try reader.string("reasoning_effort") else { return nil }
        if effort == "none" { return ReasoningSetting.disabled }
        guard let level = ReasoningEffort(rawValue: effort) else {
            throw RequestProblem.invalidValue(
                "reasoning_effort", "must be one of none, minimal, low, medium, high or xhigh, but it is \"\(effort)\"")
        }
        return .effort(level)
    }

    static func tools(_ reader: FieldReader) throws(GatewayError) -> [ToolDefinition] {
        guard let values = try reader.array("tools") else { return [] }
        var tools: [ToolDefinition] = []
        tools.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            let tool = try FieldReader(value, path: "tools[\(index)]")
            let type = try tool.string("type") ?? "function"
            guard type == "function" else {
                throw RequestProblem.unsupported(
                    tool.path("type"),
                    "\(tool.path("type")): tools of type \"\(type)\" are not supported by the Anthropic Messages API this model is served through; only \"function\" tools are translated")
            }
            let function = try tool.requiredObject("function")
            let name = try function.requiredString("name")
            let description = try function.string("description")
            var parameters = JSON.object(["type": "object", "properties": [:]])
            if let schema = function.value("parameters") {
                guard case .object = schema else {
                    throw RequestProblem.wrongType(function.path("parameters"), expected: "an object (a JSON schema)", found: schema)
                }
                parameters = schema
            }
            _ = try function.bool("strict")
            tools.append(ToolDefinition(name: name, description: description, parameters: parameters))
        }
        return tools
    }

    static func toolChoice(_ reader: FieldReader) throws(GatewayError) -> ToolChoice? {
        guard let value = reader.value("tool_choice") else { return nil }
        switch value {
        case .string("auto"): return ToolChoice.auto
        case .string("none"): return ToolChoice.none
        case .string("required"): return ToolChoice.required
        case .string(let other):
            throw RequestProblem.invalidValue("tool_choice", "must be \"auto\", \"none\", \"required\" or a function object, but it is \"\(other)\"")
        case .object(let object):
            let choice = FieldReader(object, path: "tool_choice")
            let type = try choice.requiredString("type")
            guard type == "function" else {
                throw RequestProblem.unsupported(
                    "tool_choice.type", "tool_choice.type \"\(type)\" is not supported; use \"auto\", \"none\", \"required\" or a named function")
            }
            return .tool(name: try choice.requiredObject("function").requiredString("name"))
        default:
            throw RequestProblem.wrongType("tool_choice", expected: "a string or an object", found: value)
        }
    }

    /// The text of a system, developer or tool message: a string or an array of text parts.
    static func textOnlyContent(_ message: FieldReader, required: Bool) throws(GatewayError) -> [String] {
        if !required, message.value("content") == nil { return [] }
        return try message.stringOrParts("content", string: { $0 }) { part throws(GatewayError) in
            let type = try part.requiredString("type")
            guard type == "text" else {
                throw RequestProblem.unsupported(
                    part.path("type"), "\(part.path("type")): only text parts are allowed in this message, but found \"\(type)\"")
            }
            return try part.requiredString("text")
        }
    }

    static func userContent(_ message: FieldReader) throws(GatewayError) -> [ContentPart] {
        try message.stringOrParts("content", string: ContentPart.text) { part throws(GatewayError) -> ContentPart in
            let type = try part.requiredString("type")
            switch type {
            case "text":
                return .text(try part.requiredString("text"))
            case "image_url":
                return .image(try imageSource(part))
            case "input_audio", "file":
                throw RequestProblem.unsupported(
                    part.path("type"),
                    "\(part.path("type")): \"\(type)\" parts are not supported by the Anthropic Messages API this model is served through; send text and images only")
            default:
                throw RequestProblem.invalidValue(part.path("type"), "must be \"text\" or \"image_url\", but it is \"\(type)\"")
            }
        }
    }

    /// An `image_url` part: a `data:` URL becomes base64 bytes, anything else a URL the upstream fetches.
    static func imageSource(_ part: FieldReader) throws(GatewayError) -> ImageSource {
        let url: String
        let path: String
        if case .string(let direct)? = part.value("image_url") {
            url = direct
            path = part.path("image_url")
        } else {
            let image = try part.requiredObject("image_url")
            url = try image.requiredString("url")
            path = image.path("url")
        }
        guard url.hasPrefix("data:") else {
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                throw RequestProblem.invalidValue(path, "must be an http(s) URL or a base64 data URL")
            }
            return .url(url)
        }
        guard let comma = url.utf8.firstIndex(of: UInt8(ascii: ",")) else {
            throw RequestProblem.invalidValue(path, "is a data URL without data")
        }
        let header = url.utf8[url.utf8.index(url.utf8.startIndex, offsetBy: 5)..<comma]
        let headerText = String(decoding: header, as: UTF8.self)
        guard headerText.hasSuffix(";base64") else {
            throw RequestProblem.invalidValue(path, "must be a base64 data URL (data:<media type>;base64,<data>)")
        }
        let mediaType = String(headerText.dropLast(";base64".count))
        guard mediaType.hasPrefix("image/") else {
            throw RequestProblem.invalidValue(path, "must hold an image, but its media type is \"\(mediaType)\"")
        }
        let data = String(decoding: url.utf8[url.utf8.index(after: comma)...], as: UTF8.self)
        return .base64(mediaType: mediaType, data: data)
    }

    static func assistantContent(_ message: FieldReader) throws(GatewayError) -> [ContentPart] {
        var parts: [ContentPart] = []
        if message.value("audio") != nil {
            throw RequestProblem.unsupported(message.path("audio"), "\(message.path("audio")): audio in assistant messages cannot be translated")
        }
        if message.value("function_call") != nil {
            throw RequestProblem.unsupported(
                message.path("function_call"), "\(message.path("function_call")) is deprecated and not translated; use tool_calls")
        }
        // Reasoning comes first, as Anthropic requires; signed blocks (LiteLLM's `thinking_blocks`) win over plain text.
        if let blocks = try message.array("thinking_blocks"), !blocks.isEmpty {
            for (index, value) in blocks.enumerated() {
                let block = try FieldReader(value, path: message.path("thinking_blocks") + "[\(index)]")
                switch try block.requiredString("type") {
                case "thinking":
                    parts.append(.reasoning(Reasoning(text: try block.string("thinking") ?? "", signature: try block.string("signature"))))
                case "redacted_thinking":
                    parts.append(.redactedReasoning(data: try block.requiredString("data")))
                case let other:
                    throw RequestProblem.invalidValue(block.path("type"), "must be \"thinking\" or \"redacted_thinking\", but it is \"\(other)\"")
                }
            }
        } else if let text = try message.string("reasoning_content") ?? message.value("reasoning")?.stringValue, !text.isEmpty {
            parts.append(.reasoning(Reasoning(text: text)))
        }
        if let content = message.value("content") {
            switch content {
            case .string(let text):
                parts.append(.text(text))
            case .array(let values):
                for (index, value) in values.enumerated() {
                    let part = try FieldReader(value, path: message.path("content") + "[\(index)]")
                    switch try part.requiredString("type") {
                    case "text": parts.append(.text(try part.requiredString("text")))
                    case "refusal": parts.append(.text(try part.requiredString("refusal")))
                    case let other:
                        throw RequestProblem.invalidValue(part.path("type"), "must be \"text\" or \"refusal\", but it is \"\(other)\"")
                    }
                }
            default:
                throw RequestProblem.wrongType(message.path("content"), expected: "a string, an array of content parts or null", found: content)
            }
        }
        if let refusal = try message.string("refusal"), !refusal.isEmpty {
            parts.append(.text(refusal))
        }
        if let calls = try message.array("tool_calls") {
            for (index, value) in calls.enumerated() {
                let call = try FieldReader(value, path: message.path("tool_calls") + "[\(index)]")
                let id = try call.requiredString("id")
                if let type = try call.string("type"), type != "function" {
                    throw RequestProblem.unsupported(
                        call.path("type"), "\(call.path("type")): tool calls of type \"\(type)\" cannot be translated; only \"function\" calls are")
                }
                let function = try call.requiredObject("function")
                let name = try function.requiredString("name")
                let arguments = try function.string("arguments") ?? ""
                try validateArguments(arguments, path: function.path("arguments"))
                parts.append(.toolCall(ToolCall(id: id, name: name, arguments: arguments)))
            }
        }
        return parts
    }

    /// Checks that tool call arguments are a JSON object (or empty, meaning no arguments).
    static func validateArguments(_ arguments: String, path: String) throws(GatewayError) {
        if arguments.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return }
        let parsed: JSON
        do {
            parsed = try JSON.parse(arguments)
        } catch {
            throw GatewayError(
                .invalidRequest, code: "invalid_value",
                message: "\(path) must be a JSON object encoded as a string, but it is not valid JSON (\(error.description))",
                parameter: path, cause: error)
        }
        guard case .object = parsed else {
            throw RequestProblem.invalidValue(path, "must be a JSON object encoded as a string, but it encodes \(RequestProblem.describe(parsed))")
        }
    }

    // MARK: - Encoding an upstream body

    /// Encodes the IR as an OpenAI Chat Completions body for an OpenAI-format upstream.
    ///
    /// Streaming requests always ask for the usage chunk (`stream_options.include_usage`), which the
    /// stream translator needs for the client's final usage.
    package static func encode(_ request: ChatRequest) throws(GatewayError) -> JSON {
        var body = JSONObject()
        body["model"] = .string(request.model)
        body["messages"] = .array(encodeMessages(request))
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map(encodeTool))
            if let choice = request.toolChoice { body["tool_choice"] = encodeToolChoice(choice) }
            if request.parallelToolCalls == false { body["parallel_tool_calls"] = false }
        }
        let settings = request.generation
        if let maxTokens = settings.maxTokens { body["max_completion_tokens"] = JSON(maxTokens) }
        if let temperature = settings.temperature { body["temperature"] = JSON(temperature) }
        if let topP = settings.topP { body["top_p"] = JSON(topP) }
        if settings.topK != nil {
            throw RequestProblem.unsupported(
                "top_k", "top_k is not supported by the OpenAI Chat Completions API this model is served through; omit it or use top_p")
        }
        if !settings.stopSequences.isEmpty { body["stop"] = .array(settings.stopSequences.map(JSON.string)) }
        if let effort = reasoningEffort(request.reasoning) { body["reasoning_effort"] = .string(effort.rawValue) }
        if let user = settings.user { body["user"] = .string(user) }
        if request.stream {
            body["stream"] = true
            body["stream_options"] = ["include_usage": true]
        }
        return .object(body)
    }

    /// The effort level for `reasoning_effort`: budgets map by thresholds (see `ReasoningEffort.init(thinkingBudget:)`).
    static func reasoningEffort(_ setting: ReasoningSetting?) -> ReasoningEffort? {
        switch setting {
        case nil, .disabled?: nil
        case .effort(let effort)?: effort
        case .budget(let tokens)?: ReasoningEffort(thinkingBudget: tokens)
        case .adaptive(let effort)?: effort
        }
    }

    static func encodeMessages(_ request: ChatRequest) -> [JSON] {
        var messages: [JSON] = []
        messages.reserveCapacity(request.messages.count + 1)
        let systemParts = request.system.filter { !$0.isEmpty }
        if !systemParts.isEmpty {
            messages.append(["role": "system", "content": .string(systemParts.joined(separator: "\n\n"))])
        }
        for message in request.messages {
            switch message.role {
            case .user: appendUserMessages(message.parts, to: &messages)
            case .assistant: messages.append(encodeAssistant(message.parts))
            }
        }
        return messages
    }

    /// A user turn becomes one `tool` message per tool result, then one user message with the rest
    /// (including images that tool results returned, which `tool` messages cannot carry).
    static func appendUserMessages(_ parts: [ContentPart], to messages: inout [JSON]) {
        var userParts: [ContentPart] = []
        for part in parts {
            guard case .toolResult(let result) = part else {
                userParts.append(part)
                continue
            }
            var texts: [String] = []
            var imageCount = 0
            for item in result.content {
                switch item {
                case .text(let text): texts.append(text)
                case .image:
                    imageCount += 1
                    userParts.append(item)
                default: break
                }
            }
            var text = texts.joined(separator: "\n")
            if imageCount > 0 {
                let note = "[\(imageCount) image\(imageCount == 1 ? "" : "s") returned by this tool follow\(imageCount == 1 ? "s" : "") in the next user message]"
                text = text.isEmpty ? note : text + "\n" + note
            }
            if result.isError { text = text.isEmpty ? "Error" : "Error: " + text }
            messages.append(["role": "tool", "tool_call_id": .string(result.toolCallID), "content": .string(text)])
        }
        let content = userParts.filter { if case .text(let text) = $0 { !text.isEmpty } else { true } }
        guard !content.isEmpty else { return }
        if content.count == 1, case .text(let text) = content[0] {
            messages.append(["role": "user", "content": .string(text)])
            return
        }
        var encoded: [JSON] = []
        encoded.reserveCapacity(content.count)
        for part in content {
            switch part {
            case .text(let text):
                encoded.append(["type": "text", "text": .string(text)])
            case .image(.url(let url)):
                encoded.append(["type": "image_url", "image_url": ["url": .string(url)]])
            case .image(.base64(let mediaType, let data)):
                encoded.append(["type": "image_url", "image_url": ["url": .string("data:\(mediaType);base64,\(data)")]])
            default:
                break
            }
        }
        messages.append(["role": "user", "content": .array(encoded)])
    }

    /// An assistant turn: text joined, reasoning as `reasoning_content`, tool calls as `tool_calls`.
    /// Encrypted (redacted) reasoning is dropped: only Anthropic can read it.
    static func encodeAssistant(_ parts: [ContentPart]) -> JSON {
        var text = ""
        var reasoning = ""
        var calls: [JSON] = []
        for part in parts {
            switch part {
            case .text(let fragment): text += fragment
            case .reasoning(let thought): reasoning += thought.text
            case .toolCall(let call):
                calls.append([
                    "id": .string(call.id),
                    "type": "function",
                    "function": ["name": .string(call.name), "arguments": .string(call.arguments.isEmpty ? "{}" : call.arguments)],
                ])
            case .image, .toolResult, .redactedReasoning:
                break
            }
        }
        var message: JSONObject = ["role": "assistant"]
        message["content"] = text.isEmpty && !calls.isEmpty ? .null : .string(text)
        if !reasoning.isEmpty { message["reasoning_content"] = .string(reasoning) }
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object(message)
    }

    static func encodeTool(_ tool: ToolDefinition) -> JSON {
        var function: JSONObject = ["name": .string(tool.name)]
        if let description = tool.description { function["description"] = .string(description) }
        function["parameters"] = tool.parameters
        return ["type": "function", "function": .object(function)]
    }

    static func encodeToolChoice(_ choice: ToolChoice) -> JSON {
        switch choice {
        case .auto: "auto"
        case .none: "none"
        case .required: "required"
        case .tool(let name): ["type": "function", "function": ["name": .string(name)]]
        }
    }
}
