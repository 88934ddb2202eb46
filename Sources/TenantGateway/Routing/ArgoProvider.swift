import NIOHTTP1

/// A request could not get the tunnel: the state it is in and what to do, for the client's error.
package struct TunnelUnavailable: Error, Sendable, Equatable {
    /// The tunnel state's name (`backoff`, `cooling_down`, `locked`, `stopped`, `connecting`).
    package var state: String
    /// What is wrong and the command that helps.
    package var message: String
    /// Seconds after which a retry may succeed, when known.
    package var retryAfterSeconds: Int?

    /// Creates the error.
    package init(state: String, message: String, retryAfterSeconds: Int?) {
        self.state = state
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// Something that provides a Unix socket reaching an upstream (an SSH tunnel's forward), starting it on demand.
package protocol UpstreamSocketSource: Sendable {
    /// Waits at most `within` for the socket to work and returns its path, or says why it cannot.
    func socketWhenReady(within: Duration) async throws(TunnelUnavailable) -> String
}

/// The `argo` provider: Claude over `/v1/messages`, GPT and Gemini over `/v1/chat/completions`, the tenant's Argo
/// user as the identity of every request, optionally through the tenant's SSH tunnel.
package struct ArgoProvider: UpstreamProvider {
    /// The text Argo answers with HTTP 200 for an unregistered user.
    package static let authenticationNoticeMark = "AUTHENTICATION NOTICE FROM ARGO"
    /// The Anthropic API version sent when the client did not name one.
    package static let defaultAnthropicVersion = "2023-06-01"

    /// The provider's configuration.
    package let config: ProviderConfig
    /// The identity and tunnel settings.
    package let settings: ArgoSettings
    /// Upstream timeouts.
    package let timeouts: UpstreamTimeouts
    /// The tunnel, when the config has one.
    package let socketSource: (any UpstreamSocketSource)?
    /// How long a request waits for the tunnel to come up.
    package let tunnelWait: Duration

    /// Creates the provider; a config with `tunnel:` but no `socketSource` refuses every request.
    package init(config: ProviderConfig, timeouts: UpstreamTimeouts, socketSource: (any UpstreamSocketSource)?, tunnelWait: Duration = .seconds(30)) {
        self.config = config
        self.settings = config.argo ?? ArgoSettings(user: "", tunnel: nil)
        self.timeouts = timeouts
        self.socketSource = socketSource
        self.tunnelWait = tunnelWait
    }

    /// The provider's name.
    package var name: String { config.name }

    /// Chat Completions, the dialect of every model but Claude.
    package var dialect: Dialect { .openAIChat }

    /// Claude models speak Anthropic Messages; the others OpenAI Chat Completions.
    package func dialect(for route: ModelRoute) -> Dialect {
        ArgoSettings.vendor(ofUpstreamModel: route.model.upstreamModel) == .anthropic ? .anthropicMessages : .openAIChat
    }

    /// The translated call with the tenant's identity written over whatever the client sent, to Argo's endpoint.
    package func request(for call: UpstreamCall, route: ModelRoute, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest {
        let messages = dialect(for: route) == .anthropicMessages
        var headers = identityHeaders(accept: call.stream ? "text/event-stream" : "application/json")
        if messages {
            headers.append(("anthropic-version", clientHeaders.first(name: "anthropic-version") ?? Self.defaultAnthropicVersion))
            if let beta = clientHeaders.first(name: "anthropic-beta"), !beta.isEmpty { headers.append(("anthropic-beta", beta)) }
        }
        return UpstreamRequest(
            url: config.baseURL + (messages ? "/v1/messages" : "/v1/chat/completions"),
            method: "POST", headers: headers, body: try withIdentity(call.body),
            connectTimeout: timeouts.connect, idleTimeout: timeouts.idle, totalTimeout: nil,
            unixSocketPath: try await socketPath(), caFile: config.caFile)
    }

    /// Embeddings go to `/v1/embeddings` with the same identity.
    package func embeddingsRequest(body: [UInt8], route: ModelRoute) async throws(GatewayError) -> UpstreamRequest {
        UpstreamRequest(
            url: config.baseURL + "/v1/embeddings", method: "POST", headers: identityHeaders(accept: "application/json"),
            body: try withIdentity(body), connectTimeout: timeouts.connect, idleTimeout: timeouts.idle, totalTimeout: nil,
            unixSocketPath: try await socketPath(), caFile: config.caFile)
    }

    /// Argo's model list (`GET /v1/models`), for discovery.
    package func modelListRequest() async throws(GatewayError) -> UpstreamRequest {
        UpstreamRequest(
            url: config.baseURL + "/v1/models", method: "GET", headers: identityHeaders(accept: "application/json"),
            connectTimeout: timeouts.connect, idleTimeout: timeouts.idle, totalTimeout: .seconds(60),
            unixSocketPath: try await socketPath(), caFile: config.caFile)
    }

    /// Argo answers an unregistered user with HTTP 200 and a notice instead of the answer: that becomes a 403.
    ///
    /// Only bodies that are neither JSON nor an event stream are read here (the notice is plain text), so
    /// answers are never held back.
    package func screenSuccess(_ response: UpstreamResponse) async throws(GatewayError) -> UpstreamResponse {
        let type = response.headerValue(named: "content-type")?.lowercased() ?? ""
        guard !type.contains("json"), !type.contains("event-stream") else { return response }
        let body: [UInt8]
        do {
            body = try await response.collectBody(upTo: 1 << 20)
        } catch {
            throw GatewayError(.upstream, code: "upstream_failed", message: "Argo's answer could not be read: \(error.message)", cause: error)
        }
        let text = String(decoding: body, as: UTF8.self)
        if text.uppercased().contains(Self.authenticationNoticeMark) {
            throw GatewayError(
                .permission, code: "argo_user_not_registered",
                message: "Argo does not accept the user '\(settings.user)' (it answered with its AUTHENTICATION NOTICE): the Argo identity of this gateway is not a registered ANL/ALCF user. Set `user:` of provider '\(name)' to your registered user name.",
                status: 403)
        }
        throw GatewayError(
            .upstream, code: "upstream_bad_response",
            message: "Argo answered with '\(type.isEmpty ? "no content type" : type)' instead of JSON or an event stream: \(text.prefix(200))")
    }

    // MARK: Helpers

    /// The headers every Argo request carries: the tenant's user as `x-api-key` and as the bearer token.
    func identityHeaders(accept: String) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("content-type", "application/json"),
            ("accept", accept),
            ("user-agent", "rosettad/\(RosettaVersion.current)"),
            ("x-api-key", settings.user),
            ("authorization", "Bearer \(settings.user)"),
        ]
        for header in config.headers where !Self.identityHeaderNames.contains(header.name.lowercased()) {
            headers.append(header)
        }
        return headers
    }

    static let identityHeaderNames: Set<String> = ["x-api-key", "authorization"]

    /// The body with `user` set to the tenant's Argo user, replacing any the client sent.
    func withIdentity(_ body: [UInt8]) throws(GatewayError) -> [UInt8] {
        var json: JSON
        do {
            json = try JSON.parse(body)
        } catch {
            throw GatewayError(.internalError, code: "argo_identity_failed", message: "The translated request is not JSON: \(error.description).", cause: error)
        }
        guard case .object = json else {
            throw GatewayError(.internalError, code: "argo_identity_failed", message: "The translated request is not a JSON object.")
        }
        json["user"] = .string(settings.user)
        return json.bytes
    }

    /// The tunnel's socket, waiting for it to come up; `nil` for a direct provider.
    func socketPath() async throws(GatewayError) -> String? {
        guard settings.tunnel != nil else { return nil }
        guard let socketSource else {
            throw GatewayError(.internalError, code: "argo_tunnel_missing", message: "Provider '\(name)' needs its SSH tunnel, which this gateway did not start.")
        }
        do {
            return try await socketSource.socketWhenReady(within: tunnelWait)
        } catch {
            var failure = GatewayError(.overloaded, code: "argo_tunnel_\(error.state)", message: error.message, status: 503, cause: error)
            failure.retryAfter = error.retryAfterSeconds
            throw failure
        }
    }
}
