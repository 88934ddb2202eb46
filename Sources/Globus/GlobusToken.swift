import TenantGateway

/// The inference gateway's token from a Globus token response: a secret, never logged.
package struct GlobusToken: Sendable, Equatable {
    /// The bearer token sent to the gateway.
    package var accessToken: String
    /// The refresh token, when Globus issued one (`access_type=offline`).
    package var refreshToken: String?
    /// When the access token expires, in seconds since the epoch.
    package var expiresAt: Double
    /// How long the access token was issued for, in seconds.
    package var lifetime: Double
    /// The resource server it is for.
    package var resourceServer: String
    /// The scopes it carries.
    package var scope: String

    /// Creates a token.
    package init(accessToken: String, refreshToken: String?, expiresAt: Double, lifetime: Double, resourceServer: String, scope: String) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.lifetime = lifetime
        self.resourceServer = resourceServer
        self.scope = scope
    }

    /// How long before expiry a refresh starts: a tenth of the lifetime, at least one second.
    ///
    /// Real tokens live 48 h, so they refresh 4.8 h early; a test server's 10-second token refreshes 1 s early.
    package var refreshMargin: Double { max(lifetime / 10, 1) }

    /// Whether a refresh should start now (inside the margin before expiry).
    package func isDueForRefresh(now: Double) -> Bool { now >= expiresAt - refreshMargin }

    /// Whether the access token can no longer be used.
    package func isExpired(now: Double) -> Bool { now >= expiresAt }

    /// A token response without a usable gateway token, or one that is not a token response at all.
    package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What is missing or wrong (never the token values).
        package var message: String
        /// The message.
        package var description: String { message }
    }

    /// Picks the gateway's token from a token response: by resource server among the top level and
    /// `other_tokens`, falling back to a scope match.
    package static func select(from response: JSON, resourceServer: String, scope: String, now: Double) throws(ParseError) -> GlobusToken {
        guard case .object = response else { throw ParseError(message: "the token response is not a JSON object") }
        var candidates: [JSON] = [response]
        if case .array(let others)? = response["other_tokens"] { candidates += others }
        let chosen = candidates.first { $0["resource_server"]?.stringValue == resourceServer }
            ?? candidates.first { candidate in
                guard let granted = candidate["scope"]?.stringValue else { return false }
                return granted.split(separator: " ").contains { scope.split(separator: " ").contains($0) }
            }
        guard let chosen else {
            let servers = candidates.compactMap { $0["resource_server"]?.stringValue }
            throw ParseError(message: "the token response holds no token for resource server \(resourceServer) (it has: \(servers.joined(separator: ", ")))")
        }
        guard let access = chosen["access_token"]?.stringValue, !access.isEmpty else {
            throw ParseError(message: "the gateway token has no access_token")
        }
        guard let lifetime = chosen["expires_in"]?.doubleValue, lifetime > 0 else {
            throw ParseError(message: "the gateway token has no positive expires_in")
        }
        let refresh = chosen["refresh_token"]?.stringValue
        return GlobusToken(
            accessToken: access,
            refreshToken: refresh?.isEmpty == false ? refresh : nil,
            expiresAt: now + lifetime,
            lifetime: lifetime,
            resourceServer: chosen["resource_server"]?.stringValue ?? resourceServer,
            scope: chosen["scope"]?.stringValue ?? scope)
    }

    /// The token as stored on disk (0600, in the tenant's state).
    package var stored: JSON {
        [
            "access_token": .string(accessToken),
            "refresh_token": refreshToken.map(JSON.string) ?? .null,
            "expires_at": JSON(expiresAt),
            "lifetime": JSON(lifetime),
            "resource_server": .string(resourceServer),
            "scope": .string(scope),
        ]
    }

    /// Reads a token stored by `stored`.
    package init(stored: JSON) throws(ParseError) {
        guard let access = stored["access_token"]?.stringValue,
              let expiresAt = stored["expires_at"]?.doubleValue,
              let lifetime = stored["lifetime"]?.doubleValue,
              let server = stored["resource_server"]?.stringValue
        else { throw ParseError(message: "the stored grant is incomplete") }
        self.init(
            accessToken: access, refreshToken: stored["refresh_token"]?.stringValue, expiresAt: expiresAt,
            lifetime: lifetime, resourceServer: server, scope: stored["scope"]?.stringValue ?? "")
    }
}
