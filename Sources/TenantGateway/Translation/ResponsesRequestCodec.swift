/// Translates OpenAI Responses request bodies (`POST /v1/responses`) to and from the IR.
///
/// The gateway keeps no response state: a client sends the full input every turn (`store: false`, as Codex
/// does). `previous_response_id`, `conversation` and `item_reference` input items need server-side state and
/// are refused with a 400; `store: true` is accepted but nothing is stored. Custom (freeform) tools such as
/// Codex's `apply_patch` become function tools whose single string parameter `input` carries the raw text;
/// their calls are turned back into `custom_tool_call` items for the client. docs/translation.md lists every field.
package enum ResponsesRequestCodec {
    /// The name of the single string parameter a custom (freeform) tool is given when it is sent as a function tool.
    package static let customToolInputParameter = "input"

    // MARK: - Decoding a client body

    /// Decodes and validates a Responses request body; also returns the names of the client's custom tools.
    package static func decode(_ body: JSON) throws(GatewayError) -> (request: ChatRequest, customToolNames: Set<String>) {
        let reader = try FieldReader(body: body)
        let model = try reader.requiredString("model")
        guard !model.isEmpty else { throw RequestProblem.invalidValue("model", "must not be empty") }
        try rejectStatefulFields(reader)
        try rejectUntranslatableFields(reader)

        var system: [String] = []
        if let instructions = try reader.string("instructions"), !instructions.isEmpty { system.append(instructions) }
        var messages: [ChatMessage] = []
        guard let input = reader.value("input") else { throw RequestProblem.missing("input") }
        switch input {
        case .string(let text):
            messages.append(ChatMessage(role: .user, parts: [.text(text)]))
        case .array(let items):
            guard !items.isEmpty else { throw RequestProblem.invalidValue("input", "must contain at least one item") }
            for (index, value) in items.enumerated() {
                try decodeItem(FieldReader(value, path: "input[\(index)]"), system: &system, messages: &messages)
            }
        default:
            throw RequestProblem.wrongType("input", expected: "a string or an array of input items", found: input)
        }

        var request = ChatRequest(model: model, system: system, messages: messages)
        let (tools, customToolNames) = try decodeTools(reader)
        request.tools = tools
        request.toolChoice = try decodeToolChoice(reader)
        request.parallelToolCalls = try reader.bool("parallel_tool_calls")
        request.generation.maxTokens = try reader.int("max_output_tokens", atLeast: 1)
        request.generation.temperature = try reader.number("temperature", in: 0...2)
        request.generation.topP = try reader.number("top_p", in: 0...1)
        let safetyIdentifier = try reader.string("safety_identifier")
        request.generation.user = try reader.string("user") ?? safetyIdentifier
        request.reasoning = try decodeReasoning(reader)
        request.stream = try reader.bool("stream") ?? false
        // A Responses stream always ends with the full response, usage included.
        request.includeUsage = true
        return (request, customToolNames)
    }

    /// Refuses requests that need conversation state kept by the server, which the gateway does not keep.
    static func rejectStatefulFields(_ reader: FieldReader) throws(GatewayError) {
        let advice = "the gateway keeps no response state; send the full conversation in input with store: false"
        if reader.value("previous_response_id") != nil {
            throw RequestProblem.unsupported("previous_response_id", "previous_response_id is not supported: \(advice)")
        }
        if reader.value("conversation") != nil {
            throw RequestProblem.unsupported("conversation", "conversation is not supported: \(advice)")
        }
        if case .array(let items)? = reader.value("input") {
            for (index, item) in items.enumerated() where item["type"]?.stringValue == "item_reference" {
                throw RequestProblem.unsupported("input[\(index)]", "input[\(index)]: item_reference items are not supported: \(advice)")
            }
        }
        if try reader.bool("background") == true {
            throw RequestProblem.unsupported("background", "background is not supported: the gateway keeps no response state to poll; omit it")
        }
    }

    /// Refuses fields that change behaviour but cannot be honoured through the IR; harmless ones are ignored.
    ///
    /// Ignored: `store` (nothing is stored either way), `metadata`, `prompt_cache_key`, `prompt_cache_retention`,
    /// `service_tier`, `truncation`, `stream_options`, `text.verbosity`, `include: ["reasoning.encrypted_content"]`.
    static func rejectUntranslatableFields(_ reader: FieldReader) throws(GatewayError) {
        _ = try reader.bool("store")
        if reader.value("prompt") != nil {
            throw RequestProblem.unsupported("prompt", "prompt templates are not supported: they are stored by OpenAI, and the gateway keeps no state; send instructions and input instead")
        }
        if let top = try reader.int("top_logprobs"), top > 0 {
            throw RequestProblem.unsupported("top_logprobs", "top_logprobs is not supported: token log probabilities are not translated")
        }
        if reader.value("max_tool_calls") != nil {
            throw RequestProblem.unsupported("max_tool_calls", "max_tool_calls is not supported: the gateway cannot limit built-in tool calls; omit it")
        }
        if let include = try reader.array("include") {
            for (index, value) in include.enumerated() {
                guard case .string(let name) = value else {
                    throw RequestProblem.wrongType("include[\(index)]", expected: "a string", found: value)
                }
                guard name == "reasoning.encrypted_content" else {
                    throw RequestProblem.unsupported(
                        "include[\(index)]", "include[\(index)]: \"\(name)\" is not supported; only \"reasoning.encrypted_content\" is")
                }
            }
        }
        if let text = try reader.object("text"), let format = try text.object("format") {
            let type = try format.requiredString("type")
            if type != "text" {
                throw RequestProblem.unsupported(
                    "text.format", "text.format of type \"\(type)\" is not supported: the gateway cannot enforce structured output across providers; describe the format in the prompt or use a tool")
            }
        }
    }

    /// Appends one input item to the system prompt or the conversation.
    static func decodeItem(_ item: FieldReader, system: inout [String], messages: inout [ChatMessage]) throws(GatewayError) {
        let type = try item.string("type") ?? "message"
        switch type {
        case "message":
            let role = try item.requiredString("role")
            switch role {
            case "system", "developer":
                system.append(contentsOf: try textContent(item, allowedTypes: ["input_text", "text"]))
            case "user":
                append(try userContent(item), role: .user, to: &messages)
            case "assistant":
                append(try textContent(item, allowedTypes: ["output_text", "refusal", "input_text", "text"]).map(ContentPart.text), role: .assistant, to: &messages)
            default:
                throw RequestProblem.invalidValue(item.path("role"), "must be one of user, assistant, system or developer, but it is \"\(role)\"")
            }
        case "function_call":
            let call = ToolCall(id: try item.requiredString("call_id"), name: try item.requiredString("name"), arguments: try item.string("arguments") ?? "")
            try OpenAIChatRequestCodec.validateArguments(call.arguments, path: item.path("arguments"))
            append([.toolCall(call)], role: .assistant, to: &messages)
        case "custom_tool_call":
            let input = try item.requiredString("input")
            let arguments = JSON.object([customToolInputParameter: .string(input)]).text
            append([.toolCall(ToolCall(id: try item.requiredString("call_id"), name: try item.requiredString("name"), arguments: arguments))], role: .assistant, to: &messages)
        case "function_call_output", "custom_tool_call_output":
            let id = try item.requiredString("call_id")
            append([.toolResult(ToolResult(toolCallID: id, content: try toolOutput(item)))], role: .user, to: &messages)
        case "reasoning":
            var text: [String] = []
            if let summary = try item.array("summary") {
                for (index, value) in summary.enumerated() {
                    text.append(try FieldReader(value, path: item.path("summary") + "[\(index)]").requiredString("text"))
                }
            }
            let encrypted = try item.string("encrypted_content")
            guard !text.isEmpty || encrypted != nil else { return }
            append([.reasoning(Reasoning(text: text.joined(separator: "\n\n"), encryptedContent: encrypted))], role: .assistant, to: &messages)
        default:
            throw RequestProblem.unsupported(
                item.path("type"),
                "\(item.path("type")): input items of type \"\(type)\" are not supported; send messages, function_call, function_call_output, custom_tool_call, custom_tool_call_output and reasoning items")
        }
    }

    /// Adds parts to the last message when it has the same role (Responses items are flat), else starts a message.
    static func append(_ parts: [ContentPart], role: ChatMessage.Role, to messages: inout [ChatMessage]) {
        if let last = messages.indices.last, messages[last].role == role {
            messages[last].parts.append(contentsOf: parts)
        } else {
            messages.append(ChatMessage(role: role, parts: parts))
        }
    }

    /// The texts of a message whose content is a string or a list of text parts of the allowed types.
    static func textContent(_ item: FieldReader, allowedTypes: Set<String>) throws(GatewayError) -> [String] {
        try item.stringOrParts("content", string: { $0 }) { part throws(GatewayError) in
            let type = try part.requiredString("type")
            guard allowedTypes.contains(type) else {
                throw RequestProblem.unsupported(
                    part.path("type"), "\(part.path("type")): \"\(type)\" parts are not allowed in this message; allowed: \(allowedTypes.sorted().joined(separator: ", "))")
            }
            if let text = try part.string("text") { return text }
            return try part.requiredString("refusal")
        }
    }

    /// A user message's text and images.
    static func userContent(_ item: FieldReader) throws(GatewayError) -> [ContentPart] {
        try item.stringOrParts("content", string: ContentPart.text, part: inputPart)
    }

    /// One `input_text` or `input_image` part.
    static func inputPart(_ part: FieldReader) throws(GatewayError) -> ContentPart {
        let type = try part.requiredString("type")
        switch type {
        case "input_text", "text":
            return .text(try part.requiredString("text"))
        case "input_image":
            if part.value("file_id") != nil, part.value("image_url") == nil {
                throw RequestProblem.unsupported(part.path("file_id"), "\(part.path("file_id")): images uploaded as files are not supported; send image_url as a data URL or an http(s) URL")
            }
            return .image(try OpenAIChatRequestCodec.imageSource(part))
        case "input_file", "input_audio":
            throw RequestProblem.unsupported(part.path("type"), "\(part.path("type")): \"\(type)\" parts are not supported; send input_text and input_image only")
        default:
            throw RequestProblem.invalidValue(part.path("type"), "must be \"input_text\" or \"input_image\", but it is \"\(type)\"")
        }
    }

    /// A tool output: a string, or a list of input_text / input_image parts.
    static func toolOutput(_ item: FieldReader) throws(GatewayError) -> [ContentPart] {
        try item.stringOrParts("output", string: ContentPart.text, part: inputPart)
    }

    /// Function tools as they are; custom tools as function tools taking one string, `input`.
    static func decodeTools(_ reader: FieldReader) throws(GatewayError) -> ([ToolDefinition], Set<String>) {
        guard let values = try reader.array("tools") else { return ([], []) }
        var tools: [ToolDefinition] = []
        var custom: Set<String> = []
        for (index, value) in values.enumerated() {
            let tool = try FieldReader(value, path: "tools[\(index)]")
            let type = try tool.requiredString("type")
            switch type {
            case "function":
                var parameters = JSON.object(["type": "object", "properties": [:]])
                if let schema = tool.value("parameters") {
                    guard case .object = schema else {
                        throw RequestProblem.wrongType(tool.path("parameters"), expected: "an object (a JSON schema)", found: schema)
                    }
                    parameters = schema
                }
                _ = try tool.bool("strict")
                tools.append(ToolDefinition(name: try tool.requiredString("name"), description: try tool.string("description"), parameters: parameters))
            case "custom":
                let name = try tool.requiredString("name")
                var description = try tool.string("description") ?? ""
                var inputDescription = "The raw input for the tool, as free text."
                if let format = try tool.object("format"), try format.string("type") == "grammar" {
                    let syntax = try format.string("syntax") ?? "grammar"
                    let definition = try format.string("definition") ?? ""
                    inputDescription = "The raw input for the tool, as free text that must follow this \(syntax) grammar:\n\(definition)"
                }
                if description.isEmpty { description = inputDescription } else { description += "\n\n" + inputDescription }
                let parameters: JSON = [
                    "type": "object",
                    "properties": [customToolInputParameter: ["type": "string", "description": .string(inputDescription)]],
                    "required": [.string(customToolInputParameter)],
                    "additionalProperties": false,
                ]
                tools.append(ToolDefinition(name: name, description: description, parameters: parameters))
                custom.insert(name)
            default:
                throw RequestProblem.unsupported(
                    tool.path("type"),
                    "\(tool.path("type")): tools of type \"\(type)\" are not supported; the gateway translates \"function\" and \"custom\" tools only")
            }
        }
        return (tools, custom)
    }

    static func decodeToolChoice(_ reader: FieldReader) throws(GatewayError) -> ToolChoice? {
        guard let value = reader.value("tool_choice") else { return nil }
        switch value {
        case .string("auto"): return ToolChoice.auto
        case .string("none"): return ToolChoice.none
        case .string("required"): return ToolChoice.required
        case .string(let other):
            throw RequestProblem.invalidValue("tool_choice", "must be \"auto\", \"none\", \"required\" or a tool object, but it is \"\(other)\"")
        case .object(let object):
            let choice = FieldReader(object, path: "tool_choice")
            let type = try choice.requiredString("type")
            guard type == "function" || type == "custom" else {
                throw RequestProblem.unsupported("tool_choice.type", "tool_choice.type \"\(type)\" is not supported; use \"auto\", \"none\", \"required\" or a named function or custom tool")
            }
            return .tool(name: try choice.requiredString("name"))
        default:
            throw RequestProblem.wrongType("tool_choice", expected: "a string or an object", found: value)
        }
    }

    static func decodeReasoning(_ reader: FieldReader) throws(GatewayError) -> ReasoningSetting? {
        guard let reasoning = try reader.object("reasoning") else { return nil }
        _ = try reasoning.string("summary")
        guard let effort = try reasoning.string("effort") else { return nil }
        if effort == "none" { return ReasoningSetting.disabled }
        guard let level = ReasoningEffort(rawValue: effort) else {
            throw RequestProblem.invalidValue(reasoning.path("effort"), "must be one of none, minimal, low, medium, high or xhigh, but it is \"\(effort)\"")
        }
        return .effort(level)
    }

    // MARK: - Encoding an upstream body

    /// Encodes the IR as a Responses body for an `openai_responses` upstream, always with `store: false`.
    ///
    /// Reasoning is sent back only when it carries OpenAI's `encrypted_content` (other reasoning cannot be
    /// verified by OpenAI and is dropped); encrypted reasoning is asked for when reasoning is enabled.
    package static func encode(_ request: ChatRequest) throws(GatewayError) -> JSON {
        var body = JSONObject()
        body["model"] = .string(request.model)
        let instructions = request.system.filter { !$0.isEmpty }
        if !instructions.isEmpty { body["instructions"] = .string(instructions.joined(separator: "\n\n")) }
        var input: [JSON] = []
        for message in request.messages {
            encodeMessage(message, into: &input)
        }
        body["input"] = .array(input)
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                var encoded: JSONObject = ["type": "function", "name": .string(tool.name)]
                if let description = tool.description { encoded["description"] = .string(description) }
                encoded["parameters"] = tool.parameters
                encoded["strict"] = false
                return .object(encoded)
            })
            if let choice = request.toolChoice {
                switch choice {
                case .auto: body["tool_choice"] = "auto"
                case .none: body["tool_choice"] = "none"
                case .required: body["tool_choice"] = "required"
                case .tool(let name): body["tool_choice"] = ["type": "function", "name": .string(name)]
                }
            }
            if let parallel = request.parallelToolCalls { body["parallel_tool_calls"] = .bool(parallel) }
        }
        let settings = request.generation
        if let maxTokens = settings.maxTokens { body["max_output_tokens"] = JSON(maxTokens) }
        if let temperature = settings.temperature { body["temperature"] = JSON(temperature) }
        if let topP = settings.topP { body["top_p"] = JSON(topP) }
        if settings.topK != nil {
            throw RequestProblem.unsupported("top_k", "top_k is not supported by the OpenAI Responses API this model is served through; omit it or use top_p")
        }
        if !settings.stopSequences.isEmpty {
            throw RequestProblem.unsupported("stop", "stop sequences are not supported by the OpenAI Responses API this model is served through; omit them")
        }
        if let user = settings.user { body["safety_identifier"] = .string(user) }
        switch request.reasoning {
        case nil:
            break
        case .disabled?:
            body["reasoning"] = ["effort": "none"]
        default:
            if let effort = OpenAIChatRequestCodec.reasoningEffort(request.reasoning) {
                body["reasoning"] = ["effort": .string(effort.rawValue), "summary": "auto"]
                body["include"] = ["reasoning.encrypted_content"]
            }
        }
        body["store"] = false
        if request.stream { body["stream"] = true }
        return .object(body)
    }

    /// Appends the input items for one IR message.
    static func encodeMessage(_ message: ChatMessage, into input: inout [JSON]) {
        var pending: [JSON] = []
        let textType = message.role == .user ? "input_text" : "output_text"
        func flush(into input: inout [JSON]) {
            guard !pending.isEmpty else { return }
            input.append(["type": "message", "role": .string(message.role.rawValue), "content": .array(pending)])
            pending.removeAll()
        }
        for part in message.parts {
            switch part {
            case .text(let text):
                guard !text.isEmpty else { continue }
                var encoded: JSONObject = ["type": .string(textType), "text": .string(text)]
                if message.role == .assistant { encoded["annotations"] = [] }
                pending.append(.object(encoded))
            case .image(let source):
                pending.append(["type": "input_image", "image_url": .string(imageURL(source)), "detail": "auto"])
            case .toolCall(let call):
                flush(into: &input)
                input.append([
                    "type": "function_call", "call_id": .string(call.id), "name": .string(call.name),
                    "arguments": .string(call.arguments.isEmpty ? "{}" : call.arguments),
                ])
            case .toolResult(let result):
                flush(into: &input)
                input.append(["type": "function_call_output", "call_id": .string(result.toolCallID), "output": toolOutput(result)])
            case .reasoning(let reasoning):
                guard let encrypted = reasoning.encryptedContent else { continue }
                flush(into: &input)
                let summary: [JSON] = reasoning.text.isEmpty ? [] : [["type": "summary_text", "text": .string(reasoning.text)]]
                input.append(["type": "reasoning", "summary": .array(summary), "encrypted_content": .string(encrypted)])
            case .redactedReasoning:
                continue
            }
        }
        flush(into: &input)
    }

    static func imageURL(_ source: ImageSource) -> String {
        switch source {
        case .url(let url): url
        case .base64(let mediaType, let data): "data:\(mediaType);base64,\(data)"
        }
    }

    /// A tool result's output: plain text when it is text only, else a list of parts.
    static func toolOutput(_ result: ToolResult) -> JSON {
        let hasImages = result.content.contains { if case .image = $0 { true } else { false } }
        let prefix = result.isError ? "Error: " : ""
        if !hasImages {
            let text = result.content.compactMap { if case .text(let text) = $0 { text } else { nil } }.joined(separator: "\n")
            return .string(result.isError ? (text.isEmpty ? "Error" : prefix + text) : text)
        }
        var parts: [JSON] = []
        if result.isError { parts.append(["type": "input_text", "text": "Error"]) }
        for item in result.content {
            switch item {
            case .text(let text): parts.append(["type": "input_text", "text": .string(text)])
            case .image(let source): parts.append(["type": "input_image", "image_url": .string(imageURL(source)), "detail": "auto"])
            default: break
            }
        }
        return .array(parts)
    }
}
