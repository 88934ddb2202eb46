/// Dispatches to each dialect's request and response codecs, so any client dialect reaches any upstream dialect through the IR.
enum DialectCodecs {
    /// Decodes and validates a client request body in a dialect.
    /// Google bodies name neither the model nor streaming: `urlModel` and `urlStream` (from the URL) supply them.
    static func decodeRequest(_ body: JSON, dialect: Dialect, urlModel: String = "", urlStream: Bool = false) throws(GatewayError) -> ChatRequest {
        switch dialect {
        case .openAIChat: try OpenAIChatRequestCodec.decode(body)
        case .anthropicMessages: try AnthropicRequestCodec.decode(body)
        case .openAIResponses: try ResponsesRequestCodec.decode(body).request
        case .googleGenAI: try GoogleRequestCodec.decode(body, model: urlModel, stream: urlStream)
        }
    }

    /// Encodes an IR request as a dialect's upstream body.
    static func encodeRequest(
        _ request: ChatRequest, dialect: Dialect, defaultMaxTokens: Int, thinkingStyle: AnthropicThinkingStyle
    ) throws(GatewayError) -> JSON {
        switch dialect {
        case .openAIChat: try OpenAIChatRequestCodec.encode(request)
        case .anthropicMessages: try AnthropicRequestCodec.encode(request, defaultMaxTokens: defaultMaxTokens, thinkingStyle: thinkingStyle)
        case .openAIResponses: try ResponsesRequestCodec.encode(request)
        case .googleGenAI: try GoogleRequestCodec.encode(request)
        }
    }

    /// Decodes an upstream's whole response in a dialect.
    static func decodeResponse(_ json: JSON, dialect: Dialect) throws(GatewayError) -> ChatResponse {
        switch dialect {
        case .openAIChat: try OpenAIChatResponseCodec.decode(json)
        case .anthropicMessages: try AnthropicResponseCodec.decode(json)
        case .openAIResponses: try ResponsesResponseCodec.decode(json)
        case .googleGenAI: try GoogleResponseCodec.decode(json)
        }
    }

    /// Encodes an IR response as a client's whole response in a dialect.
    static func encodeResponse(
        _ response: ChatResponse, dialect: Dialect, clientModel: String, customToolNames: Set<String> = []
    ) throws(GatewayError) -> JSON {
        switch dialect {
        case .openAIChat: OpenAIChatResponseCodec.encode(response, clientModel: clientModel, created: currentUnixTime())
        case .anthropicMessages: try AnthropicResponseCodec.encode(response, clientModel: clientModel)
        case .openAIResponses:
            ResponsesResponseCodec.encode(response, clientModel: clientModel, customToolNames: customToolNames, created: currentUnixTime())
        case .googleGenAI: try GoogleResponseCodec.encode(response, clientModel: clientModel)
        }
    }
}

/// The stream decoder for an upstream dialect: SSE events in, IR stream events out.
enum StreamDecoderBox: Sendable {
    case openAIChat(OpenAIChatStreamDecoder)
    case anthropicMessages(AnthropicStreamDecoder)
    case openAIResponses(ResponsesStreamDecoder)
    case googleGenAI(GoogleStreamDecoder)

    init(dialect: Dialect) {
        switch dialect {
        case .openAIChat: self = .openAIChat(OpenAIChatStreamDecoder())
        case .anthropicMessages: self = .anthropicMessages(AnthropicStreamDecoder())
        case .openAIResponses: self = .openAIResponses(ResponsesStreamDecoder())
        case .googleGenAI: self = .googleGenAI(GoogleStreamDecoder())
        }
    }

    /// Handles the upstream closing its stream; only dialects without a final event (Google) emit anything.
    mutating func endOfStream(into events: inout [StreamEvent]) {
        if case .googleGenAI(var decoder) = self {
            decoder.endOfStream(into: &events)
            self = .googleGenAI(decoder)
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
        case .openAIResponses(var decoder):
            decoder.decode(event, into: &events)
            self = .openAIResponses(decoder)
        case .googleGenAI(var decoder):
            decoder.decode(event, into: &events)
            self = .googleGenAI(decoder)
        }
    }
}

/// The stream encoder for a client dialect: IR stream events in, client SSE bytes out.
enum StreamEncoderBox: Sendable {
    case openAIChat(OpenAIChatStreamEncoder)
    case anthropicMessages(AnthropicStreamEncoder)
    case openAIResponses(ResponsesStreamEncoder)
    case googleGenAI(GoogleStreamEncoder)

    init(dialect: Dialect, clientModel: String, includeUsage: Bool, created: Int, customToolNames: Set<String> = []) {
        switch dialect {
        case .openAIChat: self = .openAIChat(OpenAIChatStreamEncoder(clientModel: clientModel, includeUsage: includeUsage, created: created))
        case .anthropicMessages: self = .anthropicMessages(AnthropicStreamEncoder(clientModel: clientModel))
        case .openAIResponses:
            self = .openAIResponses(ResponsesStreamEncoder(clientModel: clientModel, customToolNames: customToolNames, created: created))
        case .googleGenAI: self = .googleGenAI(GoogleStreamEncoder(clientModel: clientModel))
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
        case .openAIResponses(var encoder):
            let error = encoder.encode(event, into: &output)
            self = .openAIResponses(encoder)
            return error
        case .googleGenAI(var encoder):
            let error = encoder.encode(event, into: &output)
            self = .googleGenAI(encoder)
            return error
        }
    }

    /// The client's error event for a failure; Responses streams number it after the events already sent.
    mutating func errorEvent(_ error: GatewayError, dialect: Dialect) -> [UInt8] {
        guard case .openAIResponses(var encoder) = self else { return error.streamEvent(in: dialect) }
        let bytes = encoder.errorEvent(error)
        self = .openAIResponses(encoder)
        return bytes
    }
}
