import Globus
import TenantGateway

/// Renders `rosetta status` from the same facts `rosetta doctor` uses: the daemon and its mode, the socket, the port,
/// the token file (never the token), each tunnel and Globus login with the command to run when it is not usable,
/// and the request counters. The models by provider are appended by the CLI (`rosetta models`' format).
package enum TenantStatusText {
    /// The text for a daemon that answered; `nil` when it did not (the CLI then points at `rosetta doctor`).
    package static func render(_ facts: DoctorFacts) -> String? {
        guard let status = facts.status else { return nil }
        var lines: [String] = []
        let user = status["user"]?.stringValue ?? facts.userName
        var head = "rosettad \(status["version"]?.stringValue ?? "?") serving \(user) (\(facts.mode ?? "user") mode)"
        if let state = status["state"]?.stringValue {
            head += ", \(state)"
            if let since = status["serving_since"]?.intValue { head += " since \(WallClock.iso8601(Double(since)))" }
        }
        lines.append(head)
        lines.append(row("unix socket", facts.socketPath + "  (" + socketNote(facts) + ")"))
        if let port = facts.port {
            lines.append(row("loopback", "http://127.0.0.1:\(port)  (token: `rosetta token`)"))
        }
        if let note = tokenFileNote(facts) { lines.append(row("token file", note)) }
        lines.append(row("requests", requestNote(status: status, tenant: facts.systemTenant)))

        if !facts.tunnels.isEmpty {
            lines.append("tunnels")
            for tunnel in facts.tunnels {
                let name = tunnel["provider"]?.stringValue ?? "?"
                let result = DoctorCheck.tunnelResult(provider: name, tunnel: tunnel, several: facts.tunnels.count > 1)
                lines.append(row(name, result.detail))
                if result.outcome != .ok, let fix = result.fix { lines.append(row("", "run: " + fix)) }
            }
        }
        let grants = facts.grants
        if !grants.isEmpty {
            lines.append("logins")
            for (name, grant) in grants {
                let result = DoctorCheck.grantResult(provider: name, grant: grant, loginName: grants.count == 1 ? "alcf" : name)
                var detail = result.detail
                if let expiry = grant["expires_at"]?.stringValue { detail += " (at \(expiry))" }
                lines.append(row(name, detail))
                if result.outcome != .ok, let fix = result.fix { lines.append(row("", "run: " + fix)) }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The status as one JSON object for scripts: the daemon's own status answer (every field it had), plus
    /// `mode`, `socket_file`, `token_file`, `tunnels`, `providers` and, in system mode, `system_tenant`.
    package static func json(_ facts: DoctorFacts) -> JSON? {
        guard var object = facts.status?.objectValue else { return nil }
        object["mode"] = facts.mode.map(JSON.string) ?? .null
        if let file = facts.socketFile {
            var socket: JSONObject = ["path": .string(facts.socketPath), "owner_uid": JSON(Int(file.ownerUID)), "mode": .string(DoctorCheck.octal(file.mode))]
            if let directory = facts.socketDirectory { socket["directory_mode"] = .string(DoctorCheck.octal(directory.mode)) }
            object["socket_file"] = .object(socket)
        }
        switch facts.tokenFile {
        case .notChecked:
            if facts.mode == "system" { object["token_file"] = ["state": "kept_by_system_daemon"] }
        case .missing(let path):
            object["token_file"] = ["path": .string(path), "state": "missing"]
        case .unreadable(let path, let reason):
            object["token_file"] = ["path": .string(path), "state": "unreadable", "reason": .string(reason)]
        case .matches(let path, let file):
            object["token_file"] = ["path": .string(path), "state": "current", "mode": .string(DoctorCheck.octal(file.mode))]
        case .differs(let path, let file):
            object["token_file"] = ["path": .string(path), "state": "differs", "mode": .string(DoctorCheck.octal(file.mode))]
        }
        object["tunnels"] = .array(facts.tunnels)
        if let providers = facts.models?["providers"] { object["providers"] = providers }
        if let tenant = facts.systemTenant { object["system_tenant"] = tenant }
        return .object(object)
    }

    // MARK: Pieces

    static func row(_ label: String, _ value: String) -> String {
        "  " + label.padding(toLength: max(12, label.count + 1), withPad: " ", startingAt: 0) + " " + value
    }

    static func socketNote(_ facts: DoctorFacts) -> String {
        guard let file = facts.socketFile else { return "not found" }
        var note = (file.ownerUID == facts.uid ? "yours" : "owner uid \(file.ownerUID)") + ", mode \(DoctorCheck.octal(file.mode))"
        if let directory = facts.socketDirectory { note += ", directory \(DoctorCheck.octal(directory.mode))" }
        if file.mode != 0o600 || (facts.socketDirectory.map { $0.mode != 0o700 } ?? false) { note += "; run `rosetta doctor`" }
        return note
    }

    static func tokenFileNote(_ facts: DoctorFacts) -> String? {
        switch facts.tokenFile {
        case .notChecked: facts.mode == "system" ? "kept by the host's rosettad (root only)" : nil
        case .missing(let path): "\(path) not found (another --state-dir?)"
        case .unreadable(let path, let reason): "\(path): \(reason)"
        case .matches(let path, let file): "\(path)  (mode \(DoctorCheck.octal(file.mode)), holds the current token)"
        case .differs(let path, let file): "\(path)  (mode \(DoctorCheck.octal(file.mode)), holds ANOTHER token than the daemon checks; run `rosetta token --rotate`)"
        }
    }

    static func requestNote(status: JSON, tenant: JSON?) -> String {
        var parts: [String] = []
        if let tenant, let requests = tenant["requests"]?.intValue {
            parts.append("\(requests) served, \(tenant["errors"]?.intValue ?? 0) errors, \(tenant["in_flight"]?.intValue ?? 0) in flight")
        }
        if let slots = status["upstream_slots"] {
            parts.append(
                "upstream slots: \(slots["in_flight"]?.intValue ?? 0) in flight, \(slots["queued"]?.intValue ?? 0) queued, \(slots["refused"]?.intValue ?? 0) refused"
                    + " (max \(slots["max_in_flight"]?.intValue ?? 0) in flight, \(slots["max_queued"]?.intValue ?? 0) queued)")
        }
        return parts.isEmpty ? "no counters reported" : parts.joined(separator: "; ")
    }

    /// `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
    package static func duration(_ seconds: Int) -> String {
        switch seconds {
        case ..<120: "\(seconds) s"
        case ..<7200: "\(seconds / 60) min"
        case ..<172_800: "\(seconds / 3600) h" + (seconds % 3600 >= 60 ? " \(seconds % 3600 / 60) min" : "")
        default: "\(seconds / 86_400) d" + (seconds % 86_400 >= 3600 ? " \(seconds % 86_400 / 3600) h" : "")
        }
    }
}
