extension GatewayError {
    /// The `error.type` string this error carries in the given dialect's envelope.
    package func errorType(in dialect: Dialect) -> String {
        switch dialect {
        case .openAIChat, .openAIResponses:
            switch kind {
            case .invalidRequest, .notFound, .methodNotAllowed, .requestTooLarge, .requestTimeout: "invalid_request_error"
            case .authentication: "authentication_error"
            case .permission: "permission_error"
            case .rateLimited: "rate_limit_error"
            case .internalError, .upstream, .overloaded, .upstreamTimeout: "server_error"
            }
        case .anthropicMessages:
            switch kind {
            case .invalidRequest, .methodNotAllowed, .requestTimeout: "invalid_request_error"
            case .authentication: "authentication_error"
            case .permission: "permission_error"
            case .notFound: "not_found_error"
            case .requestTooLarge: "request_too_large"
            case .rateLimited: "rate_limit_error"
            case .internalError, .upstream: "api_error"
            case .overloaded: "overloaded_error"
            case .upstreamTimeout: "timeout_error"
            }
        case .googleGenAI:
            switch kind {
            case .invalidRequest, .methodNotAllowed, .requestTooLarge: "INVALID_ARGUMENT"
            case .authentication: "UNAUTHENTICATED"
            case .permission: "PERMISSION_DENIED"
            case .notFound: "NOT_FOUND"
            case .rateLimited: "RESOURCE_EXHAUSTED"
            case .internalError, .upstream: "INTERNAL"
            case .overloaded: "UNAVAILABLE"
            case .requestTimeout, .upstreamTimeout: "DEADLINE_EXCEEDED"
            }
        }
    }

    /// The error envelope in the given dialect: OpenAI `{"error":{…}}`, Anthropic `{"type":"error","error":{…}}`,
    /// Google `{"error":{"code":<HTTP status>,"message":…,"status":"INVALID_ARGUMENT"…}}`.
    package func envelope(in dialect: Dialect) -> JSON {
        switch dialect {
        case .openAIChat, .openAIResponses:
            return [
                "error": [
                    "message": .string(message),
                    "type": .string(errorType(in: dialect)),
                    "param": parameter.map(JSON.string) ?? .null,
                    "code": .string(code),
                ]
            ]
        case .anthropicMessages:
            return [
                "type": "error",
                "error": [
                    "type": .string(errorType(in: dialect)),
                    "message": .string(message),
                ],
            ]
        case .googleGenAI:
            return [
                "error": [
                    "code": JSON(status),
                    "message": .string(message),
                    "status": .string(errorType(in: dialect)),
                ]
            ]
        }
    }

    /// The serialized envelope, ready to be sent as a response body.
    package func responseBody(in dialect: Dialect) -> [UInt8] {
        envelope(in: dialect).bytes
    }

    /// The error as one server-sent event for a stream already under way in the given dialect.
    ///
    /// Anthropic streams carry `event: error`; OpenAI and Google streams carry a `data:` line holding the
    /// error envelope, which the OpenAI SDKs and google-genai (a chunk starting `{"error":`) raise as an API error.
    package func streamEvent(in dialect: Dialect) -> [UInt8] {
        if dialect == .openAIResponses { return responsesStreamEvent(sequenceNumber: 0) }
        var output: [UInt8] = []
        if dialect == .anthropicMessages { output.append(contentsOf: "event: error\n".utf8) }
        output.append(contentsOf: "data: ".utf8)
        envelope(in: dialect).serialize(into: &output)
        output.append(contentsOf: "\n\n".utf8)
        return output
    }

    /// The error as a Responses stream `error` event numbered `sequenceNumber`.
    ///
    /// It carries the documented fields (`type: "error"`, `code`, `message`, `param`, `sequence_number`) and,
    /// beside them, the OpenAI error object under `error`, which is what makes the OpenAI SDKs raise.
    package func responsesStreamEvent(sequenceNumber: Int) -> [UInt8] {
        var output = Array("event: error\ndata: ".utf8)
        let event: JSON = [
            "type": "error",
            "code": .string(code),
            "message": .string(message),
            "param": parameter.map(JSON.string) ?? .null,
            "sequence_number": JSON(sequenceNumber),
            "error": envelope(in: .openAIResponses)["error"] ?? .null,
        ]
        event.serialize(into: &output)
        output.append(contentsOf: "\n\n".utf8)
        return output
    }
}
