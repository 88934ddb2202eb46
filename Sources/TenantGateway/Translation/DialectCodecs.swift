/// Dispatches to each dialect's request and response codecs, so any client dialect reaches any upstream dialect through the IR.
enum DialectCodecs {
    /// Decodes and validates a client request body in a dialect.
    static func decodeRequest(_ body: JSON, dialect: Dialect) throws(GatewayError) -> ChatRequest {
        switch dialect {
        case .openAIChat: try OpenAIChatRequestCodec.decode(body)
        case .anthropicMessages: try AnthropicRequestCodec.decode(body)
        }
    }

    /// Encodes an IR request as a dialect's upstream body.
    static func encodeRequest(
        _ request: ChatRequest, dialect: Dialect, defaultMaxTokens: Int, thinkingStyle: AnthropicThinkingStyle
    ) throws(GatewayError) -> JSON {
        switch dialect {
        case .openAIChat: try OpenAIChatRequestCodec.encode(request)
        case .anthropicMessages: try AnthropicRequestCodec.encode(request, defaultMaxTokens: defaultMaxTokens, thinkingStyle: thinkingStyle)
        }
    }

    /// Decodes an upstream's whole response in a dialect.
    static func decodeResponse(_ json: JSON, dialect: Dialect) throws(GatewayError) -> ChatResponse {
        switch dialect {
        case .openAIChat: try OpenAIChatResponseCodec.decode(json)
        case .anthropicMessages: try AnthropicResponseCodec.decode(json)
        }
    }

    /// Encodes an IR response as a client's whole response in a dialect.
    static func encodeResponse(_ response: ChatResponse, dialect: Dialect, clientModel: String) throws(GatewayError) -> JSON {
        switch dialect {
        case .openAIChat: OpenAIChatResponseCodec.encode(response, clientModel: clientModel, created: currentUnixTime())
        case .anthropicMessages: try AnthropicResponseCodec.encode(response, clientModel: clientModel)
        }
    }
}

/// The stream decoder for an upstream dialect: SSE events in, IR stream events out.
enum StreamDecoderBox: Sendable {
    case openAIChat(OpenAIChatStreamDecoder)
    case anthropicMessages(AnthropicStreamDecoder)

    init(dialect: Dialect) {
        switch dialect {
        case .openAIChat: self = .openAIChat(OpenAIChatStreamDecoder())
        case .anthropicMessages: self = .anthropicMessages(AnthropicStreamDecoder())
        }
    }

    /// Decodes one upstream event into IR events.
    mutating func decode(_ event: SSEEvent, into events: inout [StreamEvent]) {
        switch self {
        case .openAIChat(var decoder):
            decoder.decode(event, into: &events)
            self = .openAIChat(decoder)
        case .anthropicMessages(var decoder):
            decoder.decode(event, into: &events)
            self = .anthropicMessages(decoder)
        }
    }
}

/// The stream encoder for a client dialect: IR stream events in, client SSE bytes out.
enum StreamEncoderBox: Sendable {
    case openAIChat(OpenAIChatStreamEncoder)
    case anthropicMessages(AnthropicStreamEncoder)

    init(dialect: Dialect, clientModel: String, includeUsage: Bool, created: Int) {
        switch dialect {
        case .openAIChat: self = .openAIChat(OpenAIChatStreamEncoder(clientModel: clientModel, includeUsage: includeUsage, created: created))
        case .anthropicMessages: self = .anthropicMessages(AnthropicStreamEncoder(clientModel: clientModel))
        }
    }

    /// Encodes one IR event; returns an error when the event cannot be represented in the client's dialect.
    mutating func encode(_ event: StreamEvent, into output: inout [UInt8]) -> GatewayError? {
        switch self {
        case .openAIChat(var encoder):
            encoder.encode(event, into: &output)
            self = .openAIChat(encoder)
            return nil
        case .anthropicMessages(var encoder):
            let error = encoder.encode(event, into: &output)
            self = .anthropicMessages(encoder)
            return error
        }
    }
}
