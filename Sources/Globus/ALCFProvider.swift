import NIOHTTP1
import TenantGateway

/// Where an ALCF model lives: its cluster, the cluster's framework path and the model id the cluster knows.
///
/// Configured `upstream_model` names carry the cluster as a prefix (`sophia/openai/gpt-oss-120b`,
/// `metis/gpt-oss-120b`); a name without a known cluster prefix is on Sophia.
package struct ALCFModelTarget: Sendable, Equatable {
    /// The frameworks of the clusters ALCF documents.
    package static let frameworks: [String: String] = ["sophia": "vllm", "metis": "api", "minerva": "api"]
    /// The cluster used when a name has no cluster prefix.
    package static let defaultCluster = "sophia"

    /// The cluster (`sophia`, `metis`).
    package var cluster: String
    /// The framework path segment (`vllm` on Sophia, `api` on Metis).
    package var framework: String
    /// The model id on that cluster (`openai/gpt-oss-120b` on Sophia, `gpt-oss-120b` on Metis).
    package var model: String

    /// Creates a target.
    package init(cluster: String, framework: String? = nil, model: String) {
        self.cluster = cluster
        self.framework = framework ?? Self.frameworks[cluster] ?? "api"
        self.model = model
    }

    /// Reads a configured upstream model name; `knownClusters` adds clusters found by discovery.
    package init(upstreamModel name: String, knownClusters: [String: String] = [:]) {
        if let slash = name.firstIndex(of: "/") {
            let prefix = String(name[..<slash]).lowercased()
            let framework = knownClusters[prefix] ?? Self.frameworks[prefix]
            if let framework {
                self.init(cluster: prefix, framework: framework, model: String(name[name.index(after: slash)...]))
                return
            }
        }
        self.init(cluster: Self.defaultCluster, model: name)
    }

    /// The path under the base URL for an OpenAI endpoint (`/v1/chat/completions`).
    package func path(_ endpoint: String) -> String {
        "/\(cluster)/\(framework)\(endpoint)"
    }
}

/// The `alcf` provider: ALCF Inference Endpoints reached with the tenant's Globus grant.
///
/// Requests go to `<base_url>/<cluster>/<framework>/v1/chat/completions` with the grant's bearer token (the
/// built-in `alcf` transform rules have already reduced the body to what the strict gateway accepts). A 401
/// refreshes the grant once and retries the request once, unless ALCF's policy demands a new login; a cold
/// model's 408/503 becomes a clear error with `Retry-After`.
package struct ALCFProvider: UpstreamProvider, UpstreamFailureReviewing {
    /// How long a client is told to wait for a model that is starting.
    package static let coldStartRetryAfter = 60

    /// The configuration it was built from.
    package let config: ProviderConfig
    /// Upstream timeouts.
    package let timeouts: UpstreamTimeouts
    /// The tenant's grant for this provider.
    package let grant: GlobusGrant
    /// Discovered clusters and models, when discovery runs.
    package let discovery: ALCFDiscovery?

    /// Creates the provider.
    package init(config: ProviderConfig, timeouts: UpstreamTimeouts, grant: GlobusGrant, discovery: ALCFDiscovery? = nil) {
        self.config = config
        self.timeouts = timeouts
        self.grant = grant
        self.discovery = discovery
    }

    /// The provider's configured name.
    package var name: String { config.name }

    /// ALCF speaks OpenAI Chat Completions.
    package var dialect: Dialect { .openAIChat }

    /// A POST to the model's cluster with the grant's token; `model` in the body becomes the cluster's id.
    package func request(for call: UpstreamCall, route: ModelRoute, clientHeaders: HTTPHeaders) async throws(GatewayError) -> UpstreamRequest {
        let target = await self.target(for: route.model.upstreamModel)
        var body = call.body
        if target.model != route.model.upstreamModel, case .object(var object)? = try? JSON.parse(body) {
            object["model"] = .string(target.model)
            body = JSON.object(object).bytes
        }
        let token = try await grant.accessToken()
        return UpstreamRequest(
            url: config.baseURL + target.path("/v1/chat/completions"),
            method: "POST",
            headers: headers(token: token, stream: call.stream),
            body: body,
            connectTimeout: timeouts.connect,
            idleTimeout: timeouts.idle,
            caFile: config.caFile)
    }

    /// Embeddings on the model's cluster (`/v1/embeddings`), with the grant's token.
    package func embeddingsRequest(body: [UInt8], route: ModelRoute) async throws(GatewayError) -> UpstreamRequest {
        let target = await self.target(for: route.model.upstreamModel)
        var body = body
        if case .object(var object)? = try? JSON.parse(body) {
            object["model"] = .string(target.model)
            body = JSON.object(object).bytes
        }
        let token = try await grant.accessToken()
        return UpstreamRequest(
            url: config.baseURL + target.path("/v1/embeddings"),
            method: "POST",
            headers: headers(token: token, stream: false),
            body: body,
            connectTimeout: timeouts.connect,
            idleTimeout: timeouts.idle,
            caFile: config.caFile)
    }

    func target(for upstreamModel: String) async -> ALCFModelTarget {
        ALCFModelTarget(upstreamModel: upstreamModel, knownClusters: await discovery?.frameworks() ?? [:])
    }

    func headers(token: String, stream: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("content-type", "application/json"),
            ("accept", stream ? "text/event-stream" : "application/json"),
            ("user-agent", "rosettad/\(RosettaVersion.current)"),
            ("authorization", "Bearer \(token)"),
        ]
        headers.append(contentsOf: config.headers)
        return headers
    }

    // MARK: Failures

    /// 401: refresh once and retry (or a login error); 408/503 of a cold model: a clear error with `Retry-After`;
    /// 422: the gateway's validation details in one sentence.
    package func reviewFailure(status: Int, headers: [(name: String, value: String)], body: [UInt8], request: UpstreamRequest, mayRetry: Bool) async -> UpstreamFailureDecision {
        let failure = ALCFFailure(status: status, body: body)
        let model = (try? JSON.parse(request.body))?["model"]?.stringValue ?? "?"
        switch failure.classification {
        case .unauthorized(let demandsLogin):
            guard mayRetry || demandsLogin else {
                return .fail(GatewayError(
                    .upstream, code: "alcf_token_rejected",
                    message: "ALCF refused the refreshed Globus token too (\(failure.message)). If this persists, run `rosetta login \(name)`.",
                    status: 502))
            }
            let used = request.headers.first { $0.name == "authorization" }?.value.dropFirst("Bearer ".count) ?? ""
            do {
                let fresh = try await grant.tokenAfterUnauthorized(used: String(used), demandsLogin: demandsLogin)
                var retry = request
                retry.headers = retry.headers.map { $0.name == "authorization" ? ($0.name, "Bearer \(fresh)") : $0 }
                return .retry(retry)
            } catch {
                return .fail(error)
            }
        case .notReady(let maintenance):
            let retryAfter = headers.first { $0.name.lowercased() == "retry-after" }.flatMap { Int($0.value) }
                ?? (maintenance ? 300 : Self.coldStartRetryAfter)
            let message = maintenance
                ? "The ALCF cluster serving '\(model)' is under maintenance (\(failure.message)). Retry later."
                : "The ALCF model '\(model)' is not ready yet: it is starting on its cluster (a cold start takes 10–15 minutes) or is not live (\(failure.message)). Retry in a minute or two."
            return .fail(GatewayError(.overloaded, code: maintenance ? "alcf_cluster_maintenance" : "alcf_model_not_ready", message: message, status: 503, retryAfter: retryAfter))
        case .validation(let details):
            return .fail(GatewayError(
                .invalidRequest, code: "alcf_rejected_request",
                message: "ALCF's gateway rejected the request (HTTP 422): \(details). rosettad's alcf rules drop fields it knows are refused; this one is new to it.",
                status: 400))
        case .other:
            return .report
        }
    }
}

/// An ALCF gateway error answer, read for the provider's decisions.
package struct ALCFFailure: Sendable, Equatable {
    /// What kind of failure it is.
    package enum Classification: Sendable, Equatable {
        /// 401; `demandsLogin` when the message says ALCF's policy (high-assurance timeout, identity provider) wants a new login.
        case unauthorized(demandsLogin: Bool)
        /// 408/503 of a cold, offline or not-yet-ready model, or a cluster under maintenance.
        case notReady(maintenance: Bool)
        /// 422 from the strict schema, with `loc: msg` details.
        case validation(String)
        /// Anything else, reported as it is.
        case other
    }

    /// The classification.
    package var classification: Classification
    /// The gateway's message (`error.message` or `detail`).
    package var message: String

    /// Reads a status and body.
    package init(status: Int, body: [UInt8]) {
        let json = try? JSON.parse(body)
        let code = json?["error"]?["code"]?.stringValue
        var message = json?["error"]?["message"]?.stringValue ?? json?["detail"]?.stringValue
            ?? json?["error"]?.stringValue ?? String(decoding: body.prefix(300), as: UTF8.self)
        if message.isEmpty { message = "HTTP \(status)" }
        self.message = message
        switch status {
        case 401:
            let lowered = message.lowercased()
            let demandsLogin = lowered.contains("high-assurance") || lowered.contains("internal policies") || lowered.contains("must authenticate with")
            classification = .unauthorized(demandsLogin: demandsLogin)
        case 408:
            classification = .notReady(maintenance: false)
        case 503:
            classification = .notReady(maintenance: code == "cluster_under_maintenance")
        case 422:
            if case .array(let details)? = json?["detail"] {
                let parts = details.prefix(5).map { detail -> String in
                    let location = (detail["loc"]?.arrayValue ?? []).map { $0.stringValue ?? $0.intValue.map(String.init) ?? "?" }
                        .filter { $0 != "body" && $0 != "payload" }.joined(separator: ".")
                    return "\(location): \(detail["msg"]?.stringValue ?? "invalid")"
                }
                classification = .validation(parts.joined(separator: "; "))
            } else {
                classification = .validation(message)
            }
        default:
            classification = .other
        }
    }
}

extension ALCFProvider: DynamicModelSource {
    /// The discovered models under `<provider>-<cluster>/<id>`, then each bare id once, with their status.
    package func discoveredModels() async -> [DiscoveredModel] {
        guard let discovery else { return [] }
        let models = await discovery.models()
        var entries = models.map { DiscoveredModel(id: discovery.qualifiedName($0), ownedBy: name, status: $0.status.rawValue) }
        var bare: Set<String> = []
        for model in models where bare.insert(model.id).inserted {
            let best = await discovery.resolve(model.id) ?? model
            entries.append(DiscoveredModel(id: model.id, ownedBy: name, status: best.status.rawValue))
        }
        return entries
    }

    /// The route for a discovered name; its upstream model carries the cluster (`sophia/openai/gpt-oss-120b`).
    package func discoveredRoute(for requested: String) async -> ModelRoute? {
        guard let discovery, let model = await discovery.resolve(requested) else { return nil }
        let config = ModelConfig(discovered: requested, provider: name, upstreamModel: "\(model.cluster)/\(model.id)")
        return ModelRoute(discovered: config, provider: self.config)
    }
}
