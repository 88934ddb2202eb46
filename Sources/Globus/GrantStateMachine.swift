/// The life of one tenant's Globus grant, as a value type: which token a request may use, when to refresh,
/// and when only a new login helps. The grant actor performs the I/O it asks for.
///
/// none → valid → refreshing → valid, or → needs-login when Globus refuses the refresh or the gateway's
/// 30-day policy demands a new login. One refresh runs at a time; requests that need a token meanwhile wait.
package struct GrantStateMachine: Sendable, Equatable {
    /// Where the grant stands.
    package enum State: Sendable, Equatable {
        /// Never logged in (or logged out).
        case none
        /// A token is held.
        case valid(GlobusToken)
        /// A refresh is running; the old token is kept for requests while it is still valid.
        case refreshing(GlobusToken)
        /// Only `rosetta login alcf` can help; the reason says why.
        case needsLogin(reason: String)
    }

    /// What a request for a token should do.
    package enum TokenAction: Sendable, Equatable {
        /// Send the request with this access token.
        case use(String)
        /// Perform a refresh with this refresh token, report it, then ask again.
        case refresh(refreshToken: String)
        /// A refresh is under way: wait for it, then ask again.
        case wait
        /// Fail the request with this explanation.
        case fail(String)
    }

    /// Why a refresh did not produce a token.
    package enum RefreshFailure: Sendable, Equatable {
        /// Globus refused the refresh token (`invalid_grant` and the like): a new login is needed.
        case refused(String)
        /// Globus could not be reached or answered with a server error: retry later.
        case transient(String)
    }

    /// The current state.
    package private(set) var state: State

    /// Creates the machine, from a stored token when there is one.
    package init(stored: GlobusToken? = nil) {
        state = stored.map(State.valid) ?? .none
    }

    /// The token held, if any (also during a refresh), for status displays.
    package var token: GlobusToken? {
        switch state {
        case .valid(let token), .refreshing(let token): token
        case .none, .needsLogin: nil
        }
    }

    /// What a request that needs a token at `now` should do.
    ///
    /// Inside the refresh margin the first caller refreshes while others keep using the still-valid
    /// token; once it has expired everyone waits for the one refresh.
    package mutating func tokenRequested(now: Double) -> TokenAction {
        switch state {
        case .none:
            return .fail("Not logged in to ALCF: run `rosetta login alcf`.")
        case .needsLogin(let reason):
            return .fail(reason)
        case .refreshing(let token):
            return token.isExpired(now: now) ? .wait : .use(token.accessToken)
        case .valid(let token):
            guard token.isDueForRefresh(now: now) else { return .use(token.accessToken) }
            guard let refreshToken = token.refreshToken else {
                if token.isExpired(now: now) {
                    state = .needsLogin(reason: "The ALCF access token expired and no refresh token was issued: run `rosetta login alcf`.")
                    return .fail("The ALCF access token expired and no refresh token was issued: run `rosetta login alcf`.")
                }
                return .use(token.accessToken)
            }
            state = .refreshing(token)
            return .refresh(refreshToken: refreshToken)
        }
    }

    /// Records a successful refresh; the old refresh token is kept when Globus sends none back.
    package mutating func refreshSucceeded(_ fresh: GlobusToken) {
        var fresh = fresh
        if fresh.refreshToken == nil { fresh.refreshToken = token?.refreshToken }
        state = .valid(fresh)
    }

    /// Records a failed refresh: refused → needs a login; transient → keep the old token and try again later.
    package mutating func refreshFailed(_ failure: RefreshFailure) {
        switch failure {
        case .refused(let detail):
            state = .needsLogin(reason: "Globus refused to refresh the ALCF grant (\(detail)): run `rosetta login alcf`.")
        case .transient:
            if case .refreshing(let token) = state { state = .valid(token) }
        }
    }

    /// Handles the gateway's 401 for a request sent with `accessToken`: refresh once, unless a policy demands a login.
    ///
    /// Returns what the request should do before its single retry: refresh, wait for a refresh already
    /// running, use a newer token someone else obtained, or fail.
    package mutating func unauthorized(accessToken: String, demandsLogin: Bool) -> TokenAction {
        if demandsLogin {
            state = .needsLogin(reason: "ALCF requires a new login (its policy re-authenticates every 30 days): run `rosetta login alcf`.")
            return tokenRequested(now: 0)
        }
        switch state {
        case .valid(let token) where token.accessToken == accessToken:
            guard let refreshToken = token.refreshToken else {
                state = .needsLogin(reason: "ALCF refused the access token and there is no refresh token: run `rosetta login alcf`.")
                return tokenRequested(now: 0)
            }
            state = .refreshing(token)
            return .refresh(refreshToken: refreshToken)
        case .valid(let token):
            return .use(token.accessToken)
        case .refreshing:
            return .wait
        case .none, .needsLogin:
            return tokenRequested(now: 0)
        }
    }

    /// Records a completed login.
    package mutating func loggedIn(_ token: GlobusToken) {
        state = .valid(token)
    }

    /// Restores a needs-login state read back from the grant's file after a restart.
    package mutating func restoreNeedsLogin(_ reason: String) {
        state = .needsLogin(reason: reason)
    }

    /// Forgets the grant.
    package mutating func loggedOut() {
        state = .none
    }
}
