import TenantGateway

/// Claude Code: `~/.claude/settings.json` with `apiKeyHelper` running `rosetta token`, so a rotated token needs no re-run.
package struct ClaudeCodeClient: ClientProfile {
    /// Creates the profile.
    package init() {}
    package var name: String { "claude" }
    package var displayName: String { "Claude Code" }
    package var configRelativePath: String? { ".claude/settings.json" }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [
            ("ANTHROPIC_BASE_URL", context.endpoint.origin),
            ("ANTHROPIC_AUTH_TOKEN", token),
            ("ANTHROPIC_MODEL", context.model),
            ("ANTHROPIC_DEFAULT_HAIKU_MODEL", Self.fastModel(context)),
            ("NO_PROXY", HostList.appending(["localhost", "127.0.0.1"], to: currentEnvironment["NO_PROXY"])),
            ("no_proxy", HostList.appending(["localhost", "127.0.0.1"], to: currentEnvironment["no_proxy"])),
        ]
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        var settings = try JSONConfigText.parseObject(existing, path: "~/" + configRelativePath!)
        settings["apiKeyHelper"] = .string(context.tokenCommandLine)
        settings["model"] = .string(context.model)
        var environment = settings["env"]?.objectValue ?? [:]
        environment["ANTHROPIC_BASE_URL"] = .string(context.endpoint.origin)
        environment["ANTHROPIC_DEFAULT_HAIKU_MODEL"] = .string(Self.fastModel(context))
        for name in ["NO_PROXY", "no_proxy"] {
            environment[name] = .string(HostList.appending(["localhost", "127.0.0.1"], to: environment[name]?.stringValue))
        }
        settings["env"] = .object(environment)
        return JSONConfigText.render(settings)
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        let settings: JSONObject
        do { settings = try JSONConfigText.parseObject(text, path: "~/" + configRelativePath!) } catch { return .unreadable(error.description) }
        guard let baseURL = settings.value(at: ["env", "ANTHROPIC_BASE_URL"])?.stringValue else { return .notConfigured }
        guard URLComparison.same(baseURL, endpoint.origin) else { return .pointsElsewhere(found: "env.ANTHROPIC_BASE_URL = \(baseURL)") }
        guard let helper = settings["apiKeyHelper"]?.stringValue, Self.runsRosettaToken(helper) else {
            return .pointsElsewhere(found: "apiKeyHelper is not `rosetta token` (a copied token stops working when it rotates)")
        }
        return .ok
    }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: ["claude-sonnet", "sonnet", "claude-opus", "opus", "claude"])
    }

    /// Whether a helper command line is `rosetta token` (any path to rosetta, any options after).
    static func runsRosettaToken(_ commandLine: String) -> Bool {
        var rest = Substring(commandLine.trimmingWhitespace)
        let program: Substring
        if rest.first == "'" || rest.first == "\"", let close = rest.dropFirst().firstIndex(of: rest.first!) {
            program = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
        } else {
            program = rest.prefix { $0 != " " }
            rest = rest.dropFirst(program.count)
        }
        let arguments = rest.split(separator: " ")
        return (program == "rosetta" || program.hasSuffix("/rosetta")) && arguments.first == "token"
    }

    /// A Haiku-class model for Claude Code's background calls, else the default model.
    static func fastModel(_ context: ClientSetupContext) -> String {
        context.models.first { $0.lowercased().contains("haiku") } ?? context.model
    }
}

/// OpenCode: a `rosetta` provider (`@ai-sdk/openai-compatible`) in `~/.config/opencode/opencode.json` listing the live models.
///
/// OpenCode cannot run a command for a key, so the provider's `apiKey` is `{env:ROSETTA_API_KEY}`, set by
/// `eval "$(rosetta env opencode)"` (which reads the current token each time it runs).
package struct OpenCodeClient: ClientProfile {
    /// The environment variable OpenCode reads the token from.
    package static let keyVariable = "ROSETTA_API_KEY"
    /// Creates the profile.
    package init() {}
    package var name: String { "opencode" }
    package var displayName: String { "OpenCode" }
    package var configRelativePath: String? { ".config/opencode/opencode.json" }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [(Self.keyVariable, token)]
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        var config = try JSONConfigText.parseObject(existing, path: "~/" + configRelativePath!)
        if existing == nil || config.isEmpty { config["$schema"] = "https://opencode.ai/config.json" }
        var models = JSONObject()
        for model in context.models { models[model] = ["name": .string(model)] }
        let provider: JSONObject = [
            "npm": "@ai-sdk/openai-compatible",
            "name": "rosetta",
            "options": ["baseURL": .string(context.endpoint.openAIBase), "apiKey": .string("{env:\(Self.keyVariable)}")],
            "models": .object(models),
        ]
        config.set(.object(provider), at: ["provider", "rosetta"])
        config["model"] = .string("rosetta/" + context.model)
        return JSONConfigText.render(config)
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        let config: JSONObject
        do { config = try JSONConfigText.parseObject(text, path: "~/" + configRelativePath!) } catch { return .unreadable(error.description) }
        guard let baseURL = config.value(at: ["provider", "rosetta", "options", "baseURL"])?.stringValue else { return .notConfigured }
        guard URLComparison.same(baseURL, endpoint.openAIBase) else { return .pointsElsewhere(found: "provider.rosetta.options.baseURL = \(baseURL)") }
        guard config.value(at: ["provider", "rosetta", "options", "apiKey"])?.stringValue == "{env:\(Self.keyVariable)}" else {
            return .pointsElsewhere(found: "provider.rosetta.options.apiKey is not {env:\(Self.keyVariable)}")
        }
        return .ok
    }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: ["claude-sonnet", "sonnet", "gpt-5", "gpt", "claude"])
    }
}

/// Gemini CLI: `~/.gemini/settings.json` selects API-key auth and the model; the base URL and key come from the environment.
package struct GeminiCLIClient: ClientProfile {
    /// Creates the profile.
    package init() {}
    package var name: String { "gemini" }
    package var displayName: String { "Gemini CLI" }
    package var configRelativePath: String? { ".gemini/settings.json" }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [("GOOGLE_GEMINI_BASE_URL", context.endpoint.origin), ("GEMINI_API_KEY", token), ("GEMINI_MODEL", context.model)]
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        var settings = try JSONConfigText.parseObject(existing, path: "~/" + configRelativePath!)
        settings.set("gemini-api-key", at: ["security", "auth", "selectedType"])
        settings.set(.string(context.model), at: ["model", "name"])
        return JSONConfigText.render(settings)
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        let settings: JSONObject
        do { settings = try JSONConfigText.parseObject(text, path: "~/" + configRelativePath!) } catch { return .unreadable(error.description) }
        guard let selected = settings.value(at: ["security", "auth", "selectedType"])?.stringValue else { return .notConfigured }
        return selected == "gemini-api-key" ? .ok : .pointsElsewhere(found: "security.auth.selectedType = \(selected)")
    }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: ["gemini-2.5-pro", "gemini-3", "gemini"])
    }
}

/// Scripts using an official SDK: no config file, only a base-URL and a key variable in the environment.
package struct SDKClient: ClientProfile {
    /// The OpenAI SDK: `OPENAI_BASE_URL` (with `/v1`) and `OPENAI_API_KEY`.
    package static let openAI = SDKClient(
        name: "openai", displayName: "OpenAI SDK", baseURLVariable: "OPENAI_BASE_URL", keyVariable: "OPENAI_API_KEY",
        baseURLIncludesV1: true, preferring: ["gpt"])
    /// The Anthropic SDK: `ANTHROPIC_BASE_URL` (without `/v1`) and `ANTHROPIC_API_KEY`.
    package static let anthropic = SDKClient(
        name: "anthropic", displayName: "Anthropic SDK", baseURLVariable: "ANTHROPIC_BASE_URL", keyVariable: "ANTHROPIC_API_KEY",
        baseURLIncludesV1: false, preferring: ["claude"])
    /// Google's `google-genai` SDK: `GOOGLE_GEMINI_BASE_URL` (without `/v1beta`) and `GEMINI_API_KEY`.
    package static let googleGenAI = SDKClient(
        name: "google-genai", displayName: "Google GenAI SDK", baseURLVariable: "GOOGLE_GEMINI_BASE_URL", keyVariable: "GEMINI_API_KEY",
        baseURLIncludesV1: false, preferring: ["gemini"])

    package let name: String
    package let displayName: String
    /// The variable the SDK reads its base URL from.
    let baseURLVariable: String
    /// The variable the SDK reads its key from.
    let keyVariable: String
    /// Whether the SDK's base URL ends in `/v1` (OpenAI) or is the bare origin.
    let baseURLIncludesV1: Bool
    /// Model-name prefixes the SDK's vendor serves, most preferred first.
    let preferring: [String]

    package var configRelativePath: String? { nil }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [(baseURLVariable, baseURLIncludesV1 ? context.endpoint.openAIBase : context.endpoint.origin), (keyVariable, token)]
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        throw ClientSetupError(code: "env_only", message: "the \(displayName) has no config file; use eval \"$(rosetta env \(name))\"")
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck { .notConfigured }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: preferring)
    }
}
