/// A configured model resolved for one request: the alias the client used, the model and its provider.
package struct ModelRoute: Sendable {
    /// The model as configured.
    package var model: ModelConfig
    /// The provider that serves it.
    package var provider: ProviderConfig
}

/// Resolves the model names clients send to configured models.
///
/// A model is reachable by its alias, by `<vendor>/<alias>` (`anthropic/`, `openai/`, `google/`, for the
/// model's vendor only), and case-insensitively in both forms; an exact alias always wins.
package struct ModelCatalog: Sendable {
    /// The configured models, in file order.
    package let models: [ModelConfig]
    private let routes: [String: ModelRoute]
    private let foldedRoutes: [String: [ModelRoute]]

    /// Builds the catalog from a configuration whose models all name declared providers.
    package init(config: GatewayConfig) {
        var routes: [String: ModelRoute] = [:]
        var folded: [String: [ModelRoute]] = [:]
        for model in config.models {
            guard let provider = config.provider(named: model.provider) else { continue }
            let route = ModelRoute(model: model, provider: provider)
            routes[model.alias] = route
            folded[model.alias.lowercased(), default: []].append(route)
        }
        self.models = config.models
        self.routes = routes
        self.foldedRoutes = folded
    }

    /// The vendor a model's name is prefixed with: its declared `vendor`, else its provider type's.
    package func vendor(of model: ModelConfig) -> ModelVendor? {
        model.vendor ?? routes[model.alias]?.provider.type.defaultVendor
    }

    /// The names a model is listed under in `/v1/models`: its alias, then `<vendor>/<alias>` when it has a vendor.
    package func listedNames(of model: ModelConfig) -> [String] {
        guard let vendor = vendor(of: model), !model.alias.lowercased().hasPrefix(vendor.prefix) else { return [model.alias] }
        return [model.alias, vendor.prefix + model.alias]
    }

    /// Finds the route for a requested model: by exact alias, else by a unique case-insensitive match,
    /// else (for `anthropic/…`, `openai/…`, `google/…`) by the rest of the name among that vendor's models.
    ///
    /// Throws a 404 naming the closest configured names, or a 400 listing the candidates when a
    /// case-insensitive match is ambiguous.
    package func resolve(_ requested: String) throws(GatewayError) -> ModelRoute {
        if let route = routes[requested] { return route }
        var candidates = foldedRoutes[requested.lowercased()] ?? []
        if candidates.isEmpty, let (vendor, bare) = ModelVendor.split(requested) {
            if let route = routes[bare], vendor == self.vendor(of: route.model) { return route }
            candidates = (foldedRoutes[bare.lowercased()] ?? []).filter { vendor == self.vendor(of: $0.model) }
        }
        if candidates.count == 1 { return candidates[0] }
        if candidates.count > 1 {
            throw GatewayError(
                .invalidRequest, code: "ambiguous_model",
                message: "The model '\(requested)' matches several configured models: \(candidates.map(\.model.alias).joined(separator: ", ")). Use one of these exact names.",
                parameter: "model")
        }
        let suggestions = closestNames(to: ModelVendor.split(requested)?.bare ?? requested, limit: 3)
        let hint = suggestions.isEmpty
            ? "No models are configured; add some under 'models' in the rosetta config."
            : "Closest configured models: \(suggestions.joined(separator: ", "))."
        throw GatewayError(.notFound, code: "model_not_found", message: "The model '\(requested)' does not exist. \(hint)", parameter: "model")
    }

    /// The configured aliases nearest to a name by edit distance, best first.
    package func closestNames(to name: String, limit: Int) -> [String] {
        let target = Array(name.lowercased().unicodeScalars)
        return models
            .map { model in (alias: model.alias, distance: editDistance(target, Array(model.alias.lowercased().unicodeScalars))) }
            .sorted { $0.distance != $1.distance ? $0.distance < $1.distance : $0.alias < $1.alias }
            .prefix(limit)
            .map(\.alias)
    }
}

/// The Levenshtein distance between two scalar arrays, in O(n·m) time and O(m) space.
private func editDistance(_ left: [Unicode.Scalar], _ right: [Unicode.Scalar]) -> Int {
    if left.isEmpty { return right.count }
    if right.isEmpty { return left.count }
    var previous = Array(0...right.count)
    var current = [Int](repeating: 0, count: right.count + 1)
    for (i, leftScalar) in left.enumerated() {
        current[0] = i + 1
        for (j, rightScalar) in right.enumerated() {
            let substitution = previous[j] + (leftScalar == rightScalar ? 0 : 1)
            current[j + 1] = min(substitution, previous[j + 1] + 1, current[j] + 1)
        }
        swap(&previous, &current)
    }
    return previous[right.count]
}
