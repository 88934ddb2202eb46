import Logging
import NIOHTTP1
import TenantGateway

/// A tenant's Argo tunnels: one `SSHTunnel` per `argo` provider with a `tunnel:` section, and their providers.
package struct ArgoTunnels: Sendable {
    /// Tunnels by provider name.
    package let tunnels: [String: SSHTunnel]
    /// The `argo` providers, each with its tunnel (or direct), for `GatewayHandler(extraProviders:)`.
    package let providers: [String: any UpstreamProvider]

    /// Builds the tunnels of a configuration; their private directories are `<stateDirectory>/tunnel-<provider>`.
    ///
    /// `spawnIdentity` is `nil` in user mode (ssh runs as the daemon's user); system mode passes the tenant's.
    /// With `modelLister`, each provider discovers Argo's models through it (lazily, through the tunnel).
    package init(
        config: GatewayConfig, stateDirectory: String, spawnIdentity: SSHSpawnIdentity? = nil, modelLister: UpstreamHTTPClient? = nil,
        logger: Logger
    ) {
        var tunnels: [String: SSHTunnel] = [:]
        var providers: [String: any UpstreamProvider] = [:]
        for provider in config.providers where provider.type == .argo {
            var tunnel: SSHTunnel?
            if let settings = provider.argo?.tunnel {
                var configuration = SSHTunnelConfiguration(
                    destination: settings.destination, jump: settings.jump, port: settings.port,
                    identityFile: settings.identityFile, knownHostsFile: settings.knownHostsFile,
                    forwardHost: settings.forwardHost, forwardPort: settings.forwardPort,
                    runtimeDirectory: stateDirectory + "/tunnel-" + Self.safeComponent(provider.name))
                configuration.policy.idleTimeout = settings.idleTimeout
                configuration.policy.coolDown = settings.coolDown
                configuration.policy.authenticationFailuresBeforeCoolDown = settings.authenticationFailuresBeforeCoolDown
                configuration.policy.coolDownsBeforeLock = settings.coolDownsBeforeLock
                configuration.spawnIdentity = spawnIdentity
                var tunnelLogger = logger
                tunnelLogger[metadataKey: "provider"] = "\(provider.name)"
                tunnel = SSHTunnel(
                    configuration: configuration, logger: tunnelLogger,
                    readinessCheck: modelLister.map { Self.tlsReadinessCheck(baseURL: provider.baseURL, caFile: provider.caFile, http: $0) })
                tunnels[provider.name] = tunnel
            }
            providers[provider.name] = ArgoProvider(
                config: provider, timeouts: config.upstreamTimeouts, socketSource: tunnel, modelLister: modelLister, logger: logger)
        }
        self.tunnels = tunnels
        self.providers = providers
    }

    /// The tunnel's readiness check: an HTTPS request to `base_url` through the forwarded socket, so the TLS
    /// handshake names Argo's host and verifies its certificate (with `ca_file` when set). Any HTTP status means the
    /// far end is Argo; a transport failure (a certificate for another name, no TLS at all) says why not.
    static func tlsReadinessCheck(baseURL: String, caFile: String?, http: UpstreamHTTPClient) -> SSHTunnel.ReadinessCheck {
        { socketPath in
            let request = UpstreamRequest(
                url: baseURL, method: "GET", headers: [("accept", "*/*")], connectTimeout: .seconds(5),
                idleTimeout: .seconds(5), totalTimeout: .seconds(10), unixSocketPath: socketPath, caFile: caFile)
            do throws(UpstreamError) {
                _ = try await http.execute(request)
                return nil
            } catch {
                return error.message
            }
        }
    }

    /// A provider name as one path component: letters, digits, `-` and `_` kept, anything else `_`.
    static func safeComponent(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}

/// The control routes of `rosetta tunnel`: status, stop, reset and login, for one or all tunnels.
///
/// `GET /rosetta/v1/tunnel[/status][/<provider>]`, `POST /rosetta/v1/tunnel/{stop,reset,login}[/<provider>]`;
/// without a provider they act on every tunnel (login: on the only one).
package struct TunnelControlRoutes: ControlRouteExtension {
    /// Tunnels by provider name.
    package let tunnels: [String: SSHTunnel]

    /// Creates the routes.
    package init(tunnels: [String: SSHTunnel]) {
        self.tunnels = tunnels
    }

    /// Answers the tunnel routes; `nil` for any other.
    package func answer(method: HTTPMethod, route: Substring, body: [UInt8]) async throws(GatewayError) -> JSON? {
        let base = "/rosetta/v1/tunnel"
        guard route == base || route.hasPrefix(base + "/") else { return nil }
        let parts = route.dropFirst(base.count).split(separator: "/").map(String.init)
        guard parts.count <= 2 else {
            throw GatewayError(.notFound, code: "route_not_found", message: "No tunnel route \(method.rawValue) \(route).")
        }
        let action = parts.first ?? "status"
        if method == .GET, action == "status", parts.count < 2, tunnels.isEmpty {
            // Listing no tunnels is an answer, not an error (`rosetta status` and `doctor` ask every time).
            return ["tunnels": [], "message": .string(Self.noTunnelMessage)]
        }
        let selected = try select(parts.count == 2 ? parts[1] : nil)
        switch (method, action) {
        case (.GET, "status"):
            return try await statuses(selected)
        case (.POST, "stop"):
            for (_, tunnel) in selected { await tunnel.stop() }
            return try await statuses(selected)
        case (.POST, "reset"):
            for (_, tunnel) in selected { await tunnel.reset() }
            return try await statuses(selected)
        case (.POST, "login"):
            guard selected.count == 1, let (name, tunnel) = selected.first else {
                throw GatewayError(.invalidRequest, code: "tunnel_ambiguous", message: "Several tunnels are configured (\(tunnels.keys.sorted().joined(separator: ", "))); name one with --provider.")
            }
            let login = await tunnel.prepareLogin()
            return [
                "provider": .string(name),
                "executable": .string(login.executable),
                "arguments": .array(login.arguments.map(JSON.string)),
                "control_path": .string(login.controlPath),
                "already_running": .bool(login.alreadyRunning),
            ]
        default:
            throw GatewayError(.notFound, code: "route_not_found", message: "No tunnel route \(method.rawValue) \(route); served: GET \(base)[/status], POST \(base)/stop, POST \(base)/reset, POST \(base)/login (each with an optional /<provider>).")
        }
    }

    static let noTunnelMessage = "No provider of this gateway uses an SSH tunnel (an argo provider with a 'tunnel:' section)."

    func select(_ name: String?) throws(GatewayError) -> [(String, SSHTunnel)] {
        guard !tunnels.isEmpty else {
            throw GatewayError(.notFound, code: "no_tunnel", message: Self.noTunnelMessage)
        }
        if let name {
            guard let tunnel = tunnels[name] else {
                throw GatewayError(.notFound, code: "tunnel_not_found", message: "No tunnel for provider '\(name)'; tunnels: \(tunnels.keys.sorted().joined(separator: ", ")).")
            }
            return [(name, tunnel)]
        }
        return tunnels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    func statuses(_ selected: [(String, SSHTunnel)]) async throws(GatewayError) -> JSON {
        var list: [JSON] = []
        for (name, tunnel) in selected {
            var status = await tunnel.status()
            status["provider"] = .string(name)
            list.append(status)
        }
        return ["tunnels": .array(list)]
    }
}
