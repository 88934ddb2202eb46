import Yams

/// The `argo` provider type's own settings: whose identity every request carries, and how Argo is reached.
package struct ArgoSettings: Sendable, Equatable {
    /// The Argo user (an ANL/ALCF user name): sent as `x-api-key`, `Authorization: Bearer` and the body's `user`.
    package var user: String
    /// The SSH tunnel; `nil` reaches `base_url` directly (hosts inside the lab network).
    package var tunnel: ArgoTunnelSettings?
    /// How old the discovered model list (`GET /v1/models`) may get before the next use fetches it again;
    /// `nil` fetches it once and then only on `rosetta models --refresh`.
    package var modelsRefresh: Duration?

    /// The keys an `argo` provider accepts besides the common ones.
    package static let providerKeys: Set<String> = ["user", "tunnel", "models_refresh"]
    /// The default `models_refresh`: an hour.
    package static let defaultModelsRefresh: Duration = .seconds(3600)

    /// Creates settings.
    package init(user: String, tunnel: ArgoTunnelSettings?, modelsRefresh: Duration? = ArgoSettings.defaultModelsRefresh) {
        self.user = user
        self.tunnel = tunnel
        self.modelsRefresh = modelsRefresh
    }

    /// The vendor of an Argo model by its upstream name: Claude → anthropic, Gemini → google, others → openai.
    package static func vendor(ofUpstreamModel name: String) -> ModelVendor {
        let folded = name.lowercased()
        if folded.contains("claude") { return .anthropic }
        if folded.contains("gemini") { return .google }
        return .openai
    }

    /// Models of `argo` providers without a declared vendor get the one their upstream name implies.
    static func inferringVendors(of models: [ModelConfig], providers: [ProviderConfig]) -> [ModelConfig] {
        let argoProviders = Set(providers.filter { $0.type == .argo }.map(\.name))
        guard !argoProviders.isEmpty else { return models }
        return models.map { model in
            guard model.vendor == nil, argoProviders.contains(model.provider) else { return model }
            var model = model
            model.vendor = vendor(ofUpstreamModel: model.upstreamModel)
            return model
        }
    }
}

/// How the tenant's SSH tunnel reaches Argo (the `tunnel:` mapping of an `argo` provider).
package struct ArgoTunnelSettings: Sendable, Equatable {
    /// `[user@]host` that can reach Argo.
    package var destination: String
    /// An optional jump host (`-J`).
    package var jump: String?
    /// The destination's SSH port.
    package var port: Int?
    /// A private key (`-i`), `~` expanded.
    package var identityFile: String?
    /// A known-hosts file, `~` expanded.
    package var knownHostsFile: String?
    /// Where the forward goes from the destination: Argo's host.
    package var forwardHost: String
    /// And port.
    package var forwardPort: Int
    /// How long the tunnel stays up without requests; `nil` keeps it up.
    package var idleTimeout: Duration?
    /// Consecutive authentication (or host-key) failures that start a cool-down (`auth_failures_before_cooldown`).
    package var authenticationFailuresBeforeCoolDown: Int = 2
    /// How long a cool-down lasts (`cooldown`).
    package var coolDown: Duration = .seconds(15 * 60)
    /// Cool-downs without a success in between that are allowed; the next one locks (`cooldowns_before_lock`).
    package var coolDownsBeforeLock: Int = 2

    /// Creates tunnel settings.
    package init(
        destination: String, jump: String? = nil, port: Int? = nil, identityFile: String? = nil, knownHostsFile: String? = nil,
        forwardHost: String, forwardPort: Int, idleTimeout: Duration? = .seconds(600)
    ) {
        self.destination = destination
        self.jump = jump
        self.port = port
        self.identityFile = identityFile
        self.knownHostsFile = knownHostsFile
        self.forwardHost = forwardHost
        self.forwardPort = forwardPort
        self.idleTimeout = idleTimeout
    }
}

extension ArgoSettings {
    /// The host of an `http(s)://host[:port]/…` URL, and its port (443 or 80 when absent).
    package static func hostAndPort(ofURL url: String) -> (host: String, port: Int)? {
        let isHTTPS = url.hasPrefix("https://")
        guard isHTTPS || url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(isHTTPS ? 8 : 7)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@").last ?? authority
        guard !hostPort.isEmpty else { return nil }
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            guard let port = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            return (String(hostPort[..<colon]), port)
        }
        return (String(hostPort), isHTTPS ? 443 : 80)
    }

    /// Parses a duration such as `600`, `90s`, `10m`, `1h`; `0`, `off` or `never` mean none.
    static func parseDuration(_ text: String) -> Duration?? {
        let trimmed = text.trimmingWhitespace.lowercased()
        if trimmed == "0" || trimmed == "off" || trimmed == "never" { return .some(nil) }
        var number = trimmed
        var unit: Double = 1
        if let last = trimmed.last, last.isLetter {
            number = String(trimmed.dropLast())
            switch last {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            default: return nil
            }
        }
        guard let value = Double(number), value > 0, value.isFinite else { return nil }
        return .some(.milliseconds(Int64(value * unit * 1000)))
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var scalars = Substring(self)
        while scalars.first?.isWhitespace == true { scalars = scalars.dropFirst() }
        while scalars.last?.isWhitespace == true { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

extension ConfigReader {
    /// Reads an `argo` provider's `user` and `tunnel`; `user` defaults to `$USER`.
    func readArgo(provider name: String, _ map: [(Node, Node)], baseURL: String, at node: Node) throws(ConfigError) -> ArgoSettings {
        var user = try value(map, "user").map { node throws(ConfigError) in try string(node) }
        if user == nil { user = environment["USER"] ?? environment["LOGNAME"] }
        guard let user, !user.isEmpty else {
            throw error("missing_key", "provider '\(name)' (argo) needs a 'user' (the Argo user name); USER is not set", at: value(map, "user") ?? node)
        }
        guard user.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
            throw error("invalid_value", "provider '\(name)': user '\(user)' is not a user name", at: value(map, "user") ?? node)
        }
        var modelsRefresh: Duration? = ArgoSettings.defaultModelsRefresh
        if let refreshNode = value(map, "models_refresh") {
            let text = try string(refreshNode)
            guard let parsed = ArgoSettings.parseDuration(text) else {
                throw error("invalid_value", "provider '\(name)': models_refresh must be a duration like 3600, 30m or 1h (or off), found '\(text)'", at: refreshNode)
            }
            modelsRefresh = parsed
        }
        guard let tunnelNode = value(map, "tunnel") else { return ArgoSettings(user: user, tunnel: nil, modelsRefresh: modelsRefresh) }
        let tunnelMap = try mapping(tunnelNode, "provider '\(name)' tunnel")
        let what = "provider '\(name)' tunnel"
        try rejectUnknownKeys(tunnelMap, allowed: [
            "destination", "jump", "port", "identity_file", "known_hosts", "forward_to", "idle_timeout",
            "cooldown", "auth_failures_before_cooldown", "cooldowns_before_lock",
        ], in: what)
        guard let destinationNode = value(tunnelMap, "destination") else {
            throw error("missing_key", "\(what) needs a 'destination' ([user@]host that reaches Argo)", at: tunnelNode)
        }
        let destination = try string(destinationNode)
        guard !destination.isEmpty, !destination.hasPrefix("-"), !destination.contains(" ") else {
            throw error("invalid_value", "\(what): destination '\(destination)' is not [user@]host", at: destinationNode)
        }
        let jump = try value(tunnelMap, "jump").map { node throws(ConfigError) in try string(node) }
        if let jump, jump.isEmpty || jump.hasPrefix("-") || jump.contains(" ") {
            throw error("invalid_value", "\(what): jump '\(jump)' is not [user@]host[:port]", at: value(tunnelMap, "jump"))
        }
        var port: Int?
        if let portNode = value(tunnelMap, "port") {
            let number = try positiveInt(portNode)
            guard number <= 65535 else { throw error("invalid_value", "\(what): port \(number) is out of range", at: portNode) }
            port = number
        }
        let home = environment["HOME"]
        func expanded(_ key: String) throws(ConfigError) -> String? {
            guard let node = value(tunnelMap, key) else { return nil }
            let path = try string(node)
            if path.hasPrefix("~/"), let home { return home + path.dropFirst() }
            return path
        }
        var forwardHost: String
        var forwardPort: Int
        if let forwardNode = value(tunnelMap, "forward_to") {
            let text = try string(forwardNode)
            guard let colon = text.lastIndex(of: ":"), let number = Int(text[text.index(after: colon)...]), (1...65535).contains(number),
                  colon != text.startIndex else {
                throw error("invalid_value", "\(what): forward_to must be host:port, found '\(text)'", at: forwardNode)
            }
            forwardHost = String(text[..<colon])
            forwardPort = number
        } else {
            guard let hostPort = ArgoSettings.hostAndPort(ofURL: baseURL) else {
                throw error("invalid_value", "provider '\(name)': cannot take the forward target from base_url; set tunnel.forward_to", at: node)
            }
            (forwardHost, forwardPort) = hostPort
        }
        var idleTimeout: Duration? = .seconds(600)
        if let idleNode = value(tunnelMap, "idle_timeout") {
            let text = try string(idleNode)
            guard let parsed = ArgoSettings.parseDuration(text) else {
                throw error("invalid_value", "\(what): idle_timeout must be a duration like 600, 90s, 10m or 1h (or off), found '\(text)'", at: idleNode)
            }
            idleTimeout = parsed
        }
        var tunnel = ArgoTunnelSettings(
            destination: destination, jump: jump, port: port,
            identityFile: try expanded("identity_file"), knownHostsFile: try expanded("known_hosts"),
            forwardHost: forwardHost, forwardPort: forwardPort, idleTimeout: idleTimeout)
        if let coolDownNode = value(tunnelMap, "cooldown") {
            let text = try string(coolDownNode)
            guard let parsed = ArgoSettings.parseDuration(text), let parsed else {
                throw error("invalid_value", "\(what): cooldown must be a duration like 900, 90s or 15m, found '\(text)'", at: coolDownNode)
            }
            tunnel.coolDown = parsed
        }
        if let node = value(tunnelMap, "auth_failures_before_cooldown") {
            tunnel.authenticationFailuresBeforeCoolDown = try positiveInt(node)
        }
        if let node = value(tunnelMap, "cooldowns_before_lock") {
            let count = try positiveInt(node)
            guard count <= 100 else { throw error("invalid_value", "\(what): cooldowns_before_lock \(count) is too large (at most 100)", at: node) }
            tunnel.coolDownsBeforeLock = count
        }
        return ArgoSettings(user: user, tunnel: tunnel, modelsRefresh: modelsRefresh)
    }
}
