import TenantGateway

/// Everything `rosetta doctor` and `rosetta status` observed about the user's gateway, with no I/O left to do.
///
/// The CLI probes (sockets, files, the loopback port, the control routes) and fills this in; `DoctorReport` and
/// `TenantStatusText` only read it, so tests build each broken situation by hand.
package struct DoctorFacts: Sendable, Equatable {
    /// What connecting to the user's socket and asking `GET /rosetta/v1/status` gave.
    package enum SocketAnswer: Sendable, Equatable {
        /// The daemon answered with its status.
        case answered(status: JSON)
        /// No file at the socket path.
        case missing
        /// The file exists but nothing accepts connections on it (a stale socket).
        case notListening
        /// The kernel refused the connection (another user's socket, or a directory we cannot enter).
        case permissionDenied
        /// Any other failure (a timeout, an answer that is not HTTP), with its message.
        case failed(String)
    }

    /// What the host's system daemon said on its control socket.
    package enum SystemDaemonAnswer: Sendable, Equatable {
        /// No control socket file: no system rosettad on this host.
        case absent
        /// The control socket exists but nothing listens (the system daemon is stopped).
        case notRunning
        /// It answered; `tenant` is the caller's own row (`nil` when the caller is not enabled).
        case answered(tenant: JSON?)
        /// Any other failure, with its message.
        case failed(String)
    }

    /// Owner and permission bits of a file.
    package struct FileFacts: Sendable, Equatable {
        /// The owning uid.
        package var ownerUID: UInt32
        /// The permission bits (`0o600`).
        package var mode: UInt32
        /// Whether the file is a Unix socket.
        package var isSocket: Bool

        /// Creates file facts.
        package init(ownerUID: UInt32, mode: UInt32, isSocket: Bool = false) {
            self.ownerUID = ownerUID
            self.mode = mode
            self.isSocket = isSocket
        }
    }

    /// What a request to the loopback port with the daemon's token gave (`GET /v1/models`).
    package enum PortProbe: Sendable, Equatable {
        /// Not tried (no daemon, no port, or `rosetta status`).
        case notProbed
        /// An HTTP answer with this status.
        case answered(status: Int)
        /// No HTTP answer (refused, timed out), with the reason.
        case unreachable(String)
    }

    /// The state of the token file on disk, compared with the token the daemon checks.
    package enum TokenFile: Sendable, Equatable {
        /// Not looked at: kept by the system daemon (root-only), or the daemon did not answer.
        case notChecked
        /// No file at the expected path (the daemon may use another `--state-dir`).
        case missing(path: String)
        /// The file holds the daemon's token.
        case matches(path: String, file: FileFacts)
        /// The file holds another token than the daemon checks.
        case differs(path: String, file: FileFacts)
        /// The file could not be read, with the reason.
        case unreadable(path: String, reason: String)
    }

    /// The user's login name.
    package var userName: String
    /// The user's uid.
    package var uid: UInt32
    /// The user's socket path.
    package var socketPath: String
    /// What the socket answered.
    package var socket: SocketAnswer
    /// The socket file's owner and mode, when it exists.
    package var socketFile: FileFacts?
    /// The socket's directory's owner and mode, when it exists.
    package var socketDirectory: FileFacts?
    /// The system daemon's control socket path.
    package var controlSocketPath: String
    /// What the system daemon said.
    package var systemDaemon: SystemDaemonAnswer
    /// Whether `~/.config/systemd/user/rosettad.service` exists (so the fix is `systemctl --user start rosettad`).
    package var userServiceInstalled: Bool
    /// The loopback probe with the daemon's token.
    package var portProbe: PortProbe
    /// The token file.
    package var tokenFile: TokenFile
    /// Environment variables holding an `rst-` gateway token other than the current one.
    package var staleTokenVariables: [String]
    /// Environment variables holding the current token.
    package var currentTokenVariables: [String]
    /// Each Argo tunnel's status (`GET /rosetta/v1/tunnel`), with its `provider`.
    package var tunnels: [JSON]
    /// The models by provider (`GET /rosetta/v1/models`), when the daemon answered.
    package var models: JSON?
    /// Why the models could not be listed, when the daemon answered the status but not the models.
    package var modelsError: String?

    /// Facts about a user with nothing probed yet: no daemon, no files, no system daemon.
    package init(userName: String, uid: UInt32, socketPath: String, controlSocketPath: String) {
        self.userName = userName
        self.uid = uid
        self.socketPath = socketPath
        self.socket = .missing
        self.controlSocketPath = controlSocketPath
        self.systemDaemon = .absent
        self.userServiceInstalled = false
        self.portProbe = .notProbed
        self.tokenFile = .notChecked
        self.staleTokenVariables = []
        self.currentTokenVariables = []
        self.tunnels = []
    }

    // MARK: Derived

    /// Which mode serves the user: a tenant of the system daemon, or a user-mode daemon; `nil` when neither.
    package var mode: String? {
        if case .answered(let tenant?) = systemDaemon, tenant["state"]?.stringValue != nil { return "system" }
        if case .answered = socket { return "user" }
        return nil
    }

    /// The daemon's status answer, when it answered.
    package var status: JSON? {
        if case .answered(let status) = socket { return status }
        return nil
    }

    /// The user's row in the system daemon's report, when enabled there.
    package var systemTenant: JSON? {
        if case .answered(let tenant) = systemDaemon { return tenant }
        return nil
    }

    /// The directory holding the socket.
    package var socketDirectoryPath: String {
        guard let slash = socketPath.lastIndex(of: "/") else { return "." }
        return slash == socketPath.startIndex ? "/" : String(socketPath[..<slash])
    }

    /// The loopback port the daemon reports.
    package var port: Int? { status?["port"]?.intValue }

    /// The Globus grants by provider name, from the status.
    package var grants: [(name: String, status: JSON)] {
        guard let globus = status?["globus"]?.objectValue else { return [] }
        return globus.map { ($0.key, $0.value) }
    }

    /// Whether the system daemon serves (or tried to serve) the user, so fixes go through `rosetta enable`.
    package var isSystemTenant: Bool { mode == "system" || systemTenant != nil }

    /// What restarts the daemon serving the user: re-enabling in system mode, the user unit when installed,
    /// else stopping the running `rosettad serve --user` and starting it again.
    package var restartCommand: String {
        if isSystemTenant { return "rosetta disable && rosetta enable" }
        return userServiceInstalled ? "systemctl --user restart rosettad" : "stop the running rosettad, then `rosettad serve --user`"
    }
}
