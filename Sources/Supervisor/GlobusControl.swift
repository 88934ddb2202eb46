import Globus
import Logging
import NIOHTTP1
import TenantGateway

/// The tenant's Globus grants, one per `alcf` provider, with the providers built on them.
struct TenantGrants: Sendable {
    /// Grants by provider name.
    var grants: [String: GlobusGrant] = [:]
    /// The `alcf` providers, for the gateway handler's `extraProviders`.
    var providers: [String: any UpstreamProvider] = [:]

    /// Builds a grant (loading `<state-dir>/globus-<provider>.json`), its discovery and its provider for every `alcf` provider.
    init(config: GatewayConfig, stateDirectory: String, upstream: UpstreamHTTPClient, logger: Logger) {
        for provider in config.providers where provider.type == .alcf {
            let globus = provider.globus ?? GlobusProviderConfig()
            let settings = GlobusSettings(authURL: globus.authURL, clientID: globus.clientID, resourceServer: globus.resourceServer, scope: globus.scope)
            let grant = GlobusGrant(
                providerName: provider.name, settings: settings,
                endpoint: GlobusTokenClient(settings: settings, http: upstream),
                storePath: stateDirectory + "/globus-\(provider.name).json", logger: logger)
            let discovery = ALCFDiscovery(provider: provider, grant: grant, http: upstream, logger: logger)
            grants[provider.name] = grant
            providers[provider.name] = ALCFProvider(config: provider, timeouts: config.upstreamTimeouts, grant: grant, discovery: discovery)
        }
    }

    /// The grant `rosetta login <name>` means: by provider name, or the only `alcf` provider when asked for `alcf`.
    func grant(named name: String) -> GlobusGrant? {
        if let grant = grants[name] { return grant }
        if name == "alcf", grants.count == 1 { return grants.values.first }
        return nil
    }
}

/// The tenant's control answers: the tenant's own, plus the Globus login routes and the grants in the status.
///
/// `POST /rosetta/v1/login/<provider>/start` → `{authorize_url}`; `POST /rosetta/v1/login/<provider>/finish`
/// with `{"code": …}` → `{expires_at, expires_in_seconds}`; `POST /rosetta/v1/logout/<provider>`. Served on the
/// Unix socket only (the gateway handler refuses control routes elsewhere).
struct TenantControlHub: TenantControl, ControlRouteExtension {
    let tenant: Tenant
    let grants: TenantGrants

    func status() async -> JSON {
        var status = await tenant.status()
        if !grants.grants.isEmpty {
            var globus = JSONObject()
            for name in grants.grants.keys.sorted() { globus[name] = await grants.grants[name]!.status() }
            status["globus"] = .object(globus)
        }
        return status
    }

    func answer(method: HTTPMethod, route path: Substring, body: [UInt8]) async throws(GatewayError) -> JSON? {
        let parts = path.split(separator: "/")
        // ["rosetta", "v1", "login", name, "start"|"finish"] or ["rosetta", "v1", "logout", name]
        guard parts.count >= 4, parts[0] == "rosetta", parts[1] == "v1", parts[2] == "login" || parts[2] == "logout" else { return nil }
        let name = String(parts[3])
        guard let grant = grants.grant(named: name) else {
            let known = grants.grants.keys.sorted()
            throw GatewayError(.notFound, code: "unknown_login_provider",
                               message: known.isEmpty
                                   ? "No provider of type alcf is configured, so there is nothing to log in to."
                                   : "No alcf provider is named '\(name)' (configured: \(known.joined(separator: ", "))).")
        }
        guard method == .POST else {
            throw GatewayError(.methodNotAllowed, code: "method_not_allowed", message: "\(method.rawValue) is not allowed on \(path); use POST.")
        }
        switch (parts[2], parts.count == 5 ? parts[4] : nil) {
        case ("login", "start"?):
            return ["authorize_url": .string(await grant.startLogin()), "provider": .string(grant.providerName)]
        case ("login", "finish"?):
            guard let request = try? JSON.parse(body), let code = request["code"]?.stringValue else {
                throw GatewayError(.invalidRequest, code: "missing_code", message: "Send the authorization code as {\"code\": \"…\"}.", parameter: "code")
            }
            let token = try await grant.finishLogin(code: code)
            return [
                "provider": .string(grant.providerName),
                "expires_at": .string(WallClock.iso8601(token.expiresAt)),
                "expires_in_seconds": JSON(Int(token.lifetime)),
                "refreshable": .bool(token.refreshToken != nil),
            ]
        case ("logout", nil):
            let result = await grant.logout()
            return ["provider": .string(grant.providerName), "logged_out": .bool(result.hadGrant), "revoked": .bool(result.revoked)]
        default:
            return nil
        }
    }
}
