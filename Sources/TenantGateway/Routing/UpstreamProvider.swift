import NIOHTTP1

/// An upstream that serves models: it turns a translated call into an HTTP request it can send.
///
/// Providers differ in URL layout, credentials and transport (a direct URL, later an SSH
/// tunnel's socket or a Globus bearer token); the gateway treats them all alike.
package protocol UpstreamProvider: Sendable {
    /// The provider's configured name, for logs and errors.
    var name: String { get }
    /// The dialect its endpoint speaks.
    var dialect: Dialect { get }
    /// Builds the HTTP request for a translated call to one of its models.
    func request(for call: UpstreamCall, route: ModelRoute, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest
    /// Builds the HTTP request for an OpenAI-shaped embeddings body (model already renamed); see Embeddings.swift.
    func embeddingsRequest(body: [UInt8], route: ModelRoute) async throws(GatewayError) -> UpstreamRequest
    /// The dialect its endpoint speaks for one model (a provider such as Argo serves several dialects).
    func dialect(for route: ModelRoute) -> Dialect
    /// Checks a successful (2xx) response before it is relayed, for failures an upstream disguises as success;
    /// returns the response to relay.
    func screenSuccess(_ response: UpstreamResponse) async throws(GatewayError) -> UpstreamResponse
}

extension UpstreamProvider {
    /// One dialect for every model: `dialect`.
    package func dialect(for route: ModelRoute) -> Dialect { dialect }

    /// Relays every successful response as it is.
    package func screenSuccess(_ response: UpstreamResponse) async throws(GatewayError) -> UpstreamResponse { response }
}

/// A provider reached by plain HTTP(S) with a static API key: `openai_chat`, `anthropic` and `google`.
package struct HTTPProvider: UpstreamProvider {
    /// The Anthropic API version sent when the client did not name one.
    package static let defaultAnthropicVersion = "2023-06-01"

    /// The configuration it was built from.
    package let config: ProviderConfig
    /// Upstream timeouts.
    package let timeouts: UpstreamTimeouts
    private let endpointURL: String

    /// Creates the provider for a configured `openai_chat` or `anthropic` entry.
    package init(config: ProviderConfig, timeouts: UpstreamTimeouts) {
        self.config = config
        self.timeouts = timeouts
        switch config.type {
        case .openAIChat, .alcf: endpointURL = config.baseURL + "/chat/completions"
        case .anthropic: endpointURL = config.baseURL + "/v1/messages"
        case .openAIResponses: endpointURL = config.baseURL + "/responses"
        case .google: endpointURL = config.baseURL + "/models/"
        case .argo: endpointURL = config.baseURL + "/v1/chat/completions"
        }
    }

    /// The provider's configured name.
    package var name: String { config.name }

    /// The dialect of its type.
    package var dialect: Dialect { config.type.dialect }

    /// A POST of the translated body with the provider's credentials; the client's own credentials are never copied.
    package func request(for call: UpstreamCall, route: ModelRoute, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest {
        var headers: [(name: String, value: String)] = [
            ("content-type", "application/json"),
            ("accept", call.stream ? "text/event-stream" : "application/json"),
            ("user-agent", "rosettad/\(RosettaVersion.current)"),
        ]
        switch config.type {
        case .openAIChat, .openAIResponses, .alcf, .argo:
            if let key = config.apiKey { headers.append(("authorization", "Bearer \(key)")) }
        case .google:
            break
        case .anthropic:
            if let key = config.apiKey { headers.append(("x-api-key", key)) }
            headers.append(("anthropic-version", clientHeaders.first(name: "anthropic-version") ?? Self.defaultAnthropicVersion))
            if let beta = clientHeaders.first(name: "anthropic-beta"), !beta.isEmpty {
                headers.append(("anthropic-beta", beta))
            }
        }
        var url = endpointURL
        if config.type == .google {
            if let key = config.apiKey { headers.append(("x-goog-api-key", key)) }
            url += Self.googleModelPath(route.model.upstreamModel) + (call.stream ? ":streamGenerateContent?alt=sse" : ":generateContent")
        }
        headers.append(contentsOf: config.headers)
        return UpstreamRequest(
            url: url,
            method: "POST",
            headers: headers,
            body: call.body,
            connectTimeout: timeouts.connect,
            idleTimeout: timeouts.idle,
            totalTimeout: nil,
            unixSocketPath: nil,
            caFile: config.caFile
        )
    }
}

extension HTTPProvider {
    /// A Google model name as a URL path segment: without a leading `models/`, percent-encoded except for
    /// unreserved characters.
    static func googleModelPath(_ model: String) -> String {
        let name = model.hasPrefix("models/") ? String(model.dropFirst("models/".count)) : model
        var encoded = ""
        for byte in name.utf8 {
            let unreserved = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
            if unreserved {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// The version rosettad reports in `user-agent` and `/health`.
package enum RosettaVersion {
    /// The current release.
    package static let current = "0.1.0"
}
