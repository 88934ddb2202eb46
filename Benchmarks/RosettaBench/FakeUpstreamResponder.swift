import TenantGateway

/// The wire format one route of the fake upstream speaks.
enum FakeUpstreamDialect: Sendable, Equatable {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    case openAIChat
    /// Anthropic Messages (`POST /v1/messages`).
    case anthropicMessages
}

/// What the fake upstream serves, and which credentials it expects.
struct FakeUpstreamConfiguration: Sendable {
    /// The key an OpenAI-format request must carry as `Authorization: Bearer`.
    var openAIKey: String
    /// The key an Anthropic-format request must carry as `x-api-key`.
    var anthropicKey: String
    /// How many text chunks a stream carries when the request does not say (`x-bench-stream-chunks`).
    var defaultStreamChunks: Int
    /// The assistant's answer in a whole (non-streamed) response.
    var assistantText: String = "Hello there! Here are five words."
    /// The words a streamed answer cycles through, one per chunk.
    var streamWords: [String] = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]

    /// The text chunks of a stream with this many chunks, in order.
    func streamTokens(count: Int) -> [String] {
        (0..<count).map { streamWords[$0 % streamWords.count] }
    }
}

/// One response the fake upstream sends: a whole body, or SSE events written and flushed one by one.
enum FakeUpstreamReply: Sendable {
    /// A complete response with `Content-Length`.
    case whole(status: Int, body: [UInt8])
    /// A `text/event-stream` response; each element is one event, flushed on its own.
    case stream(events: [[UInt8]])
}

/// Decides the fake upstream's reply to one request, without I/O.
///
/// Requests are checked the way the real services check them (credentials, JSON body, `model`,
/// `messages`, Anthropic's required `max_tokens`) and answered with well-formed, canned content:
/// the gateway translates these bodies, so they follow the real formats field for field.
struct FakeUpstreamResponder: Sendable {
    /// The canned content and expected credentials.
    let configuration: FakeUpstreamConfiguration
    /// The `created` timestamp put into OpenAI responses.
    let createdTimestamp: Int

    /// The request header that sets the number of stream chunks for one request.
    static let streamChunksHeader = "x-bench-stream-chunks"
    /// The request header that paces a stream: milliseconds between events (the isolation scenario's long streams).
    static let chunkIntervalHeader = "x-bench-chunk-interval-ms"
    /// The largest number of stream chunks a request may ask for.
    static let maximumStreamChunks = 100_000

    /// The reply to a request; `header` looks up a request header by lowercase name.
    func reply(
        method: String,
        path: String,
        header: (String) -> String?,
        body: some Collection<UInt8>,
        sequence: Int
    ) -> FakeUpstreamReply {
        let dialect: FakeUpstreamDialect
        switch path {
        case "/v1/chat/completions": dialect = .openAIChat
        case "/v1/messages": dialect = .anthropicMessages
        default:
            return .whole(status: 404, body: Self.openAIError(type: "invalid_request_error", message: "Unknown path \(path)"))
        }
        guard method == "POST" else {
            return errorReply(dialect, status: 405, type: "invalid_request_error", message: "Use POST for \(path)")
        }
        switch dialect {
        case .openAIChat:
            guard header("authorization") == "Bearer \(configuration.openAIKey)" else {
                return errorReply(dialect, status: 401, type: "invalid_request_error", message: "Incorrect API key provided.")
            }
        case .anthropicMessages:
            guard header("x-api-key") == configuration.anthropicKey else {
                return errorReply(dialect, status: 401, type: "authentication_error", message: "invalid x-api-key")
            }
        }
        let request: JSONObject
        do {
            guard let object = try JSON.parse(body).objectValue else {
                return errorReply(dialect, status: 400, type: "invalid_request_error", message: "The body must be a JSON object.")
            }
            request = object
        } catch {
            return errorReply(dialect, status: 400, type: "invalid_request_error", message: "The body is not valid JSON: \(error)")
        }
        guard let model = request["model"]?.stringValue, !model.isEmpty else {
            return errorReply(dialect, status: 400, type: "invalid_request_error", message: "model: Field required")
        }
        guard let messages = request["messages"]?.arrayValue, !messages.isEmpty else {
            return errorReply(dialect, status: 400, type: "invalid_request_error", message: "messages: Field required")
        }
        if dialect == .anthropicMessages, request["max_tokens"]?.intValue == nil {
            return errorReply(dialect, status: 400, type: "invalid_request_error", message: "max_tokens: Field required")
        }
        let inputTokens = max(1, body.count / 4)
        let id = "bench\(sequence)"
        guard request["stream"]?.boolValue == true else {
            switch dialect {
            case .openAIChat: return .whole(status: 200, body: openAIWholeBody(id: id, model: model, inputTokens: inputTokens))
            case .anthropicMessages: return .whole(status: 200, body: anthropicWholeBody(id: id, model: model, inputTokens: inputTokens))
            }
        }
        var chunks = configuration.defaultStreamChunks
        if let asked = header(Self.streamChunksHeader) {
            guard let number = Int(asked), (1...Self.maximumStreamChunks).contains(number) else {
                return errorReply(dialect, status: 400, type: "invalid_request_error", message: "\(Self.streamChunksHeader) must be 1...\(Self.maximumStreamChunks)")
            }
            chunks = number
        }
        let tokens = configuration.streamTokens(count: chunks)
        switch dialect {
        case .openAIChat:
            let includeUsage = request["stream_options"]?["include_usage"]?.boolValue == true
            return .stream(events: openAIStreamEvents(id: id, model: model, tokens: tokens, inputTokens: inputTokens, includeUsage: includeUsage))
        case .anthropicMessages:
            return .stream(events: anthropicStreamEvents(id: id, model: model, tokens: tokens, inputTokens: inputTokens))
        }
    }

    // MARK: Whole responses

    private var outputTokens: Int { max(1, configuration.assistantText.utf8.count / 4) }

    private func openAIWholeBody(id: String, model: String, inputTokens: Int) -> [UInt8] {
        let response: JSON = [
            "id": .string("chatcmpl-\(id)"),
            "object": "chat.completion",
            "created": JSON(createdTimestamp),
            "model": .string(model),
            "choices": [[
                "index": 0,
                "message": [
                    "role": "assistant",
                    "content": .string(configuration.assistantText),
                    "refusal": nil,
                    "annotations": [],
                ],
                "logprobs": nil,
                "finish_reason": "stop",
            ]],
            "usage": Self.openAIUsage(input: inputTokens, output: outputTokens),
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        ]
        return response.bytes
    }

    private func anthropicWholeBody(id: String, model: String, inputTokens: Int) -> [UInt8] {
        let response: JSON = [
            "id": .string("msg_\(id)"),
            "type": "message",
            "role": "assistant",
            "model": .string(model),
            "content": [["type": "text", "text": .string(configuration.assistantText)]],
            "stop_reason": "end_turn",
            "stop_sequence": nil,
            "usage": [
                "input_tokens": JSON(inputTokens),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": JSON(outputTokens),
                "service_tier": "standard",
            ],
        ]
        return response.bytes
    }

    private static func openAIUsage(input: Int, output: Int) -> JSON {
        [
            "prompt_tokens": JSON(input),
            "completion_tokens": JSON(output),
            "total_tokens": JSON(input + output),
            "prompt_tokens_details": ["cached_tokens": 0, "audio_tokens": 0],
            "completion_tokens_details": [
                "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            ],
        ]
    }

    // MARK: Streams

    /// OpenAI chunks: a role chunk, one content chunk per token, a finish chunk, the usage chunk when asked, `[DONE]`.
    private func openAIStreamEvents(id: String, model: String, tokens: [String], inputTokens: Int, includeUsage: Bool) -> [[UInt8]] {
        var header: [UInt8] = []
        header.append(contentsOf: #"data: {"id":"chatcmpl-"#.utf8)
        header.append(contentsOf: id.utf8)
        header.append(contentsOf: #"","object":"chat.completion.chunk","created":"#.utf8)
        header.append(contentsOf: String(createdTimestamp).utf8)
        header.append(contentsOf: #","model":"#.utf8)
        JSON.serializeString(model, into: &header)
        header.append(contentsOf: #","service_tier":"default","system_fingerprint":"fp_bench","choices":["#.utf8)
        let usageNull: String = includeUsage ? #","usage":null"# : ""

        func choiceEvent(delta: [UInt8], finishReason: String) -> [UInt8] {
            var event = header
            event.append(contentsOf: #"{"index":0,"delta":"#.utf8)
            event.append(contentsOf: delta)
            event.append(contentsOf: #","logprobs":null,"finish_reason":"#.utf8)
            event.append(contentsOf: finishReason.utf8)
            event.append(contentsOf: "}]\(usageNull)}\n\n".utf8)
            return event
        }

        var events: [[UInt8]] = []
        events.reserveCapacity(tokens.count + 4)
        events.append(choiceEvent(delta: Array(#"{"role":"assistant","content":"","refusal":null}"#.utf8), finishReason: "null"))
        for token in tokens {
            var delta: [UInt8] = Array(#"{"content":"#.utf8)
            JSON.serializeString(token, into: &delta)
            delta.append(UInt8(ascii: "}"))
            events.append(choiceEvent(delta: delta, finishReason: "null"))
        }
        events.append(choiceEvent(delta: Array("{}".utf8), finishReason: #""stop""#))
        if includeUsage {
            var usageEvent = header
            usageEvent.append(contentsOf: #"],"usage":"#.utf8)
            Self.openAIUsage(input: inputTokens, output: tokens.count).serialize(into: &usageEvent)
            usageEvent.append(contentsOf: "}\n\n".utf8)
            events.append(usageEvent)
        }
        events.append(Array("data: [DONE]\n\n".utf8))
        return events
    }

    /// Anthropic events: message_start, content_block_start, ping, one text_delta per token,
    /// content_block_stop, message_delta with the stop reason and usage, message_stop.
    private func anthropicStreamEvents(id: String, model: String, tokens: [String], inputTokens: Int) -> [[UInt8]] {
        func event(_ name: String, _ data: JSON) -> [UInt8] {
            var bytes = Array("event: \(name)\ndata: ".utf8)
            data.serialize(into: &bytes)
            bytes.append(contentsOf: "\n\n".utf8)
            return bytes
        }
        var events: [[UInt8]] = []
        events.reserveCapacity(tokens.count + 6)
        events.append(event("message_start", [
            "type": "message_start",
            "message": [
                "id": .string("msg_\(id)"),
                "type": "message",
                "role": "assistant",
                "model": .string(model),
                "content": [],
                "stop_reason": nil,
                "stop_sequence": nil,
                "usage": [
                    "input_tokens": JSON(inputTokens),
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                    "service_tier": "standard",
                ],
            ],
        ]))
        events.append(event("content_block_start", [
            "type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""],
        ]))
        events.append(Array("event: ping\ndata: {\"type\": \"ping\"}\n\n".utf8))
        let deltaPrefix = Array(#"event: content_block_delta"#.utf8)
            + Array("\n".utf8)
            + Array(#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#.utf8)
        for token in tokens {
            var bytes = deltaPrefix
            JSON.serializeString(token, into: &bytes)
            bytes.append(contentsOf: "}}\n\n".utf8)
            events.append(bytes)
        }
        events.append(event("content_block_stop", ["type": "content_block_stop", "index": 0]))
        events.append(event("message_delta", [
            "type": "message_delta",
            "delta": ["stop_reason": "end_turn", "stop_sequence": nil],
            "usage": ["output_tokens": JSON(tokens.count)],
        ]))
        events.append(event("message_stop", ["type": "message_stop"]))
        return events
    }

    // MARK: Errors

    private func errorReply(_ dialect: FakeUpstreamDialect, status: Int, type: String, message: String) -> FakeUpstreamReply {
        switch dialect {
        case .openAIChat:
            return .whole(status: status, body: Self.openAIError(type: type, message: message))
        case .anthropicMessages:
            let body: JSON = ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
            return .whole(status: status, body: body.bytes)
        }
    }

    private static func openAIError(type: String, message: String) -> [UInt8] {
        let body: JSON = ["error": ["message": .string(message), "type": .string(type), "param": nil, "code": nil]]
        return body.bytes
    }
}
