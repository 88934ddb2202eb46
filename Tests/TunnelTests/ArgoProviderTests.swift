import NIOHTTP1
import Testing
@testable import TenantGateway
@testable import Tunnel

@Suite("Argo provider, config and rules")
struct ArgoProviderTests {
    static let yaml = """
        providers:
          argo:
            type: argo
            base_url: https://apps.inside.anl.gov/argoapi/
            ca_file: /etc/ca.pem
            tunnel:
              destination: alice@homes.cels.anl.gov
              jump: logins.cels.anl.gov
              identity_file: ~/.ssh/id_ed25519
              idle_timeout: 10m
          direct:
            type: argo
            base_url: https://apps.inside.anl.gov/argoapi
            user: bob
        models:
          claude-opus-4-8: {provider: argo, upstream_model: claudeopus48}
          gpt-4o: {provider: argo, upstream_model: gpt4o}
          gemini-2.5-pro: {provider: direct, upstream_model: gemini25pro}
        """

    static func config() throws -> GatewayConfig {
        try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: ["USER": "alice", "HOME": "/home/alice"])
    }

    struct Refusing: UpstreamSocketSource {
        func socketWhenReady(within: Duration) async throws(TunnelUnavailable) -> String {
            throw TunnelUnavailable(state: "locked", message: "locked; run `rosetta tunnel reset`", retryAfterSeconds: nil)
        }
    }

    struct Ready: UpstreamSocketSource {
        func socketWhenReady(within: Duration) async throws(TunnelUnavailable) -> String { "/run/t/argo.sock" }
    }

    // MARK: Config

    @Test("an argo provider's user defaults to USER, the forward to base_url's host:443, paths expand ~")
    func parsesArgo() throws {
        let config = try Self.config()
        let argo = try #require(config.provider(named: "argo")?.argo)
        #expect(argo.user == "alice")
        let tunnel = try #require(argo.tunnel)
        #expect(tunnel.destination == "alice@homes.cels.anl.gov")
        #expect(tunnel.jump == "logins.cels.anl.gov")
        #expect(tunnel.identityFile == "/home/alice/.ssh/id_ed25519")
        #expect(tunnel.forwardHost == "apps.inside.anl.gov" && tunnel.forwardPort == 443)
        #expect(tunnel.idleTimeout == .seconds(600))
        #expect(config.provider(named: "argo")?.baseURL == "https://apps.inside.anl.gov/argoapi")
        #expect(config.provider(named: "direct")?.argo == ArgoSettings(user: "bob", tunnel: nil))
        #expect(config.models.map(\.vendor) == [.anthropic, .openai, .google])
    }

    @Test("argo-only keys are refused on other types; tunnel mistakes are errors with a line")
    func argoConfigErrors() {
        func problem(_ text: String, environment: [String: String] = ["USER": "alice"]) -> ConfigError? {
            do {
                _ = try GatewayConfig.parse(yaml: text, file: "c.yaml", environment: environment)
                return nil
            } catch {
                return error
            }
        }
        #expect(problem("providers:\n  p: {type: openai_chat, base_url: 'http://x', user: a}")?.code == "unknown_key")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', tunnel: {destination: h, bogus: 1}}")?.code == "unknown_key")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', tunnel: {jump: h}}")?.code == "missing_key")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', tunnel: {destination: '-oProxyCommand=x'}}")?.code == "invalid_value")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', tunnel: {destination: h, forward_to: nope}}")?.code == "invalid_value")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', tunnel: {destination: h, idle_timeout: 5y}}")?.code == "invalid_value")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x'}", environment: [:])?.code == "missing_key")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', user: 'a b'}")?.code == "invalid_value")
        #expect(problem("providers:\n  p: {type: argo, base_url: 'https://x', tunnel: {destination: h, forward_to: 'h:8443', idle_timeout: off, port: 2222}}") == nil)
    }

    @Test("durations and URL hosts")
    func helpers() {
        #expect(ArgoSettings.parseDuration("90s") == .some(.seconds(90)))
        #expect(ArgoSettings.parseDuration("1h") == .some(.seconds(3600)))
        #expect(ArgoSettings.parseDuration("30") == .some(.seconds(30)))
        #expect(ArgoSettings.parseDuration("never") == .some(nil))
        #expect(ArgoSettings.parseDuration("-1m") == nil)
        #expect(ArgoSettings.hostAndPort(ofURL: "https://h.example/argoapi")! == ("h.example", 443))
        #expect(ArgoSettings.hostAndPort(ofURL: "http://h:8080/x")! == ("h", 8080))
        #expect(ArgoSettings.hostAndPort(ofURL: "ftp://h") == nil)
    }

    // MARK: Requests

    func route(_ alias: String, in config: GatewayConfig) throws -> ModelRoute {
        try ModelCatalog(config: config).resolve(alias)
    }

    @Test("identity: x-api-key, Bearer and body user are the tenant's, whatever the client sent")
    func identityOverwrite() async throws {
        let config = try Self.config()
        var providerConfig = try #require(config.provider(named: "argo"))
        providerConfig.headers = [("x-api-key", "configured"), ("X-Extra", "v")]
        let provider = ArgoProvider(config: providerConfig, timeouts: UpstreamTimeouts(), socketSource: Ready())
        let call = UpstreamCall(body: Array(#"{"model":"gpt4o","user":"mallory","messages":[]}"#.utf8), stream: false, includeUsage: false)
        let clientHeaders: HTTPHeaders = ["x-api-key": "mallory", "authorization": "Bearer mallory"]
        let request = try await provider.request(for: call, route: route("gpt-4o", in: config), clientHeaders: clientHeaders)
        #expect(request.url == "https://apps.inside.anl.gov/argoapi/v1/chat/completions")
        #expect(request.unixSocketPath == "/run/t/argo.sock")
        #expect(request.caFile == "/etc/ca.pem")
        #expect(request.headers.filter { $0.name == "x-api-key" }.map(\.value) == ["alice"])
        #expect(request.headers.filter { $0.name == "authorization" }.map(\.value) == ["Bearer alice"])
        #expect(request.headers.contains { $0.name == "X-Extra" })
        let body = try JSON.parse(request.body)
        #expect(body["user"] == "alice")
    }

    @Test("Claude goes to /v1/messages in the Anthropic dialect; others to chat completions")
    func dialects() async throws {
        let config = try Self.config()
        let provider = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: Ready())
        let claude = try route("claude-opus-4-8", in: config)
        #expect(provider.dialect(for: claude) == .anthropicMessages)
        #expect(provider.dialect(for: try route("gpt-4o", in: config)) == .openAIChat)
        let call = UpstreamCall(body: Array(#"{"model":"claudeopus48","messages":[]}"#.utf8), stream: true, includeUsage: false)
        let request = try await provider.request(for: call, route: claude, clientHeaders: ["anthropic-beta": "x"])
        #expect(request.url.hasSuffix("/argoapi/v1/messages"))
        #expect(request.headers.contains { $0 == ("anthropic-version", "2023-06-01") })
        #expect(request.headers.contains { $0 == ("anthropic-beta", "x") })
        #expect(request.headers.contains { $0 == ("accept", "text/event-stream") })
    }

    @Test("a direct argo provider has no socket; a tunnel that refuses gives a 503 naming the state")
    func socketHandling() async throws {
        let config = try Self.config()
        let direct = ArgoProvider(config: try #require(config.provider(named: "direct")), timeouts: UpstreamTimeouts(), socketSource: nil)
        let call = UpstreamCall(body: Array(#"{"model":"gemini25pro","messages":[]}"#.utf8), stream: false, includeUsage: false)
        let request = try await direct.request(for: call, route: route("gemini-2.5-pro", in: config), clientHeaders: [:])
        #expect(request.unixSocketPath == nil)
        let tunneled = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: Refusing())
        await #expect {
            _ = try await tunneled.request(for: call, route: route("gpt-4o", in: config), clientHeaders: [:])
        } throws: { error in
            guard let error = error as? GatewayError else { return false }
            return error.status == 503 && error.code == "argo_tunnel_locked" && error.message.contains("rosetta tunnel reset")
        }
        let missing = ArgoProvider(config: try #require(config.provider(named: "argo")), timeouts: UpstreamTimeouts(), socketSource: nil)
        await #expect(throws: GatewayError.self) {
            _ = try await missing.request(for: call, route: route("gpt-4o", in: config), clientHeaders: [:])
        }
    }

    // MARK: Rules

    func plan(_ upstreamModel: String) -> TransformPlan {
        TransformCatalog(configured: []).plan(provider: "argo", providerType: .argo, upstreamModel: upstreamModel)
    }

    func apply(_ upstreamModel: String, _ body: JSON) throws -> JSON {
        var body = body
        _ = try plan(upstreamModel).applyToRequest(&body)
        return body
    }

    @Test("built-in Argo rules: developer→system, max_completion_tokens, temperature, Gemini content, Claude streams")
    func rules() throws {
        let body: JSON = [
            "temperature": 0.5, "max_tokens": 10,
            "messages": [["role": "developer", "content": "d"], ["role": "assistant", "content": nil]],
        ]
        let gpt4o = try apply("gpt4o", body)
        #expect(gpt4o["temperature"] != nil)
        #expect(gpt4o["max_completion_tokens"] == 10 && gpt4o["max_tokens"] == nil)
        #expect(gpt4o["messages"]?.arrayValue?.first?["role"] == "system")
        for model in ["gpt5", "GPT-5.6 Sol", "gpto3mini", "claudeopus48", "Claude Opus 4.7", "gemini25pro"] {
            #expect(try apply(model, body)["temperature"] == nil, "\(model) rejects temperature")
        }
        #expect(try apply("claudesonnet45", body)["temperature"] != nil)
        let gemini = try apply("gemini25pro", body)
        #expect(gemini["messages"]?.arrayValue?.last?["content"] == "")
        #expect(plan("claudeopus48").forcesStream)
        #expect(!plan("gpt4o").forcesStream)
        // Other provider types get none of these.
        #expect(TransformCatalog(configured: []).plan(provider: "x", providerType: .openAIChat, upstreamModel: "gpt5").isEmpty)
    }

    // MARK: ssh command lines

    @Test("the tunnel's ssh forwards a Unix socket in its private directory, never a TCP port")
    func sshArguments() {
        var configuration = SSHTunnelConfiguration(
            destination: "alice@h", jump: "j", port: 2222, identityFile: "/k", knownHostsFile: "/kh",
            forwardHost: "argo.test", forwardPort: 443, runtimeDirectory: "/run/r")
        configuration.serverAliveInterval = 5
        let arguments = configuration.standaloneArguments
        #expect(arguments.first == "-N")
        #expect(arguments.last == "alice@h")
        for option in ["BatchMode=yes", "ExitOnForwardFailure=yes", "ServerAliveInterval=5", "ServerAliveCountMax=4", "ControlPath=none"] {
            #expect(arguments.contains(option), "\(option)")
        }
        let forward = arguments[arguments.firstIndex(of: "-L")! + 1]
        #expect(forward == "/run/r/argo.sock:argo.test:443")
        #expect(arguments.filter { $0 == "-L" }.count == 1)
        #expect(arguments.contains("-J") && arguments.contains("/k") && arguments.contains("UserKnownHostsFile=/kh"))
        #expect(configuration.controlArguments("forward").prefix(6) == ["-S", "/run/r/control.sock", "-o", "BatchMode=yes", "-O", "forward"])
        #expect(configuration.controlArguments("check").contains("-L") == false)
        let login = configuration.loginArguments
        #expect(login.contains("-M") && login.contains("ControlPersist=yes") && !login.contains("BatchMode=yes"))
    }
}
