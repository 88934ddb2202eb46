/// Translates Google GenAI (`models.generateContent`) request bodies to and from the IR.
///
/// Google function calls usually carry no id, so `decode` gives each call without one a stable id built
/// from its name and its position among all calls in `contents` (`call_<name>_<n>`, the same every time
/// the client resends the history) and matches each `functionResponse` to its call by id when it has one,
/// else to the earliest unanswered call of the same name. `encode` does the reverse: a tool result names
/// the function of the call it answers. Thought signatures travel as IR reasoning parts; see
/// docs/translation.md for where each one lands.
package enum GoogleRequestCodec {
    /// The signature Google documents for replaying a function call whose real signature was lost
    /// (history written by another model or client); Gemini 3 and later reject unsigned function calls.
    package static let skipSignatureSentinel = "skip_thought_signature_validator"
    /// The prefix that carries an Anthropic `redacted_thinking` block through a Google client as a thought signature.
    ///
    /// Google SDKs hold signatures as bytes (base64 on the wire), so the prefix is itself base64 of 15 bytes
    /// (`rosettaredacted`): prefix plus Anthropic's base64 data is valid base64 and survives the SDK's
    /// decode and re-encode unchanged.
    package static let redactedThinkingPrefix = "cm9zZXR0YXJlZGFjdGVk"

    // MARK: - Decoding a client body

    /// Decodes and validates a Google GenAI request body; the model and the stream flag come from the URL.
    ///
    /// Google parses request JSON as protobuf does, accepting each field's proto name (`system_instruction`,
    /// `inline_data`, `thinking_budget`, which the google-genai SDK sends for some nested objects) as well as
    /// its JSON name; both spellings are accepted here.
    package static func decode(_ body: JSON, model: String, stream: Bool) throws(GatewayError) -> ChatRequest {
        let reader = try FieldReader(body: camelCaseFieldNames(body))
        try rejectUntranslatableFields(reader)
        let contentValues = try reader.requiredNonEmptyArray("contents", of: "content")

        var calls = CallLedger()
        var messages: [ChatMessage] = []
        messages.reserveCapacity(contentValues.count)
        for (index, value) in contentValues.enumerated() {
            let content = try FieldReader(value, path: "contents[\(index)]")
            let role: ChatMessage.Role
            switch try content.string("role") ?? "user" {
            case "user", "function": role = .user
            case "model": role = .assistant
            case let other:
                throw RequestProblem.invalidValue(content.path("role"), "must be \"user\" or \"model\", but it is \"\(other)\"")
            }
            messages.append(ChatMessage(role: role, parts: try parts(content, role: role, calls: &calls)))
        }

        var request = ChatRequest(model: model, system: try systemInstruction(reader), messages: messages)
        request.tools = try tools(reader)
        request.toolChoice = try toolChoice(reader, tools: &request.tools)
        if let config = try reader.object("generationConfig") {
            request.generation = try generationSettings(config)
            request.reasoning = try reasoning(config)
            if let instruction = try structuredOutputInstruction(config) { request.system.append(instruction) }
        }
        request.stream = stream
        request.includeUsage = true
        return request
    }

    /// The body with Google's snake_case field names turned into their camelCase JSON names, leaving alone
    /// the members that hold the client's own data (function arguments and responses, JSON schemas' property
    /// names, labels).
    static func camelCaseFieldNames(_ value: JSON) -> JSON {
        switch value {
        case .object(let object):
            var converted = JSONObject()
            for (key, member) in object {
                let name = key.contains("_") ? camelCase(key) : key
                switch name {
                case "args", "response", "parametersJsonSchema", "responseJsonSchema", "labels", "example", "default", "enum":
                    converted[name] = member
                case "properties":
                    if case .object(let properties) = member {
                        converted[name] = .object(JSONObject(properties.members.map { ($0.key, camelCaseFieldNames($0.value)) }))
                    } else {
                        converted[name] = member
                    }
                default:
                    converted[name] = camelCaseFieldNames(member)
                }
            }
            return .object(converted)
        case .array(let elements):
            return .array(elements.map(camelCaseFieldNames))
        default:
            return value
        }
    }

    /// `snake_case` → `snakeCase`.
    static func camelCase(_ name: String) -> String {
        var result = ""
        var upperNext = false
        for character in name {
            if character == "_" {
                upperNext = !result.isEmpty
                continue
            }
            result += upperNext ? character.uppercased() : String(character)
            upperNext = false
        }
        return result
    }

    /// Rejects fields that change behaviour and that no other dialect can honour; `safetySettings`, `labels`
    /// and `generationConfig.seed` are ignored (documented).
    static func rejectUntranslatableFields(_ reader: FieldReader) throws(GatewayError) {
        let target = "the upstream API this model is served through"
        if reader.value("cachedContent") != nil {
            throw RequestProblem.unsupported("cachedContent", "cachedContent is not supported: the gateway keeps no server-side state and \(target) cannot read Google cached content; send the full contents")
        }
        guard let config = try reader.object("generationConfig") else { return }
        if let count = try config.int("candidateCount"), count != 1 {
            throw RequestProblem.unsupported(config.path("candidateCount"), "generationConfig.candidateCount=\(count) is not supported: \(target) returns one candidate per request; send 1 or omit it")
        }
        for penalty in ["presencePenalty", "frequencyPenalty"] {
            if let value = try config.number(penalty), value != 0 {
                throw RequestProblem.unsupported(config.path(penalty), "generationConfig.\(penalty) is not supported: \(target) has no equivalent; omit it or send 0")
            }
        }
        if try config.bool("responseLogprobs") == true || config.value("logprobs") != nil {
            throw RequestProblem.unsupported(config.path("responseLogprobs"), "log probabilities are not supported: \(target) does not return them")
        }
        if let modalities = try config.array("responseModalities") {
            for (index, modality) in modalities.enumerated() where modality.stringValue?.uppercased() != "TEXT" {
                throw RequestProblem.unsupported(config.path("responseModalities") + "[\(index)]", "generationConfig.responseModalities may only contain \"TEXT\": \(target) produces text only")
            }
        }
        if config.value("speechConfig") != nil {
            throw RequestProblem.unsupported(config.path("speechConfig"), "generationConfig.speechConfig is not supported: \(target) produces text only")
        }
    }

    static func systemInstruction(_ reader: FieldReader) throws(GatewayError) -> [String] {
        guard let value = reader.value("systemInstruction") else { return [] }
        if case .string(let text) = value { return [text] }
        let instruction = try FieldReader(value, path: "systemInstruction")
        guard let parts = try instruction.array("parts") else { return [] }
        var texts: [String] = []
        for (index, value) in parts.enumerated() {
            let part = try FieldReader(value, path: instruction.path("parts") + "[\(index)]")
            guard let text = try part.string("text") else {
                throw RequestProblem.unsupported(part.path, "\(part.path): only text parts are allowed in systemInstruction")
            }
            texts.append(text)
        }
        return texts
    }

    /// The calls seen so far in `contents`, for giving id-less calls stable ids and answering them by name.
    struct CallLedger {
        var count = 0
        var unanswered: [(id: String, name: String)] = []

        mutating func record(name: String, id: String?) -> String {
            let callID = id ?? "call_\(Self.sanitized(name))_\(count)"
            count += 1
            unanswered.append((callID, name))
            return callID
        }

        mutating func answer(name: String, id: String?) -> String? {
            if let id {
                if let position = unanswered.firstIndex(where: { $0.id == id }) { unanswered.remove(at: position) }
                return id
            }
            guard let position = unanswered.firstIndex(where: { $0.name == name }) else { return nil }
            return unanswered.remove(at: position).id
        }

        /// The name with every character outside `[A-Za-z0-9_-]` replaced by `_`, as Anthropic tool ids require.
        static func sanitized(_ name: String) -> String {
            String(String.UnicodeScalarView(name.unicodeScalars.map { scalar in
                let value = scalar.value
                let allowed = (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) || value == 0x5F || value == 0x2D
                return allowed ? scalar : "_"
            }))
        }
    }

    static func parts(_ content: FieldReader, role: ChatMessage.Role, calls: inout CallLedger) throws(GatewayError) -> [ContentPart] {
        guard let values = try content.array("parts") else { throw RequestProblem.missing(content.path("parts")) }
        var parts: [ContentPart] = []
        parts.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            let part = try FieldReader(value, path: content.path("parts") + "[\(index)]")
            let signature = try part.string("thoughtSignature").map(standardBase64)
            if let text = try part.string("text") {
                if try part.bool("thought") == true {
                    appendThought(text: text, signature: signature, to: &parts)
                } else {
                    if let signature { parts.append(reasoningCarrying(signature)) }
                    parts.append(.text(text))
                }
            } else if let call = try part.object("functionCall") {
                guard role == .assistant else {
                    throw RequestProblem.invalidValue(call.path, "functionCall parts are only allowed in \"model\" contents")
                }
                let name = try call.requiredString("name")
                let arguments = call.value("args") ?? .object([:])
                guard case .object = arguments else { throw RequestProblem.wrongType(call.path("args"), expected: "an object", found: arguments) }
                if let signature { parts.append(reasoningCarrying(signature)) }
                let id = calls.record(name: name, id: try call.string("id"))
                parts.append(.toolCall(ToolCall(id: id, name: name, arguments: arguments.text)))
            } else if let response = try part.object("functionResponse") {
                guard role == .user else {
                    throw RequestProblem.invalidValue(response.path, "functionResponse parts are only allowed in \"user\" contents")
                }
                let name = try response.requiredString("name")
                guard let id = calls.answer(name: name, id: try response.string("id")) else {
                    throw RequestProblem.invalidValue(response.path("name"), "answers no earlier functionCall named \"\(name)\" in contents")
                }
                parts.append(.toolResult(try toolResult(response, id: id)))
            } else if let inline = try part.object("inlineData") {
                parts.append(.image(try inlineImage(inline)))
            } else if let file = try part.object("fileData") {
                let uri = try file.requiredString("fileUri")
                if let mimeType = try file.string("mimeType"), !mimeType.hasPrefix("image/") {
                    throw RequestProblem.unsupported(file.path("mimeType"), "\(file.path("mimeType")): files of type \"\(mimeType)\" cannot be translated; only images can")
                }
                parts.append(.image(.url(uri)))
            } else if let signature, try part.bool("thought") == true {
                appendThought(text: "", signature: signature, to: &parts)
            } else {
                let kind = part.object.first(where: { !["thought", "thoughtSignature", "partMetadata", "videoMetadata", "mediaResolution"].contains($0.key) })?.key ?? "empty"
                throw RequestProblem.unsupported(part.path, "\(part.path): \"\(kind)\" parts cannot be translated to the upstream API this model is served through; send text, images, functionCall or functionResponse")
            }
        }
        return parts
    }

    /// A signature in standard, padded base64: google-genai holds signatures as bytes and sends them back in
    /// URL-safe base64, which Google accepts but Anthropic (whose signatures may ride through a Google client)
    /// would not recognize. Google's documented placeholder signatures are left as they are.
    static func standardBase64(_ signature: String) -> String {
        if signature == skipSignatureSentinel || signature == "context_engineering_is_the_way_to_go" { return signature }
        guard signature.utf8.contains(where: { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) || signature.utf8.count % 4 != 0 else {
            return signature
        }
        var bytes = signature.utf8.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "-"): UInt8(ascii: "+")
            case UInt8(ascii: "_"): UInt8(ascii: "/")
            default: byte
            }
        }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A reasoning part holding only a signature that belongs to the part after it (a function call or text).
    static func reasoningCarrying(_ signature: String) -> ContentPart {
        if signature.hasPrefix(redactedThinkingPrefix) { return .redactedReasoning(data: String(signature.dropFirst(redactedThinkingPrefix.count))) }
        return .reasoning(Reasoning(text: "", signature: signature))
    }

    /// Appends a thought part, joining it to the previous thought while that one is still unsigned
    /// (streams split one thought over many parts and sign the last).
    static func appendThought(text: String, signature: String?, to parts: inout [ContentPart]) {
        if let signature, signature.hasPrefix(redactedThinkingPrefix) {
            parts.append(.redactedReasoning(data: String(signature.dropFirst(redactedThinkingPrefix.count))))
            if !text.isEmpty { parts.append(.reasoning(Reasoning(text: text))) }
            return
        }
        if case .reasoning(var previous)? = parts.last, previous.signature == nil {
            previous.text += text
            previous.signature = signature
            parts[parts.count - 1] = .reasoning(previous)
        } else {
            parts.append(.reasoning(Reasoning(text: text, signature: signature)))
        }
    }

    static func toolResult(_ response: FieldReader, id: String) throws(GatewayError) -> ToolResult {
        var content: [ContentPart] = []
        var isError = false
        if let value = response.value("response") {
            guard case .object(let object) = value else { throw RequestProblem.wrongType(response.path("response"), expected: "an object", found: value) }
            // Google's convention: {"output": …} or {"error": …}; anything else is passed on as JSON text.
            if object.members.count == 1, let output = object["output"] {
                content.append(.text(output.stringValue ?? output.text))
            } else if object.members.count == 1, let error = object["error"] {
                content.append(.text(error.stringValue ?? error.text))
                isError = true
            } else if !object.isEmpty {
                content.append(.text(value.text))
            }
        }
        if let parts = try response.array("parts") {
            for (index, value) in parts.enumerated() {
                let part = try FieldReader(value, path: response.path("parts") + "[\(index)]")
                if let inline = try part.object("inlineData") {
                    content.append(.image(try inlineImage(inline)))
                } else if let file = try part.object("fileData") {
                    content.append(.image(.url(try file.requiredString("fileUri"))))
                } else {
                    throw RequestProblem.unsupported(part.path, "\(part.path): only inlineData and fileData parts can be translated in a functionResponse")
                }
            }
        }
        return ToolResult(toolCallID: id, content: content, isError: isError)
    }

    static func inlineImage(_ inline: FieldReader) throws(GatewayError) -> ImageSource {
        let mimeType = try inline.requiredString("mimeType")
        guard mimeType.hasPrefix("image/") else {
            throw RequestProblem.unsupported(inline.path("mimeType"), "\(inline.path("mimeType")): inline data of type \"\(mimeType)\" cannot be translated; only images can")
        }
        return .base64(mediaType: mimeType, data: try inline.requiredString("data"))
    }

    static func tools(_ reader: FieldReader) throws(GatewayError) -> [ToolDefinition] {
        guard let values = try reader.array("tools") else { return [] }
        var tools: [ToolDefinition] = []
        for (index, value) in values.enumerated() {
            let tool = try FieldReader(value, path: "tools[\(index)]")
            for member in tool.object where member.key != "functionDeclarations" && !member.value.isNull {
                throw RequestProblem.unsupported(tool.path(member.key), "\(tool.path(member.key)): the built-in Google tool \"\(member.key)\" has no equivalent in the upstream API this model is served through")
            }
            for (position, value) in (try tool.array("functionDeclarations") ?? []).enumerated() {
                let declaration = try FieldReader(value, path: tool.path("functionDeclarations") + "[\(position)]")
                let name = try declaration.requiredString("name")
                let schema: JSON
                if let jsonSchema = declaration.value("parametersJsonSchema") {
                    schema = jsonSchema
                } else if let parameters = declaration.value("parameters") {
                    schema = jsonSchema(fromGoogleSchema: parameters)
                } else {
                    schema = ["type": "object", "properties": [:]]
                }
                guard case .object = schema else {
                    throw RequestProblem.wrongType(declaration.path("parameters"), expected: "an object (a schema)", found: schema)
                }
                tools.append(ToolDefinition(name: name, description: try declaration.string("description"), parameters: schema))
            }
        }
        return tools
    }

    /// A JSON schema for a Google `Schema` (an OpenAPI 3.0 subset): upper-case type names become lower case,
    /// `nullable` becomes a `null` type, Google-only members (`propertyOrdering`, `example`) are dropped.
    static func jsonSchema(fromGoogleSchema value: JSON) -> JSON {
        guard case .object(let schema) = value else { return value }
        var converted = JSONObject()
        var nullable = false
        for (key, member) in schema {
            switch key {
            case "type":
                converted["type"] = member.stringValue.map { .string($0.lowercased()) } ?? member
            case "nullable":
                nullable = member.boolValue ?? false
            case "properties":
                if case .object(let properties) = member {
                    converted["properties"] = .object(JSONObject(properties.members.map { ($0.key, jsonSchema(fromGoogleSchema: $0.value)) }))
                } else {
                    converted["properties"] = member
                }
            case "items":
                converted["items"] = jsonSchema(fromGoogleSchema: member)
            case "anyOf":
                converted["anyOf"] = .array((member.arrayValue ?? []).map(jsonSchema(fromGoogleSchema:)))
            case "propertyOrdering", "example":
                continue
            default:
                converted[key] = member
            }
        }
        if nullable, case .string(let type)? = converted["type"] { converted["type"] = [.string(type), "null"] }
        return .object(converted)
    }

    /// The IR tool choice for `toolConfig.functionCallingConfig`; `ANY` with several allowed names keeps
    /// only those tools (the IR can require "one of these" only by offering no others).
    static func toolChoice(_ reader: FieldReader, tools: inout [ToolDefinition]) throws(GatewayError) -> ToolChoice? {
        guard let config = try reader.object("toolConfig")?.object("functionCallingConfig") else { return nil }
        var allowed: [String] = []
        for (index, name) in (try config.array("allowedFunctionNames") ?? []).enumerated() {
            guard case .string(let text) = name else {
                throw RequestProblem.wrongType(config.path("allowedFunctionNames") + "[\(index)]", expected: "a string", found: name)
            }
            allowed.append(text)
        }
        switch try config.string("mode") ?? "AUTO" {
        case "AUTO", "MODE_UNSPECIFIED", "VALIDATED":
            return .auto
        case "NONE":
            return ToolChoice.none
        case "ANY":
            if allowed.count == 1 { return .tool(name: allowed[0]) }
            if !allowed.isEmpty { tools = tools.filter { allowed.contains($0.name) } }
            return .required
        case let other:
            throw RequestProblem.invalidValue(config.path("mode"), "must be AUTO, ANY, NONE or VALIDATED, but it is \"\(other)\"")
        }
    }

    static func generationSettings(_ config: FieldReader) throws(GatewayError) -> GenerationSettings {
        var settings = GenerationSettings()
        settings.maxTokens = try config.int("maxOutputTokens", atLeast: 1)
        settings.temperature = try config.number("temperature", in: 0...2)
        settings.topP = try config.number("topP", in: 0...1)
        settings.topK = try config.int("topK", atLeast: 1)
        for (index, sequence) in (try config.array("stopSequences") ?? []).enumerated() {
            guard case .string(let text) = sequence else {
                throw RequestProblem.wrongType(config.path("stopSequences") + "[\(index)]", expected: "a string", found: sequence)
            }
            settings.stopSequences.append(text)
        }
        return settings
    }

    /// The IR reasoning for `thinkingConfig`: budget 0 disables, -1 lets the model decide, a level maps to an effort.
    static func reasoning(_ config: FieldReader) throws(GatewayError) -> ReasoningSetting? {
        guard let thinking = try config.object("thinkingConfig") else { return nil }
        if let level = try thinking.string("thinkingLevel") {
            switch level.uppercased() {
            case "MINIMAL": return .effort(.minimal)
            case "LOW": return .effort(.low)
            case "MEDIUM": return .effort(.medium)
            case "HIGH": return .effort(.high)
            case "THINKING_LEVEL_UNSPECIFIED": break
            default:
                throw RequestProblem.invalidValue(thinking.path("thinkingLevel"), "must be MINIMAL, LOW, MEDIUM or HIGH, but it is \"\(level)\"")
            }
        }
        guard let budget = try thinking.int("thinkingBudget") else {
            return try thinking.bool("includeThoughts") == true ? .adaptive(effort: nil) : nil
        }
        switch budget {
        case 0: return .disabled
        case -1: return .adaptive(effort: nil)
        case 1...: return .budget(tokens: budget)
        default: throw RequestProblem.invalidValue(thinking.path("thinkingBudget"), "must be -1, 0 or a positive number of tokens, but it is \(budget)")
        }
    }

    /// A system instruction asking for JSON when the client set `responseMimeType: application/json`
    /// (with the schema, when given): the other dialects' structured output is not in the IR, so the
    /// request is kept usable and the degradation documented.
    static func structuredOutputInstruction(_ config: FieldReader) throws(GatewayError) -> String? {
        guard let mimeType = try config.string("responseMimeType"), mimeType != "text/plain" else { return nil }
        guard mimeType == "application/json" else {
            throw RequestProblem.unsupported(config.path("responseMimeType"), "generationConfig.responseMimeType \"\(mimeType)\" is not supported by the upstream API this model is served through; use text/plain or application/json")
        }
        let schema = config.value("responseJsonSchema") ?? config.value("responseSchema").map(jsonSchema(fromGoogleSchema:))
        if let schema { return "Respond only with a JSON value that conforms to this JSON schema, with no other text: \(schema.text)" }
        return "Respond only with a valid JSON value, with no other text."
    }

    // MARK: - Encoding an upstream body

    /// Encodes the IR as a Google GenAI body for a Google-format upstream (the model and stream flag go in the URL).
    ///
    /// The request's model (the upstream name) decides whether function calls without a signature get the documented skip sentinel
    /// (Gemini 3 and later, which reject them; older models are left alone).
    package static func encode(_ request: ChatRequest) throws(GatewayError) -> JSON {
        var body = JSONObject()
        let systemParts = request.system.filter { !$0.isEmpty }
        body["contents"] = .array(try encodeContents(request.messages, signFunctionCalls: requiresFunctionCallSignatures(request.model)))
        if !systemParts.isEmpty {
            body["systemInstruction"] = ["parts": .array(systemParts.map { ["text": .string($0)] })]
        }
        if !request.tools.isEmpty {
            body["tools"] = [["functionDeclarations": .array(request.tools.map(encodeTool))]]
            if let choice = request.toolChoice {
                var config: JSONObject
                switch choice {
                case .auto: config = ["mode": "AUTO"]
                case .none: config = ["mode": "NONE"]
                case .required: config = ["mode": "ANY"]
                case .tool(let name): config = ["mode": "ANY", "allowedFunctionNames": [.string(name)]]
                }
                body["toolConfig"] = ["functionCallingConfig": .object(config)]
            }
        }
        var generation = JSONObject()
        let settings = request.generation
        if let maxTokens = settings.maxTokens { generation["maxOutputTokens"] = JSON(maxTokens) }
        if let temperature = settings.temperature { generation["temperature"] = JSON(temperature) }
        if let topP = settings.topP { generation["topP"] = JSON(topP) }
        if let topK = settings.topK { generation["topK"] = JSON(topK) }
        if !settings.stopSequences.isEmpty { generation["stopSequences"] = .array(settings.stopSequences.map(JSON.string)) }
        if let reasoning = request.reasoning {
            switch reasoning {
            case .disabled: generation["thinkingConfig"] = ["thinkingBudget": 0]
            case .budget(let tokens): generation["thinkingConfig"] = ["thinkingBudget": JSON(tokens), "includeThoughts": true]
            case .effort(let effort): generation["thinkingConfig"] = ["thinkingBudget": JSON(effort.thinkingBudget), "includeThoughts": true]
            case .adaptive: generation["thinkingConfig"] = ["thinkingBudget": -1, "includeThoughts": true]
            }
        }
        if !generation.isEmpty { body["generationConfig"] = .object(generation) }
        return .object(body)
    }

    /// Whether a model is Gemini 3 or later, which rejects replayed function calls without a thought signature.
    static func requiresFunctionCallSignatures(_ model: String) -> Bool {
        var name = model.lowercased()
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        guard name.hasPrefix("gemini-") else { return false }
        let version = name.dropFirst("gemini-".count).prefix(while: { $0.isNumber })
        guard let major = Int(version) else { return false }
        return major >= 3
    }

    /// Contents with consecutive turns of one role merged and function responses first in user turns.
    static func encodeContents(_ messages: [ChatMessage], signFunctionCalls: Bool) throws(GatewayError) -> [JSON] {
        var namesByCallID: [String: String] = [:]
        var roles: [ChatMessage.Role] = []
        var contents: [[JSON]] = []
        for message in messages {
            var parts = try encodeParts(message.parts, namesByCallID: &namesByCallID)
            if parts.isEmpty { continue }
            if message.role == .assistant, signFunctionCalls,
                let first = parts.firstIndex(where: { $0["functionCall"] != nil }), parts[first]["thoughtSignature"] == nil,
                case .object(var object) = parts[first]
            {
                object["thoughtSignature"] = .string(skipSignatureSentinel)
                parts[first] = .object(object)
            }
            if roles.last == message.role {
                contents[contents.count - 1].append(contentsOf: parts)
            } else {
                roles.append(message.role)
                contents.append(parts)
            }
        }
        return zip(roles, contents).map { role, parts in
            var ordered = parts
            if role == .user {
                ordered = parts.filter { $0["functionResponse"] != nil } + parts.filter { $0["functionResponse"] == nil }
            }
            return ["role": role == .user ? "user" : "model", "parts": .array(ordered)]
        }
    }

    /// The Google parts for one message; a signature-only reasoning part lends its signature to the next part.
    static func encodeParts(_ parts: [ContentPart], namesByCallID: inout [String: String]) throws(GatewayError) -> [JSON] {
        var encoded: [JSON] = []
        var pendingSignature: String?
        func take() -> String? {
            defer { pendingSignature = nil }
            return pendingSignature
        }
        func flushPending() {
            if let signature = take() { encoded.append(["text": "", "thought": true, "thoughtSignature": .string(signature)]) }
        }
        for part in parts {
            switch part {
            case .text(let text):
                var object: JSONObject = ["text": .string(text)]
                if let signature = take() { object["thoughtSignature"] = .string(signature) }
                if text.isEmpty, object["thoughtSignature"] == nil { continue }
                encoded.append(.object(object))
            case .image(let source):
                flushPending()
                encoded.append(encodeImage(source))
            case .toolCall(let call):
                namesByCallID[call.id] = call.name
                var object: JSONObject = ["functionCall": ["name": .string(call.name), "args": try AnthropicRequestCodec.toolInput(call)]]
                if let signature = take() { object["thoughtSignature"] = .string(signature) }
                encoded.append(.object(object))
            case .toolResult(let result):
                flushPending()
                guard let name = namesByCallID[result.toolCallID] else {
                    throw GatewayError(
                        .invalidRequest, code: "invalid_value",
                        message: "the tool result for call \(result.toolCallID) answers no earlier tool call; the Google GenAI API this model is served through needs the call's function name",
                        parameter: "tool_call_id")
                }
                var texts: [String] = []
                var images: [JSON] = []
                for item in result.content {
                    switch item {
                    case .text(let text): texts.append(text)
                    case .image(let source): images.append(encodeImage(source))
                    default: break
                    }
                }
                let text = JSON.string(texts.joined(separator: "\n"))
                let response: JSON = result.isError ? ["error": text] : ["output": text]
                encoded.append(["functionResponse": ["name": .string(name), "response": response]])
                encoded.append(contentsOf: images)
            case .reasoning(let reasoning):
                flushPending()
                if reasoning.text.isEmpty {
                    if let signature = reasoning.signature, !signature.isEmpty { pendingSignature = signature }
                    continue
                }
                var object: JSONObject = ["text": .string(reasoning.text), "thought": true]
                if let signature = reasoning.signature, !signature.isEmpty { object["thoughtSignature"] = .string(signature) }
                encoded.append(.object(object))
            case .redactedReasoning(let data):
                flushPending()
                encoded.append(["text": "", "thought": true, "thoughtSignature": .string(redactedThinkingPrefix + data)])
            }
        }
        flushPending()
        return encoded
    }

    /// An image part: base64 as `inlineData`, a URL as `fileData` with the media type its extension suggests.
    static func encodeImage(_ source: ImageSource) -> JSON {
        switch source {
        case .base64(let mediaType, let data):
            return ["inlineData": ["mimeType": .string(mediaType), "data": .string(data)]]
        case .url(let url):
            return ["fileData": ["mimeType": .string(imageMediaType(forURL: url)), "fileUri": .string(url)]]
        }
    }

    /// The image media type a URL's extension names; `image/jpeg` when it names none.
    static func imageMediaType(forURL url: String) -> String {
        let path = url.split(separator: "?", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        if path.hasSuffix(".png") { return "image/png" }
        if path.hasSuffix(".gif") { return "image/gif" }
        if path.hasSuffix(".webp") { return "image/webp" }
        if path.hasSuffix(".heic") { return "image/heic" }
        return "image/jpeg"
    }

    static func encodeTool(_ tool: ToolDefinition) -> JSON {
        var declaration: JSONObject = ["name": .string(tool.name)]
        if let description = tool.description { declaration["description"] = .string(description) }
        declaration["parametersJsonSchema"] = tool.parameters
        return .object(declaration)
    }
}
