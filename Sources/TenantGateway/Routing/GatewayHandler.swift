import Logging
import NIOHTTP1

/// Answers the tenant's control requests (token, status), which are served only on the Unix socket.
package protocol TenantControl: Sendable {
    /// The tenant's status as a JSON object, with no secrets in it.
    func status() async -> JSON
}

/// One tenant's request handler: checks credentials, routes by path and model, translates and relays.
package struct GatewayHandler: GatewayRequestHandler {
    /// The largest whole upstream body the gateway collects before translating it.
    package static let maxUpstreamBodyBytes = 64 * 1024 * 1024

    let catalog: ModelCatalog
    let transforms: TransformCatalog
    let providers: [String: any UpstreamProvider]
    let upstream: UpstreamHTTPClient
    let token: TenantTokenStore
    let control: (any TenantControl)?
    let controlExtensions: [any ControlRouteExtension]
    let logger: Logger
    /// The tenant's upstream slots: every model call holds one for its whole duration, streams included.
    package let admission: UpstreamAdmission

    /// Creates the handler for a tenant's configuration.
    package init(
        config: GatewayConfig,
        upstream: UpstreamHTTPClient,
        token: TenantTokenStore,
        control: (any TenantControl)?,
        logger: Logger,
        extraProviders: [String: any UpstreamProvider] = [:],
        controlExtensions: [any ControlRouteExtension] = []
    ) {
        self.catalog = ModelCatalog(config: config)
        self.transforms = TransformCatalog(configured: config.transforms)
        var providers: [String: any UpstreamProvider] = extraProviders
        for provider in config.providers where providers[provider.name] == nil {
            providers[provider.name] = provider.type == .argo
                ? ArgoProvider(config: provider, timeouts: config.upstreamTimeouts, socketSource: nil, modelLister: upstream, logger: logger)
                : HTTPProvider(config: provider, timeouts: config.upstreamTimeouts)
        }
        self.providers = providers
        self.upstream = upstream
        self.token = token
        self.control = control
        self.controlExtensions = controlExtensions
        self.logger = logger
        self.admission = UpstreamAdmission(limits: config.upstreamConcurrency)
    }

    /// Routes one request and writes its response.
    package func handle(_ request: GatewayRequest, writer: some ResponseWriter) async {
        var logger = self.logger
        logger[metadataKey: "request.id"] = "\(request.id)"
        let dialect = request.clientDialect
        do {
            if request.origin == .loopbackTCP { try authenticate(request) }
            try await route(request, writer: writer, logger: logger)
        } catch {
            RequestObservation.current?.noteFailure(error)
            logger.info("request failed", metadata: [
                "error.code": "\(error.code)", "http.status": "\(error.status)", "http.path": "\(request.path)",
            ])
            try? await writer.writeWhole(
                status: HTTPResponseStatus(statusCode: error.status),
                headers: Self.errorHeaders(error),
                body: error.responseBody(in: dialect))
        }
    }

    // MARK: Authentication

    /// Requires the tenant token as `Authorization: Bearer` or `x-api-key` on the loopback port.
    func authenticate(_ request: GatewayRequest) throws(GatewayError) {
        for value in request.headers[canonicalForm: "authorization"] {
            let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.count == 2, parts[0].lowercased() == "bearer", token.matches(parts[1].utf8) { return }
        }
        for value in request.headers[canonicalForm: "x-api-key"] where token.matches(value.utf8) { return }
        // Google clients send their key as `x-goog-api-key` or as the `key` query parameter.
        for value in request.headers[canonicalForm: "x-goog-api-key"] where token.matches(value.utf8) { return }
        let queryKey = Self.queryValue("key", in: request.query)
        if let queryKey, token.matches(Substring(queryKey).utf8) { return }
        let presented = request.headers.contains(name: "authorization") || request.headers.contains(name: "x-api-key")
            || request.headers.contains(name: "x-goog-api-key") || queryKey != nil
        throw GatewayError(
            .authentication,
            code: presented ? "invalid_api_key" : "missing_api_key",
            message: presented
                ? "The token presented is not this user's rosetta token. Get the current one with `rosetta token`."
                : "This port needs the user's rosetta token as `Authorization: Bearer <token>` or `x-api-key: <token>`; get it with `rosetta token`.")
    }

    // MARK: Routing

    /// Normalizes the path so that clients with and without `/v1` in their base URL land on the same route.
    static func routeKey(_ path: String) -> Substring {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if trimmed.hasPrefix("/v1/") { return trimmed.dropFirst(3) }
        return trimmed
    }

    func route(_ request: GatewayRequest, writer: some ResponseWriter, logger: Logger) async throws(GatewayError) {
        let key = Self.routeKey(request.path)
        switch (request.method, key) {
        case (.POST, "/chat/completions"):
            try await admission.withSlot { () async throws(GatewayError) in try await relay(request, client: .openAIChat, writer: writer, logger: logger) }
        case (.POST, "/messages"):
            try await admission.withSlot { () async throws(GatewayError) in try await relay(request, client: .anthropicMessages, writer: writer, logger: logger) }
        case (.POST, "/messages/count_tokens"):
            try await writeJSON(countTokens(request), to: writer)
        case (.POST, "/embeddings"):
            try await admission.withSlot { () async throws(GatewayError) in try await relayEmbeddings(request, writer: writer, logger: logger) }
        case (.POST, "/responses"):
            try await admission.withSlot { () async throws(GatewayError) in try await relay(request, client: .openAIResponses, writer: writer, logger: logger) }
        case (.GET, "/models") where Self.isGoogleClient(request):
            try await writeJSON(googleModelList(), to: writer)
        case (.GET, _) where key.hasPrefix("/models/") && Self.isGoogleClient(request):
            let name = String(key.dropFirst("/models/".count))
            let route = try catalog.resolve(name.removingPercentEncoding ?? name)
            try await writeJSON(googleModelEntry(route.model), to: writer)
        case (.GET, "/models"):
            let anthropicShape = request.headers.contains(name: "anthropic-version")
            var list = modelList(anthropicShape: anthropicShape)
            let discovered = await discoveredModels(excludingConfigured: true)
            if !discovered.isEmpty, case .array(var entries)? = list["data"] {
                entries += discovered.map { discoveredEntry($0, anthropicShape: anthropicShape) }
                list["data"] = .array(entries)
                if anthropicShape { list["last_id"] = entries.last?["id"] ?? .null }
            }
            try await writeJSON(list, to: writer)
        case (.GET, _) where key.hasPrefix("/models/"):
            let name = String(key.dropFirst("/models/".count))
            let route = try await resolveModel(name.removingPercentEncoding ?? name)
            try await writeJSON(modelEntry(route.model, anthropicShape: request.headers.contains(name: "anthropic-version")), to: writer)
        case (.GET, "/v1beta/models"):
            try await writeJSON(googleModelList(), to: writer)
        case (.POST, _) where Self.googleCall(key)?.method == "countTokens":
            try await writeJSON(googleCountTokens(request, model: Self.googleCall(key)!.model), to: writer)
        case (.POST, _) where Self.googleCall(key) != nil:
            let call = Self.googleCall(key)!
            let streamed = call.method == "streamGenerateContent"
            try await admission.withSlot { () async throws(GatewayError) in
                try await relay(
                    request, client: .googleGenAI, writer: writer, logger: logger,
                    urlModel: call.model, urlStream: streamed, jsonArrayStream: streamed && Self.queryValue("alt", in: request.query) != "sse")
            }
        case (.GET, _) where key.hasPrefix("/v1beta/models/"):
            let name = String(key.dropFirst("/v1beta/models/".count))
            let route = try catalog.resolve(name.removingPercentEncoding ?? name)
            try await writeJSON(googleModelEntry(route.model), to: writer)
        case (.GET, "/health"), (.HEAD, "/health"):
            try await writeJSON(["status": "ok", "version": .string(RosettaVersion.current)], to: writer)
        case (_, _) where key.hasPrefix("/rosetta/"):
            try await controlRoute(request, key: key, writer: writer)
        case (_, "/chat/completions"), (_, "/messages"), (_, "/responses"), (_, "/models"), (_, "/health"), (_, "/messages/count_tokens"), (_, "/embeddings"):
            throw GatewayError(.methodNotAllowed, code: "method_not_allowed", message: "\(request.method.rawValue) is not allowed on \(request.path).")
        default:
            throw GatewayError(.notFound, code: "route_not_found", message: "No route for \(request.method.rawValue) \(request.path). Served: POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, POST /v1/messages/count_tokens, POST /v1/embeddings, GET /v1/models, POST /v1beta/models/{model}:generateContent, POST /v1beta/models/{model}:streamGenerateContent, POST /v1beta/models/{model}:countTokens, GET /v1beta/models, GET /health.")
        }
    }

    // MARK: Control routes (Unix socket only)

    func controlRoute(_ request: GatewayRequest, key: Substring, writer: some ResponseWriter) async throws(GatewayError) {
        guard case .unixSocket = request.origin else {
            throw GatewayError(.permission, code: "control_on_socket_only", message: "Control routes are served only on the user's Unix socket.")
        }
        switch (request.method, key) {
        case (.GET, "/rosetta/v1/token"):
            try await writeJSON(["token": .string(token.token)], to: writer)
        case (.POST, "/rosetta/v1/token/rotate"):
            do {
                let fresh = try token.rotate()
                logger.notice("tenant token rotated")
                try await writeJSON(["token": .string(fresh)], to: writer)
            } catch let error as SecretFileError {
                throw GatewayError(.internalError, code: "token_rotation_failed", message: "Could not write the new token: \(error.message)", cause: error)
            } catch let error as GatewayError {
                throw error
            } catch {
                throw GatewayError(.internalError, code: "token_rotation_failed", message: "Could not rotate the token.", cause: error)
            }
        case (.GET, "/rosetta/v1/status"):
            var status = await control?.status() ?? [:]
            status["models"] = .array(catalog.models.map { .string($0.alias) })
            let discovery = await discoveryStatuses(withModels: false)
            if !discovery.isEmpty { status["discovery"] = .object(discovery) }
            let slots = admission.snapshot
            status["upstream_slots"] = [
                "in_flight": JSON(slots.inFlight), "queued": JSON(slots.queued), "refused": JSON(slots.refused),
                "max_in_flight": JSON(admission.limits.maxInFlight), "max_queued": JSON(admission.limits.maxQueued),
            ]
            try await writeJSON(status, to: writer)
        case (.GET, "/rosetta/v1/models"):
            try await writeJSON(await modelsByProvider(), to: writer)
        case (.POST, "/rosetta/v1/models/refresh"):
            for name in providers.keys.sorted() {
                if let source = providers[name] as? any ModelDiscoveryReporting { await source.refreshDiscoveredModels() }
            }
            try await writeJSON(await modelsByProvider(), to: writer)
        default:
            for extensionRoutes in controlExtensions {
                if let answer = try await extensionRoutes.answer(method: request.method, route: key, body: request.body) {
                    try await writeJSON(answer, to: writer)
                    return
                }
            }
            throw GatewayError(.notFound, code: "route_not_found", message: "No control route \(request.method.rawValue) \(request.path).")
        }
    }

    // MARK: Relaying to an upstream

    /// Relays one model call; a Google call names its model and streaming in the URL (`urlModel`, `urlStream`),
    /// and `jsonArrayStream` frames its stream as a JSON array instead of server-sent events.
    func relay(
        _ request: GatewayRequest, client: Dialect, writer: some ResponseWriter, logger: Logger,
        urlModel: String? = nil, urlStream: Bool = false, jsonArrayStream: Bool = false
    ) async throws(GatewayError) {
        let body: JSON
        do {
            body = try JSON.parse(request.body)
        } catch {
            throw GatewayError(.invalidRequest, code: "invalid_json", message: "The request body is not valid JSON: \(error.description).", cause: error)
        }
        guard case .object = body else {
            throw GatewayError(.invalidRequest, code: "invalid_request", message: "The request body must be a JSON object, not \(body.typeName).")
        }
        guard let modelName = urlModel ?? body["model"]?.stringValue, !modelName.isEmpty else {
            throw GatewayError(.invalidRequest, code: "missing_model", message: "The request needs a 'model' string naming a configured model.", parameter: "model")
        }
        let route = try await resolveModel(modelName)
        guard let provider = providers[route.provider.name] else {
            throw GatewayError(.internalError, code: "provider_missing", message: "The provider '\(route.provider.name)' of model '\(route.model.alias)' is not available.")
        }
        var logger = logger
        logger[metadataKey: "model"] = "\(route.model.alias)"
        logger[metadataKey: "upstream"] = "\(provider.name)"
        RequestObservation.current?.noteRoute(model: route.model.alias, provider: provider.name)
        try CapabilityCheck.requireCapabilities(of: body, model: route.model)
        let dialectRouting = provider as? any ClientDialectRouting
        let upstreamDialect = dialectRouting?.dialect(for: route, client: client) ?? provider.dialect(for: route)
        var call = try Translation.prepareRequest(
            body, client: client, upstream: upstreamDialect,
            upstreamModel: route.model.upstreamModel, defaultMaxTokens: route.model.defaultMaxTokens,
            thinkingStyle: (provider as? any ThinkingStyleChoosing)?.thinkingStyle(for: route) ?? .budgetTokens, urlStream: urlStream)
        var plan = transforms.plan(provider: provider.name, providerType: route.provider.type, upstreamModel: route.model.upstreamModel)
        let clientStreams = call.stream
        if !plan.isEmpty {
            let transformed = try plan.transformRequest(call, upstream: upstreamDialect)
            call = transformed.call
            plan = transformed.plan
            for note in transformed.notes { logger.notice("transform changed the request", metadata: ["transform": "\(note)"]) }
        }
        var upstreamRequest = if let dialectRouting {
            try await dialectRouting.request(for: call, route: route, upstream: upstreamDialect, clientHeaders: request.headers)
        } else {
            try await provider.request(for: call, route: route, clientHeaders: request.headers)
        }

        var response: UpstreamResponse
        var retried = false
        while true {
            do {
                response = try await upstream.execute(upstreamRequest)
            } catch {
                throw Self.transportError(error, provider: provider.name)
            }
            guard !(200..<300).contains(response.status) else { break }
            let errorBody = (try? await response.collectBody(upTo: 1 << 20)) ?? []
            if let reviewer = provider as? any UpstreamFailureReviewing {
                switch await reviewer.reviewFailure(status: response.status, headers: response.headers, body: errorBody, request: upstreamRequest, mayRetry: !retried) {
                case .retry(let next) where !retried:
                    logger.info("upstream refused the request; retrying once", metadata: ["http.status": "\(response.status)"])
                    upstreamRequest = next
                    retried = true
                    continue
                case .fail(let failure):
                    logger.info("upstream answered with an error", metadata: ["http.status": "\(response.status)", "error.code": "\(failure.code)"])
                    throw failure
                case .report, .retry:
                    break
                }
            }
            var failure = Translation.decodeUpstreamError(status: response.status, body: errorBody, upstream: upstreamDialect)
            if response.status == 401 || response.status == 403 {
                // The upstream refused the gateway's credentials, not the client's: a configuration problem.
                failure = GatewayError(.upstream, code: "upstream_authentication_failed",
                    message: "The upstream '\(provider.name)' refused the configured credentials (HTTP \(response.status)): \(failure.message)",
                    status: 502, cause: failure)
            }
            if let retryAfter = response.headers.first(where: { $0.name.lowercased() == "retry-after" }).flatMap({ Int($0.value) }) {
                failure.retryAfter = retryAfter
            }
            logger.info("upstream answered with an error", metadata: ["http.status": "\(response.status)"])
            throw failure
        }
        response = try await provider.screenSuccess(response)
        if call.stream, clientStreams {
            await relayStream(
                response, client: client, upstream: upstreamDialect, clientModel: route.model.alias, includeUsage: call.includeUsage,
                customToolNames: call.customToolNames,
                chunkTransformer: plan.editsResponses ? StreamChunkTransformer(plan: plan) : nil,
                jsonArray: jsonArrayStream, writer: writer, logger: logger)
        } else {
            let upstreamBody: [UInt8]
            do {
                upstreamBody = try await response.collectBody(upTo: Self.maxUpstreamBodyBytes)
            } catch {
                throw Self.transportError(error, provider: provider.name)
            }
            let clientBody: [UInt8]
            if call.stream {
                // A force_stream rule streamed a call the client wanted whole: assemble the stream into one answer.
                var transformer = StreamChunkTransformer(plan: plan)
                var aggregator = StreamAggregator(upstream: upstreamDialect, model: route.model.alias)
                aggregator.feed(transformer.feed(upstreamBody))
                aggregator.feed(transformer.finish())
                let whole = try aggregator.finish()
                clientBody = try DialectCodecs.encodeResponse(
                    whole, dialect: client, clientModel: route.model.alias, customToolNames: call.customToolNames).bytes
            } else {
                clientBody = try Translation.translateResponse(
                    plan.transformResponse(upstreamBody), upstream: upstreamDialect, client: client, clientModel: route.model.alias,
                    customToolNames: call.customToolNames)
            }
            do {
                try await writer.writeWhole(status: .ok, headers: Self.jsonHeaders, body: clientBody)
            } catch {
                logger.debug("client went away before the response was written")
            }
        }
    }

    /// Streams an upstream SSE response to the client, translating each event as it arrives.
    func relayStream(
        _ response: UpstreamResponse, client: Dialect, upstream: Dialect, clientModel: String, includeUsage: Bool,
        customToolNames: Set<String> = [], chunkTransformer: StreamChunkTransformer? = nil, jsonArray: Bool = false,
        writer: some ResponseWriter, logger: Logger
    ) async {
        var translator = StreamTranslator(
            upstream: upstream, client: client, clientModel: clientModel, includeUsage: includeUsage, customToolNames: customToolNames)
        var chunkTransformer = chunkTransformer
        // A Google client calling streamGenerateContent without alt=sse gets the events as one JSON array.
        var framer = jsonArray ? GoogleJSONArrayFramer() : nil
        func framed(_ bytes: [UInt8]) -> [UInt8] {
            guard framer != nil else { return bytes }
            return framer!.feed(bytes)
        }
        do {
            try await writer.startStream(status: .ok, headers: jsonArray ? Self.jsonHeaders : Self.streamHeaders)
        } catch {
            return
        }
        do {
            do {
                for try await chunk in response.body {
                    let output = framed(translator.feed(chunkTransformer?.feed(chunk) ?? chunk))
                    if !output.isEmpty { try await writer.writeChunk(output) }
                    if translator.isFinished { break }
                }
                if var transformer = chunkTransformer, !translator.isFinished {
                    let output = framed(translator.feed(transformer.finish()))
                    if !output.isEmpty { try await writer.writeChunk(output) }
                }
                let tail = framed(try translator.finish())
                if !tail.isEmpty { try await writer.writeChunk(tail) }
            } catch let failure as GatewayError {
                logger.warning("upstream stream failed", metadata: ["error.code": "\(failure.code)"])
                RequestObservation.current?.noteFailure(failure)
                try await writer.writeChunk(framed(translator.errorEvent(for: failure)))
            } catch let failure as UpstreamError {
                let error = Self.transportError(failure, provider: "upstream")
                logger.warning("upstream stream broke off", metadata: ["error.code": "\(error.code)"])
                RequestObservation.current?.noteFailure(error)
                try await writer.writeChunk(framed(translator.errorEvent(for: error)))
            }
            if framer != nil, let closing = framer?.finish() { try await writer.writeChunk(closing) }
            try await writer.finishStream()
        } catch {
            // The client went away: leaving the loop drops the upstream body, which aborts the transfer.
            logger.info("client disconnected mid-stream; upstream transfer aborted")
        }
    }

    // MARK: Discovered models

    /// A configured model by name, else one a provider discovered (configured names always win).
    func resolveModel(_ name: String) async throws(GatewayError) -> ModelRoute {
        do {
            return try catalog.resolve(name)
        } catch where error.kind == .notFound {
            for provider in providers.values {
                if let source = provider as? any DynamicModelSource, let route = await source.discoveredRoute(for: name) { return route }
            }
            throw error
        }
    }

    /// Every provider's discovered models, by provider name; `excludingConfigured` leaves out names a configured
    /// model is listed under (configured models win) and names listed twice.
    func discoveredModels(excludingConfigured: Bool = false) async -> [DiscoveredModel] {
        var models: [DiscoveredModel] = []
        for name in providers.keys.sorted() {
            if let source = providers[name] as? any DynamicModelSource { models += await source.discoveredModels() }
        }
        guard excludingConfigured else { return models }
        var seen = Set(catalog.models.flatMap { catalog.listedNames(of: $0).map { $0.lowercased() } })
        return models.filter { seen.insert($0.id.lowercased()).inserted }
    }

    /// The discovery state of every provider that discovers models, by provider name.
    func discoveryStatuses(withModels: Bool) async -> JSONObject {
        var statuses = JSONObject()
        for name in providers.keys.sorted() {
            guard let source = providers[name] as? any ModelDiscoveryReporting else { continue }
            var status = await source.discoveryStatus()
            if !withModels { status["models"] = nil }
            statuses[name] = status
        }
        return statuses
    }

    /// The tenant's models by provider for `rosetta models`: configured ones with their names, then each
    /// discovering provider's discovered ones and its discovery state (`GET /rosetta/v1/models`).
    func modelsByProvider() async -> JSON {
        // Discovery is lazy: listing the models is a need, so a list never fetched (or stale) is fetched now.
        for provider in providers.values {
            if let source = provider as? any ModelDiscoveryReporting { _ = await source.discoveredModels() }
        }
        let discovery = await discoveryStatuses(withModels: true)
        var list: [JSON] = []
        for name in providers.keys.sorted() {
            guard let provider = providers[name] else { continue }
            var entry: JSONObject = ["name": .string(name)]
            var models = catalog.models.filter { $0.provider == name }.map { model -> JSON in
                [
                    "id": .string(model.alias), "upstream_model": .string(model.upstreamModel), "source": "config",
                    "names": .array(catalog.listedNames(of: model).map(JSON.string)),
                ]
            }
            if var status = discovery[name]?.objectValue {
                for discovered in status["models"]?.arrayValue ?? [] {
                    var item = discovered.objectValue ?? [:]
                    item["source"] = "discovered"
                    // A configured model answering to its clean name is the one requests reach.
                    if let id = discovered["id"]?.stringValue, (try? catalog.resolve(id)) != nil { item["overridden_by_config"] = true }
                    models.append(.object(item))
                }
                status["models"] = nil
                entry["discovery"] = .object(status)
            } else if let source = provider as? any DynamicModelSource {
                for discovered in await source.discoveredModels() {
                    models.append(["id": .string(discovered.id), "source": "discovered", "status": discovered.status.map(JSON.string) ?? .null])
                }
            }
            entry["models"] = .array(models)
            list.append(.object(entry))
        }
        return ["providers": .array(list)]
    }

    func discoveredEntry(_ model: DiscoveredModel, anthropicShape: Bool) -> JSON {
        var entry: JSON = anthropicShape
            ? ["type": "model", "id": .string(model.id), "display_name": .string(model.id), "created_at": "1970-01-01T00:00:00Z"]
            : ["id": .string(model.id), "object": "model", "created": 0, "owned_by": .string(model.ownedBy)]
        if let status = model.status { entry["status"] = .string(status) }
        return entry
    }

    // MARK: Helpers

    static let jsonHeaders: HTTPHeaders = ["content-type": "application/json"]
    static let streamHeaders: HTTPHeaders = ["content-type": "text/event-stream", "cache-control": "no-cache"]

    static func errorHeaders(_ error: GatewayError) -> HTTPHeaders {
        var headers = jsonHeaders
        if let retryAfter = error.retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        return headers
    }

    static func transportError(_ error: any Error, provider: String) -> GatewayError {
        guard let failure = error as? UpstreamError else {
            return GatewayError(.upstream, code: "upstream_failed", message: "The request to upstream '\(provider)' failed.", cause: error)
        }
        switch failure.code {
        case .timedOut:
            return GatewayError(.upstreamTimeout, code: "upstream_timeout", message: "Upstream '\(provider)' did not answer in time: \(failure.message)", cause: failure)
        case .connectFailed:
            return GatewayError(.upstream, code: "upstream_unreachable", message: "Upstream '\(provider)' is unreachable: \(failure.message)", cause: failure)
        default:
            return GatewayError(.upstream, code: "upstream_failed", message: "The request to upstream '\(provider)' failed: \(failure.message)", cause: failure)
        }
    }

    func writeJSON(_ value: JSON, to writer: some ResponseWriter) async throws(GatewayError) {
        do {
            try await writer.writeWhole(status: .ok, headers: Self.jsonHeaders, body: value.bytes)
        } catch {
            logger.debug("client went away before the response was written")
        }
    }

    /// A Google route's parts: the model segment (percent-decoded) and the method after the last `:`,
    /// for `/v1beta/models/{model}:{method}`, `/v1beta/tunedModels/{model}:{method}` and `/models/{model}:{method}`.
    static func googleCall(_ key: Substring) -> (model: String, method: String)? {
        var rest = key
        if rest.hasPrefix("/v1beta/") { rest = rest.dropFirst("/v1beta".count) }
        if rest.hasPrefix("/models/") {
            rest = rest.dropFirst("/models/".count)
        } else if rest.hasPrefix("/tunedModels/") {
            rest = rest.dropFirst("/tunedModels/".count)
        } else {
            return nil
        }
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        let method = String(rest[rest.index(after: colon)...])
        guard method == "generateContent" || method == "streamGenerateContent" || method == "countTokens" else { return nil }
        let model = String(rest[..<colon])
        guard !model.isEmpty else { return nil }
        return (model.removingPercentEncoding ?? model, method)
    }

    /// Whether a request comes from a Google GenAI client (its key header, its SDK's `x-goog-api-client`
    /// header or a `key` query parameter): google-genai with a custom base URL lists models at `/v1/models`.
    static func isGoogleClient(_ request: GatewayRequest) -> Bool {
        request.headers.contains(name: "x-goog-api-key") || request.headers.contains(name: "x-goog-api-client")
            || queryValue("key", in: request.query) != nil
    }

    /// The value of a query parameter (the first occurrence), percent-decoded.
    static func queryValue(_ name: String, in query: String?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name else { continue }
            let value = String(parts[1]).replacingPlusWithSpace
            return value.removingPercentEncoding ?? value
        }
        return nil
    }

    /// The configured models in Google's `ListModelsResponse` shape.
    func googleModelList() -> JSON {
        ["models": .array(catalog.models.map(googleModelEntry))]
    }

    /// One configured model in Google's `Model` shape.
    func googleModelEntry(_ model: ModelConfig) -> JSON {
        [
            "name": .string("models/" + model.alias),
            "baseModelId": .string(model.alias),
            "version": "rosetta",
            "displayName": .string(model.alias),
            "description": .string("\(model.alias) served by rosetta through provider \(model.provider)"),
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
        ]
    }

    func modelList(anthropicShape: Bool) -> JSON {
        let entries = catalog.models.flatMap { model in
            catalog.listedNames(of: model).map { modelEntry(model, id: $0, anthropicShape: anthropicShape) }
        }
        if anthropicShape {
            return [
                "data": .array(entries),
                "has_more": false,
                "first_id": entries.first?["id"] ?? .null,
                "last_id": entries.last?["id"] ?? .null,
            ]
        }
        return ["object": "list", "data": .array(entries)]
    }

    func modelEntry(_ model: ModelConfig, id: String? = nil, anthropicShape: Bool) -> JSON {
        let id = id ?? model.alias
        if anthropicShape {
            return ["type": "model", "id": .string(id), "display_name": .string(model.alias), "created_at": "1970-01-01T00:00:00Z"]
        }
        return ["id": .string(id), "object": "model", "created": 0, "owned_by": .string(model.provider)]
    }
}

extension String {
    /// The string with every `+` replaced by a space, as query strings encode spaces.
    var replacingPlusWithSpace: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "+" ? " " : $0 }))
    }

    /// The string with `%XX` escapes decoded, or `nil` when an escape is malformed or the result is not UTF-8.
    var removingPercentEncoding: String? {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
