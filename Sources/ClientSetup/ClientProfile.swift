import TenantGateway

/// Where a user's gateway listens on loopback: the origin every client's base URL is built from.
package struct ClientEndpoint: Sendable, Equatable {
    /// The loopback port of the user's gateway.
    package var port: Int

    /// Creates the endpoint for a port on 127.0.0.1.
    package init(port: Int) {
        self.port = port
    }

    /// `http://127.0.0.1:PORT`, the base URL for Anthropic- and Google-format clients.
    package var origin: String { "http://127.0.0.1:\(port)" }

    /// `http://127.0.0.1:PORT/v1`, the base URL for OpenAI-format clients.
    package var openAIBase: String { origin + "/v1" }
}

/// Everything a client writer needs: the endpoint, the model to default to, the live model list and how to get the token.
package struct ClientSetupContext: Sendable, Equatable {
    /// The gateway's loopback endpoint.
    package var endpoint: ClientEndpoint
    /// The model the client should use by default.
    package var model: String
    /// Every model id the gateway serves, in the daemon's order.
    package var models: [String]
    /// The command (argv) that prints the current token, e.g. `["rosetta", "token"]`.
    package var tokenCommand: [String]

    /// Creates a context.
    package init(endpoint: ClientEndpoint, model: String, models: [String], tokenCommand: [String] = ["rosetta", "token"]) {
        self.endpoint = endpoint
        self.model = model
        self.models = models
        self.tokenCommand = tokenCommand
    }

    /// The token command as one shell command line.
    package var tokenCommandLine: String { tokenCommand.map(ShellQuoting.quoteIfNeeded).joined(separator: " ") }
}

/// What a check of a client's config file found.
package enum ClientConfigCheck: Sendable, Equatable {
    /// The file points at this endpoint and gets its token the way rosetta set it up.
    case ok
    /// The file (or rosetta's part of it) is absent: the client was not set up for rosetta.
    case notConfigured
    /// The file is set up, but for another endpoint or key source; `found` says what it holds (never a secret).
    case pointsElsewhere(found: String)
    /// The file exists but cannot be read or parsed.
    case unreadable(String)
}

/// A failure preparing or writing a client's config, with a stable code and the cause.
package struct ClientSetupError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A stable code: `unparsable_config`, `unsupported_layout`, `io_failed`, `nothing_to_undo`, `env_only`.
    package var code: String
    /// What happened and what to do.
    package var message: String
    /// The underlying error's description, when there is one.
    package var cause: String?

    /// Creates an error.
    package init(code: String, message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The message, with the cause when known.
    package var description: String { cause.map { "\(message) (\($0))" } ?? message }
}

/// One client rosetta can configure: its shell exports, its config file merge and the check of that file.
package protocol ClientProfile: Sendable {
    /// The name on the command line (`claude`, `codex`, …).
    var name: String { get }
    /// The client's product name for messages and docs.
    var displayName: String { get }
    /// The config file rosetta edits, relative to the home directory; nil for clients configured only by environment.
    var configRelativePath: String? { get }
    /// The shell variables `rosetta env <name>` exports, in order; `currentEnvironment` supplies values to extend (NO_PROXY).
    /// With an empty `context.model` (no model known), model variables are empty or left out; callers drop empty ones.
    func environment(context: ClientSetupContext, token: String, currentEnvironment: [String: String]) -> [(name: String, value: String)]
    /// The client's config text with rosetta's settings merged in (`existing` nil when there is no file).
    func merge(existing: String?, context: ClientSetupContext) throws(ClientSetupError) -> String
    /// Whether a config text points at the endpoint.
    func inspect(_ text: String, endpoint: ClientEndpoint) -> ClientConfigCheck
    /// The model this client should default to among the gateway's models.
    func preferredModel(among models: [String]) -> String?
}

extension ClientProfile {
    /// The command that sets this client up.
    package var fixCommand: String { "rosetta setup \(name)" }

    /// The absolute path of the config file under `home`, or nil for env-only clients.
    package func configPath(home: String) -> String? {
        configRelativePath.map { (home.hasSuffix("/") ? String(home.dropLast()) : home) + "/" + $0 }
    }

    /// Checks the client's config file under `home`: `.ok` when it points at `endpoint`; env-only clients are `.notConfigured`.
    package func check(home: String, endpoint: ClientEndpoint) -> ClientConfigCheck {
        guard let path = configPath(home: home) else { return .notConfigured }
        let text: String?
        do {
            text = try ConfigFiles.read(path)
        } catch {
            return .unreadable(error.description)
        }
        guard let text else { return .notConfigured }
        return inspect(text, endpoint: endpoint)
    }
}

/// The clients rosetta knows, by name.
package enum ClientCatalog {
    /// Every client, in the order `rosetta env --help` lists them.
    package static let all: [any ClientProfile] = [
        ClaudeCodeClient(), CodexClient(), OpenCodeClient(), AiderClient(), GeminiCLIClient(), HermesClient(),
        SDKClient.openAI, SDKClient.anthropic, SDKClient.googleGenAI,
    ]

    /// The client with this name (also accepting a few aliases such as `claude-code`, `gemini-cli`).
    package static func named(_ name: String) -> (any ClientProfile)? {
        let aliases = ["claude-code": "claude", "gemini-cli": "gemini", "google": "google-genai", "genai": "google-genai"]
        let key = aliases[name.lowercased()] ?? name.lowercased()
        return all.first { $0.name == key }
    }

    /// The clients that have a config file `rosetta setup` writes (and `rosetta doctor` checks).
    package static var withConfigFiles: [any ClientProfile] { all.filter { $0.configRelativePath != nil } }

    /// The clients' names, comma-separated, for messages.
    package static var names: String { all.map(\.name).joined(separator: ", ") }
}

/// Picks a default model by ordered name preferences.
enum ModelPreference {
    /// The first model whose id contains (case-insensitively) the earliest-listed fragment; else the first model.
    static func first(among models: [String], preferring fragments: [String]) -> String? {
        for fragment in fragments {
            if let match = models.first(where: { $0.lowercased().contains(fragment) }) { return match }
        }
        return models.first
    }
}

/// POSIX shell quoting for `export` lines.
package enum ShellQuoting {
    /// Single-quotes a value so any shell reads it back verbatim (`'` becomes `'\''`).
    package static func quote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Leaves a plain word alone and quotes anything else.
    package static func quoteIfNeeded(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { scalar in
            (scalar.value < 128) && (scalar.properties.isAlphabetic || ("0"..."9").contains(Character(scalar)) || "-_./=:@%+,".unicodeScalars.contains(scalar))
        }
        return plain ? value : quote(value)
    }

    /// `export NAME='value'` lines, one per variable.
    package static func exports(_ variables: [(name: String, value: String)]) -> String {
        variables.map { "export \($0.name)=\(quote($0.value))\n" }.joined()
    }
}

/// Base URLs compared without a trailing slash.
enum URLComparison {
    /// Whether two base URLs name the same place, ignoring trailing slashes.
    static func same(_ found: String, _ expected: String) -> Bool {
        trimmed(found) == trimmed(expected)
    }

    private static func trimmed(_ url: String) -> Substring {
        var text = Substring(url.trimmingWhitespace)
        while text.hasSuffix("/") { text = text.dropLast() }
        return text
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and line breaks.
    var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
