import Logging

extension UpstreamProvider {
    /// Providers that cannot embed refuse with a 400 saying so.
    package func embeddingsRequest(body: [UInt8], route: ModelRoute) async throws(GatewayError) -> UpstreamRequest {
        throw EmbeddingsProblem.cannotEmbed(route)
    }
}

extension HTTPProvider {
    /// A POST of the embeddings body to `<base_url>/embeddings` for `openai_chat` providers; other types cannot embed.
    package func embeddingsRequest(body: [UInt8], route: ModelRoute) async throws(GatewayError) -> UpstreamRequest {
        guard config.type == .openAIChat else { throw EmbeddingsProblem.cannotEmbed(route) }
        var headers: [(name: String, value: String)] = [
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("user-agent", "rosettad/\(RosettaVersion.current)"),
        ]
        if let key = config.apiKey { headers.append(("authorization", "Bearer \(key)")) }
        headers.append(contentsOf: config.headers)
        return UpstreamRequest(
            url: config.baseURL + "/embeddings", method: "POST", headers: headers, body: body,
            connectTimeout: timeouts.connect, idleTimeout: timeouts.idle, totalTimeout: nil,
            unixSocketPath: nil, caFile: config.caFile)
    }
}

/// Errors of the embeddings route.
enum EmbeddingsProblem {
    static func cannotEmbed(_ route: ModelRoute) -> GatewayError {
        GatewayError(
            .invalidRequest, code: "embeddings_not_supported",
            message: "The model '\(route.model.alias)' is served by '\(route.provider.name)', a \(route.provider.type.rawValue) provider, which cannot compute embeddings through rosetta; only openai_chat providers serve /v1/embeddings.",
            parameter: "model")
    }
}

extension GatewayHandler {
    /// Relays `POST /v1/embeddings` (OpenAI shape) to the model's provider with only `model` renamed.
    func relayEmbeddings(_ request: GatewayRequest, writer: some ResponseWriter, logger: Logger) async throws(GatewayError) {
        let body: JSON
        do {
            body = try JSON.parse(request.body)
        } catch {
            throw GatewayError(.invalidRequest, code: "invalid_json", message: "The request body is not valid JSON: \(error.description).", cause: error)
        }
        guard case .object(var object) = body else {
            throw GatewayError(.invalidRequest, code: "invalid_request", message: "The request body must be a JSON object, not \(body.typeName).")
        }
        guard let modelName = object["model"]?.stringValue, !modelName.isEmpty else {
            throw GatewayError(.invalidRequest, code: "missing_model", message: "The request needs a 'model' string naming a configured model.", parameter: "model")
        }
        guard let input = object["input"], input.stringValue != nil || input.arrayValue != nil else {
            throw GatewayError(.invalidRequest, code: "invalid_request", message: "The request needs 'input': a string or an array of strings or token arrays.", parameter: "input")
        }
        let route = try catalog.resolve(modelName)
        guard let provider = providers[route.provider.name] else {
            throw GatewayError(.internalError, code: "provider_missing", message: "The provider '\(route.provider.name)' of model '\(route.model.alias)' is not available.")
        }
        var logger = logger
        logger[metadataKey: "model"] = "\(route.model.alias)"
        logger[metadataKey: "upstream"] = "\(provider.name)"
        RequestObservation.current?.noteRoute(model: route.model.alias, provider: provider.name)
        object["model"] = .string(route.model.upstreamModel)
        let upstreamRequest = try await provider.embeddingsRequest(body: JSON.object(object).bytes, route: route)
        let response: UpstreamResponse
        let responseBody: [UInt8]
        do {
            response = try await upstream.execute(upstreamRequest)
            responseBody = try await response.collectBody(upTo: Self.maxUpstreamBodyBytes)
        } catch {
            throw Self.transportError(error, provider: provider.name)
        }
        guard (200..<300).contains(response.status) else {
            logger.info("upstream answered with an error", metadata: ["http.status": "\(response.status)"])
            throw Translation.decodeUpstreamError(status: response.status, body: responseBody, upstream: .openAIChat)
        }
        guard case .object(var answer)? = try? JSON.parse(responseBody) else {
            throw UpstreamProblem.invalidResponse("the embeddings response is not a JSON object")
        }
        if answer["model"] != nil { answer["model"] = .string(route.model.alias) }
        try await writeJSON(.object(answer), to: writer)
    }
}
