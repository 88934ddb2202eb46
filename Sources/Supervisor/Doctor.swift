import TenantGateway

/// One line of `rosetta doctor`: what was checked, how it went, and the command that fixes a problem.
package struct DoctorResult: Sendable, Equatable {
    /// How a check went.
    package enum Outcome: String, Sendable, Equatable, Comparable {
        /// Works.
        case ok
        /// Works now, but something will bite (a stale token in the environment, a grant about to expire).
        case warn
        /// Broken.
        case fail
        /// Not run, because an earlier check failed or there is nothing to look at.
        case skipped

        /// Severity order for the exit status: skipped < ok < warn < fail.
        private var rank: Int {
            switch self {
            case .skipped: 0
            case .ok: 1
            case .warn: 2
            case .fail: 3
            }
        }

        /// Orders by severity.
        package static func < (lhs: Outcome, rhs: Outcome) -> Bool { lhs.rank < rhs.rank }
    }

    /// The subject: `daemon`, `socket`, `token`, `argo tunnel`, `alcf login`, a client's name…
    package var subject: String
    /// How it went.
    package var outcome: Outcome
    /// What was found, in a sentence.
    package var detail: String
    /// The exact command (or step) that fixes it, for `warn` and `fail`.
    package var fix: String?

    /// Creates a result.
    package init(_ subject: String, _ outcome: Outcome, _ detail: String, fix: String? = nil) {
        self.subject = subject
        self.outcome = outcome
        self.detail = detail
        self.fix = fix
    }
}

/// One check of `rosetta doctor`: a name, what it needs to have passed first, and a pure evaluation of the facts.
///
/// The client-file checks of `rosetta setup` plug in as further `DoctorCheck` values (see `DoctorReport.init`).
package struct DoctorCheck: Sendable {
    /// What must hold before the check can say anything useful.
    package enum Requirement: Sendable, Equatable {
        /// Runs always.
        case nothing
        /// Needs the socket file to exist.
        case socketFile
        /// Needs the daemon to answer on the socket.
        case daemon
    }

    /// The check's name, shown when it is skipped.
    package var name: String
    /// What it needs.
    package var requirement: Requirement
    /// Its lines for the facts (none when there is nothing to report, e.g. no tunnels configured).
    package var evaluate: @Sendable (DoctorFacts) -> [DoctorResult]

    /// Creates a check.
    package init(name: String, requirement: Requirement, evaluate: @escaping @Sendable (DoctorFacts) -> [DoctorResult]) {
        self.name = name
        self.requirement = requirement
        self.evaluate = evaluate
    }
}

/// The outcome of `rosetta doctor`: every check's lines in order, the exit status and the rendered text.
package struct DoctorReport: Sendable, Equatable {
    /// The lines, in the order the checks ran.
    package var results: [DoctorResult]

    /// Runs `checks` (by default the standard ones, then `clientChecks`) over the facts; a check whose requirement
    /// is not met gives one `skipped` line saying why.
    ///
    /// Client-file checks (`rosetta setup`'s clients pointing at this gateway) are passed as `clientChecks`; they
    /// run after the provider checks and need the daemon (they compare against its port).
    package init(facts: DoctorFacts, checks: [DoctorCheck] = DoctorCheck.standard, clientChecks: [DoctorCheck] = []) {
        var results: [DoctorResult] = []
        for check in checks + clientChecks {
            switch check.requirement {
            case .nothing:
                break
            case .socketFile where facts.socketFile == nil:
                results.append(DoctorResult(check.name, .skipped, "no socket file at \(facts.socketPath)"))
                continue
            case .daemon where facts.status == nil:
                results.append(DoctorResult(check.name, .skipped, "rosettad did not answer"))
                continue
            case .socketFile, .daemon:
                break
            }
            results += check.evaluate(facts)
        }
        self.results = results
    }

    /// The worst outcome among the lines (`ok` when all passed or there were none).
    package var worst: DoctorResult.Outcome {
        results.map(\.outcome).max() ?? .ok
    }

    /// 0 when every check passed, 1 when any failed, 2 when some only warned.
    package var exitStatus: Int32 {
        switch worst {
        case .fail: 1
        case .warn: 2
        case .ok, .skipped: 0
        }
    }

    /// The report as text: one line per result (`✓`/`!`/`✗`/`-`, or `ok`/`WARN`/`FAIL`/`skip` when `ascii`),
    /// each problem followed by an indented `fix:` line, then a summary line.
    package func render(ascii: Bool) -> String {
        var lines: [String] = []
        let width = max(results.map(\.subject.count).max() ?? 0, 6)
        for result in results {
            let mark: String = switch (result.outcome, ascii) {
            case (.ok, false): "✓"
            case (.warn, false): "!"
            case (.fail, false): "✗"
            case (.skipped, false): "-"
            case (.ok, true): "ok  "
            case (.warn, true): "WARN"
            case (.fail, true): "FAIL"
            case (.skipped, true): "skip"
            }
            let subject = result.subject.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("\(mark) \(subject)  \(result.detail)")
            if let fix = result.fix, result.outcome == .fail || result.outcome == .warn {
                lines.append(String(repeating: " ", count: (ascii ? 5 : 2) + width + 2) + "fix: \(fix)")
            }
        }
        let failed = results.filter { $0.outcome == .fail }.count
        let warned = results.filter { $0.outcome == .warn }.count
        lines.append("")
        if failed == 0 && warned == 0 {
            lines.append("All checks passed.")
        } else {
            var parts: [String] = []
            if failed > 0 { parts.append("\(failed) problem\(failed == 1 ? "" : "s")") }
            if warned > 0 { parts.append("\(warned) warning\(warned == 1 ? "" : "s")") }
            lines.append(parts.joined(separator: ", ") + "; run the fix lines above, then `rosetta doctor` again.")
        }
        return lines.joined(separator: "\n")
    }
}

// MARK: - The standard checks

extension DoctorCheck {
    /// The checks in the order the links are used: daemon, socket, token, providers.
    package static let standard: [DoctorCheck] = [daemon, socketPermissions, loopbackToken, tokenFile, tokenEnvironment, providers]

    /// The daemon answers on the user's socket; when not, why, and how to start it in the user's mode.
    package static let daemon = DoctorCheck(name: "daemon", requirement: .nothing) { facts in
        if let status = facts.status {
            let mode = facts.mode ?? "user"
            let version = status["version"]?.stringValue.map { " \($0)" } ?? ""
            return [DoctorResult("daemon", .ok, "rosettad\(version) serves \(status["user"]?.stringValue ?? facts.userName) on \(facts.socketPath) (\(mode) mode)")]
        }
        let problem = socketProblem(facts)
        switch facts.systemDaemon {
        case .answered(let tenant?):
            if tenant["state"]?.stringValue == "failed" {
                let error = tenant["error"]?.stringValue ?? "no reason given"
                return [DoctorResult("daemon", .fail, "the host's rosettad could not start your gateway: \(error)", fix: "rosetta disable && rosetta enable")]
            }
            return [DoctorResult("daemon", .fail, "the host's rosettad has you enabled, but \(problem)", fix: "rosetta disable && rosetta enable")]
        case .answered(nil):
            return [DoctorResult("daemon", .fail, "the host's rosettad runs but is not enabled for you, and \(problem)", fix: "rosetta enable")]
        case .notRunning:
            return [DoctorResult(
                "daemon", .fail, "\(problem); the host's rosettad is installed (\(facts.controlSocketPath)) but not running",
                fix: "ask an admin to run `systemctl start rosettad`, or start your own: `\(userStart(facts))`")]
        case .absent, .failed:
            return [DoctorResult("daemon", .fail, "no rosettad serves you: \(problem)", fix: userStart(facts, afterRemoving: facts.socket == .permissionDenied))]
        }
    }

    /// The socket is the user's, mode 0600, in a 0700 directory of the user's.
    package static let socketPermissions = DoctorCheck(name: "socket", requirement: .socketFile) { facts in
        guard let file = facts.socketFile else { return [] }
        let path = facts.socketPath
        let directory = facts.socketDirectoryPath
        let restart = facts.isSystemTenant ? "rosetta disable && rosetta enable" : "rm '\(path)' && \(userStart(facts))"
        if !file.isSocket {
            return [DoctorResult("socket", .fail, "\(path) is not a socket", fix: restart)]
        }
        if file.ownerUID != facts.uid {
            return [DoctorResult("socket", .fail, "\(path) belongs to uid \(file.ownerUID), not to you (uid \(facts.uid))", fix: restart)]
        }
        if file.mode != 0o600 {
            return [DoctorResult("socket", .fail, "\(path) has mode \(octal(file.mode)); it must be 0600 so only you can connect", fix: "chmod 600 '\(path)'")]
        }
        if let folder = facts.socketDirectory {
            if folder.ownerUID != facts.uid {
                return [DoctorResult("socket", .fail, "the directory \(directory) belongs to uid \(folder.ownerUID), not to you", fix: facts.isSystemTenant ? "rosetta disable && rosetta enable" : "rm -r '\(directory)' && \(userStart(facts))")]
            }
            if folder.mode != 0o700 {
                return [DoctorResult("socket", .fail, "the directory \(directory) has mode \(octal(folder.mode)); it must be 0700", fix: "chmod 700 '\(directory)'")]
            }
        }
        return [DoctorResult("socket", .ok, "\(path) is yours, mode 0600, in a 0700 directory")]
    }

    /// The loopback port answers `GET /v1/models` with the daemon's token: the port is the daemon's and auth works.
    package static let loopbackToken = DoctorCheck(name: "token", requirement: .daemon) { facts in
        guard let port = facts.port else {
            return [DoctorResult("token", .fail, "rosettad reports no loopback port", fix: facts.restartCommand)]
        }
        let url = "http://127.0.0.1:\(port)"
        switch facts.portProbe {
        case .notProbed:
            return [DoctorResult("token", .skipped, "\(url) was not probed")]
        case .answered(200):
            return [DoctorResult("token", .ok, "\(url) accepts your token (`rosetta token`)")]
        case .answered(401), .answered(403):
            return [DoctorResult(
                "token", .fail, "\(url) refused the token rosettad itself reports: another program answers on port \(port)",
                fix: "find the other program with `ss -ltnp 'sport = :\(port)'`; then \(facts.restartCommand)")]
        case .answered(let status):
            return [DoctorResult("token", .fail, "\(url)/v1/models answered HTTP \(status) instead of 200", fix: facts.restartCommand)]
        case .unreachable(let reason):
            return [DoctorResult("token", .fail, "nothing answers on \(url) (\(reason))", fix: facts.restartCommand)]
        }
    }

    /// The token file holds the token the daemon checks, and only the user can read it.
    package static let tokenFile = DoctorCheck(name: "token file", requirement: .daemon) { facts in
        switch facts.tokenFile {
        case .notChecked:
            return facts.mode == "system"
                ? [DoctorResult("token file", .ok, "kept by the host's rosettad; `rosetta token` prints it")]
                : []
        case .missing(let path):
            return [DoctorResult("token file", .skipped, "no token file at \(path) (rosettad was started with another --state-dir)")]
        case .unreadable(let path, let reason):
            return [DoctorResult("token file", .fail, "cannot read \(path): \(reason)", fix: "rosetta token --rotate")]
        case .differs(let path, _):
            return [DoctorResult(
                "token file", .fail,
                "\(path) holds another token than rosettad checks (it was changed behind the daemon's back); clients that read the file get 401",
                fix: "rosetta token --rotate")]
        case .matches(let path, let file):
            if file.ownerUID != facts.uid || file.mode & 0o077 != 0 {
                return [DoctorResult("token file", .fail, "\(path) has mode \(octal(file.mode)); other users can read your token", fix: "chmod 600 '\(path)' && rosetta token --rotate")]
            }
            return [DoctorResult("token file", .ok, "\(path) holds the current token, mode \(octal(file.mode))")]
        }
    }

    /// No environment variable holds an older gateway token (exported before a rotation).
    package static let tokenEnvironment = DoctorCheck(name: "environment", requirement: .daemon) { facts in
        var results: [DoctorResult] = []
        for name in facts.staleTokenVariables {
            results.append(DoctorResult(
                "environment", .warn, "$\(name) holds an older gateway token; requests with it get 401",
                fix: "export \(name)=\"$(rosetta token)\""))
        }
        if results.isEmpty, !facts.currentTokenVariables.isEmpty {
            let names = facts.currentTokenVariables.map { "$" + $0 }.joined(separator: ", ")
            results.append(DoctorResult("environment", .ok, "\(names) hold\(facts.currentTokenVariables.count == 1 ? "s" : "") the current token"))
        }
        return results
    }

    /// Each provider: an Argo tunnel up or idle (else its reason and command), an ALCF grant valid (else
    /// `rosetta login alcf`), discovery working; plain API providers are listed but not probed (a probe costs a request).
    package static let providers = DoctorCheck(name: "providers", requirement: .daemon) { facts in
        var results: [DoctorResult] = []
        let tunnels = Dictionary(facts.tunnels.compactMap { tunnel in tunnel["provider"]?.stringValue.map { ($0, tunnel) } }, uniquingKeysWith: { first, _ in first })
        let grants = Dictionary(facts.grants.map { ($0.name, $0.status) }, uniquingKeysWith: { first, _ in first })
        let providers = facts.models?["providers"]?.arrayValue ?? []
        for provider in providers {
            guard let name = provider["name"]?.stringValue else { continue }
            let count = provider["models"]?.arrayValue?.count ?? 0
            if let tunnel = tunnels[name] {
                results.append(tunnelResult(provider: name, tunnel: tunnel, several: tunnels.count > 1))
            }
            if let grant = grants[name] {
                results.append(grantResult(provider: name, grant: grant, loginName: grants.count == 1 ? "alcf" : name))
            }
            if let discovery = provider["discovery"], let error = discovery["last_error"]?.stringValue {
                results.append(DoctorResult(name, .warn, "model discovery failed: \(error) (the last list is kept)", fix: "rosetta models --refresh"))
            } else if tunnels[name] == nil, grants[name] == nil {
                let discovered = provider["discovery"]?["state"]?.stringValue == "ready"
                results.append(DoctorResult(
                    name, .ok,
                    "\(count) model\(count == 1 ? "" : "s")" + (discovered ? ", discovered" : "; reachability not probed (it would cost a request)")))
            }
        }
        if let error = facts.modelsError {
            results.append(DoctorResult("providers", .fail, "rosettad could not list its models: \(error)", fix: "rosetta models --refresh"))
        } else if providers.isEmpty {
            results.append(DoctorResult("providers", .warn, "no provider is configured, so no model can be served", fix: "add providers and models to your config, then restart rosettad"))
        }
        return results
    }

    // MARK: Pieces

    /// Why the socket did not answer, in words.
    static func socketProblem(_ facts: DoctorFacts) -> String {
        switch facts.socket {
        case .answered: "it answers"
        case .missing: "\(facts.socketPath) does not exist"
        case .notListening: "\(facts.socketPath) exists but nothing listens on it (rosettad stopped or crashed)"
        case .permissionDenied: "\(facts.socketPath) refuses you (it belongs to another user)"
        case .failed(let message): "\(facts.socketPath): \(message)"
        }
    }

    /// The command that starts a user-mode daemon: the user service when installed, else `rosettad serve --user`.
    static func userStart(_ facts: DoctorFacts, afterRemoving: Bool = false) -> String {
        let start = facts.userServiceInstalled ? "systemctl --user start rosettad" : "rosettad serve --user"
        return afterRemoving ? "rm '\(facts.socketPath)' && \(start)" : start
    }

    /// One tunnel's line: up/idle/connecting pass; backoff, cooling down and locked fail with the fitting command.
    static func tunnelResult(provider: String, tunnel: JSON, several: Bool) -> DoctorResult {
        let subject = "\(provider) tunnel"
        let state = tunnel["state"]?.stringValue ?? "unknown"
        let destination = tunnel["destination"]?.stringValue ?? "the jump host"
        let flag = several ? " --provider \(provider)" : ""
        switch state {
        case "up":
            let seconds = tunnel["up_seconds"]?.intValue ?? 0
            let over = tunnel["mode"]?.stringValue == "control_master" ? " over your ssh ControlMaster" : ""
            return DoctorResult(subject, .ok, "up for \(TenantStatusText.duration(seconds)) to \(destination)\(over)")
        case "idle":
            return DoctorResult(subject, .ok, "idle; ssh to \(destination) starts on the first Argo request")
        case "connecting":
            return DoctorResult(subject, .ok, "connecting to \(destination)")
        case "stopped":
            return DoctorResult(subject, .fail, "stopped with the gateway", fix: "restart rosettad")
        default:
            let failureClass = tunnel["last_failure"]?["class"]?.stringValue
            let detail = tunnel["last_failure"]?["detail"]?.stringValue
            let message = tunnel["message"]?.stringValue
                ?? "\(state.replacingOccurrences(of: "_", with: " "))" + (detail.map { ": \($0)" } ?? "")
            let fix: String = switch failureClass {
            case "authentication": "rosetta tunnel login\(flag)   (password/MFA in this terminal; or fix the ssh key, then `rosetta tunnel reset\(flag)`)"
            case "host_key": "check the host key of \(destination) in the tunnel's known_hosts file, then `rosetta tunnel reset\(flag)`"
            case "network": "rosetta tunnel reset\(flag)   (once \(destination) is reachable: network, VPN)"
            default: "rosetta tunnel reset\(flag)   (details: `rosetta tunnel status\(flag)`)"
            }
            return DoctorResult(subject, .fail, message, fix: fix)
        }
    }

    /// One grant's line: valid passes (warns near an expiry without refresh or after a failed refresh); logged out
    /// or needing a login fails with `rosetta login`.
    static func grantResult(provider: String, grant: JSON, loginName: String) -> DoctorResult {
        let subject = "\(provider) login"
        let login = "rosetta login \(loginName)"
        switch grant["state"]?.stringValue {
        case "valid", "refreshing":
            let seconds = grant["expires_in_seconds"]?.intValue ?? 0
            let refreshable = grant["refreshable"]?.boolValue == true
            if let error = grant["last_refresh_error"]?.stringValue {
                return DoctorResult(subject, .warn, "logged in, but the last refresh failed: \(error)", fix: "\(login)   (if it keeps failing)")
            }
            if !refreshable, seconds < 86_400 {
                return DoctorResult(subject, .warn, "the token expires in \(TenantStatusText.duration(max(seconds, 0))) and cannot be refreshed", fix: login)
            }
            return DoctorResult(
                subject, .ok,
                "logged in; the token expires in \(TenantStatusText.duration(max(seconds, 0)))" + (refreshable ? " and is refreshed automatically" : ""))
        case "needs_login":
            return DoctorResult(subject, .fail, "needs a new login: \(grant["reason"]?.stringValue ?? "the grant ended")", fix: login)
        default:
            return DoctorResult(subject, .fail, "not logged in to Globus, so its models refuse requests", fix: login)
        }
    }

    /// `0600`.
    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
