import NIOHTTP1

/// What the gateway does with an upstream's error answer, as decided by a provider that reviews its failures.
package enum UpstreamFailureDecision: Sendable {
    /// Report it the gateway's usual way.
    case report
    /// Report this error instead (clearer advice, a `Retry-After`, the client's own wording).
    case fail(GatewayError)
    /// Send this request instead, once (for example with a refreshed credential).
    case retry(UpstreamRequest)
}

/// A provider that looks at its upstream's error answers before the gateway reports them: to refresh a
/// credential and retry once, or to explain a failure better than the upstream's body does.
package protocol UpstreamFailureReviewing: Sendable {
    /// Decides what to do with an error answer to `request`; `mayRetry` is false once the request was retried.
    func reviewFailure(status: Int, headers: [(name: String, value: String)], body: [UInt8], request: UpstreamRequest, mayRetry: Bool) async -> UpstreamFailureDecision
}

/// A model a provider found by itself (by discovery), listed in `/v1/models` after the configured ones.
package struct DiscoveredModel: Sendable, Equatable {
    /// The name clients use.
    package var id: String
    /// The provider that serves it.
    package var ownedBy: String
    /// Whether it is serving now (`running`, `queued`, `stopped`), when the provider knows.
    package var status: String?

    /// Creates an entry.
    package init(id: String, ownedBy: String, status: String?) {
        self.id = id
        self.ownedBy = ownedBy
        self.status = status
    }
}

/// A provider whose models are discovered rather than configured; consulted when no configured model matches.
package protocol DynamicModelSource: Sendable {
    /// The models it offers now (cached by the provider).
    func discoveredModels() async -> [DiscoveredModel]
    /// The route for a requested name among its discovered models, or `nil`.
    func discoveredRoute(for requested: String) async -> ModelRoute?
}

extension ModelConfig {
    /// A model made up for a discovered upstream model: no declared capabilities, the default `max_tokens`.
    package init(discovered alias: String, provider: String, upstreamModel: String) {
        self.init(alias: alias, provider: provider, upstreamModel: upstreamModel, capabilities: [], defaultMaxTokens: GatewayConfig.fallbackMaxTokens)
    }
}

extension ModelRoute {
    /// Creates a route.
    package init(discovered model: ModelConfig, provider: ProviderConfig) {
        self.init(model: model, provider: provider)
    }
}
