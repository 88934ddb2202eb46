import Logging

/// One user's gateway: owns the user's token, configuration, upstream client and fronts.
///
/// Later issues give it the user's SSH tunnel and Globus grant as well; it is the unit the
/// supervisor starts, reloads and stops, and a tenant's failure stays inside it.
package actor Tenant: TenantControl {
    /// Where the tenant is in its life.
    package enum State: Sendable, Equatable {
        /// Built but not yet listening.
        case idle
        /// Listening and serving requests since the given time (seconds since the epoch).
        case serving(since: Int)
        /// No longer accepting; finishing requests in flight.
        case draining
        /// Stopped.
        case stopped
    }

    /// The account this tenant serves.
    package nonisolated let userName: String
    /// The account's uid, the only peer uid its Unix socket serves.
    package nonisolated let uid: UInt32
    /// The configuration it serves.
    package nonisolated let config: GatewayConfig
    /// The tenant's client token.
    package nonisolated let token: TenantTokenStore
    /// Where it listens, once listening.
    package private(set) var endpoints: [String: JSON] = [:]
    /// The current state.
    package private(set) var state: State = .idle

    /// Creates a tenant.
    package init(userName: String, uid: UInt32, config: GatewayConfig, token: TenantTokenStore) {
        self.userName = userName
        self.uid = uid
        self.config = config
        self.token = token
    }

    /// Records a state change.
    package func transition(to newState: State) {
        state = newState
    }

    /// Records where the tenant listens, for the status route.
    package func setEndpoints(socketPath: String, port: Int) {
        endpoints = ["socket": .string(socketPath), "port": JSON(port), "url": .string("http://127.0.0.1:\(port)")]
    }

    /// The tenant's status without secrets: user, state, endpoints.
    package func status() -> JSON {
        var object: JSONObject = ["user": .string(userName), "uid": JSON(Int(uid)), "version": .string(RosettaVersion.current)]
        switch state {
        case .idle: object["state"] = "idle"
        case .serving(let since):
            object["state"] = "serving"
            object["serving_since"] = JSON(since)
        case .draining: object["state"] = "draining"
        case .stopped: object["state"] = "stopped"
        }
        for (key, value) in endpoints.sorted(by: { $0.key < $1.key }) { object[key] = value }
        return .object(object)
    }
}
