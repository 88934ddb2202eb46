/// An API dialect spoken by a client or by an upstream provider.
package enum Dialect: String, Sendable, Hashable, CaseIterable {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    case openAIChat = "openai_chat"
    /// Anthropic Messages (`POST /v1/messages`).
    case anthropicMessages = "anthropic"
    /// OpenAI Responses (`POST /v1/responses`), the only API Codex CLI speaks.
    case openAIResponses = "openai_responses"
}

extension Dialect {
    /// The dialect a client speaks, judged from the request path and headers, so that errors reach it in its own envelope.
    ///
    /// Anthropic clients call `/v1/messages` (or `/messages`) and send `anthropic-version`;
    /// everything else is answered in the OpenAI envelope.
    package static func ofClient(path: String, hasAnthropicVersionHeader: Bool) -> Dialect {
        if hasAnthropicVersionHeader { return .anthropicMessages }
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        if route.hasSuffix("/messages") || route.contains("/messages/") { return .anthropicMessages }
        if route.hasSuffix("/responses") || route.hasSuffix("/responses/") { return .openAIResponses }
        return .openAIChat
    }
}

extension Dialect {
    /// Whether a request in this dialect to an upstream of the same dialect is forwarded as is, with only `model` renamed.
    package var passesThroughUnchanged: Bool {
        switch self {
        case .openAIChat, .anthropicMessages, .openAIResponses: true
        }
    }
}
