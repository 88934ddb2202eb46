#if canImport(Glibc)
import Glibc
#endif

/// Whom ssh runs as: the seam for system mode, where the supervisor (root) spawns ssh as the tenant's user.
///
/// User mode leaves it `nil`: ssh runs as the invoking user, with their `~/.ssh/config` and keys.
package struct SSHSpawnIdentity: Sendable, Equatable {
    /// The tenant's user ID.
    package var userID: UInt32
    /// The tenant's primary group ID.
    package var groupID: UInt32
    /// The tenant's supplementary groups.
    package var supplementaryGroups: [UInt32]
    /// The tenant's home directory (ssh reads `~/.ssh` from `HOME`).
    package var home: String
    /// The tenant's user name (`USER`, `LOGNAME`).
    package var userName: String

    /// Creates an identity.
    package init(userID: UInt32, groupID: UInt32, supplementaryGroups: [UInt32], home: String, userName: String) {
        self.userID = userID
        self.groupID = groupID
        self.supplementaryGroups = supplementaryGroups
        self.home = home
        self.userName = userName
    }

    /// Where `setpriv` (util-linux) is looked for: the usual locations, so a restricted `PATH` still finds it.
    package static let setprivCandidates = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv", "/sbin/setpriv"]

    /// The command that runs `executable` with `arguments` as this identity: `setpriv` sets the groups, the
    /// gid and the uid (real, effective and saved), then executes it in the same process.
    package func launchCommand(executable: String, arguments: [String]) -> (executable: String, arguments: [String]) {
        let setpriv = Self.setprivCandidates.first { access($0, X_OK) == 0 } ?? "setpriv"
        let groups = supplementaryGroups.isEmpty
            ? ["--clear-groups"]
            : ["--groups=" + supplementaryGroups.map(String.init).joined(separator: ",")]
        return (setpriv, ["--reuid=\(userID)", "--regid=\(groupID)"] + groups + ["--", executable] + arguments)
    }
}

/// Everything one tenant's tunnel needs: where to connect, what to forward, where its private files live.
package struct SSHTunnelConfiguration: Sendable, Equatable {
    /// `[user@]host` of the machine that reaches Argo.
    package var destination: String
    /// An optional jump host (`-J`).
    package var jump: String?
    /// The destination's SSH port, when not 22 or the user's config.
    package var port: Int?
    /// The private key to use (`-i`, with `IdentitiesOnly=yes`).
    package var identityFile: String?
    /// The known-hosts file (`UserKnownHostsFile`).
    package var knownHostsFile: String?
    /// The host the forward reaches from the destination (Argo's host).
    package var forwardHost: String
    /// The port the forward reaches (443).
    package var forwardPort: Int
    /// A 0700 directory of the tenant's that holds the forwarded socket and the control socket.
    package var runtimeDirectory: String
    /// The ssh program.
    package var sshExecutable: String = "/usr/bin/ssh"
    /// `ServerAliveInterval` in seconds.
    package var serverAliveInterval: Int = 15
    /// `ServerAliveCountMax`.
    package var serverAliveCountMax: Int = 4
    /// How long ssh gets between SIGTERM and SIGKILL.
    package var terminationGrace: Duration = .seconds(2)
    /// Timing and limits.
    package var policy: TunnelPolicy = TunnelPolicy()
    /// Whom ssh runs as; `nil` is the daemon's own user (user mode).
    package var spawnIdentity: SSHSpawnIdentity? = nil
    /// Extra `-o` options (`Name=value`), after rosetta's own.
    package var extraOptions: [String] = []

    /// Creates a configuration.
    package init(
        destination: String, jump: String? = nil, port: Int? = nil, identityFile: String? = nil, knownHostsFile: String? = nil,
        forwardHost: String, forwardPort: Int, runtimeDirectory: String
    ) {
        self.destination = destination
        self.jump = jump
        self.port = port
        self.identityFile = identityFile
        self.knownHostsFile = knownHostsFile
        self.forwardHost = forwardHost
        self.forwardPort = forwardPort
        self.runtimeDirectory = runtimeDirectory
    }

    /// The forwarded Unix socket libcurl connects to.
    package var socketPath: String { runtimeDirectory + "/argo.sock" }

    /// The ControlMaster socket that `rosetta tunnel login` opens and the tunnel reuses.
    package var controlPath: String { runtimeDirectory + "/control.sock" }

    /// The `-L` specification: the local socket to the forward target.
    package var forwardSpecification: String { "\(socketPath):\(forwardHost):\(forwardPort)" }

    /// Options every ssh invocation shares: destination port, key, known hosts, jump host.
    package var connectionArguments: [String] {
        var arguments: [String] = []
        if let port { arguments += ["-p", String(port)] }
        if let identityFile { arguments += ["-i", identityFile, "-o", "IdentitiesOnly=yes"] }
        if let knownHostsFile { arguments += ["-o", "UserKnownHostsFile=\(knownHostsFile)"] }
        if let jump { arguments += ["-J", jump] }
        for option in extraOptions { arguments += ["-o", option] }
        return arguments
    }

    /// The non-interactive `ssh -N` that holds the forward by itself (no ControlMaster).
    package var standaloneArguments: [String] {
        [
            "-N", "-T",
            "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=\(serverAliveInterval)",
            "-o", "ServerAliveCountMax=\(serverAliveCountMax)",
            "-o", "ConnectionAttempts=1",
            "-o", "ConnectTimeout=\(max(TunnelStateMachine.wholeSeconds(policy.connectTimeout), 1))",
            "-o", "StreamLocalBindUnlink=yes",
            "-o", "StreamLocalBindMask=0177",
            "-o", "ControlMaster=no",
            "-o", "ControlPath=none",
            "-o", "ClearAllForwardings=no",
        ] + connectionArguments + ["-L", forwardSpecification, destination]
    }

    /// A control command (`check`, `forward`, `cancel`, `exit`) to the ControlMaster at `controlPath`.
    package func controlArguments(_ command: String) -> [String] {
        var arguments = ["-S", controlPath, "-o", "BatchMode=yes", "-O", command]
        if command == "forward" || command == "cancel" { arguments += ["-L", forwardSpecification] }
        return arguments + connectionArguments + [destination]
    }

    /// The interactive ssh that `rosetta tunnel login` runs in the user's terminal: it authenticates (password,
    /// OTP, whatever the server asks) and leaves a ControlMaster in the background that the tunnel reuses.
    package var loginArguments: [String] {
        [
            "-f", "-N", "-M",
            "-S", controlPath,
            "-o", "ControlPersist=yes",
            "-o", "ServerAliveInterval=\(serverAliveInterval)",
            "-o", "ServerAliveCountMax=\(serverAliveCountMax)",
        ] + connectionArguments + [destination]
    }
}
