import Yams

/// The kinds of upstream provider a config may declare.
package enum ProviderType: String, Sendable, CaseIterable {
    /// An OpenAI-compatible Chat Completions endpoint; `base_url` includes `/v1`.
    case openAIChat = "openai_chat"
    /// An Anthropic Messages endpoint; `base_url` is the host root (the gateway appends `/v1/messages`).
    case anthropic
    /// An OpenAI Responses endpoint; `base_url` includes `/v1` (the gateway appends `/responses`).
    case openAIResponses = "openai_responses"
    /// A Google GenAI (Gemini API) endpoint; `base_url` includes `/v1beta` (the gateway appends
    /// `/models/{model}:generateContent` or `:streamGenerateContent?alt=sse`).
    case google
    /// ALCF Inference Endpoints behind a per-tenant Globus grant; `base_url` ends in `/resource_server` (docs/alcf.md).
    case alcf
    /// Argo (Argonne's gateway to Claude, GPT and Gemini): Claude models over `/v1/messages`, the others over
    /// `/v1/chat/completions`; `base_url` is the API root (`…/argoapi`); see docs/argo.md.
    case argo

    /// The wire dialect this provider type speaks.
    package var dialect: Dialect {
        switch self {
        case .openAIChat: .openAIChat
        case .anthropic: .anthropicMessages
        case .openAIResponses: .openAIResponses
        case .google: .googleGenAI
        case .alcf: .openAIChat
        case .argo: .openAIChat
        }
    }
}

/// One upstream provider as configured.
package struct ProviderConfig: Sendable, Equatable {
    /// The provider's name, as models refer to it.
    package var name: String
    /// The provider's type, which fixes its dialect and URL layout.
    package var type: ProviderType
    /// The base URL, without a trailing slash.
    package var baseURL: String
    /// The API key sent upstream, if any; a secret, never logged.
    package var apiKey: String?
    /// Extra headers sent with every upstream request.
    package var headers: [(name: String, value: String)]
    /// A CA bundle for verifying the upstream's certificate, when not the system's.
    package var caFile: String?
    /// The Globus login settings of an `alcf` provider (`globus:`), defaults filled in; `nil` for other types.
    package var globus: GlobusProviderConfig? = nil
    /// The `argo` type's settings (identity, tunnel); `nil` for other types.
    package var argo: ArgoSettings? = nil

    package static func == (lhs: ProviderConfig, rhs: ProviderConfig) -> Bool {
        lhs.name == rhs.name && lhs.type == rhs.type && lhs.baseURL == rhs.baseURL && lhs.apiKey == rhs.apiKey
            && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 }) && lhs.caFile == rhs.caFile && lhs.globus == rhs.globus
            && lhs.argo == rhs.argo
    }
}

/// A capability a model may declare; a model without declared capabilities is assumed to accept everything.
package enum ModelCapability: String, Sendable, CaseIterable {
    /// Text input and output.
    case text
    /// Image input.
    case vision
    /// Tool (function) calling.
    case tools
    /// Reasoning / extended thinking.
    case reasoning
}

/// One model alias as configured: what clients call it, and where it goes.
package struct ModelConfig: Sendable, Equatable {
    /// The name clients use.
    package var alias: String
    /// The provider that serves it.
    package var provider: String
    /// The name the upstream knows it by.
    package var upstreamModel: String
    /// The declared capabilities; empty means undeclared.
    package var capabilities: Set<ModelCapability>
    /// The `max_tokens` filled in for upstreams that require it when the client sends none.
    package var defaultMaxTokens: Int
    /// The vendor for `<vendor>/<alias>` names; `nil` takes the provider type's (see `ProviderType.defaultVendor`).
    package var vendor: ModelVendor? = nil
}

/// Timeouts for requests to upstream providers.
package struct UpstreamTimeouts: Sendable, Equatable {
    /// How long to wait for a connection to an upstream.
    package var connect: Duration = .seconds(10)
    /// How long an upstream may stay silent mid-response before the request fails.
    package var idle: Duration = .seconds(300)

    /// The defaults.
    package init() {}
}

/// A tenant gateway's whole configuration, loaded from YAML.
package struct GatewayConfig: Sendable, Equatable {
    /// The `max_tokens` used for Anthropic-format upstreams when neither the client nor the model config gives one.
    package static let fallbackMaxTokens = 8192

    /// Providers by name, in file order.
    package var providers: [ProviderConfig]
    /// Models by alias, in file order.
    package var models: [ModelConfig]
    /// Limits on client requests.
    package var limits: HTTPFrontLimits
    /// Upstream timeouts.
    package var upstreamTimeouts: UpstreamTimeouts
    /// How long SIGTERM waits for in-flight requests and streams before closing them.
    package var shutdownGrace: Duration
    /// The admin's transform rules (`transforms:`), applied after the built-in ones; see docs/transforms.md.
    package var transforms: [TransformRule] = []
    /// The cap on the tenant's upstream requests in flight and waiting (`limits.max_concurrent_upstream`, `limits.max_queued`).
    package var upstreamConcurrency = UpstreamConcurrencyLimits()
    /// System mode: login name → lab user name (`identities:`); an account not listed uses its login name.
    package var identities: [String: String] = [:]
    /// The request log's and the metrics' settings (`request_log:`, `metrics:`); see docs/observability.md.
    package var observability = ObservabilityConfig()

    /// Creates a configuration.
    package init(
        providers: [ProviderConfig] = [],
        models: [ModelConfig] = [],
        limits: HTTPFrontLimits = HTTPFrontLimits(),
        upstreamTimeouts: UpstreamTimeouts = UpstreamTimeouts(),
        shutdownGrace: Duration = .seconds(30)
    ) {
        self.providers = providers
        self.models = models
        self.limits = limits
        self.upstreamTimeouts = upstreamTimeouts
        self.shutdownGrace = shutdownGrace
    }

    /// The provider with a given name.
    package func provider(named name: String) -> ProviderConfig? {
        providers.first { $0.name == name }
    }

    /// The lab user name an account acts as upstream: the admin's mapping, else the login name itself.
    package func labUser(forAccount account: String) -> String {
        identities[account] ?? account
    }

    /// The configuration one system-mode tenant serves with: every upstream identity (Argo's `user`) is the
    /// account's lab user name, whatever the shared file or any client says; and in the tunnel's key and
    /// known-hosts paths `%d` is the account's home and `%u` its login name (as ssh itself expands them).
    package func forSystemTenant(account: String, home: String) -> GatewayConfig {
        var resolved = self
        let labUser = labUser(forAccount: account)
        func expanded(_ path: String?) -> String? {
            guard let path, path.contains("%") else { return path }
            var result = ""
            var rest = Substring(path)
            while let percent = rest.firstIndex(of: "%") {
                result += rest[..<percent]
                let token = rest[rest.index(after: percent)...].first
                switch token {
                case "d": result += home
                case "u": result += account
                case "%": result += "%"
                default: result += "%" + (token.map { String($0) } ?? "")
                }
                rest = rest[rest.index(percent, offsetBy: token == nil ? 1 : 2)...]
            }
            return result + rest
        }
        for index in resolved.providers.indices where resolved.providers[index].argo != nil {
            resolved.providers[index].argo!.user = labUser
            if var tunnel = resolved.providers[index].argo!.tunnel {
                tunnel.identityFile = expanded(tunnel.identityFile)
                tunnel.knownHostsFile = expanded(tunnel.knownHostsFile)
                resolved.providers[index].argo!.tunnel = tunnel
            }
        }
        return resolved
    }
}

/// A configuration file that could not be used, with the file, line and reason.
package struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A stable code (`yaml_syntax`, `missing_env`, `invalid_value`, `unknown_provider`, …).
    package var code: String
    /// What is wrong and how to fix it.
    package var message: String
    /// The file the problem is in.
    package var file: String
    /// The 1-based line, when known.
    package var line: Int?

    /// Creates an error for `file` (and `line`, when known).
    package init(code: String, message: String, file: String, line: Int?) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    /// `file:line: message`, the conventional compiler-style location prefix.
    package var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

extension GatewayConfig {
    /// Parses a configuration from YAML text, substituting `${VAR}` from `environment` in every string value.
    ///
    /// `$${` stands for a literal `${`. A missing variable, an unknown key, a wrong type or a model
    /// naming an undeclared provider is an error naming the file and line.
    package static func parse(yaml: String, file: String, environment: [String: String]) throws(ConfigError) -> GatewayConfig {
        var reader = ConfigReader(file: file, environment: environment)
        return try reader.read(yaml: yaml)
    }
}

/// Walks a composed YAML node tree into a `GatewayConfig`, keeping line numbers for errors.
struct ConfigReader {
    let file: String
    let environment: [String: String]

    func error(_ code: String, _ message: String, at node: Node?) -> ConfigError {
        ConfigError(code: code, message: message, file: file, line: node?.mark?.line)
    }

    mutating func read(yaml: String) throws(ConfigError) -> GatewayConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let yamlError as YamlError {
            throw ConfigError(code: "yaml_syntax", message: "YAML syntax error: \(yamlError)", file: file, line: nil)
        } catch {
            throw ConfigError(code: "yaml_syntax", message: "YAML syntax error: \(error)", file: file, line: nil)
        }
        var config = GatewayConfig()
        guard let root else { return config }
        let top = try mapping(root, "the top level")
        try rejectUnknownKeys(top, allowed: ["providers", "models", "limits", "upstream", "shutdown_grace_seconds", "transforms", "identities", "request_log", "metrics"], in: "the top level")
        config.observability = try readObservability(top)
        if let providers = value(top, "providers") {
            for (key, node) in try mapping(providers, "providers") {
                config.providers.append(try readProvider(name: try string(key), node))
            }
        }
        if let limits = value(top, "limits") {
            let map = try mapping(limits, "limits")
            try rejectUnknownKeys(map, allowed: ["max_body_bytes", "max_header_bytes", "request_timeout_seconds", "idle_timeout_seconds", "max_concurrent_upstream", "max_queued"], in: "limits")
            if let node = value(map, "max_body_bytes") { config.limits.maxBodyBytes = try positiveInt(node) }
            if let node = value(map, "max_header_bytes") { config.limits.maxHeaderBytes = try positiveInt(node) }
            if let node = value(map, "request_timeout_seconds") { config.limits.requestReadTimeout = try seconds(node) }
            if let node = value(map, "idle_timeout_seconds") { config.limits.idleTimeout = try seconds(node) }
            if let node = value(map, "max_concurrent_upstream") { config.upstreamConcurrency.maxInFlight = try positiveInt(node) }
            if let node = value(map, "max_queued") { config.upstreamConcurrency.maxQueued = try nonNegativeInt(node) }
        }
        if let node = value(top, "identities") { config.identities = try readIdentities(node) }
        if let upstream = value(top, "upstream") {
            let map = try mapping(upstream, "upstream")
            try rejectUnknownKeys(map, allowed: ["connect_timeout_seconds", "idle_timeout_seconds"], in: "upstream")
            if let node = value(map, "connect_timeout_seconds") { config.upstreamTimeouts.connect = try seconds(node) }
            if let node = value(map, "idle_timeout_seconds") { config.upstreamTimeouts.idle = try seconds(node) }
        }
        if let node = value(top, "shutdown_grace_seconds") { config.shutdownGrace = try seconds(node) }
        if let node = value(top, "transforms") {
            config.transforms = try TransformRuleReader.read(node, file: file) { node throws(ConfigError) in try string(node) }
        }
        if let models = value(top, "models") {
            defer { config.models = ArgoSettings.inferringVendors(of: config.models, providers: config.providers) }
            for (key, node) in try mapping(models, "models") {
                let model = try readModel(alias: try string(key), node)
                guard config.provider(named: model.provider) != nil else {
                    let known = config.providers.map(\.name).joined(separator: ", ")
                    throw error("unknown_provider", "model '\(model.alias)' names provider '\(model.provider)', which is not declared under providers (declared: \(known.isEmpty ? "none" : known))", at: value(try mapping(node, "model"), "provider"))
                }
                config.models.append(model)
            }
        }
        return config
    }

    func readProvider(name: String, _ node: Node) throws(ConfigError) -> ProviderConfig {
        let map = try mapping(node, "provider '\(name)'")
        let argoKeys: Set<String> = value(map, "type")?.scalar?.string == ProviderType.argo.rawValue ? ArgoSettings.providerKeys : []
        try rejectUnknownKeys(map, allowed: Set(["type", "base_url", "api_key", "headers", "ca_file", "globus"]).union(argoKeys), in: "provider '\(name)'")
        guard let typeNode = value(map, "type") else {
            throw error("missing_key", "provider '\(name)' needs a 'type' (one of: \(ProviderType.allCases.map(\.rawValue).joined(separator: ", ")))", at: node)
        }
        let typeName = try string(typeNode)
        guard let type = ProviderType(rawValue: typeName) else {
            throw error("invalid_value", "provider '\(name)' has unknown type '\(typeName)' (known: \(ProviderType.allCases.map(\.rawValue).joined(separator: ", ")))", at: typeNode)
        }
        guard let baseNode = value(map, "base_url") else {
            throw error("missing_key", "provider '\(name)' needs a 'base_url'", at: node)
        }
        var baseURL = try string(baseNode)
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw error("invalid_value", "provider '\(name)': base_url must start with http:// or https://", at: baseNode)
        }
        while baseURL.hasSuffix("/") { baseURL.removeLast() }
        var headers: [(name: String, value: String)] = []
        if let headerNode = value(map, "headers") {
            for (key, valueNode) in try mapping(headerNode, "headers") {
                headers.append((name: try string(key), value: try string(valueNode)))
            }
        }
        let apiKey = try value(map, "api_key").map { node throws(ConfigError) in try string(node) }
        let caFile = try value(map, "ca_file").map { node throws(ConfigError) in try string(node) }
        var provider = ProviderConfig(name: name, type: type, baseURL: baseURL, apiKey: apiKey?.isEmpty == true ? nil : apiKey, headers: headers, caFile: caFile)
        if let globusNode = value(map, "globus"), type != .alcf {
            throw error("unknown_key", "provider '\(name)': 'globus' settings apply only to type alcf", at: globusNode)
        }
        if type == .alcf { provider.globus = try readGlobus(value(map, "globus"), provider: name) }
        if type == .argo { provider.argo = try readArgo(provider: name, map, baseURL: baseURL, at: node) }
        return provider
    }

    /// Reads an `alcf` provider's `globus:` block; every key is optional and defaults to ALCF's public values.
    func readGlobus(_ node: Node?, provider name: String) throws(ConfigError) -> GlobusProviderConfig {
        var globus = GlobusProviderConfig()
        guard let node else { return globus }
        let map = try mapping(node, "provider '\(name)'.globus")
        try rejectUnknownKeys(map, allowed: ["auth_url", "client_id", "resource_server", "scope"], in: "provider '\(name)'.globus")
        if let urlNode = value(map, "auth_url") {
            var url = try string(urlNode)
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw error("invalid_value", "provider '\(name)': globus.auth_url must start with http:// or https://", at: urlNode)
            }
            while url.hasSuffix("/") { url.removeLast() }
            globus.authURL = url
        }
        if let clientNode = value(map, "client_id") { globus.clientID = try string(clientNode) }
        if let serverNode = value(map, "resource_server") {
            globus.resourceServer = try string(serverNode)
            if value(map, "scope") == nil { globus.scope = GlobusProviderConfig.actionAllScope(for: globus.resourceServer) }
        }
        if let scopeNode = value(map, "scope") { globus.scope = try string(scopeNode) }
        return globus
    }

    func readModel(alias: String, _ node: Node) throws(ConfigError) -> ModelConfig {
        let map = try mapping(node, "model '\(alias)'")
        try rejectUnknownKeys(map, allowed: ["provider", "upstream_model", "capabilities", "max_tokens", "vendor"], in: "model '\(alias)'")
        guard let providerNode = value(map, "provider") else {
            throw error("missing_key", "model '\(alias)' needs a 'provider'", at: node)
        }
        let upstreamModel = try value(map, "upstream_model").map { node throws(ConfigError) in try string(node) } ?? alias
        var capabilities: Set<ModelCapability> = []
        if let capabilityNode = value(map, "capabilities") {
            guard case .sequence(let sequence) = capabilityNode else {
                throw error("invalid_type", "model '\(alias)': capabilities must be a list, e.g. [text, vision, tools, reasoning]", at: capabilityNode)
            }
            for item in sequence {
                let name = try string(item)
                guard let capability = ModelCapability(rawValue: name) else {
                    throw error("invalid_value", "model '\(alias)': unknown capability '\(name)' (known: \(ModelCapability.allCases.map(\.rawValue).joined(separator: ", ")))", at: item)
                }
                capabilities.insert(capability)
            }
        }
        let maxTokens = try value(map, "max_tokens").map { node throws(ConfigError) in try positiveInt(node) } ?? GatewayConfig.fallbackMaxTokens
        var vendor: ModelVendor?
        if let vendorNode = value(map, "vendor") {
            let name = try string(vendorNode)
            guard let known = ModelVendor(rawValue: name) else {
                throw error("invalid_value", "model '\(alias)': unknown vendor '\(name)' (known: \(ModelVendor.allCases.map(\.rawValue).joined(separator: ", ")))", at: vendorNode)
            }
            vendor = known
        }
        return ModelConfig(alias: alias, provider: try string(providerNode), upstreamModel: upstreamModel, capabilities: capabilities, defaultMaxTokens: maxTokens, vendor: vendor)
    }

    // MARK: Node helpers

    func mapping(_ node: Node, _ what: String) throws(ConfigError) -> [(Node, Node)] {
        guard case .mapping(let mapping) = node else {
            if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" { return [] }
            throw error("invalid_type", "\(what) must be a mapping of keys to values", at: node)
        }
        return mapping.map { ($0.key, $0.value) }
    }

    func value(_ mapping: [(Node, Node)], _ key: String) -> Node? {
        mapping.first { $0.0.scalar?.string == key }?.1
    }

    func rejectUnknownKeys(_ mapping: [(Node, Node)], allowed: Set<String>, in what: String) throws(ConfigError) {
        for (key, _) in mapping {
            let name = key.scalar?.string ?? "?"
            if !allowed.contains(name) {
                throw error("unknown_key", "unknown key '\(name)' in \(what) (allowed: \(allowed.sorted().joined(separator: ", ")))", at: key)
            }
        }
    }

    func string(_ node: Node) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else {
            throw error("invalid_type", "expected a single value, found a \(node.isMapping ? "mapping" : "list")", at: node)
        }
        return try substitute(scalar.string, at: node)
    }

    func positiveInt(_ node: Node) throws(ConfigError) -> Int {
        let text = try string(node)
        guard let number = Int(text), number > 0 else {
            throw error("invalid_value", "expected a positive integer, found '\(text)'", at: node)
        }
        return number
    }

    func nonNegativeInt(_ node: Node) throws(ConfigError) -> Int {
        let text = try string(node)
        guard let number = Int(text), number >= 0 else {
            throw error("invalid_value", "expected an integer of 0 or more, found '\(text)'", at: node)
        }
        return number
    }

    /// Reads `identities:`, a mapping of login names to lab user names, both plain user names.
    func readIdentities(_ node: Node) throws(ConfigError) -> [String: String] {
        var identities: [String: String] = [:]
        func isUserName(_ text: String) -> Bool {
            !text.isEmpty && !text.hasPrefix("-") && text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
        }
        for (key, valueNode) in try mapping(node, "identities") {
            let account = try string(key)
            let labUser = try string(valueNode)
            guard isUserName(account) else { throw error("invalid_value", "identities: '\(account)' is not a login name", at: key) }
            guard isUserName(labUser) else { throw error("invalid_value", "identities: '\(labUser)' (for \(account)) is not a user name", at: valueNode) }
            guard identities[account] == nil else { throw error("invalid_value", "identities: '\(account)' is mapped twice", at: key) }
            identities[account] = labUser
        }
        return identities
    }

    func seconds(_ node: Node) throws(ConfigError) -> Duration {
        let text = try string(node)
        guard let number = Double(text), number > 0, number.isFinite else {
            throw error("invalid_value", "expected a positive number of seconds, found '\(text)'", at: node)
        }
        return .milliseconds(Int64(number * 1000))
    }

    /// Replaces every `${NAME}` with the environment's value; `$${` yields a literal `${`.
    func substitute(_ text: String, at node: Node) throws(ConfigError) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest[dollar...]
            if after.hasPrefix("$${") {
                result += "${"
                rest = after.dropFirst(3)
            } else if after.hasPrefix("${") {
                guard let close = after.firstIndex(of: "}") else {
                    throw error("invalid_value", "unterminated '${' in '\(text)'", at: node)
                }
                let name = String(after[after.index(after.startIndex, offsetBy: 2)..<close])
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw error("invalid_value", "invalid variable name '\(name)' in '${…}'", at: node)
                }
                guard let replacement = environment[name] else {
                    throw error("missing_env", "environment variable \(name) is not set (referenced as ${\(name)})", at: node)
                }
                result += replacement
                rest = after[after.index(after: close)...]
            } else {
                result += "$"
                rest = after.dropFirst()
            }
        }
        result += rest
        return result
    }
}

extension Node {
    fileprivate var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }
}
