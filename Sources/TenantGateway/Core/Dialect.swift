/// An API dialect spoken by a client or by an upstream provider.
package enum Dialect: String, Sendable, Hashable, CaseIterable {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    case openAIChat = "openai_chat"
    /// Anthropic Messages (`POST /v1/messages`).
    case anthropicMessages = "anthropic"
    /// OpenAI Responses (`POST /v1/responses`), the only API Codex CLI speaks.
    case openAIResponses = "openai_responses"
    /// Google GenAI (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent`).
    case googleGenAI = "google"
}

extension Dialect {
    /// The dialect a client speaks, judged from the request path and headers, so that errors reach it in its own envelope.
    ///
    /// Anthropic clients call `/v1/messages` (or `/messages`) and send `anthropic-version`;
    /// Google clients call `/v1beta/…` or `…/models/{model}:generateContent` (and the other `:method`s);
    /// everything else is answered in the OpenAI envelope.
    package static func ofClient(path: String, hasAnthropicVersionHeader: Bool) -> Dialect {
        if hasAnthropicVersionHeader { return .anthropicMessages }
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        if route.hasPrefix("/v1beta/") || route == "/v1beta" { return .googleGenAI }
        if route.contains("/models/"), let last = route.split(separator: "/").last, let colon = last.lastIndex(of: ":"),
            googleMethods.contains(String(last[last.index(after: colon)...]))
        {
            return .googleGenAI
        }
        if route.hasSuffix("/messages") || route.contains("/messages/") { return .anthropicMessages }
        if route.hasSuffix("/responses") || route.hasSuffix("/responses/") { return .openAIResponses }
        return .openAIChat
    }
}

extension Dialect {
    /// The Google GenAI `models.{method}` names that mark a `…/models/{model}:{method}` path as a Google call.
    package static let googleMethods: Set<String> = ["generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"]

    /// Whether a request in this dialect to an upstream of the same dialect is forwarded as is, with only `model` renamed.
    package var passesThroughUnchanged: Bool {
        switch self {
        case .openAIChat, .anthropicMessages, .openAIResponses: true
        // The model lives in the URL, so the body passes through untouched.
        case .googleGenAI: true
        }
    }
}
