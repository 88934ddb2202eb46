import Logging
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

/// A provider whose upstream endpoint depends on the client's dialect too (Argo serves GPT over its Responses
/// endpoint to Responses clients, and over Chat Completions to the others).
package protocol ClientDialectRouting: UpstreamProvider {
    /// The dialect a call from a `client` dialect to a model goes upstream in.
    func dialect(for route: ModelRoute, client: Dialect) -> Dialect
    /// Builds the HTTP request for a call translated into `upstream` (the dialect `dialect(for:client:)` chose).
    func request(for call: UpstreamCall, route: ModelRoute, upstream: Dialect, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest
}

/// A provider that knows which form of `thinking` its Anthropic-format models accept, so translated requests are
/// built in that form from the start.
package protocol ThinkingStyleChoosing: UpstreamProvider {
    /// The thinking form a model takes.
    func thinkingStyle(for route: ModelRoute) -> AnthropicThinkingStyle
}

/// The `argo` provider: Claude over `/v1/messages`, GPT and Gemini over `/v1/chat/completions` (GPT over
/// `/v1/responses` for Responses clients), the tenant's Argo user as the identity of every request, optionally
/// through the tenant's SSH tunnel, and the models Argo lists discovered under clean names.
package struct ArgoProvider: UpstreamProvider, ClientDialectRouting, ThinkingStyleChoosing, UpstreamFailureReviewing {
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
    /// The models discovered from `GET /v1/models`; `nil` when the provider was made without an HTTP client.
    package let discovery: ArgoModelDiscovery?

    /// Creates the provider; a config with `tunnel:` but no `socketSource` refuses every request. With a
    /// `modelLister`, the models Argo lists are discovered through it (lazily, see `ArgoModelDiscovery`).
    package init(
        config: ProviderConfig, timeouts: UpstreamTimeouts, socketSource: (any UpstreamSocketSource)?, tunnelWait: Duration = .seconds(30),
        modelLister: UpstreamHTTPClient? = nil, logger: Logger = Logger(label: "rosettad.argo")
    ) {
        self.config = config
        self.settings = config.argo ?? ArgoSettings(user: "", tunnel: nil)
        self.timeouts = timeouts
        self.socketSource = socketSource
        self.tunnelWait = tunnelWait
        if let http = modelLister {
            let lister = ArgoProvider(config: config, timeouts: timeouts, socketSource: socketSource, tunnelWait: tunnelWait)
            let refreshInterval = config.argo?.modelsRefresh ?? ArgoSettings.defaultModelsRefresh
            self.discovery = ArgoModelDiscovery(providerName: config.name, refreshInterval: refreshInterval, logger: logger) {
                () async throws(GatewayError) -> JSON in try await lister.fetchModelList(using: http)
            }
        } else {
            self.discovery = nil
        }
    }

    /// Creates the provider with a discovery of its own making (tests use one with a scripted list).
    package init(config: ProviderConfig, timeouts: UpstreamTimeouts, socketSource: (any UpstreamSocketSource)?, discovery: ArgoModelDiscovery?) {
        self.config = config
        self.settings = config.argo ?? ArgoSettings(user: "", tunnel: nil)
        self.timeouts = timeouts
        self.socketSource = socketSource
        self.tunnelWait = .seconds(30)
        self.discovery = discovery
    }

    /// The provider's name.
    package var name: String { config.name }

    /// Chat Completions, the dialect of every model but Claude.
    package var dialect: Dialect { .openAIChat }

    /// Claude models speak Anthropic Messages; the others OpenAI Chat Completions.
    package func dialect(for route: ModelRoute) -> Dialect {
        ArgoSettings.vendor(ofUpstreamModel: route.model.upstreamModel) == .anthropic ? .anthropicMessages : .openAIChat
    }

    /// As `dialect(for:)`, except that a Responses client's GPT call goes to Argo's `/v1/responses` as it is.
    package func dialect(for route: ModelRoute, client: Dialect) -> Dialect {
        if client == .openAIResponses, ArgoSettings.vendor(ofUpstreamModel: route.model.upstreamModel) == .openai { return .openAIResponses }
        return dialect(for: route)
    }

    /// Adaptive thinking for the Claude models that take only that (Opus 4.7 and later), budgets for the others;
    /// `ArgoRequestShaping` converts what a client sent in Anthropic's own format.
    package func thinkingStyle(for route: ModelRoute) -> AnthropicThinkingStyle {
        ArgoRequestShaping.thinkingFamily(of: route.model.upstreamModel) == .adaptiveOnly ? .adaptive : .budgetTokens
    }

    /// The translated call with the tenant's identity written over whatever the client sent, to Argo's endpoint.
    package func request(for call: UpstreamCall, route: ModelRoute, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest {
        try await request(for: call, route: route, upstream: dialect(for: route), clientHeaders: clientHeaders)
    }

    /// The call in `upstream`'s format to its Argo endpoint (`/v1/messages`, `/v1/responses` or
    /// `/v1/chat/completions`), shaped for Argo's quirks (`ArgoRequestShaping`) and with the tenant's identity.
    package func request(for call: UpstreamCall, route: ModelRoute, upstream: Dialect, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest {
        var headers = identityHeaders(accept: call.stream ? "text/event-stream" : "application/json")
        let path: String
        switch upstream {
        case .anthropicMessages:
            path = "/v1/messages"
            headers.append(("anthropic-version", clientHeaders.first(name: "anthropic-version") ?? Self.defaultAnthropicVersion))
            if let beta = clientHeaders.first(name: "anthropic-beta"), !beta.isEmpty { headers.append(("anthropic-beta", beta)) }
        case .openAIResponses:
            path = "/v1/responses"
        default:
            path = "/v1/chat/completions"
        }
        return UpstreamRequest(
            url: config.baseURL + path,
            method: "POST", headers: headers, body: try shapedWithIdentity(call.body, upstreamModel: route.model.upstreamModel, dialect: upstream),
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

    /// Fetches and parses Argo's model list through `http` (and the tunnel, like any Argo request).
    package func fetchModelList(using http: UpstreamHTTPClient) async throws(GatewayError) -> JSON {
        let request = try await modelListRequest()
        let body: [UInt8]
        let status: Int
        do {
            let response = try await http.execute(request)
            status = response.status
            body = try await response.collectBody(upTo: 8 << 20)
        } catch {
            throw GatewayError(.upstream, code: "argo_models_failed", message: "GET \(request.url) failed: \(error.message)", cause: error)
        }
        guard status == 200 else {
            throw GatewayError(
                .upstream, code: "argo_models_failed",
                message: "GET \(request.url) answered HTTP \(status): \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        do {
            return try JSON.parse(body)
        } catch {
            throw GatewayError(.upstream, code: "argo_models_unreadable", message: "Argo's model list is not JSON: \(error.description)", cause: error)
        }
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

    // MARK: Failures

    /// Marks of Argo failing to get its own Google (Vertex AI) token, found in its error bodies.
    package static let vertexTokenFailureMarks = ["HTTPSConnectionPool", "oauth2.googleapis.com", "Max retries exceeded"]

    /// An error body showing that Argo could not get its Vertex AI token becomes a 502 saying so; others are
    /// reported as usual.
    package func reviewFailure(status: Int, headers: [(name: String, value: String)], body: [UInt8], request: UpstreamRequest, mayRetry: Bool) async -> UpstreamFailureDecision {
        let text = String(decoding: body.prefix(64 * 1024), as: UTF8.self)
        guard Self.vertexTokenFailureMarks.contains(where: text.contains) else { return .report }
        let model = (try? JSON.parse(request.body))?["model"]?.stringValue ?? "?"
        return .fail(GatewayError(
            .upstream, code: "argo_vertex_token_failure",
            message: "Argo could not reach Google to authenticate its Vertex AI call for '\(model)' (Argo answered HTTP \(status): \(text.prefix(160))). This is a fault on Argo's side, not in the request; retry in a while, and report it to the Argo team if it persists.",
            status: 502))
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
        var object = try Self.parsedObject(body)
        object["user"] = .string(settings.user)
        return JSON.object(object).bytes
    }

    /// The body shaped for Argo's quirks, with `user` (and for Messages `metadata.user_id`, when present) set to
    /// the tenant's Argo user.
    func shapedWithIdentity(_ body: [UInt8], upstreamModel: String, dialect: Dialect) throws(GatewayError) -> [UInt8] {
        var object = try Self.parsedObject(body)
        ArgoRequestShaping.shape(&object, upstreamModel: upstreamModel, dialect: dialect)
        object["user"] = .string(settings.user)
        if dialect == .anthropicMessages, case .object(var metadata)? = object["metadata"], metadata["user_id"] != nil {
            metadata["user_id"] = .string(settings.user)
            object["metadata"] = .object(metadata)
        }
        return JSON.object(object).bytes
    }

    static func parsedObject(_ body: [UInt8]) throws(GatewayError) -> JSONObject {
        let json: JSON
        do {
            json = try JSON.parse(body)
        } catch {
            throw GatewayError(.internalError, code: "argo_identity_failed", message: "The translated request is not JSON: \(error.description).", cause: error)
        }
        guard case .object(let object) = json else {
            throw GatewayError(.internalError, code: "argo_identity_failed", message: "The translated request is not a JSON object.")
        }
        return object
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

extension ArgoProvider: ModelDiscoveryReporting {
    /// Each discovered model under its clean name and `<vendor>/<clean name>` (fetching the list on first need).
    package func discoveredModels() async -> [DiscoveredModel] {
        guard let discovery else { return [] }
        return await discovery.models().flatMap { model in
            model.listedNames.map { DiscoveredModel(id: $0, ownedBy: name, status: nil) }
        }
    }

    /// The route for a discovered name (any of `ArgoModel.names(provider:)`); the upstream model is the internal id.
    package func discoveredRoute(for requested: String) async -> ModelRoute? {
        guard let discovery, let model = await discovery.resolve(requested) else { return nil }
        var config = ModelConfig(discovered: requested, provider: name, upstreamModel: model.internalID)
        config.vendor = model.vendor
        return ModelRoute(discovered: config, provider: self.config)
    }

    /// Fetches Argo's list again now.
    package func refreshDiscoveredModels() async {
        _ = await discovery?.models(refresh: true)
    }

    /// The discovery's state, with each model's names.
    package func discoveryStatus() async -> JSON {
        guard let discovery else { return ["state": "off"] }
        var status = await discovery.status()
        status["models"] = .array(await discovery.cachedModels().map { model in
            [
                "id": .string(model.slug), "argo_id": .string(model.displayID), "upstream_model": .string(model.internalID),
                "vendor": .string(model.vendor.rawValue), "names": .array(model.names(provider: name).map(JSON.string)),
            ]
        })
        return status
    }
}
