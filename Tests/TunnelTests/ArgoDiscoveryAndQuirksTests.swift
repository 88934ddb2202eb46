import Logging
import NIOHTTP1
import Synchronization
import Testing
@testable import TenantGateway
@testable import Tunnel

@Suite("Argo model discovery, aliases and quirks")
struct ArgoDiscoveryAndQuirksTests {
    static let listing: JSON = [
        "object": "list",
        "data": [
            ["id": "GPT-4o", "internal_id": "gpt4o", "owned_by": "openai"],
            ["id": "Claude Opus 4.8", "internal_id": "claudeopus48", "owned_by": "anthropic"],
            ["id": "Gemini 2.5 Pro", "internal_id": "gemini25pro", "owned_by": "google"],
            ["id": "GPT-5.6 Sol", "internal_id": "gpt56sol", "owned_by": "openai"],
            ["id": "Text Embedding 3 Small", "internal_id": "v3small", "owned_by": "openai"],
            ["id": "gpt35", "model_name": "GPT-3.5 Turbo"],
            ["id": "GPT 4o", "internal_id": "gpt4o_dup", "owned_by": "openai"],
            ["internal_id": "noid"],
        ],
    ]

    // MARK: Parsing and names

    @Test("the model list: new and old formats, vendors from owned_by or the name, one model per clean name")
    func parsesList() throws {
        let models = try ArgoModelList.parse(Self.listing)
        #expect(models.map(\.slug) == ["gpt-4o", "claude-opus-4-8", "gemini-2.5-pro", "gpt-5.6-sol", "text-embedding-3-small", "gpt-3.5-turbo"])
        #expect(models.map(\.internalID) == ["gpt4o", "claudeopus48", "gemini25pro", "gpt56sol", "v3small", "gpt35"])
        #expect(models.map(\.vendor) == [.openai, .anthropic, .google, .openai, .openai, .openai])
        #expect(models[5].displayID == "GPT-3.5 Turbo")
        // A bare array is read too; anything else is an error.
        #expect(try ArgoModelList.parse([["id": "Claude Haiku 4.5", "internal_id": "claudehaiku45"]]).map(\.vendor) == [.anthropic])
        #expect(throws: GatewayError.self) { try ArgoModelList.parse(["detail": "nope"]) }
    }

    @Test("clean names: lower case, runs of other characters one dash, versions with dashes for Anthropic")
    func slugs() {
        #expect(ArgoModelList.slug("GPT-4o", vendor: .openai) == "gpt-4o")
        #expect(ArgoModelList.slug("Claude Opus 4.8", vendor: .anthropic) == "claude-opus-4-8")
        #expect(ArgoModelList.slug("Claude Sonnet 4.5", vendor: .anthropic) == "claude-sonnet-4-5")
        #expect(ArgoModelList.slug("Gemini 2.5 Pro", vendor: .google) == "gemini-2.5-pro")
        #expect(ArgoModelList.slug("  GPT o3 -- mini (preview). ", vendor: .openai) == "gpt-o3-mini-preview")
        #expect(ArgoModelList.slug("Gemini 3.1 Flash_Lite", vendor: .google) == "gemini-3.1-flash-lite")
    }

    @Test("every name reaches the model, case-insensitively: clean, vendor/, provider:, display and internal ids")
    func findsByEveryName() throws {
        let models = try ArgoModelList.parse(Self.listing)
        for name in ["claude-opus-4-8", "anthropic/claude-opus-4-8", "argo:claude-opus-4-8", "Claude Opus 4.8", "claudeopus48",
                     "CLAUDE-OPUS-4-8", "Anthropic/Claude-Opus-4-8", "ARGO:Claude-Opus-4-8", "claude opus 4.8", "ClaudeOpus48"] {
            #expect(ArgoModelList.find(name, in: models, provider: "argo")?.internalID == "claudeopus48", "\(name)")
        }
        #expect(ArgoModelList.find("openai/claude-opus-4-8", in: models, provider: "argo") == nil)
        #expect(ArgoModelList.find("lab:gpt-4o", in: models, provider: "argo") == nil)
        #expect(ArgoModelList.find("lab:gpt-4o", in: models, provider: "lab")?.internalID == "gpt4o")
        #expect(ArgoModelList.find("gpt35", in: models, provider: "argo")?.slug == "gpt-3.5-turbo")
        #expect(ArgoModelList.find("claude-opus-4.8", in: models, provider: "argo") == nil)
    }

    // MARK: Discovery

    /// A scripted `GET /v1/models`: answers or failures in turn, counting the calls.
    final class ScriptedLister: Sendable {
        let answers: Mutex<[Result<JSON, GatewayError>]>
        let calls = Mutex(0)
        init(_ answers: [Result<JSON, GatewayError>]) { self.answers = Mutex(answers) }
        func fetch() throws(GatewayError) -> JSON {
            calls.withLock { $0 += 1 }
            let next = answers.withLock { $0.isEmpty ? Result.failure(GatewayError(.upstream, code: "x", message: "no more answers")) : $0.removeFirst() }
            return try next.get()
        }
    }

    final class FakeClock: Sendable {
        let start = ContinuousClock.now
        let offset = Mutex(Duration.zero)
        var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
        func advance(_ duration: Duration) { offset.withLock { $0 += duration } }
    }

    func discovery(_ lister: ScriptedLister, clock: FakeClock, refresh: Duration? = .seconds(3600)) -> ArgoModelDiscovery {
        ArgoModelDiscovery(providerName: "argo", refreshInterval: refresh, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), now: { clock.now }) {
            () throws(GatewayError) -> JSON in try lister.fetch()
        }
    }

    static let failure = GatewayError(.overloaded, code: "argo_tunnel_locked", message: "The SSH tunnel to Argo is locked", status: 503)

    @Test("discovery is lazy, cached, refreshed when stale or asked; a failure keeps the last list and is reported")
    func discoveryLifecycle() async throws {
        let small: JSON = ["data": [["id": "GPT-4o", "internal_id": "gpt4o", "owned_by": "openai"]]]
        let lister = ScriptedLister([.success(small), .failure(Self.failure), .success(Self.listing)])
        let clock = FakeClock()
        let discovery = discovery(lister, clock: clock)
        #expect(lister.calls.withLock { $0 } == 0)
        #expect(await discovery.status()["state"] == "not_fetched")
        #expect(await discovery.models().map(\.slug) == ["gpt-4o"])
        #expect(await discovery.models().count == 1)
        #expect(lister.calls.withLock { $0 } == 1)
        clock.advance(.seconds(3599))
        _ = await discovery.models()
        #expect(lister.calls.withLock { $0 } == 1)
        clock.advance(.seconds(1))
        // Stale: fetched again, which fails; the last list stays and the error is in the status.
        #expect(await discovery.models().map(\.slug) == ["gpt-4o"])
        #expect(lister.calls.withLock { $0 } == 2)
        let status = await discovery.status()
        #expect(status["state"] == "ready" && status["model_count"] == 1 && status["age_seconds"] == 3600)
        #expect(status["last_error"]?.stringValue?.contains("locked") == true)
        // Not tried again unasked for a whole interval after the failure.
        clock.advance(.seconds(60))
        _ = await discovery.models()
        #expect(lister.calls.withLock { $0 } == 2)
        // Asked for: fetched at once.
        #expect(await discovery.models(refresh: true).count == 6)
        #expect(await discovery.status()["last_error"] == nil)
    }

    @Test("with no list yet, a failure is retried only after a pause (or when asked); unknown names refetch once a minute")
    func discoveryFailuresAndOnDemand() async throws {
        let lister = ScriptedLister([.failure(Self.failure), .success(["data": []]), .success(Self.listing)])
        let clock = FakeClock()
        let discovery = discovery(lister, clock: clock, refresh: nil)
        #expect(await discovery.resolve("gpt-4o") == nil)
        #expect(await discovery.status()["state"] == "failed")
        #expect(await discovery.resolve("gpt-4o") == nil)
        #expect(lister.calls.withLock { $0 } == 1)
        clock.advance(ArgoModelDiscovery.retryAfterFailure)
        #expect(await discovery.resolve("gpt-4o") == nil)  // fetched: an empty list
        #expect(lister.calls.withLock { $0 } == 2)
        #expect(await discovery.resolve("gpt-4o") == nil)  // too recent to fetch again for an unknown name
        #expect(lister.calls.withLock { $0 } == 2)
        clock.advance(ArgoModelDiscovery.onDemandAge)
        #expect(await discovery.resolve("GPT-4o")?.internalID == "gpt4o")
        #expect(lister.calls.withLock { $0 } == 3)
    }

    @Test("the provider lists discovered models under clean and vendor names, routes any name to the internal id")
    func providerAsModelSource() async throws {
        let config = try ArgoProviderTests.config()
        let lister = ScriptedLister([.success(Self.listing)])
        let provider = ArgoProvider(
            config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: ArgoProviderTests.Ready(),
            discovery: discovery(lister, clock: FakeClock()))
        let listed = await provider.discoveredModels().map(\.id)
        #expect(listed.prefix(4) == ["gpt-4o", "openai/gpt-4o", "claude-opus-4-8", "anthropic/claude-opus-4-8"])
        #expect(await provider.discoveredModels().allSatisfy { $0.ownedBy == "argo" })
        let route = try #require(await provider.discoveredRoute(for: "argo:Claude-Opus-4-8"))
        #expect(route.model.alias == "argo:Claude-Opus-4-8")
        #expect(route.model.upstreamModel == "claudeopus48" && route.model.vendor == .anthropic)
        #expect(provider.dialect(for: route) == .anthropicMessages)
        #expect(await provider.discoveredRoute(for: "nothing-like-it") == nil)
        let status = await provider.discoveryStatus()
        #expect(status["models"]?.arrayValue?.first?["names"] == ["gpt-4o", "openai/gpt-4o", "argo:gpt-4o", "GPT-4o", "gpt4o"])
        #expect(await ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: nil).discoveredModels().isEmpty)
    }

    @Test("models_refresh and the tunnel's cool-down and lock thresholds are configurable")
    func configuration() async throws {
        let yaml = """
            providers:
              argo:
                type: argo
                base_url: https://argo.test/argoapi
                user: alice
                models_refresh: 30m
                tunnel: {destination: h, cooldown: 2s, auth_failures_before_cooldown: 3, cooldowns_before_lock: 1}
              plain: {type: argo, base_url: 'https://argo.test/argoapi', user: bob, models_refresh: off}
            """
        let config = try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: [:])
        let argo = try #require(config.provider(named: "argo")?.argo)
        #expect(argo.modelsRefresh == .seconds(1800))
        #expect(config.provider(named: "plain")?.argo?.modelsRefresh == nil)
        let tunnel = try #require(argo.tunnel)
        #expect(tunnel.coolDown == .seconds(2) && tunnel.authenticationFailuresBeforeCoolDown == 3 && tunnel.coolDownsBeforeLock == 1)
        let tunnels = ArgoTunnels(config: config, stateDirectory: "/tmp/never-created", logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let policy = try await #require(tunnels.tunnels["argo"]).configuration.policy
        #expect(policy.coolDown == .seconds(2) && policy.authenticationFailuresBeforeCoolDown == 3 && policy.coolDownsBeforeLock == 1)
        let defaults = try ArgoProviderTests.config().provider(named: "argo")?.argo
        #expect(defaults?.modelsRefresh == .seconds(3600) && defaults?.tunnel?.coolDown == .seconds(900) && defaults?.tunnel?.coolDownsBeforeLock == 2)
        for bad in ["models_refresh: soon", "tunnel: {destination: h, cooldown: off}", "tunnel: {destination: h, cooldowns_before_lock: 0}"] {
            #expect(throws: ConfigError.self, "\(bad)") {
                try GatewayConfig.parse(yaml: "providers:\n  a:\n    type: argo\n    base_url: https://x\n    user: a\n    \(bad)\n", file: "c", environment: [:])
            }
        }
    }

    // MARK: Gemini

    @Test("Gemini: an assistant turn with N parallel calls and N results becomes N sequential call/result pairs")
    func splitsParallelCalls() throws {
        func call(_ id: String) -> JSON { ["id": .string(id), "type": "function", "function": ["name": "f", "arguments": "{}"]] }
        func result(_ id: String) -> JSON { ["role": "tool", "tool_call_id": .string(id), "content": .string("r" + id)] }
        let messages: [JSON] = [
            ["role": "user", "content": "go"],
            ["role": "assistant", "content": "thinking aloud", "tool_calls": [call("a"), call("b"), call("c")]],
            result("b"), result("a"), result("c"), result("stray"),
            ["role": "assistant", "content": nil, "tool_calls": [call("d")]],
            result("d"),
            ["role": "user", "content": "thanks"],
        ]
        let split = ArgoRequestShaping.splitParallelToolCalls(messages)
        let shape = split.map { message -> String in
            let role = message["role"]?.stringValue ?? "?"
            if role == "tool" { return "tool:" + (message["tool_call_id"]?.stringValue ?? "") }
            if let calls = message["tool_calls"]?.arrayValue { return "call:" + calls.compactMap { $0["id"]?.stringValue }.joined(separator: ",") }
            return role
        }
        #expect(shape == ["user", "call:a", "tool:a", "call:b", "tool:b", "call:c", "tool:c", "tool:stray", "call:d", "tool:d", "user"])
        #expect(split[1]["content"] == "thinking aloud" && split[3]["content"] == "" && split[5]["content"] == "")
        // A single call is left as it is (its null content is the transform rule's business).
        #expect(split[8]["content"] == .null)

        var body: JSONObject = ["model": "gemini25pro", "messages": .array(messages)]
        ArgoRequestShaping.shape(&body, upstreamModel: "gemini25pro", dialect: .openAIChat)
        #expect(body["messages"]?.arrayValue?.count == 11)
        var gpt: JSONObject = ["model": "gpt4o", "messages": .array(messages)]
        ArgoRequestShaping.shape(&gpt, upstreamModel: "gpt4o", dialect: .openAIChat)
        #expect(gpt["messages"]?.arrayValue?.count == messages.count)
    }

    // MARK: Claude

    @Test("Claude thinking families by Argo name")
    func thinkingFamilies() {
        for name in ["claudehaiku45", "claudesonnet4", "claudesonnet45", "Claude Sonnet 4.5", "claudesonnet37"] {
            #expect(ArgoRequestShaping.thinkingFamily(of: name) == .budgetOnly, "\(name)")
        }
        for name in ["claudeopus47", "claudeopus48", "Claude Opus 4.8", "claudeopus5", "Claude Opus 5"] {
            #expect(ArgoRequestShaping.thinkingFamily(of: name) == .adaptiveOnly, "\(name)")
        }
        for name in ["claudeopus4", "claudeopus41", "claudeopus46", "gpt4o", "gemini25pro"] {
            #expect(ArgoRequestShaping.thinkingFamily(of: name) == .either, "\(name)")
        }
    }

    @Test("thinking: adaptive becomes enabled+budget for Haiku/Sonnet, enabled becomes adaptive+effort for Opus 4.7+")
    func fitsThinking() {
        var sonnet: JSONObject = ["max_tokens": 20000, "thinking": ["type": "adaptive"], "output_config": ["effort": "high"]]
        ArgoRequestShaping.fitThinking(&sonnet, family: .budgetOnly)
        #expect(sonnet["thinking"] == ["type": "enabled", "budget_tokens": 16384])
        #expect(sonnet["output_config"] == nil)
        var tight: JSONObject = ["max_tokens": 4000, "thinking": ["type": "adaptive"], "output_config": ["effort": "max", "format": "x"]]
        ArgoRequestShaping.fitThinking(&tight, family: .budgetOnly)
        #expect(tight["thinking"] == ["type": "enabled", "budget_tokens": 3999])
        #expect(tight["output_config"] == ["format": "x"])
        var tiny: JSONObject = ["max_tokens": 500, "thinking": ["type": "adaptive"]]
        ArgoRequestShaping.fitThinking(&tiny, family: .budgetOnly)
        #expect(tiny["thinking"] == nil)

        var opus: JSONObject = ["max_tokens": 20000, "thinking": ["type": "enabled", "budget_tokens": 16384]]
        ArgoRequestShaping.fitThinking(&opus, family: .adaptiveOnly)
        #expect(opus["thinking"] == ["type": "adaptive"])
        #expect(opus["output_config"] == ["effort": "high"])
        var opusWithEffort: JSONObject = ["thinking": ["type": "enabled", "budget_tokens": 2048], "output_config": ["effort": "max"]]
        ArgoRequestShaping.fitThinking(&opusWithEffort, family: .adaptiveOnly)
        #expect(opusWithEffort["output_config"] == ["effort": "max"])

        // What each family accepts already, and disabled thinking, pass unchanged.
        for (family, thinking) in [(ArgoRequestShaping.ClaudeThinkingFamily.budgetOnly, ["type": "enabled", "budget_tokens": 2048] as JSON),
                                   (.adaptiveOnly, ["type": "adaptive"]), (.adaptiveOnly, ["type": "disabled"]), (.either, ["type": "adaptive"])] {
            var body: JSONObject = ["thinking": thinking]
            ArgoRequestShaping.fitThinking(&body, family: family)
            #expect(body["thinking"] == thinking)
        }
    }

    @Test("translated requests are built in the family's thinking form from the start (no lossy round trip)")
    func thinkingStyleForTranslation() async throws {
        let config = try ArgoProviderTests.config()
        let provider = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: ArgoProviderTests.Ready())
        var route = try ModelCatalog(config: config).resolve("claude-opus-4-8")
        #expect(provider.thinkingStyle(for: route) == .adaptive)
        let body: JSON = ["model": "claude-opus-4-8", "reasoning_effort": "xhigh", "max_completion_tokens": 40000, "messages": [["role": "user", "content": "hi"]]]
        let call = try Translation.prepareRequest(
            body, client: .openAIChat, upstream: .anthropicMessages, upstreamModel: "claudeopus48", defaultMaxTokens: 8192,
            thinkingStyle: provider.thinkingStyle(for: route))
        let sent = try JSON.parse(try await provider.request(for: call, route: route, clientHeaders: [:]).body)
        #expect(sent["thinking"] == ["type": "adaptive"] && sent["output_config"] == ["effort": "max"])
        route.model.upstreamModel = "claudesonnet45"
        #expect(provider.thinkingStyle(for: route) == .budgetTokens)
        route.model.upstreamModel = "claudeopus46"
        #expect(provider.thinkingStyle(for: route) == .budgetTokens)
    }

    @Test("Claude: empty thinking blocks are dropped (a turn left empty goes), strict is dropped from tools")
    func claudeHistoryAndTools() throws {
        let messages: [JSON] = [
            ["role": "user", "content": "hi"],
            ["role": "assistant", "content": [["type": "thinking", "thinking": "", "signature": "s"], ["type": "text", "text": "a"]]],
            ["role": "user", "content": "more"],
            ["role": "assistant", "content": [["type": "thinking", "thinking": "  "], ["type": "redacted_thinking", "data": ""]]],
            ["role": "assistant", "content": [["type": "thinking", "thinking": "real", "signature": "s"], ["type": "text", "text": "b"]]],
        ]
        let kept = ArgoRequestShaping.droppingEmptyThinkingBlocks(messages)
        #expect(kept.count == 4)
        #expect(kept[1]["content"] == [["type": "text", "text": "a"]])
        #expect(kept[3] == messages[4])

        var body: JSON = ["model": "claudeopus48", "tools": [["name": "f", "input_schema": ["type": "object"], "strict": true]], "messages": []]
        _ = try TransformCatalog(configured: []).plan(provider: "argo", providerType: .argo, upstreamModel: "claudeopus48").applyToRequest(&body)
        #expect(body["tools"]?[0]?["strict"] == nil && body["tools"]?[0]?["name"] == "f")
    }

    @Test("through the provider: Claude bodies are shaped and carry the tenant in user and metadata.user_id")
    func providerShapesClaude() async throws {
        let config = try ArgoProviderTests.config()
        let provider = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: ArgoProviderTests.Ready())
        let body: JSON = [
            "model": "claudeopus48", "max_tokens": 20000, "metadata": ["user_id": "mallory"],
            "thinking": ["type": "enabled", "budget_tokens": 8192],
            "messages": [["role": "assistant", "content": [["type": "thinking", "thinking": ""], ["type": "text", "text": "x"]]]],
        ]
        let call = UpstreamCall(body: body.bytes, stream: true, includeUsage: true)
        let request = try await provider.request(for: call, route: ModelCatalog(config: config).resolve("claude-opus-4-8"), clientHeaders: [:])
        let sent = try JSON.parse(request.body)
        #expect(sent["thinking"] == ["type": "adaptive"] && sent["output_config"] == ["effort": "medium"])
        #expect(sent["metadata"] == ["user_id": "alice"] && sent["user"] == "alice")
        #expect(sent["messages"]?[0]?["content"] == [["type": "text", "text": "x"]])
    }

    // MARK: Responses

    @Test("a Responses client's GPT call goes to /v1/responses with the Bearer identity; Claude and Gemini do not")
    func responsesRouting() async throws {
        let config = try ArgoProviderTests.config()
        let provider = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: ArgoProviderTests.Ready())
        let catalog = ModelCatalog(config: config)
        let gpt = try catalog.resolve("gpt-4o")
        #expect(provider.dialect(for: gpt, client: .openAIResponses) == .openAIResponses)
        #expect(provider.dialect(for: gpt, client: .openAIChat) == .openAIChat)
        #expect(provider.dialect(for: try catalog.resolve("claude-opus-4-8"), client: .openAIResponses) == .anthropicMessages)
        var gemini = gpt
        gemini.model.upstreamModel = "gemini25pro"
        #expect(provider.dialect(for: gemini, client: .openAIResponses) == .openAIChat)
        let call = UpstreamCall(body: Array(#"{"model":"gpt4o","input":"hi","user":"mallory"}"#.utf8), stream: false, includeUsage: true)
        let request = try await provider.request(for: call, route: gpt, upstream: .openAIResponses, clientHeaders: ["authorization": "Bearer mallory"])
        #expect(request.url == "https://apps.inside.anl.gov/argoapi/v1/responses")
        #expect(request.headers.filter { $0.name == "authorization" }.map(\.value) == ["Bearer alice"])
        #expect(try JSON.parse(request.body)["user"] == "alice")
    }

    // MARK: Failures

    @Test("Argo's Vertex token failures become a 502 saying so; other errors are reported as usual")
    func vertexFingerprints() async throws {
        let config = try ArgoProviderTests.config()
        let provider = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: nil)
        let request = UpstreamRequest(url: "https://x/v1/messages", method: "POST", headers: [], body: Array(#"{"model":"claudeopus48"}"#.utf8))
        let bodies = [
            #"{"detail":"HTTPSConnectionPool(host='oauth2.googleapis.com', port=443): Max retries exceeded with url: /token"}"#,
            "Internal error: Max retries exceeded",
            "could not reach oauth2.googleapis.com",
        ]
        for body in bodies {
            let decision = await provider.reviewFailure(status: 500, headers: [], body: Array(body.utf8), request: request, mayRetry: true)
            guard case .fail(let error) = decision else {
                Issue.record("\(body) was not turned into a failure")
                continue
            }
            #expect(error.status == 502 && error.code == "argo_vertex_token_failure")
            #expect(error.message.contains("claudeopus48") && error.message.contains("Argo"))
            #expect(error.responseBody(in: .anthropicMessages).count > 0)
        }
        let ordinary = await provider.reviewFailure(status: 400, headers: [], body: Array(#"{"error":"Invalid model"}"#.utf8), request: request, mayRetry: true)
        guard case .report = ordinary else {
            Issue.record("an ordinary error was changed")
            return
        }
    }
}
