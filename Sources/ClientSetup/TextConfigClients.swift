/// Codex CLI: `~/.codex/config.toml` selects a `rosetta` provider on the Responses API whose bearer token comes from
/// `rosetta token` (Codex's `[model_providers.<id>.auth]` command; it re-runs the command after a 401, so rotation needs no re-run).
package struct CodexClient: ClientProfile {
    /// The provider id rosetta owns in `model_providers`.
    static let providerID = "rosetta"
    /// Creates the profile.
    package init() {}
    package var name: String { "codex" }
    package var displayName: String { "Codex CLI" }
    package var configRelativePath: String? { ".codex/config.toml" }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [("OPENAI_BASE_URL", context.endpoint.openAIBase), ("OPENAI_API_KEY", token), ("ROSETTA_API_KEY", token)]
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        var editor = TOMLLineEditor(existing)
        try editor.setTopLevel("model", to: TOMLLineEditor.string(context.model))
        try editor.setTopLevel("model_provider", to: TOMLLineEditor.string(Self.providerID))
        let command = context.tokenCommand.first ?? "rosetta"
        let arguments = context.tokenCommand.dropFirst().map(TOMLLineEditor.string).joined(separator: ", ")
        editor.replaceTables(withPrefix: ["model_providers", Self.providerID], by: [
            "[model_providers.\(Self.providerID)]",
            "# written by `rosetta setup codex`; `rosetta setup --undo codex` restores the previous file",
            "name = \"rosetta\"",
            "base_url = \(TOMLLineEditor.string(context.endpoint.openAIBase))",
            "wire_api = \"responses\"",
            "requires_openai_auth = false",
            "",
            "[model_providers.\(Self.providerID).auth]",
            "command = \(TOMLLineEditor.string(command))",
            "args = [\(arguments)]",
            "refresh_interval_ms = 0",
        ])
        return editor.text
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        let editor = TOMLLineEditor(text)
        guard let provider = editor.topLevelString("model_provider") else { return .notConfigured }
        guard provider == Self.providerID else {
            return editor.hasTable(["model_providers", Self.providerID]) ? .pointsElsewhere(found: "model_provider = \(provider)") : .notConfigured
        }
        guard let baseURL = editor.tableString(["model_providers", Self.providerID], "base_url") else {
            return .pointsElsewhere(found: "model_provider = rosetta, but [model_providers.rosetta] has no base_url")
        }
        guard URLComparison.same(baseURL, endpoint.openAIBase) else { return .pointsElsewhere(found: "model_providers.rosetta.base_url = \(baseURL)") }
        guard editor.hasTable(["model_providers", Self.providerID, "auth"]) || editor.tableString(["model_providers", Self.providerID], "env_key") != nil else {
            return .pointsElsewhere(found: "[model_providers.rosetta] has neither an auth command nor an env_key")
        }
        return .ok
    }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: ["codex", "gpt-5", "gpt-4.1", "gpt-4o", "gpt", "o4", "o3"])
    }
}

/// Aider: `~/.aider.conf.yml` gets `openai-api-base` and `model: openai/<model>`; the key is `OPENAI_API_KEY` from the environment.
package struct AiderClient: ClientProfile {
    /// Creates the profile.
    package init() {}
    package var name: String { "aider" }
    package var displayName: String { "Aider" }
    package var configRelativePath: String? { ".aider.conf.yml" }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [("OPENAI_API_BASE", context.endpoint.openAIBase), ("OPENAI_API_KEY", token)]
            + (context.model.isEmpty ? [] : [("AIDER_MODEL", "openai/" + context.model)])
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        let path = "~/" + configRelativePath!
        _ = try YAMLLineEditor.load(existing, path: path)
        var editor = YAMLLineEditor(existing)
        editor.setTopLevel("openai-api-base", to: YAMLLineEditor.scalar(context.endpoint.openAIBase))
        editor.setTopLevel("model", to: YAMLLineEditor.scalar("openai/" + context.model))
        let result = try YAMLLineEditor.load(editor.text, path: path)
        guard result.scalarString(at: ["openai-api-base"]) == context.endpoint.openAIBase,
              result.scalarString(at: ["model"]) == "openai/" + context.model else {
            throw ClientSetupError(code: "unsupported_layout", message: "\(path) has a layout rosetta cannot edit safely; set openai-api-base and model by hand")
        }
        return editor.text
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        let config: [String: Any]
        do { config = try YAMLLineEditor.load(text, path: "~/" + configRelativePath!) } catch { return .unreadable(error.description) }
        guard let baseURL = config.scalarString(at: ["openai-api-base"]) else { return .notConfigured }
        return URLComparison.same(baseURL, endpoint.openAIBase) ? .ok : .pointsElsewhere(found: "openai-api-base: \(baseURL)")
    }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: ["claude-sonnet", "sonnet", "gpt-5", "gpt-4.1", "gpt", "claude"])
    }
}

/// Hermes Agent: the `model:` block of `~/.hermes/config.yaml` (`provider: custom`, `base_url`, `default`); the key is
/// `OPENAI_API_KEY` from the environment, since Hermes strips inline keys when it saves the file.
package struct HermesClient: ClientProfile {
    /// Creates the profile.
    package init() {}
    package var name: String { "hermes" }
    package var displayName: String { "Hermes Agent" }
    package var configRelativePath: String? { ".hermes/config.yaml" }

    package func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)] {
        [("OPENAI_BASE_URL", context.endpoint.openAIBase), ("OPENAI_API_KEY", token)]
    }

    package func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String {
        let path = "~/" + configRelativePath!
        _ = try YAMLLineEditor.load(existing, path: path)
        var editor = YAMLLineEditor(existing)
        // Hermes matches model names exactly, so the default is the gateway's id as listed, prefix and all.
        editor.setNested("model", [
            ("default", YAMLLineEditor.scalar(context.model)),
            ("provider", "custom"),
            ("base_url", YAMLLineEditor.scalar(context.endpoint.openAIBase)),
        ])
        let result = try YAMLLineEditor.load(editor.text, path: path)
        guard result.scalarString(at: ["model", "default"]) == context.model,
              result.scalarString(at: ["model", "provider"]) == "custom",
              result.scalarString(at: ["model", "base_url"]) == context.endpoint.openAIBase else {
            throw ClientSetupError(code: "unsupported_layout", message: "\(path) has a layout rosetta cannot edit safely; set model.default, model.provider and model.base_url by hand")
        }
        return editor.text
    }

    package func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        let config: [String: Any]
        do { config = try YAMLLineEditor.load(text, path: "~/" + configRelativePath!) } catch { return .unreadable(error.description) }
        guard let baseURL = config.scalarString(at: ["model", "base_url"]) else { return .notConfigured }
        return URLComparison.same(baseURL, endpoint.openAIBase) ? .ok : .pointsElsewhere(found: "model.base_url: \(baseURL)")
    }

    package func preferredModel(among models: [String]) -> String? {
        ModelPreference.first(among: models, preferring: ["claude-sonnet", "sonnet", "claude-opus", "gpt-5", "gpt", "claude"])
    }
}
