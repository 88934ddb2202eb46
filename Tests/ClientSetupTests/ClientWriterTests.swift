import Foundation
import Testing
import TenantGateway
@testable import ClientSetup

/// A realistic config file from Fixtures/.
func fixture(_ name: String) throws -> String {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name)
    return try String(contentsOf: url, encoding: .utf8)
}

let endpoint = ClientEndpoint(port: 21987)
let context = ClientSetupContext(
    endpoint: endpoint, model: "claude-sonnet",
    models: ["gpt-4o", "claude-sonnet", "claude-haiku", "gemini-2.5-pro", "anthropic/claude-opus-4"],
    tokenCommand: ["rosetta", "token"])

/// Lines of `after` that are not in `before` (as a multiset), and those of `before` missing in `after`.
func lineChanges(_ before: String, _ after: String) -> (added: [String], removed: [String]) {
    var remaining = before.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var added: [String] = []
    for line in after.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        if let index = remaining.firstIndex(of: line) { remaining.remove(at: index) } else { added.append(line) }
    }
    return (added, remaining)
}

@Suite("Client config writers")
struct ClientWriterTests {
    @Test("Claude Code: apiKeyHelper, base URL and NO_PROXY merged; every other setting kept in order")
    func claudeMerge() throws {
        let before = try fixture("claude-settings.json")
        let after = try ClaudeCodeClient().merge(existing: before, context: context)
        let object = try #require(try JSON.parse(after).objectValue)
        #expect(object.keys == ["$schema", "permissions", "env", "includeCoAuthoredBy", "cleanupPeriodDays", "apiKeyHelper", "model"])
        #expect(object["apiKeyHelper"] == "rosetta token")
        #expect(object["model"] == "claude-sonnet")
        let env = try #require(object["env"]?.objectValue)
        #expect(env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:21987")
        #expect(env["NO_PROXY"] == "internal.example.org,localhost,127.0.0.1")
        #expect(env["no_proxy"] == "localhost,127.0.0.1")
        #expect(env["MAX_THINKING_TOKENS"] == .number("31999"))
        #expect(env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-haiku")
        #expect(object["permissions"] == (try JSON.parse(before))["permissions"])
        #expect(try ClaudeCodeClient().merge(existing: after, context: context) == after)
        #expect(ClaudeCodeClient().inspect(after, endpoint: endpoint) == .ok)
        #expect(ClaudeCodeClient.runsRosettaToken("'/opt/my tools/rosetta' token --socket /tmp/s"))
        #expect(!ClaudeCodeClient.runsRosettaToken("echo rosetta token"))
    }

    @Test("Claude Code: a new file, and the check of others' files")
    func claudeNewAndCheck() throws {
        let created = try ClaudeCodeClient().merge(existing: nil, context: context)
        #expect(created.hasPrefix("{\n  \"apiKeyHelper\": \"rosetta token\",\n"))
        let client = ClaudeCodeClient()
        #expect(client.inspect(try fixture("claude-settings.json"), endpoint: endpoint) == .notConfigured)
        #expect(client.inspect(created, endpoint: ClientEndpoint(port: 1)) == .pointsElsewhere(found: "env.ANTHROPIC_BASE_URL = http://127.0.0.1:21987"))
        let copiedToken = #"{"apiKeyHelper": "echo abc123", "env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:21987/"}}"#
        guard case .pointsElsewhere(let found) = client.inspect(copiedToken, endpoint: endpoint) else {
            Issue.record("a copied token should not pass the check")
            return
        }
        #expect(!found.contains("abc123"))
        guard case .unreadable = client.inspect("{ // comment\n}", endpoint: endpoint) else {
            Issue.record("JSON with comments is unreadable for the check")
            return
        }
        #expect(throws: ClientSetupError.self) { try client.merge(existing: "{ // comment\n}", context: context) }
    }

    @Test("Codex: only model, model_provider and rosetta's tables change; comments and other tables stay byte-identical")
    func codexMerge() throws {
        let before = try fixture("codex-config.toml")
        let codexContext = ClientSetupContext(endpoint: endpoint, model: "gpt-4o", models: context.models, tokenCommand: ["/opt/rosetta/bin/rosetta", "token"])
        let after = try CodexClient().merge(existing: before, context: codexContext)
        let changes = lineChanges(before, after)
        #expect(changes.removed == [#"model = "gpt-5-codex" # my favourite"#])
        #expect(changes.added.contains(#"model = "gpt-4o" # my favourite"#))
        #expect(changes.added.contains(#"model_provider = "rosetta""#))
        #expect(changes.added.contains(#"base_url = "http://127.0.0.1:21987/v1""#))
        #expect(changes.added.contains(#"command = "/opt/rosetta/bin/rosetta""#))
        #expect(changes.added.contains(#"args = ["token"]"#))
        #expect(changes.added.contains(#"wire_api = "responses""#))
        // model_provider goes right after the last top-level key (the multi-line notify array).
        #expect(after.contains("  \"Codex\",\n]\nmodel_provider = \"rosetta\"\n\n[model_providers.azure]"))
        #expect(try CodexClient().merge(existing: after, context: codexContext) == after)
        #expect(CodexClient().inspect(after, endpoint: endpoint) == .ok)
        #expect(CodexClient().inspect(before, endpoint: endpoint) == .notConfigured)
        #expect(CodexClient().inspect(after, endpoint: ClientEndpoint(port: 2)) == .pointsElsewhere(found: "model_providers.rosetta.base_url = http://127.0.0.1:21987/v1"))
    }

    @Test("Codex: an existing rosetta table is replaced in place, a new port updates it, an empty file gets a complete config")
    func codexReplaceAndEmpty() throws {
        let fresh = try CodexClient().merge(existing: nil, context: context)
        #expect(fresh.hasPrefix("model = \"claude-sonnet\"\nmodel_provider = \"rosetta\"\n\n[model_providers.rosetta]\n"))
        let tail = "\n[tui]\nnotifications = true # keep\n"
        let moved = try CodexClient().merge(existing: fresh + tail, context: ClientSetupContext(endpoint: ClientEndpoint(port: 3000), model: "gpt-4o", models: []))
        #expect(moved.contains("base_url = \"http://127.0.0.1:3000/v1\""))
        #expect(!moved.contains("21987"))
        #expect(moved.hasSuffix(tail))
        #expect(moved.components(separatedBy: "[model_providers.rosetta]").count == 2)
        #expect(try CodexClient().merge(existing: moved, context: ClientSetupContext(endpoint: ClientEndpoint(port: 3000), model: "gpt-4o", models: [])) == moved)
    }

    @Test("Codex: a multi-line string that looks like a table header is not a header")
    func codexMultilineStrings() throws {
        let before = "instructions = \"\"\"\n[model_providers.rosetta]\nnot a table\n\"\"\"\n"
        let after = try CodexClient().merge(existing: before, context: context)
        #expect(after.hasPrefix(before.dropLast() + "\nmodel = \"claude-sonnet\"\nmodel_provider = \"rosetta\"\n"))
        #expect(after.contains("not a table"))
    }

    @Test("OpenCode: a rosetta provider with the live models and an {env:} key; other providers kept")
    func openCodeMerge() throws {
        let before = try fixture("opencode.json")
        let after = try OpenCodeClient().merge(existing: before, context: context)
        let object = try #require(try JSON.parse(after).objectValue)
        #expect(object.keys == ["$schema", "theme", "provider", "autoupdate", "model"])
        #expect(object["model"] == "rosetta/claude-sonnet")
        let providers = try #require(object["provider"]?.objectValue)
        #expect(providers.keys == ["ollama", "rosetta"])
        #expect(providers["ollama"] == (try JSON.parse(before))["provider"]?["ollama"])
        #expect(providers["rosetta"]?["options"]?["baseURL"] == "http://127.0.0.1:21987/v1")
        #expect(providers["rosetta"]?["options"]?["apiKey"] == "{env:ROSETTA_API_KEY}")
        #expect(providers["rosetta"]?["models"]?.objectValue?.keys == context.models)
        #expect(try OpenCodeClient().merge(existing: after, context: context) == after)
        #expect(OpenCodeClient().inspect(after, endpoint: endpoint) == .ok)
        #expect(OpenCodeClient().inspect(before, endpoint: endpoint) == .notConfigured)
    }

    @Test("Gemini CLI: API-key auth and model.name; other settings kept")
    func geminiMerge() throws {
        let before = try fixture("gemini-settings.json")
        #expect(GeminiCLIClient().inspect(before, endpoint: endpoint) == .pointsElsewhere(found: "security.auth.selectedType = oauth-personal"))
        let geminiContext = ClientSetupContext(endpoint: endpoint, model: "gemini-2.5-pro", models: context.models)
        let after = try GeminiCLIClient().merge(existing: before, context: geminiContext)
        let object = try #require(try JSON.parse(after).objectValue)
        #expect(object.keys == ["general", "ui", "security", "mcpServers", "model"])
        #expect(object["security"]?["auth"]?["selectedType"] == "gemini-api-key")
        #expect(object["model"]?["name"] == "gemini-2.5-pro")
        #expect(object["general"] == (try JSON.parse(before))["general"])
        #expect(after.contains("\"mcpServers\": {}"))
        #expect(try GeminiCLIClient().merge(existing: after, context: geminiContext) == after)
        #expect(GeminiCLIClient().inspect(after, endpoint: endpoint) == .ok)
    }

    @Test("Aider: openai-api-base and model edited in place; comments, lists and other keys byte-identical")
    func aiderMerge() throws {
        let before = try fixture("aider.conf.yml")
        let after = try AiderClient().merge(existing: before, context: context)
        let changes = lineChanges(before, after)
        #expect(changes.removed == ["model: sonnet  # the default"])
        #expect(changes.added == ["model: openai/claude-sonnet  # the default", "openai-api-base: http://127.0.0.1:21987/v1"])
        #expect(try AiderClient().merge(existing: after, context: context) == after)
        #expect(AiderClient().inspect(after, endpoint: endpoint) == .ok)
        #expect(AiderClient().inspect(before, endpoint: endpoint) == .notConfigured)
        #expect(AiderClient().inspect("openai-api-base: https://api.example.com/v1\n", endpoint: endpoint)
                == .pointsElsewhere(found: "openai-api-base: https://api.example.com/v1"))
        #expect(throws: ClientSetupError.self) { try AiderClient().merge(existing: "model: [unclosed\n", context: context) }
    }

    @Test("Hermes: the model block edited in place with the exact listed name; comments and other blocks kept")
    func hermesMerge() throws {
        let before = try fixture("hermes-config.yaml")
        let hermesContext = ClientSetupContext(endpoint: endpoint, model: "anthropic/claude-opus-4", models: context.models)
        let after = try HermesClient().merge(existing: before, context: hermesContext)
        let changes = lineChanges(before, after)
        #expect(changes.removed == ["  provider: openrouter"])
        #expect(changes.added == ["  provider: custom", "  base_url: http://127.0.0.1:21987/v1"])
        #expect(after.contains("  default: anthropic/claude-opus-4   # picked with `hermes model`\n  provider: custom\n  base_url: http://127.0.0.1:21987/v1\n  # context_length: 200000\n\nterminal:"))
        #expect(try HermesClient().merge(existing: after, context: hermesContext) == after)
        #expect(HermesClient().inspect(after, endpoint: endpoint) == .ok)
        #expect(HermesClient().inspect(before, endpoint: endpoint) == .notConfigured)
        // `hermes config set model X` leaves a scalar; rosetta's block replaces it.
        let scalar = try HermesClient().merge(existing: "model: gpt-4o\nagent:\n  max_turns: 60\n", context: hermesContext)
        #expect(scalar == "model:\n  default: anthropic/claude-opus-4\n  provider: custom\n  base_url: http://127.0.0.1:21987/v1\nagent:\n  max_turns: 60\n")
    }

    @Test("Environment exports: base URLs with or without /v1 as each client expects; values shell-quoted")
    func environments() throws {
        func exports(_ profile: any ClientProfile, _ current: [String: String] = [:]) -> [String: String] {
            Dictionary(uniqueKeysWithValues: profile.environment(context: context, token: "t'ok", currentEnvironment: current).map { ($0.name, $0.value) })
        }
        #expect(exports(SDKClient.openAI) == ["OPENAI_BASE_URL": "http://127.0.0.1:21987/v1", "OPENAI_API_KEY": "t'ok"])
        #expect(exports(SDKClient.anthropic) == ["ANTHROPIC_BASE_URL": "http://127.0.0.1:21987", "ANTHROPIC_API_KEY": "t'ok"])
        #expect(exports(SDKClient.googleGenAI) == ["GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:21987", "GEMINI_API_KEY": "t'ok"])
        #expect(exports(ClaudeCodeClient(), ["NO_PROXY": "a.example"])["NO_PROXY"] == "a.example,localhost,127.0.0.1")
        #expect(exports(AiderClient())["AIDER_MODEL"] == "openai/claude-sonnet")
        #expect(exports(GeminiCLIClient())["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:21987")
        let noModel = ClientSetupContext(endpoint: endpoint, model: "", models: [])
        #expect(AiderClient().environment(context: noModel, token: "t", currentEnvironment: [:]).map(\.name) == ["OPENAI_API_BASE", "OPENAI_API_KEY"])
        #expect(ShellQuoting.exports([("A", "it's $HOME")]) == "export A='it'\\''s $HOME'\n")
        #expect(ContextTokenCommand.line(["/path with space/rosetta", "token"]) == "'/path with space/rosetta' token")
    }

    @Test("Default models follow each client's kind")
    func defaultModels() {
        let models = ["gpt-4o", "claude-haiku", "claude-sonnet-4-5", "gemini-2.5-pro", "gpt-5-codex"]
        #expect(ClaudeCodeClient().preferredModel(among: models) == "claude-sonnet-4-5")
        #expect(CodexClient().preferredModel(among: models) == "gpt-5-codex")
        #expect(GeminiCLIClient().preferredModel(among: models) == "gemini-2.5-pro")
        #expect(SDKClient.openAI.preferredModel(among: models) == "gpt-4o")
        #expect(ClaudeCodeClient().preferredModel(among: ["llama"]) == "llama")
        #expect(ClientCatalog.named("claude-code")?.name == "claude")
        #expect(ClientCatalog.named("nope") == nil)
        #expect(ClientCatalog.withConfigFiles.map(\.name) == ["claude", "codex", "opencode", "aider", "gemini", "hermes"])
    }
}

/// The token command as Claude Code's shell runs it.
enum ContextTokenCommand {
    static func line(_ argv: [String]) -> String {
        ClientSetupContext(endpoint: endpoint, model: "m", models: [], tokenCommand: argv).tokenCommandLine
    }
}
