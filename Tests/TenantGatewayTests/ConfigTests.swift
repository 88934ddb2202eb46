import Testing
@testable import TenantGateway

@Suite("Config loading")
struct ConfigTests {
    let sample = """
        providers:
          up-openai:
            type: openai_chat
            base_url: http://127.0.0.1:9001/v1/
            api_key: ${OPENAI_KEY}
          up-anthropic:
            type: anthropic
            base_url: https://api.example.com
            headers: {X-Extra: v}
        models:
          gpt-test:
            provider: up-openai
            upstream_model: fake-gpt
            capabilities: [text, tools]
          claude-test:
            provider: up-anthropic
            max_tokens: 1234
        limits:
          max_body_bytes: 1024
        shutdown_grace_seconds: 2.5
        """

    @Test func parsesProvidersModelsAndLimits() throws {
        let config = try GatewayConfig.parse(yaml: sample, file: "c.yaml", environment: ["OPENAI_KEY": "sk-1"])
        #expect(config.providers.map(\.name) == ["up-openai", "up-anthropic"])
        #expect(config.providers[0].baseURL == "http://127.0.0.1:9001/v1")
        #expect(config.providers[0].apiKey == "sk-1")
        #expect(config.providers[1].type == .anthropic)
        #expect(config.providers[1].headers.map(\.name) == ["X-Extra"])
        #expect(config.models[0].upstreamModel == "fake-gpt")
        #expect(config.models[0].capabilities == [.text, .tools])
        #expect(config.models[1].upstreamModel == "claude-test")
        #expect(config.models[1].defaultMaxTokens == 1234)
        #expect(config.models[0].defaultMaxTokens == GatewayConfig.fallbackMaxTokens)
        #expect(config.limits.maxBodyBytes == 1024)
        #expect(config.shutdownGrace == .milliseconds(2500))
    }

    @Test func missingEnvironmentVariableNamesItAndTheLine() {
        #expect {
            try GatewayConfig.parse(yaml: sample, file: "c.yaml", environment: [:])
        } throws: { error in
            let error = error as! ConfigError
            return error.code == "missing_env" && error.line == 5 && error.description.contains("OPENAI_KEY")
                && error.description.hasPrefix("c.yaml:5:")
        }
    }

    @Test func literalDollarBraceEscapes() throws {
        let config = try GatewayConfig.parse(
            yaml: "providers:\n  p:\n    type: openai_chat\n    base_url: http://h/v1\n    api_key: a$${b}c$d\n",
            file: "c.yaml", environment: [:])
        #expect(config.providers[0].apiKey == "a${b}c$d")
    }

    @Test func unknownKeysTypesAndProvidersAreErrors() {
        let cases: [(String, String)] = [
            ("providers:\n  p:\n    type: openai_chat\n    base_url: http://h\n    bogus: 1\n", "unknown_key"),
            ("providers:\n  p:\n    type: grpc\n    base_url: http://h\n", "invalid_value"),
            ("providers:\n  p:\n    type: openai_chat\n    base_url: ftp://h\n", "invalid_value"),
            ("models:\n  m:\n    provider: nowhere\n", "unknown_provider"),
            ("limits:\n  max_body_bytes: -3\n", "invalid_value"),
            ("providers: [1, 2]\n", "invalid_type"),
            ("providers:\n  p: {type: openai_chat\n", "yaml_syntax"),
        ]
        for (yaml, code) in cases {
            #expect(throws: ConfigError.self) { try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: [:]) }
            do {
                _ = try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: [:])
            } catch {
                #expect(error.code == code, "for \(yaml)")
            }
        }
    }

    @Test func defaultFileParsesToAnEmptyConfig() throws {
        let config = try GatewayConfig.parse(yaml: GatewayConfig.defaultFileText, file: "default", environment: [:])
        #expect(config.providers.isEmpty)
        #expect(config.models.isEmpty)
    }
}

@Suite("Model catalog")
struct ModelCatalogTests {
    let catalog: ModelCatalog = {
        let provider = ProviderConfig(name: "p", type: .openAIChat, baseURL: "http://h/v1", apiKey: nil, headers: [], caFile: nil)
        let models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "Claude-Opus", "claude-opus"].map {
            ModelConfig(alias: $0, provider: "p", upstreamModel: $0, capabilities: [], defaultMaxTokens: 100)
        }
        return ModelCatalog(config: GatewayConfig(providers: [provider], models: models))
    }()

    @Test func resolvesExactAndUniqueCaseInsensitiveNames() throws {
        #expect(try catalog.resolve("gpt-4o").model.alias == "gpt-4o")
        #expect(try catalog.resolve("GPT-4O-MINI").model.alias == "gpt-4o-mini")
        #expect(try catalog.resolve("Claude-Opus").model.alias == "Claude-Opus")
    }

    @Test func ambiguousCaseInsensitiveNameListsCandidates() {
        do {
            _ = try catalog.resolve("CLAUDE-OPUS")
            Issue.record("expected an error")
        } catch {
            #expect(error.status == 400)
            #expect(error.message.contains("Claude-Opus") && error.message.contains("claude-opus"))
        }
    }

    @Test func unknownModelNamesTheClosest() {
        do {
            _ = try catalog.resolve("gpt-4")
            Issue.record("expected an error")
        } catch {
            #expect(error.status == 404)
            #expect(error.code == "model_not_found")
            #expect(error.message.contains("gpt-4o"))
            #expect(error.envelope(in: .openAIChat)["error"]?["code"] == "model_not_found")
            #expect(error.envelope(in: .anthropicMessages)["error"]?["type"] == "not_found_error")
        }
    }
}
