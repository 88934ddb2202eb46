/// A request body ready to be sent upstream, with what the router needs to handle the answer.
package struct UpstreamCall: Sendable {
    /// The serialized upstream body.
    package var body: [UInt8]
    /// Whether the client asked for a streamed response (the upstream body asks for one too).
    package var stream: Bool
    /// Whether an OpenAI client asked for a final usage chunk; pass it to `StreamTranslator`.
    /// Always true for Anthropic clients, whose streams always carry usage.
    package var includeUsage: Bool
    /// The names of a Responses client's custom (freeform) tools, whose calls go back as `custom_tool_call` items;
    /// pass them to `translateResponse` and `StreamTranslator`.
    package var customToolNames: Set<String>

    /// Creates an upstream call.
    package init(body: [UInt8], stream: Bool, includeUsage: Bool, customToolNames: Set<String> = []) {
        self.body = body
        self.stream = stream
        self.includeUsage = includeUsage
        self.customToolNames = customToolNames
    }
}

/// The translation entry points the router calls: requests, whole responses and upstream errors.
///
/// Streams are translated by `StreamTranslator`. See docs/translation.md for the mapping tables.
package enum Translation {
    /// Turns a client body (already parsed) into the upstream body.
    ///
    /// Across dialects the body goes through the IR, validated on the way. In the same dialect it passes
    /// through with only `model` renamed, after checking `model` and `messages`; an Anthropic body without
    /// `max_tokens` also gets `defaultMaxTokens`, which Anthropic requires.
    ///
    /// A Google client's body names neither model nor streaming: `urlStream` says whether its URL asked
    /// for `:streamGenerateContent` (and the router resolved the model from the URL too).
    package static func prepareRequest(
        _ body: JSON, client: Dialect, upstream: Dialect, upstreamModel: String, defaultMaxTokens: Int,
        thinkingStyle: AnthropicThinkingStyle = .budgetTokens, urlStream: Bool = false
    ) throws(GatewayError) -> UpstreamCall {
        if client == .googleGenAI, upstream == .googleGenAI {
            let reader = try FieldReader(body: body)
            _ = try reader.requiredNonEmptyArray("contents", of: "content")
            return UpstreamCall(body: body.bytes, stream: urlStream, includeUsage: true)
        }
        if client == upstream, client.passesThroughUnchanged {
            return try passThroughRequest(body, dialect: client, upstreamModel: upstreamModel, defaultMaxTokens: defaultMaxTokens)
        }
        var request: ChatRequest
        var customToolNames: Set<String> = []
        if client == .openAIResponses {
            (request, customToolNames) = try ResponsesRequestCodec.decode(body)
        } else {
            request = try DialectCodecs.decodeRequest(body, dialect: client, urlModel: upstreamModel, urlStream: urlStream)
        }
        request.model = upstreamModel
        let encoded = try DialectCodecs.encodeRequest(request, dialect: upstream, defaultMaxTokens: defaultMaxTokens, thinkingStyle: thinkingStyle)
        // Anthropic clients always receive usage in their stream, so it is always requested upstream.
        let includeUsage = client == .anthropicMessages ? true : request.includeUsage
        return UpstreamCall(body: encoded.bytes, stream: request.stream, includeUsage: includeUsage, customToolNames: customToolNames)
    }

    static func passThroughRequest(_ body: JSON, dialect: Dialect, upstreamModel: String, defaultMaxTokens: Int) throws(GatewayError) -> UpstreamCall {
        let reader = try FieldReader(body: body)
        _ = try reader.requiredString("model")
        if dialect == .openAIResponses { return try passThroughResponsesRequest(reader, upstreamModel: upstreamModel) }
        let messages = try reader.requiredNonEmptyArray("messages", of: "message")
        for (index, message) in messages.enumerated() {
            _ = try FieldReader(message, path: "messages[\(index)]").requiredString("role")
        }
        let stream = try reader.bool("stream") ?? false
        var object = reader.object
        object["model"] = .string(upstreamModel)
        let includeUsage: Bool
        if dialect == .anthropicMessages {
            includeUsage = true
            if try reader.int("max_tokens", atLeast: 1) == nil { object["max_tokens"] = JSON(defaultMaxTokens) }
        } else {
            includeUsage = try reader.object("stream_options")?.bool("include_usage") ?? false
        }
        return UpstreamCall(body: JSON.object(object).bytes, stream: stream, includeUsage: includeUsage)
    }

    /// Checks a Responses body for a Responses upstream (`input` present, no server-side state asked for) and
    /// renames its model; everything else passes as the client sent it.
    static func passThroughResponsesRequest(_ reader: FieldReader, upstreamModel: String) throws(GatewayError) -> UpstreamCall {
        try ResponsesRequestCodec.rejectStatefulFields(reader)
        guard let input = reader.value("input") else { throw RequestProblem.missing("input") }
        switch input {
        case .string: break
        case .array(let items) where !items.isEmpty: break
        case .array: throw RequestProblem.invalidValue("input", "must contain at least one item")
        default: throw RequestProblem.wrongType("input", expected: "a string or an array of input items", found: input)
        }
        let stream = try reader.bool("stream") ?? false
        var object = reader.object
        object["model"] = .string(upstreamModel)
        return UpstreamCall(body: JSON.object(object).bytes, stream: stream, includeUsage: true)
    }

    /// Turns an upstream's whole 2xx body into the client's body, with the model renamed to `clientModel`;
    /// `customToolNames` are a Responses client's custom tools (see `UpstreamCall.customToolNames`).
    package static func translateResponse(
        _ body: [UInt8], upstream: Dialect, client: Dialect, clientModel: String, customToolNames: Set<String> = []
    ) throws(GatewayError) -> [UInt8] {
        let json: JSON
        do {
            json = try JSON.parse(body)
        } catch {
            throw UpstreamProblem.invalidResponse("the response body is not valid JSON (\(error.description))", cause: error)
        }
        if upstream == client, client.passesThroughUnchanged {
            guard case .object(var object) = json else { throw UpstreamProblem.invalidResponse("the response is not a JSON object") }
            if object["model"] != nil { object["model"] = .string(clientModel) }
            return JSON.object(object).bytes
        }
        let response = try DialectCodecs.decodeResponse(json, dialect: upstream)
        return try DialectCodecs.encodeResponse(response, dialect: client, clientModel: clientModel, customToolNames: customToolNames).bytes
    }

    /// The longest upstream error text passed on to the client, in characters.
    static let maximumUpstreamMessageLength = 500

    /// Turns an upstream's non-2xx answer into a gateway error that keeps the upstream's status and message.
    ///
    /// Reads the error envelope of either dialect (and the shapes OpenAI-compatible servers use: vLLM's
    /// `{"object":"error"}`, FastAPI's `{"detail":…}`, `{"error":"text"}`); otherwise the body's text,
    /// shortened. The message starts with `upstream: ` so the user can tell who refused; the code is the
    /// upstream's error code or type when it gives one.
    package static func decodeUpstreamError(status: Int, body: [UInt8], upstream: Dialect) -> GatewayError {
        let fields = (try? JSON.parse(body)).flatMap(errorFields(in:))
        var message = fields?.message ?? rawText(body)
        if message.isEmpty { message = "HTTP \(status) with an empty body" }
        return GatewayError(
            GatewayError.Kind.forUpstreamStatus(status),
            code: fields?.code ?? "upstream_error",
            message: "upstream: " + message,
            status: status,
            parameter: fields?.parameter)
    }

    /// Turns an error event inside an upstream stream (Anthropic `event: error`, an OpenAI `{"error":…}` chunk)
    /// into a gateway error; the kind comes from the error's type or numeric code.
    static func decodeStreamError(_ payload: JSON, upstream: Dialect) -> GatewayError {
        let fields = errorFields(in: payload)
        var kind = GatewayError.Kind.upstream
        var status: Int?
        if let numeric = fields?.numericCode, (400..<600).contains(numeric) {
            kind = GatewayError.Kind.forUpstreamStatus(numeric)
            status = numeric
        } else if let type = fields?.type ?? fields?.code, let typed = kindForErrorType(type) {
            kind = typed
            if typed == .overloaded, upstream == .anthropicMessages { status = 529 }
        }
        return GatewayError(
            kind,
            code: fields?.code ?? "upstream_error",
            message: "upstream: " + (fields?.message ?? "the stream reported an error"),
            status: status,
            parameter: fields?.parameter)
    }

    /// The gateway error kind for an Anthropic or OpenAI error type name.
    static func kindForErrorType(_ type: String) -> GatewayError.Kind? {
        switch type {
        case "invalid_request_error": .invalidRequest
        case "authentication_error": .authentication
        case "permission_error": .permission
        case "not_found_error": .notFound
        case "request_too_large": .requestTooLarge
        case "rate_limit_error", "rate_limit_exceeded", "insufficient_quota": .rateLimited
        case "overloaded_error": .overloaded
        case "timeout_error": .upstreamTimeout
        case "api_error", "server_error": .upstream
        default: nil
        }
    }

    struct ErrorFields {
        var message: String?
        var code: String?
        var type: String?
        var parameter: String?
        var numericCode: Int?
    }

    /// The message, code, type and parameter of an error body in any of the shapes upstreams use.
    static func errorFields(in json: JSON) -> ErrorFields? {
        switch json {
        case .string(let text):
            return ErrorFields(message: text)
        case .object(let object):
            if case .object(let error)? = object["error"] {
                var fields = ErrorFields(
                    message: error["message"]?.stringValue, code: error["code"]?.stringValue,
                    type: error["type"]?.stringValue, parameter: error["param"]?.stringValue,
                    numericCode: error["code"]?.intValue)
                fields.code = fields.code ?? fields.type ?? error["status"]?.stringValue
                if fields.message == nil { fields.message = error["error"]?.stringValue }
                return fields
            }
            if case .string(let text)? = object["error"] {
                let looksLikeCode = text.utf8.count <= 64 && text.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2E || byte == 0x2D
                }
                return ErrorFields(message: object["message"]?.stringValue.map { "\(text): \($0)" } ?? text, code: looksLikeCode ? text : nil)
            }
            if object["object"] == "error" {
                return ErrorFields(
                    message: object["message"]?.stringValue, code: object["type"]?.stringValue, type: object["type"]?.stringValue,
                    parameter: object["param"]?.stringValue, numericCode: object["code"]?.intValue)
            }
            if let detail = object["detail"] {
                switch detail {
                case .string(let text):
                    return ErrorFields(message: text)
                case .array(let problems):
                    let described = problems.map { problem -> String in
                        let message = problem["msg"]?.stringValue ?? problem.text
                        guard case .array(let location)? = problem["loc"] else { return message }
                        let path = location.map { $0.stringValue ?? $0.intValue.map(String.init) ?? $0.text }.joined(separator: ".")
                        return "\(path): \(message)"
                    }
                    return ErrorFields(message: described.joined(separator: "; "), code: problems.first?["type"]?.stringValue)
                default:
                    return ErrorFields(message: detail.text)
                }
            }
            if let message = object["message"]?.stringValue {
                return ErrorFields(message: message, code: object["code"]?.stringValue ?? object["type"]?.stringValue)
            }
            return nil
        default:
            return nil
        }
    }

    /// The body as text on one line, shortened to `maximumUpstreamMessageLength` characters.
    static func rawText(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(4 * maximumUpstreamMessageLength), as: UTF8.self)
        var collapsed = ""
        collapsed.reserveCapacity(min(text.utf8.count, maximumUpstreamMessageLength + 8))
        var lastWasSpace = true
        var count = 0
        for character in text {
            if count >= maximumUpstreamMessageLength {
                collapsed += "…"
                break
            }
            if character.isWhitespace {
                if !lastWasSpace { collapsed.append(" ") }
                lastWasSpace = true
            } else {
                collapsed.append(character)
                lastWasSpace = false
            }
            count += 1
        }
        while collapsed.last == " " { collapsed.removeLast() }
        return collapsed
    }
}
