#if canImport(Glibc)
import Glibc
#endif
import Logging
import TenantGateway

/// One tenant's Globus grant for one `alcf` provider: the login, the token every ALCF request carries, its
/// refreshes and its file.
///
/// The decisions are `GrantStateMachine`'s; the actor performs the I/O they ask for. Only one refresh runs at
/// a time: requests that need a token meanwhile either keep using the still-valid old one or, once it has
/// expired, wait (their continuations are held here) and are resumed when the refresh ends. The grant is
/// stored in `<state-dir>/globus-<provider>.json` (0600, replaced atomically, never through a symlink) and
/// read back at start, so a daemon restart keeps it. No token, code or verifier is ever logged.
package actor GlobusGrant {
    /// How long an authorize URL from `startLogin` stays usable.
    package static let loginWindowSeconds: Double = 30 * 60
    /// After Globus could not be reached, how long requests keep the old token before a refresh is tried again.
    package static let transientBackoffSeconds: Double = 5

    /// The provider whose grant this is (`alcf`), as `rosetta login <name>` names it.
    package nonisolated let providerName: String
    /// The login settings.
    package nonisolated let settings: GlobusSettings
    private let endpoint: any GlobusTokenEndpoint
    private let storePath: String
    private let clock: @Sendable () -> Double
    private let logger: Logger

    private var machine: GrantStateMachine
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var pendingLogin: PendingLogin?
    private var lastTransientFailure: (at: Double, message: String)?
    /// How many refreshes have succeeded since start (for status and tests).
    package private(set) var refreshCount = 0

    /// A login started by `startLogin`: the PKCE verifier stays here, never leaves the daemon.
    private struct PendingLogin {
        var pkce: PKCEPair
        var state: String
        var startedAt: Double
    }

    /// Creates the grant and loads its stored file; an unreadable file is logged and treated as no login.
    package init(
        providerName: String, settings: GlobusSettings, endpoint: any GlobusTokenEndpoint, storePath: String,
        clock: @escaping @Sendable () -> Double = WallClock.now, logger: Logger
    ) {
        self.providerName = providerName
        self.settings = settings
        self.endpoint = endpoint
        self.storePath = storePath
        self.clock = clock
        var logger = logger
        logger[metadataKey: "globus.provider"] = "\(providerName)"
        self.logger = logger
        self.machine = Self.load(from: storePath, logger: logger)
    }

    // MARK: Tokens for requests

    /// The access token for an ALCF request: refreshed first when due, waiting for a refresh already running
    /// when the old token has expired. Throws the error the client should see when there is no usable token.
    package func accessToken() async throws(GatewayError) -> String {
        while true {
            let now = clock()
            if let failure = lastTransientFailure, now - failure.at < Self.transientBackoffSeconds, case .valid(let token) = machine.state {
                guard token.isExpired(now: now) else { return token.accessToken }
                throw Self.unreachable(failure.message)
            }
            switch machine.tokenRequested(now: now) {
            case .use(let token):
                return token
            case .fail(let reason):
                throw Self.loginRequired(reason)
            case .wait:
                await waitForRefresh()
            case .refresh(let refreshToken):
                if case .transient(let message) = await performRefresh(refreshToken) {
                    guard let token = machine.token, !token.isExpired(now: clock()) else { throw Self.unreachable(message) }
                    return token.accessToken
                }
            }
        }
    }

    /// The token to retry with after ALCF answered 401 to a request sent with `used`: one refresh (shared
    /// with concurrent requests), or a login error when ALCF's policy demands a new login.
    package func tokenAfterUnauthorized(used: String, demandsLogin: Bool) async throws(GatewayError) -> String {
        if demandsLogin { logger.notice("ALCF demands a new login (policy); the grant needs `rosetta login`") }
        var action = machine.unauthorized(accessToken: used, demandsLogin: demandsLogin)
        if demandsLogin { persist() }
        while true {
            switch action {
            case .use(let token):
                return token
            case .fail(let reason):
                throw Self.loginRequired(reason)
            case .wait:
                await waitForRefresh()
            case .refresh(let refreshToken):
                if case .transient(let message) = await performRefresh(refreshToken) { throw Self.unreachable(message) }
            }
            action = machine.tokenRequested(now: clock())
        }
    }

    private func waitForRefresh() async {
        await withCheckedContinuation { waiters.append($0) }
    }

    /// How a refresh ended.
    private enum RefreshOutcome {
        case refreshed
        case refused
        case transient(String)
    }

    private func performRefresh(_ refreshToken: String) async -> RefreshOutcome {
        logger.info("refreshing the Globus token")
        defer {
            let resumed = waiters
            waiters.removeAll()
            for waiter in resumed { waiter.resume() }
        }
        do {
            let response = try await endpoint.refresh(refreshToken: refreshToken)
            let token = try GlobusToken.select(from: response, resourceServer: settings.resourceServer, scope: settings.scope, now: clock())
            machine.refreshSucceeded(token)
            refreshCount += 1
            GatewayMetrics.process.grantRefreshed(failure: nil)
            lastTransientFailure = nil
            persist()
            logger.info("Globus token refreshed", metadata: ["globus.expires_at": "\(WallClock.iso8601(token.expiresAt))"])
            return .refreshed
        } catch let failure as GlobusAuthError where failure.kind == .refused {
            machine.refreshFailed(.refused(failure.code))
            GatewayMetrics.process.grantRefreshed(failure: "refused")
            persist()
            logger.warning("Globus refused the refresh; a new login is needed", metadata: ["globus.error": "\(failure.code)"])
            return .refused
        } catch let failure as GlobusAuthError {
            machine.refreshFailed(.transient(failure.message))
            lastTransientFailure = (clock(), failure.message)
            GatewayMetrics.process.grantRefreshed(failure: "transient")
            logger.warning("Globus token refresh failed; will retry", metadata: ["globus.error": "\(failure.code)"])
            return .transient(failure.message)
        } catch {
            let message = (error as? GlobusToken.ParseError)?.message ?? "the token response could not be read"
            machine.refreshFailed(.transient(message))
            lastTransientFailure = (clock(), message)
            GatewayMetrics.process.grantRefreshed(failure: "transient")
            logger.warning("Globus token refresh answered without a usable token", metadata: ["globus.error": "\(message)"])
            return .transient(message)
        }
    }

    // MARK: Login and logout

    /// Starts a login: keeps a fresh PKCE verifier and returns the authorize URL for the user to open.
    package func startLogin() -> String {
        let pkce = PKCEPair()
        let state = Base64URL.encode((0..<12).map { _ in UInt8.random(in: 0...255) })
        pendingLogin = PendingLogin(pkce: pkce, state: state, startedAt: clock())
        logger.info("Globus login started")
        return settings.authorizeURL(pkce: pkce, state: state)
    }

    /// Finishes a login with the code Globus showed: exchanges it with the kept verifier, stores the grant.
    package func finishLogin(code: String) async throws(GatewayError) -> GlobusToken {
        let code = code.trimmingWhitespace
        guard let pending = pendingLogin, clock() - pending.startedAt < Self.loginWindowSeconds else {
            throw GatewayError(.invalidRequest, code: "login_not_started",
                               message: "No login is in progress (or it is older than 30 minutes): run `rosetta login \(providerName)` again.")
        }
        guard !code.isEmpty, code.utf8.count < 4096 else {
            throw GatewayError(.invalidRequest, code: "invalid_code", message: "The authorization code is empty or malformed; paste the code Globus showed.")
        }
        let response: JSON
        do {
            response = try await endpoint.exchange(code: code, verifier: pending.pkce.verifier)
        } catch where error.kind == .refused {
            pendingLogin = nil
            throw GatewayError(.invalidRequest, code: "login_refused",
                               message: "Globus refused the code (\(error.code)); codes work once and expire quickly: run `rosetta login \(providerName)` again.")
        } catch {
            throw Self.unreachable(error.message)
        }
        let token: GlobusToken
        do {
            token = try GlobusToken.select(from: response, resourceServer: settings.resourceServer, scope: settings.scope, now: clock())
        } catch {
            throw GatewayError(.upstream, code: "login_without_token", message: "Globus answered the login without a token for ALCF: \(error.message)")
        }
        pendingLogin = nil
        lastTransientFailure = nil
        machine.loggedIn(token)
        persist()
        let resumed = waiters
        waiters.removeAll()
        for waiter in resumed { waiter.resume() }
        logger.notice("Globus login completed", metadata: ["globus.expires_at": "\(WallClock.iso8601(token.expiresAt))"])
        return token
    }

    /// Forgets the grant: deletes its file and revokes its tokens at Globus (best effort). Returns whether
    /// there was a grant and whether every revocation succeeded.
    package func logout() async -> (hadGrant: Bool, revoked: Bool) {
        let token = machine.token
        machine.loggedOut()
        pendingLogin = nil
        lastTransientFailure = nil
        if unlink(storePath) != 0, errno != ENOENT {
            logger.warning("could not delete the grant file", metadata: ["path": "\(storePath)"])
        }
        let resumed = waiters
        waiters.removeAll()
        for waiter in resumed { waiter.resume() }
        guard let token else { return (false, true) }
        var revoked = true
        for secret in [token.refreshToken, token.accessToken].compactMap({ $0 }) {
            do {
                try await endpoint.revoke(token: secret)
            } catch {
                revoked = false
                logger.warning("Globus did not confirm a revocation", metadata: ["globus.error": "\(error.code)"])
            }
        }
        logger.notice("logged out of Globus")
        return (true, revoked)
    }

    // MARK: Status

    /// The grant's state for `rosetta status`: no secrets, the expiry as a time and as seconds left.
    package func status() -> JSON {
        let now = clock()
        var object: JSONObject = ["provider": .string(providerName)]
        switch machine.state {
        case .none: object["state"] = "logged_out"
        case .valid: object["state"] = "valid"
        case .refreshing: object["state"] = "refreshing"
        case .needsLogin(let reason):
            object["state"] = "needs_login"
            object["reason"] = .string(reason)
        }
        if let token = machine.token {
            object["expires_at"] = .string(WallClock.iso8601(token.expiresAt))
            object["expires_in_seconds"] = JSON(Int((token.expiresAt - now).rounded(.down)))
            object["refreshable"] = .bool(token.refreshToken != nil)
        }
        object["refreshes"] = JSON(refreshCount)
        if let failure = lastTransientFailure { object["last_refresh_error"] = .string(failure.message) }
        if pendingLogin != nil { object["login_pending"] = true }
        return .object(object)
    }

    /// The state machine's current state (for tests).
    package var state: GrantStateMachine.State { machine.state }

    // MARK: Errors

    /// The error every ALCF request gets while the grant needs a login.
    package static func loginRequired(_ reason: String) -> GatewayError {
        GatewayError(.permission, code: "alcf_login_required", message: reason)
    }

    static func unreachable(_ detail: String) -> GatewayError {
        GatewayError(.upstream, code: "globus_unreachable",
                     message: "The ALCF token could not be refreshed and has expired; Globus Auth did not answer usefully (\(detail)). rosettad retries on the next request.",
                     retryAfter: Int(transientBackoffSeconds))
    }

    // MARK: Persistence

    private func persist() {
        var file: JSONObject = ["version": 1, "provider": .string(providerName)]
        switch machine.state {
        case .valid(let token), .refreshing(let token):
            file["token"] = token.stored
        case .needsLogin(let reason):
            file["needs_login"] = .string(reason)
        case .none:
            return
        }
        do {
            try SecretFile.write(JSON.object(file).bytes, to: storePath)
        } catch {
            logger.error("could not store the Globus grant; it is kept in memory only", metadata: ["error": "\(error)"])
        }
    }

    private static func load(from path: String, logger: Logger) -> GrantStateMachine {
        let bytes: [UInt8]?
        do {
            bytes = try SecretFile.read(path)
        } catch {
            logger.error("ignoring the stored Globus grant", metadata: ["error": "\(error)"])
            return GrantStateMachine()
        }
        guard let bytes else { return GrantStateMachine() }
        guard let file = try? JSON.parse(bytes) else {
            logger.error("ignoring the stored Globus grant: not JSON", metadata: ["path": "\(path)"])
            return GrantStateMachine()
        }
        if let reason = file["needs_login"]?.stringValue {
            return GrantStateMachine(needsLogin: reason)
        }
        guard let stored = file["token"], let token = try? GlobusToken(stored: stored) else {
            logger.error("ignoring the stored Globus grant: incomplete", metadata: ["path": "\(path)"])
            return GrantStateMachine()
        }
        logger.info("loaded the stored Globus grant", metadata: ["globus.expires_at": "\(WallClock.iso8601(token.expiresAt))"])
        return GrantStateMachine(stored: token)
    }
}

extension GrantStateMachine {
    /// A machine restored in the needs-login state (a stored refusal survives a restart).
    init(needsLogin reason: String) {
        self.init()
        restoreNeedsLogin(reason)
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
